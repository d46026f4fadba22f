"""Session timers (RFC 4028): a call whose far end vanished without a BYE ends anyway.

Our INVITEs carry ``Supported: timer``, ``Session-Expires`` and ``Min-SE``; a 422 raises
them to the far end's ``Min-SE`` and the INVITE goes again. The 2xx (ours or theirs) names the
interval and the refresher:

- when we refresh, a refresh goes at half the interval: an UPDATE without SDP when the far
  end allows UPDATE, else a re-INVITE with the call's current SDP (the T.38 one during a T.38
  fax); a refresh answered 2xx restarts the timer, a 422 is retried with the higher Min-SE,
  any other failure ends the call with a BYE (a 401/407 is answered once with the trunk's
  credentials first: :mod:`.dialog_requests`);
- when the far end refreshes, its re-INVITEs and UPDATEs are answered (with the interval and
  refresher in the 200) and restart the timer; without one, the call is ended with a BYE at
  the interval minus min(32 s, a third of it).

An inbound INVITE with a Session-Expires below our Min-SE gets 422. Intervals run on the
injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from sipmessage import Request, Response

from ringback.domain.digits import ascii_digits
from ringback.telephony.sip.dialog_requests import send_in_dialog, with_sdp
from ringback.telephony.sip.message import ALLOW, response_to

if TYPE_CHECKING:
    from ringback.telephony.sip.call import SipCall

log = logging.getLogger("ringback.sip")

#: RFC 4028 section 4: no interval below 90 s
LOWEST_MIN_SE = 90


def parse_session_expires(message: Request | Response) -> tuple[int, str | None] | None:
    """``Session-Expires: 1800;refresher=uac`` as (1800, "uac"); None when absent or bad."""
    raw = message.headers.get("Session-Expires") or message.headers.get("x")
    if raw is None:
        return None
    value, *params = (part.strip() for part in raw.split(";"))
    if not ascii_digits(value):
        return None
    refresher = None
    for param in params:
        name, _, setting = param.partition("=")
        if name.strip().lower() == "refresher" and setting.strip().lower() in ("uac", "uas"):
            refresher = setting.strip().lower()
    return int(value), refresher


class SessionTimer:
    """The session timer of one call (off when ``interval`` is 0)."""

    def __init__(self, call: SipCall, interval: int, min_se: int) -> None:
        self._call = call
        self.min_se = max(LOWEST_MIN_SE, min_se)
        self.interval = max(interval, self.min_se) if interval else 0
        self.we_refresh: bool | None = None  # None: no timer running
        self.refreshes_sent = 0
        self.refreshes_received = 0
        self._peer_allows_update = False
        self._task: asyncio.Task[None] | None = None
        #: our refresh re-INVITE (an offer) waits for its answer: a far offer crossing it gets
        #: 491 (``far_update.offer_pending``)
        self.offering = False

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    # -- our INVITE --------------------------------------------------------------------------

    def add_to_request(self, request: Request, *, refresher: str | None = None) -> None:
        if not self.enabled:
            return
        value = str(self.interval) + (f";refresher={refresher}" if refresher else "")
        request.headers.set("Session-Expires", value)
        request.headers.set("Min-SE", str(self.min_se))

    def on_422(self, response: Response) -> bool:
        """Raise the interval to the 422's Min-SE; False when it gives nothing higher."""
        raw = (response.headers.get("Min-SE") or "").split(";")[0].strip()
        if not self.enabled or not ascii_digits(raw) or int(raw) <= self.interval:
            return False
        self.min_se = self.interval = int(raw)
        self._call.record.detail["session_min_se"] = self.min_se
        return True

    def on_2xx(self, response: Response) -> None:
        """The 2xx to our INVITE (or refresh): start the timer it asks for, if any."""
        if "UPDATE" in (response.headers.get("Allow") or "").upper():
            self._peer_allows_update = True
        found = parse_session_expires(response)
        if not self.enabled or found is None:
            return
        interval, refresher = found
        self._start(interval, we_refresh=refresher != "uas")

    # -- their INVITE or refresh -------------------------------------------------------------

    def check_request(self, request: Request) -> Response | None:
        """A 422 for an INVITE or UPDATE whose Session-Expires is below our Min-SE."""
        found = parse_session_expires(request)
        if not self.enabled or found is None or found[0] >= self.min_se:
            return None
        too_brief = response_to(request, 422)
        too_brief.headers.set("Min-SE", str(self.min_se))
        return too_brief

    def answer(self, request: Request, ok: Response) -> None:
        """Our 2xx to an INVITE or UPDATE: its Session-Expires, and the timer restarted."""
        if "UPDATE" in (request.headers.get("Allow") or "").upper():
            self._peer_allows_update = True
        if not self.enabled:
            return
        found = parse_session_expires(request)
        supports = "timer" in request.supported or "timer" in request.require
        if found is None:
            if not supports or request.method != "INVITE" or self.we_refresh is not None:
                return
            found = (self.interval, "uas")  # they support timers but asked for none: we refresh
        interval, refresher = found
        refresher = refresher or ("uac" if supports else "uas")
        ok.headers.set("Session-Expires", f"{interval};refresher={refresher}")
        if supports:
            ok.headers.set("Require", "timer")
        if self.we_refresh is not None:
            self.refreshes_received += 1
            self._call.record.detail["session_refreshes_received"] = self.refreshes_received
        self._start(interval, we_refresh=refresher == "uas")

    # -- the timer ---------------------------------------------------------------------------

    def _start(self, interval: int, *, we_refresh: bool) -> None:
        self.stop()
        self.interval = interval
        self.we_refresh = we_refresh
        detail = self._call.record.detail
        detail["session_expires"] = interval
        detail["session_refresher"] = "ringback" if we_refresh else "far end"
        self._task = asyncio.get_running_loop().create_task(self._run(interval, we_refresh))

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _run(self, interval: int, we_refresh: bool) -> None:
        call = self._call
        if not we_refresh:
            await call._clock.sleep(interval - min(32, interval / 3))
            if not call.ended:
                log.info("call %s: no session refresh in %d s: BYE", call.call_id, interval)
                call.record.detail["error"] = f"session expired: no refresh in {interval} s"
                await call.hangup("RECOVERY_ON_TIMER_EXPIRE")
            return
        await call._clock.sleep(interval / 2)
        final: Response | None = None
        attempts = 0
        while attempts < 4:  # a 491 (glare) or 422 tries again
            if call.ended:
                return
            if call.t38.offering:  # our T.38 re-INVITE is under way: refresh after it
                await call._clock.sleep(2.0)
                continue
            attempts += 1
            final = await self._refresh()
            if final is None:
                return
            if 200 <= final.code < 300:
                self.refreshes_sent += 1
                call.record.detail["session_refreshes_sent"] = self.refreshes_sent
                self.we_refresh = None
                self.on_2xx(final)
                if self.we_refresh is None:  # the 2xx dropped the timer
                    self._task = None
                return
            if final.code == 491:
                await call._clock.sleep(2.0 + 2.0 * random.random())
            elif not (final.code == 422 and self.on_422(final)):
                break
        if not call.ended:
            code = f": {final.code} {final.phrase}" if final is not None else ""
            call.record.detail["error"] = "session refresh failed" + code
            await call.hangup("RECOVERY_ON_TIMER_EXPIRE")

    async def _refresh(self) -> Response | None:
        """One refresh: UPDATE when allowed, else re-INVITE; its final response (a 401/407
        answered once: :mod:`.dialog_requests`; what came of it in the record's detail)."""
        call = self._call
        method = "UPDATE" if self._peer_allows_update else "INVITE"

        def prepare(request: Request) -> None:
            self.add_to_request(request, refresher="uac")
            request.headers.set("Supported", "timer")
            request.headers.set("Allow", ALLOW)
            if method == "INVITE":
                with_sdp(request, call.t38.local_sdp or call._local_sdp)

        self.offering = method == "INVITE"
        try:
            answer = await send_in_dialog(call, method, prepare)
        except OSError as exc:
            call.record.detail["session_refresh_error"] = str(exc)
            return None
        finally:
            self.offering = False
        if answer.auth is not None:
            call.record.detail["session_refresh_auth"] = answer.auth
        return answer.final
