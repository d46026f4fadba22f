"""A response model's JSON built from values it would accept, without validating them.

``json_dumper(Model)(values)`` equals ``Model.model_validate(values).model_dump(mode="json",
by_alias=True)`` for ``values`` the model accepts as they are (the API shows data it stored
after validating it): the model's fields in its order under their (serialization) aliases, a
missing field's default, a float field's integer as a float (as pydantic's lax mode makes it),
nested models dumped the same way (one, a list of them, or a union of them: the member whose
fields the values fit, as a model refusing extra fields selects itself), ``exclude_if``
honoured and unknown keys dropped. Nothing else is checked or converted (a missing required
field is still refused). What it saves is the validation (for a task: one model per leg,
per fax, per detection, the job's data and options); the values are built either way.
Models with serializers or computed fields are refused: the plan could not follow them. The
plan is plain data (:class:`ringback.domain.json_plan.JsonPlan`, applied without pydantic).
``tests/api/test_task_json.py`` checks the equality over generated tasks.
"""

from __future__ import annotations

import copy
import types
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ringback.domain.json_plan import MISSING, AsFloat, Equals, JsonPlan, ListOf, UnionOf


@cache
def json_dumper(model: type[BaseModel]) -> JsonPlan:
    """The dumper of ``model``'s JSON from values it accepts (one per model)."""
    decorators = model.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers:
        raise TypeError(f"{model.__name__} has serializers")
    if model.model_computed_fields:
        raise TypeError(f"{model.__name__} has computed fields")
    keys, sources, defaults = [], [], []
    made: list[tuple[str, Any]] = []  # defaults made afresh each time
    converts: list[tuple[str, Any]] = []
    excludes: list[tuple[str, Equals]] = []
    required = set()
    for name, field in model.model_fields.items():
        if field.exclude is True:
            continue
        key = field.serialization_alias or field.alias or name
        given = field.validation_alias if isinstance(field.validation_alias, str) else None
        source = given or field.alias or name
        default, fresh = _default(field)
        if fresh is not MISSING:
            made.append((key, fresh))
        elif default is MISSING:
            required.add(source)
        keys.append(key)
        sources.append(source)
        defaults.append(default)
        convert = _converter(field.annotation)
        if convert is not None:
            converts.append((key, convert))
        if field.exclude_if is not None:
            if not isinstance(field.exclude_if, Equals):
                raise TypeError(f"{model.__name__}.{name}: exclude_if must be an Equals")
            excludes.append((key, field.exclude_if))
    return JsonPlan(
        name=model.__name__, keys=tuple(keys), sources=tuple(sources), defaults=tuple(defaults),
        made=tuple(made), converts=tuple(converts), excludes=tuple(excludes),
        required=frozenset(required),
    )  # fmt: skip


def _default(field: FieldInfo) -> tuple[Any, Any]:
    """The field's default value (``MISSING``: required or made afresh), and the value made
    afresh (deep-copied) for each dump (``MISSING``: none)."""
    factory = field.default_factory
    if factory is not None:
        if field.default_factory_takes_validated_data:
            raise TypeError("no plan for a default factory taking the data")
        return MISSING, factory()  # type: ignore[call-arg]
    if field.is_required():
        return MISSING, MISSING
    default = field.default
    if isinstance(default, list | dict | set):  # pydantic copies a mutable default too
        return MISSING, copy.deepcopy(default)
    return default, MISSING


def _converter(annotation: Any) -> Any:
    """How a value of this type changes between validation and dump (None: it does not)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _converter(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _converter(members[0])
        if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
            return UnionOf(tuple(json_dumper(m) for m in members))
        if any(_converter(m) is not None for m in members):
            raise TypeError(f"no plan for the union {annotation}")
        return None
    if annotation is float:
        return AsFloat()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return json_dumper(annotation)
    if origin is list:
        item = _converter(get_args(annotation)[0])
        return None if item is None else ListOf(item)
    if origin in (dict, tuple, set, frozenset) and any(_converter(a) for a in get_args(annotation)):
        raise TypeError(f"no plan for {annotation}")
    return None


#: the plan of ``TaskOut`` written out, for processes that never import pydantic
TASK_PLAN_FILE = Path(__file__).with_name("task_plan.py")
_PLAN_PARTS = ("MISSING", "AsFloat", "Equals", "JsonPlan", "ListOf", "UnionOf")


def plan_source(name: str, plan: JsonPlan, model: str) -> str:
    """A module defining ``name`` as ``plan`` (its repr is the Python that rebuilds it)."""
    text = repr(plan)
    used = ", ".join(part for part in _PLAN_PARTS if part in text)  # as ruff sorts them
    return (
        f'"""{model}\'s JSON plan, written by ``python -m ringback.api.fast_dump`` (do not '
        "edit:\nrun it again after changing the model; tests/api/test_task_json.py checks "
        'they agree)."""\n\n'
        f"from ringback.domain.json_plan import {used}\n\n"
        f"{name} = {text}\n"
    )


def main() -> None:
    from ringback.api.schemas import TaskOut

    TASK_PLAN_FILE.write_text(plan_source("TASK_PLAN", json_dumper(TaskOut), "TaskOut"))
    print(f"wrote {TASK_PLAN_FILE}; format it with: ruff format {TASK_PLAN_FILE}")


if __name__ == "__main__":
    main()
