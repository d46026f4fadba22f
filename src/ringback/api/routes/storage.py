"""``/client/{client_id}/storage/``: the client's files (audio, IVR XML, JSON, fax documents).

Paths are relative to the client's folder and checked by :meth:`Storage.resolve`: absolute
paths, ``..``, control characters, over-long names and symlinks leading out of the folder answer
400 ``bad_path``. File I/O runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import mimetypes
import os
import re
import stat as stat_module
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.convertors import Convertor, register_url_convertor

from ringback.api.deps import CurrentClient, StorageDep
from ringback.api.errors import ApiError, ErrorBody
from ringback.api.history_schemas import StorageListing, StoredFile
from ringback.client_files import MAX_FILE_BYTES as STORAGE_MAX_FILE_BYTES
from ringback.client_files import Storage, StorageError
from ringback.domain.task_rules import format_seed_time


def _plain_path(request: Request) -> None:
    """Starlette's route patterns end in ``$``, which also matches before a final newline: a
    path ending in "\n" would reach a route with the newline cut off. No storage path has
    control characters, so a request path with a newline is refused outright."""
    if "\n" in request.scope["path"]:
        raise _bad_path(request.scope["path"].rpartition("/storage/")[2], "control character")


class _FilePathConvertor(Convertor[str]):
    """Like Starlette's ``path`` but never empty: ``/storage/`` is the listing only, so other
    methods there answer 405 (Allow: GET) instead of reaching a file route."""

    regex = ".+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("file_path", _FilePathConvertor())

router = APIRouter(tags=["storage"], dependencies=[Depends(_plain_path)])

MAX_FILE_BYTES = STORAGE_MAX_FILE_BYTES  # 16 MiB: the API's one body limit
MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 240  # a temporary name 14 bytes longer must fit the file system's 255
_CHUNK = 256 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TMP_PREFIX, _TMP_SUFFIX = ".", ".tmp"  # Storage.write_bytes writes ".<name>.XXXX.tmp" first

_401 = {"model": ErrorBody, "description": "No token, or a bad or expired one"}
_404 = {"model": ErrorBody, "description": "No such file (or unknown client)"}
_400 = {"model": ErrorBody, "description": "The path is refused (bad_path)"}
_422 = {"model": ErrorBody, "description": "A parameter is invalid"}
_409 = {"model": ErrorBody, "description": "A folder is in the way (or the path is a folder)"}
_413 = {"model": ErrorBody, "description": f"The file is larger than {MAX_FILE_BYTES} bytes"}

#: the paths Storage.resolve accepts, for the schema only (the route checks with Storage itself,
#: so a refused path answers 400 bad_path, not 422). ``(?![\s\S])`` is "end of input" in both
#: Python and ECMA regexes (``$`` also matches before a final newline in Python).
PATH_PATTERN = (
    r"^(?=[\s\S]{1,1024}(?![\s\S]))"  # 1 to 1024 characters
    r"(?![\s\S]*[^/\\]{241})"  # no name longer than 240 characters
    r"(?!\s*(?![\s\S]))"  # not blank
    r"(?![/\\])"  # not absolute (nor a UNC path)
    r"(?![A-Za-z]:)"  # no drive (C:)
    r"(?![\s\S]*(?:^|[/\\])\.\.(?:[/\\]|(?![\s\S])))"  # no '..' part
    r"(?!\.(?:[/\\]+\.)*[/\\]*(?![\s\S]))"  # names a file, not just '.'
    r"[^\x00-\x1f\x7f]*(?![\s\S])"  # no control characters (NUL, newline, …)
)

_FilePath = Annotated[
    str,
    PathParam(
        description="Path of the file inside your storage, e.g. audio/hello.wav: relative, "
        "without '..' parts or control characters, names of at most 240 characters (the "
        "file system allows 255 bytes of UTF-8)",
        json_schema_extra={"pattern": PATH_PATTERN},
    ),
]


# --- helpers (run in threads) -------------------------------------------------------------


def _bad_path(relpath: str, reason: str) -> ApiError:
    return ApiError(
        400, "bad_path", f"storage path {relpath!r} is refused: {reason}",
        [{"loc": ["path", "path"], "msg": reason}],
    )  # fmt: skip


def _resolve(storage: Storage, client_id: int, relpath: str) -> Path:
    if len(relpath) > MAX_PATH_CHARS:
        raise _bad_path(relpath[:40] + "…", f"longer than {MAX_PATH_CHARS} characters")
    if _CONTROL.search(relpath):
        raise _bad_path(relpath, "control characters are not allowed in storage paths")
    if any(len(name) > MAX_NAME_CHARS for name in re.split(r"[/\\]", relpath)):
        raise _bad_path(relpath, f"a name is longer than {MAX_NAME_CHARS} characters")
    try:
        return storage.resolve(client_id, relpath)
    except StorageError as exc:
        raise _bad_path(relpath, str(exc)) from exc
    except OSError as exc:  # e.g. a name too long for the file system
        raise _bad_path(relpath, exc.strerror or str(exc)) from exc


def _base(storage: Storage, client_id: int) -> Path:
    return storage.client_dir(client_id).resolve()


def _info(base: Path, path: Path, stat: os.stat_result) -> StoredFile:
    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
    return StoredFile(
        path=path.relative_to(base).as_posix(),
        size=stat.st_size,
        modified_utc=format_seed_time(modified) or "",
    )


def _put(storage: Storage, client_id: int, relpath: str, data: bytes) -> tuple[StoredFile, bool]:
    """Write the file; returns its description and whether it is new."""
    target = _resolve(storage, client_id, relpath)
    if target.is_dir():
        raise ApiError(409, "conflict", f"storage path {relpath!r} is a folder")
    existed = target.is_file()
    try:
        storage.write_bytes(client_id, relpath, data)
    except StorageError as exc:
        cause = exc.__cause__
        code = cause.errno if isinstance(cause, OSError) else None
        if code in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise ApiError(
                409, "conflict", f"cannot write {relpath!r}: a file or folder is in the way"
            ) from exc
        if code == errno.ENAMETOOLONG:
            raise _bad_path(relpath, "a name in the path is too long") from exc
        if cause is None:  # refused by resolve (e.g. a symlink appeared meanwhile)
            raise _bad_path(relpath, str(exc)) from exc
        raise
    return _info(_base(storage, client_id), target, target.stat()), not existed


def _open(storage: Storage, client_id: int, relpath: str) -> tuple[BinaryIO, int, str]:
    """The open file, its size and its content type."""
    target = _resolve(storage, client_id, relpath)
    try:
        handle = target.open("rb")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise ApiError(404, "not_found", f"no file {relpath!r}") from exc
    try:
        stat = os.fstat(handle.fileno())
    except BaseException:
        handle.close()
        raise
    if not _is_regular(stat):
        handle.close()
        raise ApiError(404, "not_found", f"no file {relpath!r}")
    media_type = mimetypes.guess_type(relpath)[0] or "application/octet-stream"
    return handle, stat.st_size, media_type


def _is_regular(stat: os.stat_result) -> bool:
    return stat_module.S_ISREG(stat.st_mode)


def _delete(storage: Storage, client_id: int, relpath: str) -> None:
    target = _resolve(storage, client_id, relpath)
    if not target.is_file():
        raise ApiError(404, "not_found", f"no file {relpath!r}")
    try:
        target.unlink()
    except FileNotFoundError as exc:
        raise ApiError(404, "not_found", f"no file {relpath!r}") from exc


def _is_temporary(name: str) -> bool:
    return name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX) and name.count(".") >= 3


def _list(storage: Storage, client_id: int, prefix: str | None) -> list[StoredFile]:
    base = _base(storage, client_id)
    if not base.is_dir():
        return []
    found: list[StoredFile] = []
    for dirpath, _dirnames, filenames in os.walk(base):  # symlinked folders are not entered
        folder = Path(dirpath)
        for name in filenames:
            if _is_temporary(name):
                continue
            path = folder / name
            rel = path.relative_to(base).as_posix()
            if prefix and not rel.startswith(prefix):
                continue
            try:
                if path.is_symlink() and not path.resolve().is_relative_to(base):
                    continue  # leads out of the client's folder: not the client's file
                stat = path.stat()
            except OSError:  # removed meanwhile, or a broken link
                continue
            if _is_regular(stat):
                found.append(_info(base, path, stat))
    found.sort(key=lambda item: item.path)
    return found


async def _chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            yield chunk
    finally:
        handle.close()


def _too_large(size: int | None = None) -> ApiError:
    got = f" ({size} bytes)" if size is not None else ""
    return ApiError(
        413, "too_large", f"the file is larger than the limit of {MAX_FILE_BYTES} bytes{got}"
    )


async def _read_body(request: Request) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError as exc:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from exc
        if length > MAX_FILE_BYTES:
            raise _too_large(length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise _too_large()
        chunks.append(chunk)
    if size == 0:  # typically a client that forgot the body (curl -X PUT without --data)
        raise ApiError(
            422, "invalid_input", "invalid input: body",
            [{"loc": ["body"], "msg": "the body is empty: send the file's bytes"}],
        )  # fmt: skip
    return b"".join(chunks)


# --- routes -------------------------------------------------------------------------------

_BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD: dict[str, Any] = {"schema": {"type": "string", "format": "binary", "minLength": 1}}


@router.get(
    "/client/{client_id}/storage/",
    response_model=StorageListing,
    summary="List stored files",
    responses={400: _400, 401: _401, 404: _404, 422: _422},
)
async def list_files(
    client_id: CurrentClient,
    storage: StorageDep,
    prefix: Annotated[
        str | None, Query(description="Only paths that start with this, e.g. audio/")
    ] = None,
) -> StorageListing:
    """Every file of the client (folders are walked), sorted by path."""
    files = await asyncio.to_thread(_list, storage, client_id, prefix)
    return StorageListing(files=files, total=len(files))


@router.put(
    "/client/{client_id}/storage/{path:file_path}",
    status_code=201,
    response_model=StoredFile,
    summary="Store a file",
    responses={
        200: {"model": StoredFile, "description": "The file replaced one of the same path"},
        201: {"description": "The file is new"},
        400: _400,
        401: _401,
        404: _404,
        409: _409,
        413: _413,
        422: _422,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"The file's bytes, as they are (any content type): 1 to "
            f"{MAX_FILE_BYTES} bytes",
            "content": {"application/octet-stream": _UPLOAD},
        }
    },
)
async def put_file(
    client_id: CurrentClient,
    storage: StorageDep,
    path: _FilePath,
    request: Request,
    response: Response,
) -> StoredFile:
    """Store the request body as the file (folders are created; an existing file is
    replaced atomically)."""
    await asyncio.to_thread(_resolve, storage, client_id, path)  # refuse before reading
    data = await _read_body(request)
    info, created = await asyncio.to_thread(_put, storage, client_id, path, data)
    response.status_code = 201 if created else 200
    return info


@router.get(
    "/client/{client_id}/storage/{path:file_path}",
    response_class=Response,
    summary="Download a file",
    responses={
        200: {"description": "The file's bytes", "content": {"*/*": _BINARY}},
        400: _400,
        401: _401,
        404: _404,
        422: _422,
    },
)
async def get_file(client_id: CurrentClient, storage: StorageDep, path: _FilePath) -> Response:
    """The file, with a content type guessed from its name (application/octet-stream when
    the name says nothing)."""
    handle, size, media_type = await asyncio.to_thread(_open, storage, client_id, path)
    return StreamingResponse(
        _chunks(handle), media_type=media_type, headers={"Content-Length": str(size)}
    )


@router.delete(
    "/client/{client_id}/storage/{path:file_path}",
    status_code=204,
    response_class=Response,
    summary="Delete a file",
    responses={400: _400, 401: _401, 404: _404, 422: _422},
)
async def delete_file(client_id: CurrentClient, storage: StorageDep, path: _FilePath) -> Response:
    await asyncio.to_thread(_delete, storage, client_id, path)
    return Response(status_code=204)
