"""The small service interface the CLI, the API and the IVR use to add and manage work.

Input is validated here, all or nothing, with an error per index and field; nothing is written
unless every item is valid.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from ringback.clock import Clock
from ringback.domain.calling_hours import CallingHours
from ringback.domain.credentials import (
    DUMMY_HASH,
    SIGNING_OVERLAP,
    current_secrets,
    hash_secret,
    new_client_key,
    new_client_secret,
    new_signing_secret,
    verify_secret,
)
from ringback.domain.rows import (
    Credential,
    CredentialRow,
    NotFound,
    QueueChanges,
    QueueRow,
    WebhookKeyRow,
)
from ringback.domain.tasks import (
    CallbackTask,
    IvrCallJob,
    Job,
    MsgCallJob,
    NewTask,
    task_from_callback,
    task_from_job,
)
from ringback.ivr.errors import IvrError
from ringback.ivr.parse import MAX_DOCUMENT_BYTES, parse
from ringback.storage import Storage, StorageError
from ringback.store import Store

T = TypeVar("T")
DEFAULT_QUEUE = "default"
MAX_TASKS_PER_REQUEST = 10_000
_job_adapter: TypeAdapter[MsgCallJob | IvrCallJob] = TypeAdapter(Job)


@dataclass(slots=True)
class InvalidInput(ValueError):
    """Bad input; ``details`` holds one entry per problem: ``{"loc": [...], "msg": ...}``."""

    message: str
    details: list[dict[str, Any]]

    def __str__(self) -> str:
        lines = [self.message]
        for detail in self.details:
            where = ".".join(str(part) for part in detail["loc"]) or "(input)"
            lines.append(f"  {where}: {detail['msg']}")
        return "\n".join(lines)


def _problems(exc: ValidationError, prefix: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors(include_url=False):
        loc = [*prefix, *error["loc"]]
        # drop pydantic's union tag from the location ("data.msg_call.x" -> "data.x")
        loc = [part for part in loc if part not in ("msg_call", "ivr_call")]
        msg = error["msg"]
        if error["type"] == "extra_forbidden":
            msg = f"unknown field {loc[-1]!r}"
        out.append({"loc": loc, "msg": msg.removeprefix("Value error, ")})
    return out


def token_digest(token: str) -> str:
    """Tokens are stored as this digest only (they are long random strings, not passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_jobs(items: Sequence[Any]) -> list[MsgCallJob | IvrCallJob]:
    return _validate_each(items, _job_adapter.validate_python, "jobs")


def parse_callback_tasks(items: Sequence[Any]) -> list[CallbackTask]:
    return _validate_each(items, CallbackTask.model_validate, "tasks")


def _validate_each(items: Sequence[Any], validate: Callable[[Any], T], what: str) -> list[T]:
    """Every item validated; all problems reported at once, with their index."""
    _check_count(items)
    valid, details = [], []
    for index, item in enumerate(items):
        try:
            valid.append(validate(item))
        except ValidationError as exc:
            details.extend(_problems(exc, [index]))
    if details:
        raise InvalidInput(f"{len(details)} problem(s) in the {what}; nothing was added", details)
    return valid


def _check_count(items: Sequence[Any]) -> None:
    if not isinstance(items, list | tuple):
        raise InvalidInput("expected a list of tasks", [{"loc": [], "msg": "not a list"}])
    if not 1 <= len(items) <= MAX_TASKS_PER_REQUEST:
        raise InvalidInput(
            f"send 1 to {MAX_TASKS_PER_REQUEST} tasks at a time, not {len(items)}",
            [{"loc": [], "msg": f"{len(items)} tasks"}],
        )


def parse_calling_hours(spec: str | dict[str, Any]) -> dict[str, Any]:
    try:
        return CallingHours.parse(spec).to_dict()
    except ValueError as exc:
        raise InvalidInput(
            f"calling hours: {exc}", [{"loc": ["calling_hours"], "msg": str(exc)}]
        ) from exc


def _is_wav(storage: Storage, client_id: int, relpath: str) -> bool:
    try:
        with storage.resolve(client_id, relpath).open("rb") as handle:
            head = handle.read(12)
    except (OSError, StorageError):
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _storage_problem(storage: Storage, client_id: int, job: MsgCallJob | IvrCallJob) -> str | None:
    """Why the storage file a job names cannot be used (None: it can, or it names none)."""
    if isinstance(job, MsgCallJob):
        relpath = job.data.audio_file
    elif job.data.ivr_xml.type == "storage":
        relpath = job.data.ivr_xml.data
    else:
        return None
    try:
        exists = storage.exists(client_id, relpath)
    except StorageError as exc:
        return str(exc)
    if not exists:
        return f"File {relpath} doesn't exist in the client's storage"
    if isinstance(job, MsgCallJob):
        if not _is_wav(storage, client_id, relpath):
            return f"File {relpath} is not a WAV audio file"
        return None
    try:
        parse(storage.read_bytes(client_id, relpath, max_bytes=MAX_DOCUMENT_BYTES))
    except StorageError as exc:
        return str(exc)
    except IvrError as exc:
        return f"File {relpath} is not a valid IVR document: {exc}"
    return None


def check_job_files(
    storage: Storage, client_id: int, jobs: Sequence[MsgCallJob | IvrCallJob]
) -> None:
    """InvalidInput naming each job's field whose storage file is refused, missing or of the
    wrong kind (msg_call ``data.audio_file``: a WAV file; ivr_call ``data.ivr_xml.data`` of
    type storage: a valid IVR document). A file deleted later fails the task at run time."""
    details = []
    for index, job in enumerate(jobs):
        problem = _storage_problem(storage, client_id, job)
        if problem is not None:
            field = ["audio_file"] if isinstance(job, MsgCallJob) else ["ivr_xml", "data"]
            details.append({"loc": [index, "data", *field], "msg": problem})
    if details:
        raise InvalidInput(f"{len(details)} problem(s) in the jobs; nothing was added", details)


class TaskService:
    def __init__(self, store: Store, clock: Clock, storage: Storage | None = None) -> None:
        """``storage``: check the storage files jobs name when they are added (None: not
        checked here; the task fails at run time if its file is missing)."""
        self.store = store
        self.clock = clock
        self.storage = storage

    async def client_id(self, name: str, *, create: bool = True) -> int:
        if create:
            return await self.store.ensure_client(name, self.clock.now())
        try:
            return await self.store.find_client(name)
        except NotFound as exc:
            raise NotFound(
                f"no client named {name!r} yet: add a queue or a task for it first"
            ) from exc

    async def add_jobs(self, client_id: int, items: Sequence[Any]) -> list[int]:
        """AddJob JSON objects; each goes to its ``queue`` or to ``default`` (made on first use)."""
        jobs = parse_jobs(items)
        if self.storage is not None:
            check_job_files(self.storage, client_id, jobs)
        now = self.clock.now()
        by_queue: dict[str, list[tuple[int, NewTask]]] = defaultdict(list)
        for index, job in enumerate(jobs):
            by_queue[job.queue or DEFAULT_QUEUE].append((index, task_from_job(job, now)))
        queues: dict[str, QueueRow] = {}
        for name in by_queue:  # resolve every queue before writing anything
            if name == DEFAULT_QUEUE:
                queues[name] = await self.store.ensure_queue(client_id, name, now, status="on")
            else:
                try:
                    queues[name] = await self.store.find_queue(client_id, name)
                except NotFound as exc:
                    indexes = [i for i, _ in by_queue[name]]
                    raise InvalidInput(
                        f"no queue named {name!r}; nothing was added",
                        [{"loc": [i, "queue"], "msg": f"no queue named {name!r}"} for i in indexes],
                    ) from exc
        ids: dict[int, int] = {}
        for name, entries in by_queue.items():
            added = await self.store.add_tasks(
                client_id, queues[name].id, [task for _, task in entries], now
            )
            ids.update({index: task_id for (index, _), task_id in zip(entries, added, strict=True)})
        return [ids[index] for index in range(len(jobs))]

    async def add_callback_tasks(
        self, client_id: int, queue_id: int, items: Sequence[Any]
    ) -> list[int]:
        specs = parse_callback_tasks(items)
        now = self.clock.now()
        return await self.store.add_tasks(
            client_id, queue_id, [task_from_callback(spec, now) for spec in specs], now
        )

    async def set_queue_status(self, client_id: int, name: str, status: str) -> QueueRow:
        queue = await self.store.find_queue(client_id, name)
        return await self.store.update_queue(
            queue.id, QueueChanges(status=status), self.clock.now(), client_id=client_id
        )


# --- clients and credentials ----------------------------------------------------------------

TOKEN_LIFETIME_S = 3600
SIGNING_CACHE_S = 60.0

Verify = Callable[[str, str], Awaitable[bool]]


async def _verify_in_thread(secret: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_secret, secret, stored)


@dataclass(frozen=True, slots=True)
class NewCredentials:
    """Shown once: ``secret`` is stored only hashed."""

    client_id: int  # the client's number (path of the API)
    key: str  # the OAuth client_id
    secret: str
    secret_version: int
    signing_secret: str  # signs every request ringback sends to the client's servers


class ClientService:
    """Clients' credentials: create, check, list, disable, enable, delete, rotate; tokens; the
    client's signing secret. ``verify`` checks a secret against its hash (the API passes one
    that bounds how many run at once)."""

    def __init__(self, store: Store, clock: Clock, verify: Verify | None = None) -> None:
        self.store = store
        self.clock = clock
        self._verify = verify or _verify_in_thread

    async def create_credentials(self, client_name: str) -> NewCredentials:
        """A new key and secret for the client named ``client_name`` (created if new)."""
        now = self.clock.now()
        client_id = await self.store.ensure_client(client_name, now)
        key, secret = new_client_key(), new_client_secret()
        hashed = await asyncio.to_thread(hash_secret, secret)
        await self.store.add_credential(client_id, key, hashed, now)
        signing = await self.signing_key(client_id)
        return NewCredentials(client_id, key, secret, 1, signing.secret)

    async def authenticate(self, key: str, secret: str) -> Credential | None:
        """The credential ``key`` names, if ``secret`` is its secret and it is not disabled.
        Unknown keys cost a check against a dummy hash, so the answer time tells nothing."""
        found = await self.store.find_credential(key)
        stored = found.secret_hash if found is not None else DUMMY_HASH
        ok = await self._verify(secret, stored)
        if not ok or found is None or found.disabled_at is not None:
            return None
        return found

    async def issue_token(self, credential: Credential) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + timedelta(seconds=TOKEN_LIFETIME_S)
        await self.store.add_token(token_digest(token), credential, expires, now)
        return token

    async def list_credentials(self, client_name: str | None = None) -> list[CredentialRow]:
        client_id = None if client_name is None else await self.store.find_client(client_name)
        return await self.store.list_credentials(client_id)

    async def disable(self, key: str) -> Credential:
        """Refuse the credential's secret and every token it was given, at once."""
        return await self.store.set_credential_disabled(key, self.clock.now())

    async def enable(self, key: str) -> Credential:
        """Accept the credential again (its tokens that have not expired work again)."""
        return await self.store.set_credential_disabled(key, None)

    async def delete(self, key: str) -> None:
        await self.store.delete_credential(key)

    async def rotate_secret(self, key: str) -> NewCredentials:
        """A new secret for ``key`` (tokens issued before stop working) and a new signing secret
        for its client (the old one still signs for 24 hours)."""
        secret = new_client_secret()
        hashed = await asyncio.to_thread(hash_secret, secret)
        now = self.clock.now()
        rotated = await self.store.rotate_credential(key, hashed, now)
        signing = await self.rotate_signing_key(rotated.client_id)
        return NewCredentials(
            rotated.client_id, key, secret, rotated.secret_version, signing.secret
        )

    async def signing_key(self, client_id: int) -> WebhookKeyRow:
        """The client's signing secret (made on first use: clients older than it get one)."""
        return await self.store.webhook_key(client_id, new_signing_secret(), self.clock.now())

    async def rotate_signing_key(self, client_id: int) -> WebhookKeyRow:
        """A new signing secret for the client; the old one still signs for a day."""
        now = self.clock.now()
        return await self.store.rotate_webhook_key(
            client_id, new_signing_secret(), now, now + SIGNING_OVERLAP
        )

    async def signing_secrets(self, client_id: int) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during its overlap."""
        row = await self.signing_key(client_id)
        return current_secrets(
            row.secret, row.previous_secret, row.previous_secret_until, self.clock.now()
        )


@dataclass(slots=True)
class _Cached:
    secrets: list[str]
    at: float


class SigningKeys:
    """Clients' signing secrets for a worker, each read at most once a minute. When the
    database cannot be read the last secrets known keep signing (they stay valid for a day
    after a rotation)."""

    def __init__(
        self,
        clients: ClientService,
        *,
        ttl_s: float = SIGNING_CACHE_S,
        now: Callable[[], float] | None = None,  # default: the clients' clock, in seconds
    ) -> None:
        self._clients = clients
        self._ttl_s = ttl_s
        self._now = now if now is not None else lambda: clients.clock.now().timestamp()
        self._cache: dict[int, _Cached] = {}

    async def secrets(self, client_id: int) -> list[str]:
        cached = self._cache.get(client_id)
        now = self._now()
        if cached is not None and now - cached.at < self._ttl_s:
            return cached.secrets
        try:
            found = await self._clients.signing_secrets(client_id)
        except Exception:  # the database is away: keep signing with what we know
            if cached is None:
                raise
            return cached.secrets
        self._cache[client_id] = _Cached(found, now)
        return found
