"""The audit log's vocabulary: who acted (:class:`Actor`), what they did to which object
(:class:`AuditEntry`), and the summary of a change with every secret taken out
(:func:`redact`).

An entry is written by the application layer (``ringback.service``) with the change itself:
in the change's own transaction for changes, cancels and deletes; right after it commits for a
creation (the new object's id is known only then), but for tasks, whose entry the store writes
with them (:func:`tasks_added`). A bulk change (a batch of tasks, an import of do-not-call
entries) is one entry per batch, naming how many and the first and last ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: what an entry says was done
ACTIONS = ("created", "changed", "cancelled", "deleted")
#: what it was done to
OBJECT_TYPES = ("queue", "task", "number", "webhook", "suppression")
#: where the change came from
CHANNELS = ("api", "console", "cli", "ivr", "system")
#: summary keys whose values are never kept (any key containing one of these words)
SECRET_WORDS = ("secret", "token", "password", "authorization", "signature", "key")
REDACTED = "[redacted]"
#: the longest text kept of one summary value, and of the operator's name
MAX_TEXT = 200
MAX_OPERATOR = 100


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the client, the credential its token came from (None: the host's
    CLI, an IVR), where it came from, and the operator's name if one was given."""

    client_id: int
    channel: str = "system"
    credential_id: int | None = None
    operator: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change: ``action`` on ``object_type`` ``object_id`` with a short ``summary``."""

    action: str
    object_type: str
    object_id: str | None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A stored entry."""

    id: int
    client_id: int
    occurred_at: datetime
    channel: str
    credential_id: int | None
    operator: str | None
    action: str
    object_type: str
    object_id: str | None
    summary: dict[str, Any]


def _secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """``value`` with every dict entry whose key names a secret replaced by ``[redacted]``,
    long texts cut, at any depth (lists included)."""
    if isinstance(value, dict):
        return {
            str(k): (REDACTED if _secret(str(k)) and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        value = _bare_url(value)
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _bare_url(url: str) -> str:
    """A URL without its user:password and query (either may carry a token)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def tasks_added(queue_id: int, ids: Sequence[int]) -> AuditEntry:
    """The one entry of a batch of tasks added to a queue (not one per task): how many, the
    first and last ids. PostgreSQL's add statement writes the same (store/postgres.py)."""
    summary = {"count": len(ids), "queue_id": queue_id}
    if ids:
        summary.update(first_id=ids[0], last_id=ids[-1])
    return AuditEntry("created", "task", str(ids[0]) if ids else None, summary)


def clean_operator(name: str | None) -> str | None:
    """An operator's name as kept: printable, at most :data:`MAX_OPERATOR` characters."""
    if name is None:
        return None
    kept = "".join(ch for ch in name if ch.isprintable()).strip()[:MAX_OPERATOR]
    return kept or None
