"""A call's fax as the API shows it: the call record's ``fax`` (``ringback.domain.cdr``'s
``FAX_FIELDS``) with links to download its files through the storage routes.

``file_url`` is the document sent (SendFax) or the received TIFF (ReceiveFax); ``tiff_url`` and
``pdf_url`` are a received fax's TIFF and the PDF stored beside it. A link is the API's path of
``GET /client/{client_id}/storage/{path}`` (the same token downloads it); it is None when there
is no such file to name (nothing was received). The links and ``fax_view``, which fills
them in, are in ``api/storage_links.py``, which imports no pydantic (a worker's webhooks carry
faxes).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class FaxFields(BaseModel):
    """A call record's fax (SendFax / ReceiveFax): the fields webhooks carry as they are."""

    operation: Literal["transmission", "reception"] = Field(
        description="transmission (SendFax) or reception (ReceiveFax)"
    )
    file: str | None = Field(description="storage name: the document sent, or the fax received")
    code: int = Field(description="T.30 result code (FaxResultCode): 0 is OK")
    text: str = Field(description="the code in words (FaxResultText)")
    pages: int = Field(description="pages sent or received (FaxPageCount)")
    bit_rate: int | None = Field(None, description="modem speed, bit/s")
    ecm: bool | None = Field(None, description="error correction mode was used")
    remote_ident: str | None = Field(None, description="the far station's ident")
    seconds: float | None = Field(None, description="seconds of fax audio")
    tiff: str | None = Field(None, description="storage name of the received fax (TIFF)")
    pdf: str | None = Field(None, description="storage name of its PDF")
    transport: str | None = Field(
        None, description="what carried the fax: g711 (audio) or t38 (T.38 over UDPTL)"
    )
    t38_fallback: str | None = Field(
        None, description="why the T.38 switch ringback asked for did not happen (e.g. 488)"
    )


class FaxOut(FaxFields):
    """The fax of a call, with links to download its files."""

    file_url: str | None = Field(None, description="download link of `file`")
    tiff_url: str | None = Field(None, description="download link of the received TIFF")
    pdf_url: str | None = Field(None, description="download link of the received fax's PDF")
