"""Links to a client's storage files through the API, and a call's fax with them (``FaxOut``'s
fields, ``api/fax_links.py``). No pydantic here: a worker's webhooks carry faxes too.

A link is the API's path of ``GET /client/{client_id}/storage/{path}`` (the same token
downloads it); it is None when there is no such file to name (nothing was received).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

#: the API's path prefix (``api.app.PREFIX`` is this one)
API_PREFIX = "/api/ver1.0"


def storage_link(client_id: int, relpath: str | None) -> str | None:
    """The API path that downloads the client's storage file ``relpath``."""
    if not relpath:
        return None
    return f"{API_PREFIX}/client/{client_id}/storage/{quote(relpath)}"


def fax_view(client_id: int, fax: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A call record's ``fax`` with its download links (``FaxOut``'s fields)."""
    if fax is None:
        return None
    return {
        **fax,
        "file_url": storage_link(
            client_id,
            fax.get("file") if fax.get("operation") == "transmission" else fax.get("tiff"),
        ),
        "tiff_url": storage_link(client_id, fax.get("tiff")),
        "pdf_url": storage_link(client_id, fax.get("pdf")),
    }
