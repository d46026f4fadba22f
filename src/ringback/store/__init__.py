"""The store: every SQL statement of ringback, on SQLite or PostgreSQL.

Callers outside ``store/`` import from here only (``from ringback.store import Store``): this is
the package's face, whatever module inside holds each piece (``db.py``: the ``Store`` composing
one repository per subject over a driver, ``driver.py``; ``sqlite.py`` and ``postgres.py``: the
drivers). The row types the store returns are in :mod:`ringback.domain.rows`."""

from ringback.store.access import StoredResponse
from ringback.store.db import Store, TaskFilters, open_store
from ringback.store.legs_sql import AttemptLegs, LegWrite, OpenedLegs
from ringback.store.records import ClaimedTask, Completion, Progress

__all__ = [
    "AttemptLegs",
    "ClaimedTask",
    "Completion",
    "LegWrite",
    "OpenedLegs",
    "Progress",
    "Store",
    "StoredResponse",
    "TaskFilters",
    "open_store",
]
