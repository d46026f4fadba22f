"""Inbound numbers: the routes of called numbers to IVRs (``/numbers/``), and an inbound call to
one of them run on the simulator (``/calls/simulate``), kept in the call history."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ringback.client_files import Storage, StorageError
from ringback.clock import Clock
from ringback.config import Settings
from ringback.domain.rows import InvalidInput, NotFound, NumberRow
from ringback.ivr.errors import IvrError
from ringback.ivr.interpret import IvrRun
from ringback.ivr.parse import parse
from ringback.service.audit import AuditLog, entry
from ringback.service.clients import SigningKeys
from ringback.service.inbound import simulate_inbound
from ringback.service.tasks import TaskService
from ringback.store import Store
from ringback.telephony.base import CallRecord


class NumberService:
    """A client's numbers. Every method takes the client's id; another client's number is
    NotFound."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        storage: Storage,
        settings: Settings,
        tasks: TaskService,
        signing: SigningKeys,
    ) -> None:
        self.store = store
        self.clock = clock
        self.storage = storage
        self.settings = settings
        self.tasks = tasks
        self.signing = signing
        self.audit = AuditLog(store, clock)

    async def list(self, client_id: int) -> list[NumberRow]:
        return await self.store.list_numbers(client_id)

    async def get(self, client_id: int, number: str) -> NumberRow:
        return await self.store.get_number(client_id, number)

    async def put(
        self,
        client_id: int,
        number: str,
        *,
        answer_url: str | None,
        ivr_file: str | None,
        notify_completed: bool,
        description: str,
    ) -> tuple[NumberRow, bool]:
        """Route ``number`` to an IVR (an answer URL list or a storage file); True when the
        route is new. Conflict when another client routes the number; InvalidInput when the
        storage file is not there or is not a valid IVR document."""
        if ivr_file is not None:
            await asyncio.to_thread(self._check_ivr_file, client_id, ivr_file)
        change = entry(
            "changed", "number", number, answer_url=answer_url, ivr_file=ivr_file,
            notify_completed=notify_completed, description=description,
        )  # fmt: skip
        with self.audit.change(client_id, change):
            return await self.store.put_number(
                client_id, number, answer_url=answer_url, ivr_file=ivr_file,
                notify_completed=notify_completed, description=description, now=self.clock.now(),
            )  # fmt: skip

    def _check_ivr_file(self, client_id: int, relpath: str) -> None:
        """The number's IVR file must be in the client's storage and parse, now: a route to a
        missing or broken document would only fail when a caller rings."""

        def refuse(message: str) -> InvalidInput:
            return InvalidInput(
                "invalid input: body.ivr_file", [{"loc": ["body", "ivr_file"], "msg": message}]
            )

        try:
            if not self.storage.exists(client_id, relpath):
                raise refuse(
                    f"no file {relpath} in the client's storage: upload it first "
                    f"(PUT /client/{client_id}/storage/{relpath})"
                )
            parse(self.storage.read_text(client_id, relpath))
        except StorageError as exc:
            raise refuse(str(exc)) from None
        except IvrError as exc:
            raise refuse(f"{relpath} is not a valid IVR document: {exc}") from None

    async def delete(self, client_id: int, number: str) -> None:
        with self.audit.change(client_id, entry("deleted", "number", number)):
            await self.store.delete_number(client_id, number)

    async def simulate(
        self,
        client_id: int,
        called: str,
        *,
        caller: str,
        digits: str,
        variables: Mapping[str, str],
    ) -> tuple[IvrRun, CallRecord]:
        """An inbound call from ``caller`` to the client's number ``called``, on the fast
        simulator (no ringing, no media time; the IVR really runs: AddJob adds tasks, URLs are
        fetched). The call and its Transfer legs are kept in the call history."""
        route = await self.store.route_for(called)
        if route is None or route.client_id != client_id:
            raise NotFound(f"no route for number {called}")
        run, record = await simulate_inbound(
            route, caller=caller, digits=digits, variables=variables, storage=self.storage,
            jobs=self.tasks, clock=self.clock, settings=self.settings, signing=self.signing,
        )  # fmt: skip
        await self.store.save_calls(client_id, [record, *run.other_legs])
        return run, record
