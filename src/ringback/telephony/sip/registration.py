"""Registration with a registrar (RFC 3261 section 10): REGISTER with digest credentials,
refreshed at half the granted lifetime, retried with jittered exponential back-off when it
fails, and removed (``Expires: 0``) on shutdown.

One :class:`Registration` keeps one address-of-record (AOR) bound to ringback's SIP address.
The binding's Contact is ``sip:<AOR user>@<local host>:<port>``: a call to the AOR arrives at
ringback with that Request-URI, whose user is the number the dialer routes (to its IVR), as
for a call sent straight from the trunk.

What the registrar grants wins: the lifetime is the ``expires`` parameter of our Contact in
the 2xx, else its ``Expires`` header, else what we asked for; a 423 raises our request to its
``Min-Expires``. The state (``registered`` / ``failed`` …, expiry, last error) is logged on
every change and readable from :attr:`Registration.status`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sipmessage import URI, Request, Response

from ringback.clock import Clock
from ringback.config import SipSettings
from ringback.domain.digits import ascii_digits
from ringback.telephony.sip.digest import DigestError, credentials_for
from ringback.telephony.sip.message import (
    new_branch,
    new_call_id,
    new_tag,
)

log = logging.getLogger("ringback.sip.register")

#: a refresh never comes sooner than this after a success (a registrar granting 1 s)
MIN_REFRESH_S = 1.0
#: how long shutdown waits for the answer to the un-REGISTER
UNREGISTER_WAIT_S = 2.0
#: attempts in a row answering challenges or 423s before the attempt counts as failed
MAX_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class RegistrationSpec:
    """One binding to keep: the AOR ``sip:<user>@<domain>`` at ``registrar``."""

    registrar_host: str
    registrar_port: int
    user: str
    domain: str
    username: str | None = None  # digest credentials (when challenged)
    password: str | None = None
    expires: int = 3600
    retry_base_s: float = 30.0  # first back-off after a failure (doubles, jittered)
    retry_max_s: float = 600.0

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"


def specs_for(settings: SipSettings) -> list[RegistrationSpec]:
    """The registrations a trunk's settings ask for: one per ``register_user`` (the digest
    user name, else the caller id, when none is set); none when ``register`` is off."""
    if not settings.register:
        return []
    host, port = settings.proxy_host, settings.proxy_port
    if settings.registrar:
        host, _, raw_port = settings.registrar.rpartition(":")
        if not host or not ascii_digits(raw_port):
            host, raw_port = settings.registrar, "5060"
        port = int(raw_port)
    users = settings.register_users or tuple(
        u for u in (settings.username or settings.caller_id,) if u
    )
    return [
        RegistrationSpec(
            registrar_host=host,
            registrar_port=port,
            user=user,
            domain=settings.from_domain,
            username=settings.username,
            password=settings.password,
            expires=settings.register_expires,
            retry_base_s=settings.register_retry_s,
            retry_max_s=max(settings.register_retry_s, settings.register_retry_max_s),
        )
        for user in users
    ]


class RegistrationError(Exception):
    """A REGISTER attempt that did not bind (its text is the ``last_error``)."""


@dataclass(slots=True)
class RegistrationStatus:
    aor: str
    state: str = "unregistered"  # registering | registered | failed | unregistered
    expires_at: datetime | None = None
    granted_expires: int | None = None
    last_error: str | None = None
    failures: int = 0  # failed attempts in a row
    registrations: int = 0  # successful REGISTERs (first and refreshes)


class Registration:
    """Keeps ``spec`` registered through ``agent`` until :meth:`stop`."""

    def __init__(
        self,
        agent: Any,
        spec: RegistrationSpec,
        clock: Clock,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._agent = agent
        self.spec = spec
        self._clock = clock
        self.rng = rng  # the jitter draw in [0, 1)
        self.status = RegistrationStatus(aor=spec.aor)
        self._call_id = new_call_id()
        self._tag = new_tag()
        self._cseq = 0
        self._expires = spec.expires
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()  # set on every attempt's end (tests wait on it)

    @property
    def contact(self) -> str:
        host = self._agent.host
        host = f"[{host}]" if ":" in host else host
        return f"sip:{self.spec.user}@{host}:{self._agent.port}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"register {self.spec.aor}")

    async def stop(self) -> None:
        """Stop refreshing; when bound, remove the binding (``Expires: 0``), briefly."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.status.state != "registered":
            self._set_state("unregistered")
            return
        try:
            async with asyncio.timeout(UNREGISTER_WAIT_S):
                await self._attempt(0)
        except (TimeoutError, RegistrationError, OSError) as exc:
            log.info("un-REGISTER of %s: %s", self.spec.aor, exc)
        self.status.expires_at = None
        self._set_state("unregistered")

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._set_state("registering" if self.status.state != "registered" else "registered")
            try:
                granted = await self._attempt(self._expires)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # RegistrationError, OSError, a bug: back off, retry
                status = self.status
                status.failures += 1
                status.last_error = str(exc)
                status.expires_at = None
                self._set_state("failed")
                delay = self.backoff(status.failures)
                log.warning(
                    "registration of %s failed (%s); next attempt in %.1f s",
                    self.spec.aor,
                    exc,
                    delay,
                )
                self.changed.set()
                await self._clock.sleep(delay)
                continue
            status = self.status
            status.failures = 0
            status.registrations += 1
            status.granted_expires = granted
            status.expires_at = self._clock.now() + timedelta(seconds=granted)
            status.last_error = None
            self._set_state("registered")
            self.changed.set()
            await self._clock.sleep(max(MIN_REFRESH_S, granted / 2))

    def backoff(self, failures: int) -> float:
        """The wait after ``failures`` failed attempts in a row: the base doubled per failure
        up to the maximum, then drawn between half of it and all of it (jitter)."""
        spec = self.spec
        ceiling = min(spec.retry_max_s, spec.retry_base_s * 2.0 ** min(30, max(0, failures - 1)))
        return ceiling * (0.5 + 0.5 * self.rng())

    def _set_state(self, state: str) -> None:
        if self.status.state == state:
            return
        self.status.state = state
        status = self.status
        log.info(
            "registration %s: %s (expires %s, last error %s)",
            self.spec.aor,
            state,
            status.expires_at.isoformat() if status.expires_at else "-",
            status.last_error or "-",
        )

    # -- one REGISTER, with its challenges and 423s ------------------------------------------

    async def _attempt(self, expires: int) -> int:
        """Send REGISTER (again after a 401/407 or 423); the granted lifetime on a 2xx."""
        spec = self.spec
        dest = await self._agent.resolve(
            URI.parse(f"sip:{spec.registrar_host}:{spec.registrar_port}")
        )
        authorization: tuple[str, str] | None = None
        challenged = False
        for _ in range(MAX_ROUNDS):
            request = self._build(expires, authorization)
            txn = self._agent.start_request(request, dest)
            response: Response = await asyncio.shield(txn.result)
            code = response.code
            if 200 <= code < 300:
                return self._granted(response, expires)
            if code in (401, 407):
                stale = "stale=true" in _challenge(response).replace(" ", "").lower()
                if challenged and not stale:
                    raise RegistrationError(f"{code} {response.phrase}: credentials refused")
                authorization = self._answer(response, request)
                challenged = True
                continue
            if code == 423 and expires:
                minimum = response.headers.get("Min-Expires") or ""
                if not ascii_digits(minimum.strip()) or int(minimum) <= expires:
                    raise RegistrationError(f"423 without a usable Min-Expires ({minimum!r})")
                expires = self._expires = int(minimum)
                continue
            raise RegistrationError(f"{code} {response.phrase}".strip())
        raise RegistrationError("the registrar kept challenging")

    def _build(self, expires: int, authorization: tuple[str, str] | None) -> Request:
        spec = self.spec
        self._cseq += 1
        request = Request("REGISTER", URI.parse(f"sip:{spec.domain}"))
        headers = request.headers
        host = self._agent.host
        host = f"[{host}]" if ":" in host else host
        headers.set("Via", f"SIP/2.0/UDP {host}:{self._agent.port};branch={new_branch()};rport")
        headers.set("Max-Forwards", "70")
        headers.set("From", f"<{spec.aor}>;tag={self._tag}")
        headers.set("To", f"<{spec.aor}>")
        headers.set("Call-ID", self._call_id)
        headers.set("CSeq", f"{self._cseq} REGISTER")
        headers.set("Contact", f"<{self.contact}>")
        headers.set("Expires", str(expires))
        headers.set("User-Agent", "ringback")
        if authorization is not None:
            headers.set(*authorization)
        headers.set("Content-Length", "0")
        return request

    def _answer(self, response: Response, request: Request) -> tuple[str, str]:
        spec = self.spec
        if spec.username is None or spec.password is None:
            raise RegistrationError(f"{response.code} challenge but no credentials are set")
        try:
            return credentials_for(
                response, request, username=spec.username, password=spec.password
            )
        except DigestError as exc:
            raise RegistrationError(f"cannot answer the challenge: {exc}") from exc

    def _granted(self, response: Response, asked: int) -> int:
        mine = URI.parse(self.contact)
        for contact in response.contact:
            uri = contact.uri
            if uri.user == mine.user and uri.host == mine.host and uri.port == mine.port:
                raw = contact.parameters.get("expires")
                if raw is not None and ascii_digits(raw.strip()):
                    return int(raw)
        header = response.headers.get("Expires")
        if header is not None and ascii_digits(header.strip()):
            return int(header)
        return asked


def _challenge(response: Response) -> str:
    return (
        response.headers.get("WWW-Authenticate") or response.headers.get("Proxy-Authenticate") or ""
    )


def gauge_rows(registrations: list[Registration], now: datetime) -> list[tuple[str, bool, float]]:
    """(AOR, registered, seconds until expiry) for each registration: the metrics' view."""
    rows = []
    for registration in registrations:
        status = registration.status
        left = (status.expires_at - now).total_seconds() if status.expires_at else 0.0
        rows.append((status.aor, status.state == "registered", left))
    return rows
