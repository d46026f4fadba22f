"""NAT traversal on the signalling side: the ``received`` and ``rport`` parameters (RFC 3261
section 18.2.1, RFC 3581) stamped on the top Via of each request received, so every response
tells the sender the address and port its request came from (and goes back there: responses
are sent to the request's source address and port, not to the Via's sent-by).

What ringback itself advertises behind NAT (``SipSettings.external_address`` in Contact, Via
and SDP) is set on the agent and the calls' media; RTP latching is in :mod:`.media`.
"""

from __future__ import annotations

from sipmessage import Request


def stamp_via(request: Request, source: tuple[str, int]) -> None:
    """Add ``received=<source address>`` (when it differs from the sent-by host, or the sender
    asked for ``rport``) and fill a bare ``rport`` with the source port, on the top Via."""
    vias = list(request.headers.getlist("Via"))
    if not vias:
        return
    first, comma, rest = vias[0].partition(",")
    vias[0] = stamped_via(first.strip(), source) + (comma + rest if comma else "")
    request.headers.setlist("Via", vias)


def stamped_via(value: str, source: tuple[str, int]) -> str:
    """One Via value with ``received`` / ``rport`` set for a request from ``source``."""
    sent, *params = value.split(";")
    names = [param.partition("=")[0].strip().lower() for param in params]
    host = sent.split()[-1] if sent.split() else ""
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    wants_rport = "rport" in names
    kept = [p for p, name in zip(params, names, strict=True) if name not in ("received", "rport")]
    if wants_rport or host != source[0]:
        kept.append(f"received={source[0]}")
    if wants_rport:
        kept.append(f"rport={source[1]}")
    return ";".join([sent, *kept])
