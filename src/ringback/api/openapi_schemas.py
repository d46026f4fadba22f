"""What ``/openapi.json`` adds to FastAPI's document: the webhook payloads (``event_schemas``)
and the examples exactly as the models give them.

FastAPI writes its document without null values (``exclude_none``), which also drops every
``null`` inside an example, so that ``{"max_calls_per_second": null}`` (clear the rate) would
read as ``{}`` and a ``TaskOut`` example would lack its required nullable fields. The examples
are put back from the models after FastAPI has built the document.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from ringback.api.event_schemas import register_webhooks
from ringback.api.queue_schemas import CallingHoursSpec, QueueCreate, QueueOut, QueueUpdate
from ringback.api.schemas import JobOut, TaskBatchIn, TaskOut
from ringback.domain.tasks import CallbackTask, IvrCallJob, MsgCallJob

#: the models whose ``examples`` the document shows
WITH_EXAMPLES: tuple[type[BaseModel], ...] = (
    CallbackTask, MsgCallJob, IvrCallJob, TaskBatchIn, TaskOut, JobOut, QueueCreate,
    QueueUpdate, QueueOut, CallingHoursSpec,
)  # fmt: skip


def model_examples(model: type[BaseModel]) -> list[Any]:
    extra = model.model_config.get("json_schema_extra")
    found = extra.get("examples", []) if isinstance(extra, dict) else []
    return list(found) if isinstance(found, list) else []


def _no_validation_answer(spec: dict[str, Any]) -> None:
    """A webhook is ringback's request, not an operation ringback answers: drop the 422 that
    FastAPI gives every operation with parameters, and its schemas when nothing else uses them."""
    for item in spec.get("webhooks", {}).values():
        for operation in item.values():
            operation.get("responses", {}).pop("422", None)
    components = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        used = f'"#/components/schemas/{name}"'
        if name in components and used not in json.dumps({**spec, "components": {}}):
            if name == "ValidationError" and "HTTPValidationError" in components:
                continue  # still used by it
            del components[name]


def document(app: FastAPI) -> None:
    """Register the webhook payloads and serve the document with the models' examples."""
    register_webhooks(app)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            components = spec.get("components", {}).get("schemas", {})
            for model in WITH_EXAMPLES:
                for name in (model.__name__, f"{model.__name__}-Input", f"{model.__name__}-Output"):
                    if name in components:
                        components[name]["examples"] = copy.deepcopy(model_examples(model))
            _no_validation_answer(spec)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
