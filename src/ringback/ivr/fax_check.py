"""SendFax documents checked before anyone is dialled (issue 14, point 2).

A ``<SendFax>`` whose text is a literal storage path (no ``{{variable}}``) names its document
before the call: :func:`literal_fax_paths` finds them. :func:`missing_fax_file` is the cheap
check (the file exists in the client's storage), run before every dial with the Play check;
:class:`FaxDocumentCheck` converts each document as SendFax will (``documents.convert``, in a
thread) when a job is added, each distinct file once and at most ``max_conversions`` files per
check, so one request cannot ask for unbounded work: past the cap a file is checked for
existence only, and converted when its call runs. A path built from variables is only known at
run time, where SendFax fails with its clear error as before.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from ringback.client_files import Storage, StorageError
from ringback.ivr.errors import IvrError
from ringback.ivr.parse import Document
from ringback.telephony.fax.result import FaxDocumentError

#: documents converted per check (one API request, one AddJob); beyond: existence only
MAX_FAX_CONVERSIONS = 4


def literal_fax_paths(document: Document) -> list[tuple[int, str]]:
    """(line, storage path) of every SendFax whose document is named literally."""
    return [
        (node.line, node.text.strip())
        for node in document.root.walk()
        if node.tag == "SendFax" and node.text and node.text.strip() and "{{" not in node.text
    ]


def _missing(storage: Storage, client_id: int, relpath: str) -> str | None:
    """Why the file cannot be read from storage (None: it is there)."""
    try:
        if not storage.exists(client_id, relpath):
            return f"File {relpath} doesn't exist"
    except StorageError as exc:
        return str(exc)
    return None


def missing_fax_file(document: Document, storage: Storage, client_id: int) -> IvrError | None:
    """The first SendFax whose literal document is missing (or its path refused)."""
    for line, relpath in literal_fax_paths(document):
        problem = _missing(storage, client_id, relpath)
        if problem is not None:
            return IvrError(f"Cannot execute SendFax. {problem}", line)
    return None


def _convert(path: Path) -> None:
    from ringback.telephony.fax import documents  # Pillow, pypdfium2: loaded by the first fax

    with tempfile.TemporaryDirectory(prefix="ringback-faxcheck-") as tmp:
        documents.convert(path, Path(tmp) / "fax.tif")


class FaxDocumentCheck:
    """Checks the SendFax documents of IVR documents of one client: each distinct file is
    looked at once; the first ``max_conversions`` are converted."""

    def __init__(
        self, storage: Storage, client_id: int, max_conversions: int = MAX_FAX_CONVERSIONS
    ) -> None:
        self.storage = storage
        self.client_id = client_id
        self.max_conversions = max_conversions
        self.converted = 0
        self._seen: dict[str, str | None] = {}

    async def problem(self, document: Document) -> str | None:
        """``cannot fax <path>: <why>`` (with the SendFax's line) for the first literal
        document that cannot be faxed; None when each can (or could not be looked at)."""
        for line, relpath in literal_fax_paths(document):
            if relpath not in self._seen:
                self._seen[relpath] = await self._check(relpath)
            why = self._seen[relpath]
            if why is not None:
                return f"line {line}: SendFax cannot fax {relpath}: {why}"
        return None

    async def _check(self, relpath: str) -> str | None:
        try:
            if not self.storage.exists(self.client_id, relpath):
                return "it doesn't exist in the client's storage"
        except StorageError as exc:
            return str(exc)
        if self.converted >= self.max_conversions:
            return None
        self.converted += 1
        try:
            path = self.storage.resolve(self.client_id, relpath)
            await asyncio.to_thread(_convert, path)
        except FaxDocumentError as exc:
            return exc.reason
        except StorageError as exc:
            return str(exc)
        return None
