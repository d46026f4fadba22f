"""SRTP for SIP calls: the per-trunk policy (``SipSettings.srtp``), the SDES offer/answer of
one call leg (:mod:`.sdes`), and the libsrtp contexts (``pylibsrtp``) that protect what the
leg sends and check what it receives.

Policies:

* ``off`` (the default): plain RTP/AVP; an offer in RTP/SAVP is refused (488), ``a=crypto``
  in an RTP/AVP offer is ignored;
* ``optional``: offers RTP/AVP *with* ``a=crypto`` (best effort, as many PBXs do: a peer that
  knows SDES answers with a key and media is SRTP, one that does not ignores the lines and
  media stays plain); inbound, an offer with a usable key gets SRTP, one without gets RTP;
* ``required``: offers RTP/SAVP; an answer without a usable key fails the call (BYE), an
  inbound offer without one gets 488.

Only RTP is protected: ringback sends no RTCP and drops the RTCP it receives, so SRTCP is not
used. T.38 (UDPTL) is not SRTP: a fax moved to T.38 leaves the SRTP audio stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import pylibsrtp

from ringback.telephony.sip.sdes import SUITES, CryptoAttribute, new_attribute

POLICIES = ("off", "optional", "required")
_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
SrtpError = pylibsrtp.Error


class SrtpRefused(ValueError):
    """The remote SDP and this trunk's SRTP policy do not agree; the message says why."""


class SrtpContext:
    """Protects the RTP packets a leg sends (our key) and checks and decrypts the ones it
    receives (the far end's key); :meth:`unprotect` raises :data:`SrtpError` for a packet that
    fails authentication or replays an old one."""

    def __init__(self, suite: str, local_key: bytes, remote_key: bytes) -> None:
        self.suite = suite
        profile = _PROFILES[suite]
        self._tx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
        )
        self._rx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
            )
        )

    def protect(self, packet: bytes) -> bytes:
        return self._tx.protect(packet)

    def unprotect(self, packet: bytes) -> bytes:
        return self._rx.unprotect(packet)


@dataclass(frozen=True, slots=True)
class Keys:
    """What one side of the offer/answer settled on: our line and the far end's."""

    local: CryptoAttribute
    remote: CryptoAttribute

    def context(self) -> SrtpContext:
        return SrtpContext(self.local.suite, self.local.key, self.remote.key)


class SrtpNegotiation:
    """The SDES offer/answer of one call leg under a trunk's policy.

    Outbound: :meth:`offer` gives the profile and ``a=crypto`` lines of our offer, then
    :meth:`take_answer` checks the answer. Inbound: :meth:`take_offer` picks one of the far
    end's keys, then :meth:`answer` gives the lines of our answer (a new key of ours).
    """

    def __init__(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"SRTP policy {policy!r}: use one of {', '.join(POLICIES)}")
        self.policy = policy
        self._offered: tuple[CryptoAttribute, ...] = ()
        self.keys: Keys | None = None

    @property
    def awaiting_answer(self) -> bool:
        return bool(self._offered) and self.keys is None

    def offer(self) -> tuple[str, tuple[CryptoAttribute, ...]]:
        """The profile (RTP/AVP or RTP/SAVP) and ``a=crypto`` lines of our offer."""
        if self.policy == "off":
            return "RTP/AVP", ()
        if not self._offered:
            self._offered = tuple(new_attribute(i + 1, suite) for i, suite in enumerate(SUITES))
        profile = "RTP/SAVP" if self.policy == "required" else "RTP/AVP"
        return profile, self._offered

    def take_answer(
        self, profile: str, crypto: tuple[CryptoAttribute, ...], refused: tuple[str, ...]
    ) -> Keys | None:
        """The keys of the call from the answer (None: plain RTP); :class:`SrtpRefused` when
        the policy requires SRTP and the answer brings no key matching one we offered."""
        for remote in crypto:
            for local in self._offered:
                if remote.tag == local.tag and remote.suite == local.suite:
                    self.keys = Keys(local, remote)
                    return self.keys
        if self.policy == "required" or (self._offered and "SAVP" in profile):
            raise SrtpRefused(
                "SRTP is required on this trunk (srtp=required) but the answer has no usable "
                "a=crypto line matching our offer" + _why(refused)
            )
        return None

    def take_offer(
        self, profile: str, crypto: tuple[CryptoAttribute, ...], refused: tuple[str, ...]
    ) -> Keys | None:
        """Our choice among the far end's keys (None: plain RTP), or :class:`SrtpRefused`."""
        if self.keys is not None:  # a re-offer in the dialog: the same tag and suite again
            for remote in crypto:
                if remote.tag == self.keys.remote.tag and remote.suite == self.keys.local.suite:
                    self.keys = Keys(self.keys.local, remote)
                    return self.keys
            raise SrtpRefused(
                "the re-offer drops or changes the call's SRTP crypto suite (not supported)"
            )
        if self.policy == "off":
            if "SAVP" in profile:
                raise SrtpRefused(
                    "the offer requires SRTP (RTP/SAVP) but SRTP is off on this trunk "
                    "(RINGBACK_SIP_SRTP=off)"
                )
            return None
        if crypto:
            remote = crypto[0]
            self.keys = Keys(new_attribute(remote.tag, remote.suite), remote)
            return self.keys
        if self.policy == "required" or "SAVP" in profile:
            raise SrtpRefused(
                "SRTP is required but the offer has no usable a=crypto line" + _why(refused)
            )
        return None

    def answer_profile(self, offered_profile: str) -> tuple[str, tuple[CryptoAttribute, ...]]:
        """The profile (the offer's) and our ``a=crypto`` line for the answer."""
        if self.keys is None:
            return "RTP/AVP", ()
        return ("RTP/SAVP" if "SAVP" in offered_profile else "RTP/AVP"), (self.keys.local,)


def _why(refused: tuple[str, ...]) -> str:
    return f" ({'; '.join(refused)})" if refused else ""
