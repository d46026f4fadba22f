"""Do-not-call (suppression) lists: what an entry is, how a called number is matched, and the
CSV form of a bulk import. Pure rules; the store keeps the entries and checks every call leg
against them when the leg is written, right before it is dialled (``store/legs_sql.py``).

An entry is a **number** (matches that number only) or a **prefix** (matches every number that
starts with it), on a named list of one client, with a free ``source`` (where it came from: a
CRM export, an opt-out call) and an optional expiry. Numbers are compared as written once
formatting is removed (spaces, ``-``, ``.``, ``(``, ``)``): ``+33 6 12-34`` is ``+33612 34``'s
``+3361234``, but ``0612…`` is not ``+33612…`` (store entries in the form your tasks dial).
A SIP URI (``sip:1234@pbx``) is matched by its user part.

A number of N characters is matched by looking up its N prefixes (itself among them) in the
index of entries: at most 21 index probes, whatever the size of the lists.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from ringback.domain.task_rules import parse_utc_time

#: a stored entry: digits with an optional leading +, 1 to 20 digits
ENTRY_RE = re.compile(r"\+?[0-9]{1,20}")
LIST_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_SOURCE = 200
DEFAULT_LIST = "dnc"
_FORMATTING = str.maketrans("", "", " -.()\t")
_SIP_USER = re.compile(r"sips?:([^@;]+)@")
#: the columns a CSV may name in its header line (in this order when it has none)
CSV_COLUMNS = ("number", "list", "source", "expires_at")


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    """An entry to store: ``number`` normalized, ``prefix`` whether it matches by prefix."""

    number: str
    prefix: bool
    list_name: str
    source: str = ""
    expires_at: datetime | None = None


@dataclass(slots=True)
class SuppressionRow:
    """A stored entry."""

    id: int
    client_id: int
    list_name: str
    number: str
    prefix: bool
    source: str
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a called number may not be dialled: the entry that matched."""

    list_name: str
    source: str
    number: str
    prefix: bool

    def reason(self) -> str:
        """The task's finish comment, naming the list."""
        what = f"; prefix {self.number}" if self.prefix else ""
        return f"suppressed: on list '{self.list_name}' (source {self.source or '-'}{what})"


def normalize(number: str) -> str:
    """``number`` without formatting characters (a SIP URI: its user part)."""
    text = number.strip()
    sip = _SIP_USER.match(text)
    if sip is not None:
        text = sip.group(1)
    return text.translate(_FORMATTING)


def lookup_keys(called: str) -> list[str]:
    """The entry numbers that would suppress a call to ``called``: each of its prefixes, longest
    (the number itself) first; none when it is not a phone number."""
    number = normalize(called)
    if ENTRY_RE.fullmatch(number) is None:
        return []
    first = 2 if number.startswith("+") else 1  # "+" alone is no entry
    return [number[:end] for end in range(len(number), first - 1, -1)]


def matches(number: str, prefix: bool, called: str) -> bool:
    """Whether an entry suppresses a call to ``called``."""
    keys = lookup_keys(called)
    return bool(keys) and (number in keys if prefix else number == keys[0])


def parse_entry_number(text: str) -> tuple[str, bool]:
    """An entry as written by a person: a number, or a prefix ending in ``*`` (``+3361*``).
    ValueError says what is wrong."""
    value = text.strip()
    prefix = value.endswith("*")
    number = normalize(value[:-1] if prefix else value)
    if ENTRY_RE.fullmatch(number) is None:
        raise ValueError(
            f"{text.strip()!r} is not a number or a prefix (digits with an optional leading +, "
            "1 to 20 digits; a prefix ends with *)"
        )
    return number, prefix


def check_list_name(name: str) -> str:
    if LIST_NAME_RE.fullmatch(name) is None:
        raise ValueError(
            f"{name!r} is not a list name (1 to 64 letters, digits, '_', '.', ':' or '-')"
        )
    return name


def check_source(source: str) -> str:
    if len(source) > MAX_SOURCE:
        raise ValueError(f"a source has at most {MAX_SOURCE} characters")
    return source


def check_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is not None and expires_at <= now:
        raise ValueError("expires_at must be in the future")
    return expires_at


@dataclass(frozen=True, slots=True)
class CsvProblem:
    """A line of an import that cannot be read."""

    line: int
    column: str
    msg: str


def read_csv(
    lines: Iterable[str],
    *,
    list_name: str,
    source: str,
    expires_at: datetime | None,
    now: datetime,
    max_problems: int = 20,
) -> tuple[list[SuppressionEntry], list[CsvProblem]]:
    """Entries from CSV text: one per line, ``number[,list[,source[,expires_at]]]``, or the
    columns a header line names (``number`` first). Empty cells take the defaults given;
    blank lines are skipped. Returns the entries and at most ``max_problems`` problems."""
    entries: list[SuppressionEntry] = []
    problems: list[CsvProblem] = []
    columns: tuple[str, ...] = CSV_COLUMNS
    defaults = (list_name, source, expires_at)
    for line_no, row in _rows(lines):
        if line_no == 1 and row and row[0].strip().lower() == "number":
            names = tuple(cell.strip().lower() for cell in row)
            unknown = [name for name in names if name not in CSV_COLUMNS]
            if unknown:
                problems.append(CsvProblem(1, unknown[0], f"unknown column {unknown[0]!r}"))
                return [], problems
            columns = names
            continue
        if not row or not any(cell.strip() for cell in row):
            continue
        try:
            entries.append(_entry(row, columns, defaults, now))
        except _CellError as exc:
            problems.append(CsvProblem(line_no, exc.column, exc.msg))
            if len(problems) >= max_problems:
                break
    return entries, problems


class _CellError(ValueError):
    def __init__(self, column: str, msg: str) -> None:
        super().__init__(msg)
        self.column, self.msg = column, msg


def _entry(
    row: list[str],
    columns: tuple[str, ...],
    defaults: tuple[str, str, datetime | None],
    now: datetime,
) -> SuppressionEntry:
    cells = dict(zip(columns, row, strict=False))
    list_name, source, expires_at = defaults
    try:
        number, prefix = parse_entry_number(cells.get("number", ""))
    except ValueError as exc:
        raise _CellError("number", str(exc)) from None
    for column, check in (("list", check_list_name), ("source", check_source)):
        cell = cells.get(column, "").strip()
        if cell:
            try:
                value = check(cell)
            except ValueError as exc:
                raise _CellError(column, str(exc)) from None
            list_name, source = (value, source) if column == "list" else (list_name, value)
    expiry = cells.get("expires_at", "").strip()
    if expiry:
        try:
            expires_at = check_expiry(parse_utc_time(expiry), now)
        except ValueError as exc:
            raise _CellError("expires_at", str(exc)) from None
    return SuppressionEntry(number, prefix, list_name, source, expires_at)


def _rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells); a line of one plain cell (the common case) skips the csv module."""
    plain = re.compile(r"[^,\"]*")
    for line_no, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if plain.fullmatch(text):
            yield line_no, [text]
        else:
            yield line_no, next(csv.reader([text]), [])
