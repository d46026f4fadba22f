"""Do-not-call lists: a client's suppression entries (``ringback.domain.suppression``), added
one by one, many at once or from a CSV file, listed, removed, and checked for a number.

The check that matters is the engine's: every call leg is looked up in the store's write of the
leg, right before it is dialled, so an entry added now stops the next attempt of every task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ringback.clock import Clock
from ringback.domain.audit import AuditEntry
from ringback.domain.rows import InvalidInput
from ringback.domain.suppression import (
    Suppression,
    SuppressionEntry,
    SuppressionRow,
    check_expiry,
    check_list_name,
    check_source,
    parse_entry_number,
    read_csv,
)
from ringback.service.audit import AuditLog, entry
from ringback.store import Store

#: entries written per transaction by an import (a long import never holds the database long)
IMPORT_BATCH = 10_000
#: entries one request may add without the import route
MAX_ENTRIES_PER_REQUEST = 10_000


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry as a caller gives it (``number``: a number or a prefix ending in ``*`` unless
    ``prefix`` says so)."""

    number: str
    list_name: str
    source: str = ""
    expires_at: datetime | None = None
    prefix: bool = False


class SuppressionService:
    """A client's do-not-call lists. Every method takes the client's id."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.audit = AuditLog(store, clock)

    async def add(self, client_id: int, items: Sequence[NewEntry]) -> int:
        """Validate every item (all or nothing: InvalidInput naming each bad one by its index)
        and store them; returns how many entries were written."""
        now = self.clock.now()
        entries, details = [], []
        for index, item in enumerate(items):
            try:
                entries.append(_entry(item, now))
            except _Bad as exc:
                details.append({"loc": ["body", "entries", index, exc.field], "msg": exc.msg})
        if details:
            raise InvalidInput(f"invalid input: {len(details)} entries refused", details)
        with self.audit.change(client_id, _batch(entries)):
            return await self.store.add_suppressions(client_id, entries, now)

    async def import_csv(
        self,
        client_id: int,
        lines: Iterable[str],
        *,
        list_name: str,
        source: str = "",
        expires_at: datetime | None = None,
    ) -> int:
        """Add the entries of CSV text (see :func:`~ringback.domain.suppression.read_csv`): read
        and checked whole first (InvalidInput naming the lines; nothing is written), then
        written in transactions of :data:`IMPORT_BATCH` entries. Returns how many."""
        now = self.clock.now()
        try:
            check_list_name(list_name)
            check_source(source)
            check_expiry(expires_at, now)
        except ValueError as exc:
            raise InvalidInput(str(exc), [{"loc": ["query"], "msg": str(exc)}]) from None
        entries, problems = read_csv(
            lines, list_name=list_name, source=source, expires_at=expires_at, now=now
        )
        if problems:
            details = [
                {"loc": ["body", f"line {p.line}", p.column], "msg": p.msg,
                 "where": f"line {p.line}, {p.column}"}
                for p in problems
            ]  # fmt: skip
            raise InvalidInput(f"the file has errors (first on line {problems[0].line})", details)
        written = 0
        for start in range(0, len(entries), IMPORT_BATCH):
            batch = entries[start : start + IMPORT_BATCH]
            with self.audit.change(client_id, _batch(batch, imported=True)):  # one per batch
                written += await self.store.add_suppressions(client_id, batch, now)
        return written

    async def list(
        self,
        client_id: int,
        *,
        list_name: str | None = None,
        number: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[SuppressionRow], int]:
        """A page of entries by id, and the total; ``number``: entries starting with it."""
        return await self.store.list_suppressions(
            client_id, list_name=list_name, number=number, limit=limit, offset=offset
        )

    async def remove(self, client_id: int, entry_id: int) -> None:
        """Delete one entry (NotFound when the client has no such entry)."""
        with self.audit.change(client_id, entry("deleted", "suppression", entry_id)):
            await self.store.delete_suppression(client_id, entry_id)

    async def remove_matching(
        self, client_id: int, *, number: str | None = None, list_name: str | None = None
    ) -> int:
        """Delete the entries of a number (or prefix, ``+3361*``) on a list, or a whole list;
        returns how many."""
        if number is None and list_name is None:
            raise InvalidInput("name a number or a list", [{"loc": ["query"], "msg": "empty"}])
        key = None
        if number is not None:
            try:
                key = parse_entry_number(number)[0]
            except ValueError as exc:
                raise InvalidInput(str(exc), [{"loc": ["number"], "msg": str(exc)}]) from None
        removal = entry("deleted", "suppression", None, number=key, list=list_name)
        with self.audit.change(client_id, removal):
            return await self.store.delete_suppressions(client_id, list_name=list_name, number=key)

    async def check(self, client_id: int, number: str) -> Suppression | None:
        """The entry that would keep a call to ``number`` from being placed now, if any."""
        return await self.store.suppression_for(client_id, number, self.clock.now())


def _batch(entries: Sequence[SuppressionEntry], *, imported: bool = False) -> AuditEntry:
    """One audit entry for entries added together (a request's, or a batch of an import)."""
    lists = sorted({e.list_name for e in entries})
    numbers = [e.number + ("*" if e.prefix else "") for e in entries[:3]]
    return entry(
        "created",
        "suppression",
        None,
        count=len(entries),
        lists=lists,
        first=numbers,
        imported=imported,
    )


class _Bad(ValueError):
    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field, self.msg = field, msg


def _entry(item: NewEntry, now: datetime) -> SuppressionEntry:
    checks: list[tuple[str, Any]] = [
        ("number", lambda: parse_entry_number(item.number)),
        ("list", lambda: check_list_name(item.list_name)),
        ("source", lambda: check_source(item.source)),
        ("expires_at", lambda: check_expiry(item.expires_at, now)),
    ]
    for field, check in checks:
        try:
            check()
        except ValueError as exc:
            raise _Bad(field, str(exc)) from None
    number, star = parse_entry_number(item.number)
    prefix = star or item.prefix
    return SuppressionEntry(number, prefix, item.list_name, item.source, item.expires_at)
