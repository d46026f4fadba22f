"""The files of a client's call, as the console plays and shows them: the storage files its legs
played and the documents of its fax (sent, or received as TIFF and PDF). Only a file the call
names, in the calling client's own storage (the storage layer checks the path), is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ringback.client_files import Storage, StorageError
from ringback.domain.rows import CallRow, NotFound
from ringback.store import Store

#: fax fields naming storage files
FAX_FILE_FIELDS = ("file", "tiff", "pdf")


def call_files(legs: Sequence[CallRow]) -> list[str]:
    """The storage names of the files the legs played and faxed, in order, once each (URLs
    played are not the client's files)."""
    names: list[str] = []
    for leg in legs:
        for entry in leg.played:
            name = entry.get("file") if entry.get("type") == "play" else None
            if isinstance(name, str) and "://" not in name:
                names.append(name)
        for field in FAX_FILE_FIELDS:
            value = (leg.fax or {}).get(field)
            if isinstance(value, str) and value:
                names.append(value)
    return list(dict.fromkeys(names))


class CallFiles:
    """Where the files of a client's calls are."""

    def __init__(self, store: Store, storage: Storage) -> None:
        self.store = store
        self.storage = storage

    async def path(self, client_id: int, call_uuid: str, name: str) -> Path:
        """The file ``name`` of the client's call ``call_uuid``; NotFound when the call is not
        the client's, does not name that file, or the file is not (or no longer) stored."""
        legs = await self.store.calls(call_uuid=call_uuid, client_id=client_id)
        if not legs:
            raise NotFound(f"no call {call_uuid}")
        if name not in call_files(legs):
            raise NotFound(f"the call has no file {name}")
        try:
            if not self.storage.exists(client_id, name):
                raise NotFound(f"{name} is no longer in the storage")
            return self.storage.resolve(client_id, name)
        except StorageError as exc:
            raise NotFound(str(exc)) from None
