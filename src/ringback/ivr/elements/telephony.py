"""IVR elements that reach beyond the call's audio: Transfer, SendFax, ReceiveFax, SendSMS,
AddJob.

Each handler takes the :class:`~ringback.ivr.interpret.Interpreter` and the element's node;
they use the interpreter's dialer, storage, SMS sender and job queue.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ringback.client_files import StorageError
from ringback.domain.audit import Actor
from ringback.domain.model import Leg, Outcome
from ringback.domain.rows import InvalidInput
from ringback.ivr.errors import IvrError, IvrNotSupported
from ringback.ivr.expr import Flag
from ringback.ivr.parse import Node
from ringback.ivr.run import Stop
from ringback.telephony.base import CallError, CallNotSupported, OriginateRequest
from ringback.telephony.fax.result import FaxDocumentError, FaxResult

if TYPE_CHECKING:
    from ringback.ivr.interpret import Interpreter

RECEIVE_FAX_TIMEOUT_S = 600.0
RECEIVED_FAXES = "received_faxes"
DEFAULT_TRANSFER_RING_S = 30
#: TransferFailureReason for each way the new leg can fail
TRANSFER_FAILURES: Mapping[Outcome, str] = {
    Outcome.BUSY: "busy",
    Outcome.NO_ANSWER: "no_answer",
    Outcome.REJECTED: "rejected",
    Outcome.INVALID_NUMBER: "invalid_number",
    Outcome.CANCELED: "canceled",
}
_PHONE_NUMBER = re.compile(r"\+?[0-9*#]{1,32}\Z")
_SIP_URI = re.compile(r"sips?:[^\s@]+@[^\s@]+\Z")


async def transfer(ivr: Interpreter, node: Node) -> None:
    attrs = node.attrs
    target = ivr.render(node, node.text or "").strip()
    if not (_PHONE_NUMBER.match(target) or _SIP_URI.match(target)):
        raise IvrNotSupported(
            f"Cannot execute Transfer. Transferring to {target!r} is not supported: only "
            "phone numbers and SIP URIs are (Basix users, groups, voicemail and conference "
            "rooms are not)",
            node.line,
        )
    if ivr.dialer is None:
        raise ivr.fail(node, "No dialer is available here to place the transfer")
    variables = ivr.result.variables
    if "callingNumber" in attrs:
        caller_id = ivr.render(node, attrs["callingNumber"]).strip()
    elif attrs["relayReceivedCallingNumber"]:
        caller_id = str(variables.get("CallingNumber", ""))
    else:  # the PBX's own number on this call
        own = "CalledNumber" if variables.get("Direction") == "inbound" else "CallingNumber"
        caller_id = str(variables.get(own, ""))
    ring_s = attrs.get("answerTimeout", DEFAULT_TRANSFER_RING_S)
    detail = f"calling {target} from {caller_id or 'the default caller id'}, ring {ring_s} s"
    if attrs["suppressPreAnswerAudio"]:
        detail += " (suppressPreAnswerAudio not honoured)"
    ivr.trace(node.line, "Transfer", detail)
    try:
        leg = await ivr.dialer.originate(
            OriginateRequest(
                to_number=target,
                caller_id_number=caller_id or None,
                ring_timeout_s=float(ring_s),
                leg=Leg.TRANSFER,
                call_uuid=ivr.call.record.call_uuid,
            )
        )
    except CallError as exc:
        outcome: Outcome = Outcome.FAILED
        ivr.trace(node.line, "Transfer", f"cannot call {target}: {exc}")
    else:
        try:
            outcome = await leg.wait_answer()
            if outcome is Outcome.ANSWERED:
                ivr.trace(node.line, "Transfer", "answered: bridged")
                await ivr.call.bridge(leg)
                ivr.trace(node.line, "Transfer", "the bridged call ended")
                ivr.result.hung_up_by = "Transfer"
                raise Stop
        finally:
            await leg.hangup()
            ivr.result.other_legs.append(await leg.wait_ended())
    reason = TRANSFER_FAILURES.get(outcome, "failed")
    variables["TransferFailureReason"] = reason
    ivr.trace(node.line, "Transfer", f"failed: {reason}")
    if "failureAction" in attrs:
        raise await ivr.follow(
            node, attrs["failureAction"], "failureAction",
            extra={"TransferFailureReason": reason},
        )  # fmt: skip


def _own_number(ivr: Interpreter) -> str:
    """The PBX's own number on this call (the DID the dialect sends as the fax ident)."""
    variables = ivr.result.variables
    own = "CalledNumber" if variables.get("Direction") == "inbound" else "CallingNumber"
    return str(variables.get(own, ""))


def _fax_done(
    ivr: Interpreter, node: Node, result: FaxResult, relpath: str, pdf: str | None = None
) -> None:
    """The fax's result into the IVR's variables, the trace and the call record's ``fax``
    (``pdf``: the PDF stored beside a received fax; a received fax's TIFF is ``relpath``)."""
    received = result.operation == "reception"
    ivr.call.record.fax = {
        "operation": result.operation,
        "file": relpath,
        "code": result.code,
        "text": result.text,
        "pages": result.pages,
        "bit_rate": result.bit_rate,
        "ecm": result.ecm,
        "remote_ident": result.remote_ident,
        "seconds": round(result.audio_seconds, 2),
        "tiff": relpath if received and pdf is not None else None,
        "pdf": pdf if received else None,
        "transport": result.transport,
        "t38_fallback": result.fallback,
    }
    ivr.result.fax.update(
        FaxOperation=result.operation,
        FaxFilePath=relpath,
        FaxResultCode=str(result.code),
        FaxResultText=result.text,
        FaxPageCount=str(result.pages),
    )
    ivr.trace(
        node.line,
        node.tag,
        f"code {result.code} ({result.text}): {result.pages} page(s), {result.bit_rate} bit/s, "
        f"ECM {'on' if result.ecm else 'off'}, far station {result.remote_ident or 'unnamed'}, "
        f"{result.audio_seconds:g} s",
    )


async def send_fax(ivr: Interpreter, node: Node) -> None:
    relpath = ivr.render(node, node.text or "").strip()
    path = ivr.existing_file(node, relpath)
    header = ivr.render(node, node.attrs["header"]) if "header" in node.attrs else ""
    ivr.trace(node.line, "SendFax", relpath + (f" (header {header!r})" if header else ""))
    from ringback.telephony.fax import documents  # Pillow, pypdfium2: loaded by the first fax

    with tempfile.TemporaryDirectory(prefix="ringback-sendfax-") as tmp:
        pages = Path(tmp) / "fax.tif"
        try:
            count = await asyncio.to_thread(documents.convert, path, pages)
        except FaxDocumentError as exc:
            raise ivr.fail(node, f"File {relpath} cannot be faxed: {exc.reason}") from None
        ivr.trace(node.line, "SendFax", f"{count} page(s) to send")
        try:
            result = await ivr.call.send_fax(
                pages, header=header, ident=_own_number(ivr), name=relpath
            )
        except CallNotSupported as exc:
            raise IvrNotSupported(f"Cannot execute SendFax. {exc}", node.line) from None
    _fax_done(ivr, node, result, relpath)
    if "action" in node.attrs:
        raise await ivr.follow(node, node.attrs["action"], "action", extra=ivr.result.fax)


def _pdf_beside(relpath: str) -> str:
    pdf = str(PurePosixPath(relpath).with_suffix(".pdf"))
    return pdf if pdf != relpath else relpath + ".pdf"


def _pdf_of(tiff: Path) -> bytes:
    from ringback.telephony.fax import documents  # Pillow: loaded by the first fax

    out = io.BytesIO()
    documents.fax_to_pdf(tiff, out)
    return out.getvalue()


async def receive_fax(ivr: Interpreter, node: Node) -> None:
    relpath = f"{RECEIVED_FAXES}/{ivr.render(node, node.text or '').strip()}"
    tiff_path = ivr.storage_path(node, relpath)  # refuse a bad path before the fax comes in
    ivr.trace(node.line, "ReceiveFax", relpath)
    try:
        received = await ivr.call.receive_fax(
            RECEIVE_FAX_TIMEOUT_S, ident=_own_number(ivr), name=relpath
        )
    except CallNotSupported as exc:
        raise IvrNotSupported(f"Cannot execute ReceiveFax. {exc}", node.line) from None
    assert ivr.storage is not None and ivr.client_id is not None
    pdf: str | None = None
    if received.tiff:
        pdf = _pdf_beside(relpath)
        try:
            ivr.storage.write_bytes(ivr.client_id, relpath, received.tiff)
            ivr.storage.write_bytes(ivr.client_id, pdf, await asyncio.to_thread(_pdf_of, tiff_path))
        except (StorageError, FaxDocumentError) as exc:
            raise ivr.fail(node, str(exc)) from None
        ivr.trace(node.line, "ReceiveFax", f"stored {len(received.tiff)} bytes, and {pdf}")
    _fax_done(ivr, node, received.result, relpath, pdf)
    if "action" in node.attrs:
        raise await ivr.follow(node, node.attrs["action"], "action", extra=ivr.result.fax)


async def send_sms(ivr: Interpreter, node: Node) -> None:
    variables = ivr.result.variables
    inbound = variables.get("Direction") == "inbound"
    own = str(variables.get("CalledNumber" if inbound else "CallingNumber", ""))
    far = str(variables.get("CallingNumber" if inbound else "CalledNumber", ""))
    sender = ivr.render(node, node.attrs["callingNumber"]) if "callingNumber" in node.attrs else own
    to = ivr.render(node, node.attrs["calledNumber"]) if "calledNumber" in node.attrs else far
    text = ivr.spoken_text(node, ivr.render(node, node.text or ""))
    ivr.trace(node.line, "SendSMS", f"to {to} from {sender}: {text!r}")
    try:
        await ivr.sms.send_sms(ivr.call, from_number=sender, to_number=to, text=text)
    except Exception as exc:
        raise ivr.fail(node, f"The SMS was not sent: {exc}") from None


async def add_job(ivr: Interpreter, node: Node) -> None:
    if ivr.jobs is None or ivr.client_id is None:
        raise IvrError("Cannot execute AddJob. No job queue is available here", node.line)
    text = ivr.render(node, node.text or "")
    added = False
    try:
        job = json.loads(text)
        if not isinstance(job, dict):
            raise ValueError("the job must be a JSON object")
        from ringback.service.audit import acting_as  # here: the services import the IVR

        with acting_as(Actor(ivr.client_id, "ivr")):  # the audit log: added by an IVR
            [task_id] = await ivr.jobs.add_jobs(ivr.client_id, [job])
    except ValueError as exc:  # JSON errors and InvalidInput
        detail = (
            str(exc).replace("\n", ";")
            if not isinstance(exc, InvalidInput)
            else (
                exc.message
                + "".join(
                    f"; {'.'.join(str(p) for p in d['loc'][1:])}: {d['msg']}" for d in exc.details
                )
            )
        )
        ivr.trace(node.line, "AddJob", f"not added: {detail}")
    else:
        added = True
        ivr.result.jobs_added.append(task_id)
        ivr.trace(node.line, "AddJob", f"task {task_id} added")
    ivr.result.variables["JobAdded"] = Flag(added)
