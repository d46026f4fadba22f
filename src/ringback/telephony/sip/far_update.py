"""The far end's UPDATE in an established dialog (RFC 3311): a session refresh (no body) or an
offer (audio, or T.38: :meth:`.T38Switch.take_offer` takes it as one in a re-INVITE).

An UPDATE with an offer while ringback's own re-INVITE is pending (the T.38 switch, the audio
offered back after a fax, a session refresh) gets 491 Request Pending (RFC 3311 §5.2: the UAS
has generated an offer it has no answer to yet), as a re-INVITE then does (RFC 3261 §14.2);
the far end tries again after its own wait, when ours has its answer. An UPDATE without a body
is answered 200 whatever is pending (it offers nothing). An offer ringback cannot use gets 488.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipmessage import Request

from ringback.telephony.sip.message import SDP, Addr, response_to

if TYPE_CHECKING:
    from ringback.telephony.sip.call import SipCall


def offer_pending(call: SipCall) -> bool:
    """Whether ringback's own re-INVITE waits for its answer (the T.38 switch, the audio
    offered back, a session refresh): an offer of the far end crossing it gets 491."""
    return call.t38.offering or call.session_timer.offering


def count_491(call: SipCall, key: str) -> None:
    """Count in the call's record a 491 sent to the far end (``key``: ``update_491`` or
    ``reinvite_491``)."""
    call._record.detail[key] = call._record.detail.get(key, 0) + 1


def answer_update(call: SipCall, request: Request, source: Addr) -> None:
    """Answer the far end's in-dialog ``request`` (an UPDATE) from ``source``."""
    agent = call._agent
    if request.body and offer_pending(call):  # our re-INVITE's offer waits for its answer
        count_491(call, "update_491")
        agent.respond(request, source, response_to(request, 491))
        return
    if request.body and not call._apply_remote_sdp(request.body):
        agent.respond(request, source, response_to(request, 488))
        return
    body = call.t38.answer_body() if request.body else b""
    ok = response_to(request, 200, body=body, content_type=SDP if body else None)
    ok.headers.set("Contact", f"<{agent.contact_uri}>")
    call.session_timer.answer(request, ok)
    agent.respond(request, source, ok)
