"""Request and response bodies of do-not-call lists (``/suppressions/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ringback.domain.suppression import DEFAULT_LIST, MAX_SOURCE, SuppressionRow
from ringback.domain.task_rules import format_seed_time, parse_utc_time
from ringback.service.suppressions import MAX_ENTRIES_PER_REQUEST, NewEntry

#: a list name as the routes take it
LIST_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
UtcTime = Annotated[
    datetime, BeforeValidator(parse_utc_time),
    Field(description="UTC 'YYYY-MM-DD HH:MM:SS' or ISO 8601 with a zone; must be in the future"),
]  # fmt: skip


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    number: str = Field(
        min_length=1, max_length=40,
        description="a number (digits, optional leading +; spaces, '-', '.', '(' and ')' are "
        "removed), or a prefix: end it with '*' (or send prefix: true)",
    )  # fmt: skip
    prefix: bool = Field(False, description="the entry matches every number starting with it")
    list: str = Field(DEFAULT_LIST, pattern=LIST_PATTERN, description="the list's name")
    source: str = Field("", max_length=MAX_SOURCE, description="where the entry comes from")
    expires_at: UtcTime | None = None

    def entry(self) -> NewEntry:
        return NewEntry(self.number, self.list, self.source, self.expires_at, self.prefix)


class SuppressionBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[SuppressionIn] = Field(
        min_length=1, max_length=MAX_ENTRIES_PER_REQUEST,
        description="1 to 10,000 entries, all or nothing (an entry already on its list gets "
        "the new source and expiry); more at once: POST /suppressions/import",
    )  # fmt: skip


class SuppressionOut(BaseModel):
    id: int
    number: str
    prefix: bool
    list: str
    source: str
    expires_at: str | None
    created_at: str

    @classmethod
    def of(cls, row: SuppressionRow) -> SuppressionOut:
        return cls(
            id=row.id, number=row.number, prefix=row.prefix, list=row.list_name,
            source=row.source, expires_at=format_seed_time(row.expires_at),
            created_at=format_seed_time(row.created_at) or "",
        )  # fmt: skip


class SuppressionListOut(BaseModel):
    suppressions: list[SuppressionOut]
    total: int
    limit: int
    offset: int


class AddedOut(BaseModel):
    added: int = Field(description="entries written (new or updated)")


class RemovedOut(BaseModel):
    removed: int


class CheckOut(BaseModel):
    number: str
    suppressed: bool
    list: str | None = None
    source: str | None = None
    entry: str | None = Field(None, description="the entry that matched (a prefix ends in *)")
    reason: str | None = Field(None, description="what a task calling it would finish with")
