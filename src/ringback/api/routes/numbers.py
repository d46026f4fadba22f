"""Inbound routing: ``/numbers/`` maps a called number to an IVR (an answer URL or a storage
XML file), and ``/calls/simulate`` runs an inbound call to one of them through the simulator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ringback.api.deps import CurrentClient, NumbersDep, SettingsDep
from ringback.api.errors import check_body_url
from ringback.api.number_schemas import (
    NUMBER_PATTERN,
    NumberIn,
    NumberListOut,
    NumberOut,
    SimulatedCallOut,
    SimulateIn,
    TraceEntryOut,
)
from ringback.api.schemas import errors, reject_unstorable
from ringback.api.storage_links import fax_view

router = APIRouter(prefix="/client/{client_id}", tags=["inbound"])
Number = Annotated[str, Path(pattern=NUMBER_PATTERN, description="the called number")]


@router.get("/numbers/", response_model=NumberListOut, responses=errors(), summary="List")
async def list_numbers(client_id: CurrentClient, numbers: NumbersDep) -> NumberListOut:
    return NumberListOut(numbers=[NumberOut.of(r) for r in await numbers.list(client_id)])


@router.get("/numbers/{number}", response_model=NumberOut, responses=errors(), summary="Read")
async def get_number(number: Number, client_id: CurrentClient, numbers: NumbersDep) -> NumberOut:
    return NumberOut.of(await numbers.get(client_id, number))


@router.put(
    "/numbers/{number}", response_model=NumberOut,
    responses={**errors(400, 409, 413), 201: {"model": NumberOut, "description": "A new route"}},
    summary="Route a called number to an IVR (creates or replaces the route)",
)  # fmt: skip
async def put_number(
    number: Number, body: NumberIn, client_id: CurrentClient, numbers: NumbersDep,
    settings: SettingsDep, response: Response,
) -> NumberOut:  # fmt: skip
    """Answers 201 when the route is new, 200 when it replaced one; 409 when another client
    routes the number."""
    reject_unstorable(body.model_dump())
    answer_url = None
    if body.answer_url is not None:
        urls = [url.strip() for url in body.answer_url.split(",")]
        for url in urls:
            check_body_url("answer_url", url, allow_private=settings.webhook_allow_private)
        answer_url = ",".join(urls)
    row, created = await numbers.put(
        client_id, number, answer_url=answer_url, ivr_file=body.ivr_file,
        notify_completed=body.notify_completed, description=body.description,
    )  # fmt: skip
    response.status_code = 201 if created else 200
    return NumberOut.of(row)


@router.delete(
    "/numbers/{number}", status_code=204, response_class=Response, responses=errors(),
    summary="Stop routing a number",
)  # fmt: skip
async def delete_number(number: Number, client_id: CurrentClient, numbers: NumbersDep) -> Response:
    await numbers.delete(client_id, number)
    return Response(status_code=204)


@router.post(
    "/calls/simulate", response_model=SimulatedCallOut, responses=errors(400, 413),
    summary="Run an inbound call to one of the client's numbers through the simulator",
)  # fmt: skip
async def simulate_call(
    body: SimulateIn, client_id: CurrentClient, numbers: NumbersDep
) -> SimulatedCallOut:
    """The call runs at once (no ringing, no media time); its IVR really runs: AddJob adds
    tasks, GetJSON and answer URLs are really fetched. The call is kept in call_history."""
    reject_unstorable(body.model_dump())
    run, record = await numbers.simulate(
        client_id, body.called_number, caller=body.calling_number, digits=body.digits,
        variables=body.variables,
    )  # fmt: skip
    error = run.error.message if run.error is not None else run.call_error
    return SimulatedCallOut(
        call_uuid=record.call_uuid,
        status="error" if error else "completed",
        error=error,
        hung_up_by=run.hung_up_by,
        trace=[TraceEntryOut(line=e.line, element=e.element, detail=e.detail) for e in run.trace],
        variables={name[4:]: value for name, value in run.var_parameters().items()},
        jobs_added=run.jobs_added,
        played=record.played,
        dtmf_received=record.dtmf_received,
        fax=fax_view(client_id, record.fax),
    )
