"""The clients' files on disk (the seed's "storage"): audio files, IVR documents, faxes, … one
folder per client. (Not to be confused with ``ringback.store``, the database.)

Every path a client gives is relative to that client's folder (``root / <client_id>``) and is
checked before use: absolute paths, ``..`` components, NUL bytes and symlinks that lead out of
the folder are refused with :class:`StorageError`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

#: the largest file a client can store (an upload is a request body: the API's one body limit)
MAX_FILE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_READ_BYTES = MAX_FILE_BYTES
MAX_NAME_BYTES = 255  # one component of a storage path (NAME_MAX of Linux file systems)
_RESOLVED_CACHE_SIZE = 4096


class StorageError(Exception):
    """A storage path was refused, or a stored file could not be read or written."""


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root
        # resolving walks the path with lstat calls; remember answers (paths, not contents)
        self._resolved: dict[tuple[int, str], Path] = {}

    def client_dir(self, client_id: int) -> Path:
        """The folder holding every file of ``client_id`` (it may not exist yet)."""
        if isinstance(client_id, bool) or not isinstance(client_id, int) or client_id < 0:
            raise StorageError(f"invalid client id {client_id!r}")
        return self.root / str(client_id)

    def resolve(self, client_id: int, relpath: str) -> Path:
        """The absolute path of ``relpath`` inside the client's folder; the file need not exist.

        Symlinks are followed: the path returned is the real one, and it must stay inside the
        client's folder.
        """
        cached = self._resolved.get((client_id, relpath))
        if cached is not None:
            return cached
        parts = _checked_parts(relpath)
        base = self.client_dir(client_id).resolve()
        real = base.joinpath(*parts).resolve()
        if not real.is_relative_to(base) or real == base:
            raise StorageError(f"storage path {relpath!r} leads outside the client's folder")
        if real.exists():  # a path that does not exist yet may still become a symlink
            if len(self._resolved) >= _RESOLVED_CACHE_SIZE:
                self._resolved.clear()
            self._resolved[(client_id, relpath)] = real
        return real

    def exists(self, client_id: int, relpath: str) -> bool:
        """True when ``relpath`` names a regular file (a refused path raises StorageError)."""
        path = self.resolve(client_id, relpath)
        try:
            return path.is_file()
        except OSError as exc:  # too long for this system, not readable, …
            raise StorageError(f"cannot read {relpath[:60]}: {exc.strerror or exc}") from None

    def read_bytes(
        self, client_id: int, relpath: str, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> bytes:
        path = self.resolve(client_id, relpath)
        try:
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except FileNotFoundError as exc:
            raise StorageError(f"File {relpath} doesn't exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {relpath}: {exc.strerror or exc}") from exc
        if len(data) > max_bytes:
            raise StorageError(f"file {relpath} is larger than {max_bytes} bytes")
        return data

    def read_text(
        self,
        client_id: int,
        relpath: str,
        *,
        encoding: str = "utf-8",
        max_bytes: int = DEFAULT_MAX_READ_BYTES,
    ) -> str:
        data = self.read_bytes(client_id, relpath, max_bytes=max_bytes)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise StorageError(f"file {relpath} is not valid {encoding} text: {exc}") from exc

    def write_bytes(self, client_id: int, relpath: str, data: bytes) -> Path:
        """Write ``data`` atomically (temporary file + rename), creating folders as needed."""
        path = self.resolve(client_id, relpath)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp_name, path)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {relpath}: {exc.strerror or exc}") from exc
        return path


def _checked_parts(relpath: str) -> tuple[str, ...]:
    """The components of a client-relative path, or StorageError saying why it is refused."""
    if not isinstance(relpath, str) or not relpath.strip():
        raise StorageError("empty storage path")
    if "\x00" in relpath:
        raise StorageError(f"storage path {relpath!r} contains a NUL byte")
    windows = PureWindowsPath(relpath)
    if PurePosixPath(relpath).is_absolute() or windows.drive or windows.root:
        raise StorageError(
            f"storage path {relpath!r} is absolute; give a path relative to the client's folder"
        )
    parts = tuple(part for part in PurePosixPath(relpath.replace("\\", "/")).parts if part != ".")
    if ".." in parts:
        raise StorageError(f"storage path {relpath!r} contains '..'")
    if not parts:
        raise StorageError(f"storage path {relpath!r} names no file")
    for part in parts:  # what file systems hold (NAME_MAX), said before the system refuses it
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise StorageError(
                f"storage path {relpath[:60]!r}…: a component is longer than {MAX_NAME_BYTES} bytes"
            )
    return parts
