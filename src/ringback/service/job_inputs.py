"""The intake's checks of jobs and callback tasks: lists validated all or nothing by the
intake's models (pydantic), with one error per index and field (:class:`InvalidInput`), and
the storage files a job names. Nothing is written unless every item is valid.

Imported by the first add (:class:`~ringback.service.tasks.TaskService`), not by a worker,
which dials stored tasks without the models (:mod:`ringback.domain.payloads`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from ringback.client_files import Storage, StorageError
from ringback.domain.rows import InvalidInput
from ringback.domain.tasks import CallbackTask, IvrCallJob, Job, MsgCallJob
from ringback.ivr.errors import IvrError
from ringback.service.inputs import check_count
from ringback.telephony.audio_files import FORMATS as AUDIO_FORMATS
from ringback.telephony.audio_files import is_audio

if TYPE_CHECKING:  # the IVR parser (lxml) is imported by an ivr_call job's check only
    from ringback.ivr.parse import Document

T = TypeVar("T")
_job_adapter: TypeAdapter[MsgCallJob | IvrCallJob] = TypeAdapter(Job)


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


def parse_jobs(items: Sequence[Any]) -> list[MsgCallJob | IvrCallJob]:
    return _validate_each(items, _job_adapter.validate_python, "jobs")


def parse_callback_tasks(items: Sequence[Any]) -> list[CallbackTask]:
    return _validate_each(items, CallbackTask.model_validate, "tasks")


def _validate_each(items: Sequence[Any], validate: Callable[[Any], T], what: str) -> list[T]:
    """Every item validated; all problems reported at once, with their index."""
    check_count(items)
    valid, details = [], []
    for index, item in enumerate(items):
        try:
            valid.append(validate(item))
        except ValidationError as exc:
            details.extend(_problems(exc, [index]))
    if details:
        raise InvalidInput(f"{len(details)} problem(s) in the {what}; nothing was added", details)
    return valid


def _is_audio(storage: Storage, client_id: int, relpath: str) -> bool:
    try:
        return is_audio(storage.resolve(client_id, relpath))
    except StorageError:
        return False


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
        if not _is_audio(storage, client_id, relpath):
            return f"File {relpath} is not an audio file ringback can play ({AUDIO_FORMATS})"
        return None
    from ringback.ivr.parse import MAX_DOCUMENT_BYTES, parse

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


def _ivr_document(storage: Storage, client_id: int, job: IvrCallJob) -> Document | None:
    """The job's IVR document when it is known before the call (inline or a storage file)
    and parses; None otherwise (an answer URL; a document that does not parse is reported
    elsewhere)."""
    from ringback.ivr.parse import MAX_DOCUMENT_BYTES, parse

    xml = job.data.ivr_xml
    try:
        if xml.type == "inline":
            return parse(xml.data)
        if xml.type == "storage":
            return parse(storage.read_bytes(client_id, xml.data, max_bytes=MAX_DOCUMENT_BYTES))
    except (IvrError, StorageError):
        return None
    return None


async def check_fax_documents(
    storage: Storage, client_id: int, jobs: Sequence[MsgCallJob | IvrCallJob]
) -> None:
    """InvalidInput naming each ivr_call's ``data.ivr_xml.data`` whose IVR sends a document
    (SendFax, a literal storage path) that is missing or cannot be faxed: ``line N: SendFax
    cannot fax <path>: <why>``. Each file is checked once per request, and a few at most are
    converted (``ivr.fax_check``)."""
    if not any(isinstance(job, IvrCallJob) for job in jobs):
        return  # the IVR parser (lxml) is loaded by the first ivr_call added
    from ringback.ivr.fax_check import FaxDocumentCheck

    check = FaxDocumentCheck(storage, client_id)
    details = []
    for index, job in enumerate(jobs):
        if not isinstance(job, IvrCallJob):
            continue
        document = _ivr_document(storage, client_id, job)
        problem = await check.problem(document) if document is not None else None
        if problem is not None:
            details.append({"loc": [index, "data", "ivr_xml", "data"], "msg": problem})
    if details:
        raise InvalidInput(f"{len(details)} problem(s) in the jobs; nothing was added", details)
