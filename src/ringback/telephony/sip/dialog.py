"""RFC 3261 §12 dialog state on our side, and the requests we send in a dialog."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sipmessage import URI, Address, Request

from ringback.telephony.sip.message import new_branch, with_tag


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    local_address: Address  # From of our requests, without tag
    remote_address: Address  # To of our requests, without tag
    remote_target: URI  # the Request-URI: the far end's Contact (the dialled URI before it)
    remote_tag: str | None = None
    route_set: list[Address] = field(default_factory=list)
    local_cseq: int = field(default_factory=lambda: random.randint(1, 9999))
    remote_cseq: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """How the user agent finds the dialog: (Call-ID, our tag)."""
        return (self.call_id, self.local_tag)

    @property
    def next_hop(self) -> URI:
        """Where requests go: the first route (loose routing), else the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def learn_from_2xx(
        self,
        remote_tag: str | None,
        contacts: list[Address],
        record_route: list[Address],
        *,
        uac: bool,
    ) -> None:
        """The far end's tag, target (its Contact) and the route set (RFC 3261 §12.1)."""
        self.remote_tag = remote_tag
        if contacts:
            self.remote_target = contacts[0].uri
        self.route_set = list(reversed(record_route)) if uac else list(record_route)

    def request(
        self, method: str, *, via_host: str, contact: str | None, cseq: int | None = None
    ) -> Request:
        """A request in this dialog; a new CSeq unless ``cseq`` is given (the ACK of a 2xx)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        request = Request(method, self.remote_target)
        headers = request.headers
        headers.set("Via", f"SIP/2.0/UDP {via_host};branch={new_branch()};rport")
        headers.set("Max-Forwards", "70")
        headers.set("From", str(with_tag(self.local_address, self.local_tag)))
        remote = self.remote_address
        if self.remote_tag is not None:
            remote = with_tag(remote, self.remote_tag)
        headers.set("To", str(remote))
        headers.set("Call-ID", self.call_id)
        headers.set("CSeq", f"{cseq} {method}")
        if self.route_set:
            headers.setlist("Route", [str(route) for route in self.route_set])
        if contact is not None:
            headers.set("Contact", f"<{contact}>")
        headers.set("Content-Length", "0")
        return request
