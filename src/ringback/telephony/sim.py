"""The simulator dialer: the default telephony backend. It dials nobody and needs no network.

What the "callee" of a number does comes from number rules (see ``sim_defaults.toml`` for the
format): the built-in rules answer every number except those ending in a SIP failure code, and a
rules file of your own is tried before them.

Each leg follows a timeline fixed when it is originated: it rings for ``ring_seconds`` (or until
the request's ring timeout, whichever comes first), then answers or fails; once answered, the
callee hangs up by itself ``talk_seconds`` later. Every event is stamped with the time it was
due on the injected clock, whenever the code looks at the leg, so a test that moves a
:class:`~ringback.clock.FakeClock` in big steps still sees exact times.

SendFax and ReceiveFax run a real T.30 session with an in-process fax machine (libspandsp,
through G.711), computed at once; the fax machine stays on the line for the fax's audio time.

``fast=True`` removes ring and talk time: legs answer (or fail) the moment they are originated,
media takes no time, the callee never hangs up on its own, and nothing ever calls
``clock.sleep`` nor creates a task.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from ringback.clock import AlignedClock, Clock, sleep_until
from ringback.domain.model import Outcome
from ringback.domain.outcomes import cause_for_sip, outcome_for_sip
from ringback.telephony.amd_call import AmdOutcome
from ringback.telephony.amd_settings import AmdSettings
from ringback.telephony.audio_files import AudioError, audio_seconds
from ringback.telephony.base import (
    Call,
    CallError,
    CallNotSupported,
    CallRecord,
    CannotPlay,
    OriginateRequest,
    ended_error,
    outbound_record,
    played_file,
    played_speech,
)
from ringback.telephony.fax.result import FaxResult, ReceivedFax
from ringback.telephony.fax.spandsp import FaxUnavailable
from ringback.telephony.sim_rules import (
    DTMF_PAUSE,
    CalleeBehaviour,
    SimConfigError,
    SimRules,
    load_sim_rules,
)
from ringback.telephony.sim_truth import TruthLog

#: how long after answer the simulator's answering-machine detection decides, by its result
SIM_AMD_SECONDS = {"human": 1.5, "machine": 2.0, "unknown": 2.5}
#: how long the simulator takes to say one character of a Speak text
SPEAK_SECONDS_PER_CHAR = 0.06
_RINGING_OUTCOMES = frozenset((Outcome.ANSWERED, Outcome.NO_ANSWER, Outcome.REJECTED))


# --- audio --------------------------------------------------------------------------------


def wav_seconds(path: Path) -> float:
    """The length of an audio file (WAV, MP3, FLAC, …), read from its header (cached)."""
    try:
        return audio_seconds(path)
    except AudioError as exc:
        raise CannotPlay(path, str(exc).split(": ", 1)[-1]) from exc


# --- calls --------------------------------------------------------------------------------


class _State(enum.Enum):
    RINGING = "ringing"
    UP = "up"
    ENDED = "ended"


class SimCall:
    """One simulated leg; see the module docstring for its timeline."""

    def __init__(
        self,
        clock: Clock,
        request: OriginateRequest,
        behaviour: CalleeBehaviour,
        *,
        fast: bool,
        on_end: Callable[[SimCall], None] | None = None,
        truth: TruthLog | None = None,
    ) -> None:
        now = clock.now()
        self._clock = clock
        self._truth = truth
        self._fast = fast
        self._on_end = on_end
        self._code = behaviour.sip_code
        self._talk = timedelta(seconds=0.0 if fast else behaviour.talk_seconds)
        self._dtmf = behaviour.dtmf
        self._far_fax = behaviour.fax
        self._answered_by = behaviour.answered_by
        self._beep_after_s = behaviour.beep_after_s
        self._dtmf_next = 0
        self._state = _State.RINGING
        self._end_at: datetime | None = None  # when an answered leg ends by itself
        self._end_disposition = "recv_bye"
        self._ended: asyncio.Future[None] | None = None
        ring = 0.0 if fast else behaviour.ring_seconds
        timeout = max(0.0, request.ring_timeout_s)
        self._ring_timed_out = timeout < ring
        self._settles_at = now + timedelta(seconds=min(ring, timeout))
        self._record = outbound_record(request, now)
        if self._ring_timed_out or outcome_for_sip(self._code) in _RINGING_OUTCOMES:
            self._record.ringing_at = now
        if truth is not None:
            record = self._record
            truth.originate(record.leg_uuid, record.call_uuid, record.to_number, now)
        self._catch_up(now)

    # -- state -------------------------------------------------------------------------------

    @property
    def record(self) -> CallRecord:
        """The leg as of ``clock.now()`` (events that fell due meanwhile are applied first)."""
        self._catch_up()
        return self._record

    @property
    def leg_uuid(self) -> str:
        return self._record.leg_uuid

    @property
    def ended(self) -> bool:
        self._catch_up()
        return self._state is _State.ENDED

    def _catch_up(self, now: datetime | None = None) -> None:
        state = self._state
        if state is _State.ENDED or (state is _State.UP and self._end_at is None):
            return  # nothing can fall due (an answered leg in fast mode ends only when told)
        now = self._clock.now() if now is None else now
        if state is _State.RINGING:
            if now < self._settles_at:
                return
            self._settle_ringing()
        if self._state is _State.UP and self._end_at is not None and now >= self._end_at:
            self._finish(
                self._end_at, Outcome.ANSWERED, 200, "NORMAL_CLEARING", self._end_disposition
            )

    def _settle_ringing(self) -> None:
        at = self._settles_at
        if self._ring_timed_out:
            self._finish(at, Outcome.NO_ANSWER, 487, "NO_ANSWER", "send_cancel")
        elif outcome_for_sip(self._code) is Outcome.ANSWERED:
            self._state = _State.UP
            self._record.answered_at = at
            self._record.sip_code = 200
            self._record.outcome = Outcome.ANSWERED
            if not self._fast:
                self._end_at = at + self._talk
            if self._truth is not None:
                record = self._record
                self._truth.answer(record.leg_uuid, record.call_uuid, record.to_number, at)
        else:
            self._finish(
                at,
                outcome_for_sip(self._code),
                self._code,
                cause_for_sip(self._code),
                "recv_refuse",
            )

    def _finish(
        self, at: datetime, outcome: Outcome, sip_code: int, cause: str, disposition: str
    ) -> None:
        record = self._record
        record.ended_at = at
        record.outcome = outcome
        record.sip_code = sip_code
        record.hangup_cause = cause
        record.hangup_disposition = disposition
        self._state = _State.ENDED
        if self._truth is not None:
            self._truth.hangup(
                record.leg_uuid,
                record.call_uuid,
                record.to_number,
                at,
                disposition=disposition,
                cause=cause,
            )
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)
        if self._on_end is not None:
            self._on_end(self)

    def _hang_up_now(self, cause: str, disposition: str) -> None:
        now = self._clock.now()
        if self._state is _State.RINGING:
            if cause == "NORMAL_CLEARING":
                cause = "ORIGINATOR_CANCEL"
            self._finish(now, Outcome.CANCELED, 487, cause, "send_cancel")
        elif self._state is _State.UP:
            self._finish(now, Outcome.ANSWERED, 200, cause, disposition)

    def _require_up(self, action: str) -> None:
        self._catch_up()
        if self._state is _State.RINGING:
            raise CallError(f"cannot {action}: the call is not answered")
        if self._state is _State.ENDED:
            raise self._ended_error(action)

    def _ended_error(self, action: str) -> CallError:
        return ended_error(self._record, action)

    # -- waiting ----------------------------------------------------------------------------

    def _ended_future(self) -> asyncio.Future[None]:
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
            if self._state is _State.ENDED:
                self._ended.set_result(None)
        return self._ended

    async def _sleep_until(self, when: datetime, *, also: SimCall | None = None) -> bool:
        """Sleep on the clock until ``when``; False if this leg (or ``also``) ends first."""
        legs = (self,) if also is None else (self, also)
        if any(leg._state is _State.ENDED for leg in legs):
            return False
        if when <= self._clock.now():
            return True
        sleeper = asyncio.ensure_future(sleep_until(self._clock, when))
        try:
            await asyncio.wait(
                (sleeper, *(leg._ended_future() for leg in legs)),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if not sleeper.done():
                sleeper.cancel()
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()
            return True
        return False

    async def _spend(self, seconds: float, action: str) -> None:
        """Let ``seconds`` of media time pass on an answered leg; CallError if it ends first."""
        if self._fast or seconds <= 0:
            return
        until = self._clock.now() + timedelta(seconds=seconds)
        end_at = self._end_at
        if end_at is not None and end_at < until:
            if await self._sleep_until(end_at):
                self._catch_up(max(self._clock.now(), end_at))
            raise self._ended_error(action)
        if not await self._sleep_until(until):
            self._catch_up()
            raise self._ended_error(action)

    # -- the Call protocol ------------------------------------------------------------------

    async def wait_answer(self) -> Outcome:
        self._catch_up()
        while self._state is _State.RINGING:
            await self._sleep_until(self._settles_at)
            self._catch_up()
        if self._record.answered_at is not None:
            return Outcome.ANSWERED
        return self._record.outcome or Outcome.FAILED

    async def play(self, path: Path, *, loop: int = 1, name: str | None = None) -> None:
        _check_loop(loop)
        self._require_up("play")
        seconds = wav_seconds(path if isinstance(path, Path) else Path(path)) * loop
        self._record.played.append(played_file(path, name, loop, seconds))
        await self._spend(seconds, "play")

    async def speak(
        self, text: str, *, language: str | None = None, voice: str | None = None, loop: int = 1
    ) -> None:
        _check_loop(loop)
        self._require_up("speak")
        seconds = len(text) * SPEAK_SECONDS_PER_CHAR * loop
        self._record.played.append(played_speech(text, language, voice, loop, seconds))
        await self._spend(seconds, "speak")

    async def wait(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"cannot wait {seconds!r} seconds")
        self._require_up("wait")
        await self._spend(seconds, "wait")

    async def collect_digits(
        self, *, max_digits: int, timeout_s: float, finish_on_key: str = "#"
    ) -> str:
        """The keys the callee's dtmf script presses next (see ``sim_defaults.toml``)."""
        if max_digits < 1:
            raise ValueError(f"max_digits must be at least 1, not {max_digits}")
        if not timeout_s >= 0:
            raise ValueError(f"timeout_s must be >= 0, not {timeout_s!r}")
        self._require_up("collect digits")
        digits, timed_out = self._next_keys(max_digits, finish_on_key)
        self._record.dtmf_received += digits
        if timed_out:
            await self._spend(timeout_s, "collect digits")
        return digits

    def _next_keys(self, max_digits: int, finish_on_key: str) -> tuple[str, bool]:
        """(keys pressed, whether the collection times out) — consumes the script."""
        script = self._dtmf
        digits = ""
        while self._dtmf_next < len(script):
            key = script[self._dtmf_next]
            self._dtmf_next += 1
            if key == DTMF_PAUSE:
                return digits, True
            if finish_on_key and key == finish_on_key:
                return digits, False
            digits += key
            if len(digits) >= max_digits:
                return digits, False
        return digits, True

    async def send_dtmf(self, digits: str) -> None:
        self._require_up("send DTMF")
        self._record.played.append({"type": "dtmf_sent", "digits": digits})

    async def bridge(self, other: Call) -> None:
        """Connect two answered legs until the first callee's talk time runs out.

        That callee hangs up (``recv_bye``) and ringback hangs up the other (``send_bye``); on a
        tie, this leg's callee is the one who hangs up. If either leg is hung up meanwhile, the
        other is hung up too.
        """
        if not isinstance(other, SimCall):
            raise CallError("the simulator can only bridge two simulator calls")
        if other is self:
            raise CallError("cannot bridge a call with itself")
        self._require_up("bridge")
        other._require_up("bridge")
        if self._record.bridged_with is not None or other._record.bridged_with is not None:
            raise CallError("cannot bridge: a leg is already bridged")
        now = self._clock.now()
        for leg, peer in ((self, other), (other, self)):
            leg._record.bridged_at = now
            leg._record.bridged_with = peer._record.leg_uuid
        if self._fast:
            self._hang_up_now("NORMAL_CLEARING", "recv_bye")
            other._hang_up_now("NORMAL_CLEARING", "send_bye")
            return
        assert self._end_at is not None and other._end_at is not None  # answered, not fast
        first, second = (self, other) if self._end_at <= other._end_at else (other, self)
        second._end_at = first._end_at
        second._end_disposition = "send_bye"
        end_at = first._end_at
        assert end_at is not None
        if await self._sleep_until(end_at, also=other):
            first._catch_up(max(self._clock.now(), end_at))
            second._catch_up(max(self._clock.now(), end_at))
        for leg in (self, other):
            leg._hang_up_now("NORMAL_CLEARING", "send_bye")

    async def park(self, timeout_s: float, music: Path | None = None) -> None:
        """Hold the answered call for ``timeout_s`` (recorded in ``played``); CallError if the
        callee hangs up first. In fast mode no time passes."""
        if not timeout_s >= 0:
            raise ValueError(f"cannot park for {timeout_s!r} seconds")
        self._require_up("park")
        self._record.played.append(
            {
                "type": "park",
                "seconds": round(timeout_s, 3),
                "music": str(music) if music is not None else None,
            }
        )
        await self._spend(timeout_s, "park")

    async def send_fax(
        self, path: Path, *, header: str = "", ident: str = "", name: str | None = None
    ) -> FaxResult:
        """A real T.30 session with an in-process fax machine at the called number (see
        :mod:`ringback.telephony.fax.loopback`), computed in a thread at once; then, unless
        fast, the session's audio time passes on the clock."""
        from ringback.telephony.fax import loopback  # numpy, Pillow: loaded by the first fax

        self._require_up("send a fax")
        record = self._record
        try:
            result = await asyncio.to_thread(
                loopback.send_to_far_end,
                path,
                local_ident=ident or record.from_number or "",
                remote_ident=record.to_number,
                header=header,
                far_end=self._far_fax,
            )
        except FaxUnavailable as exc:
            raise CallNotSupported(f"SendFax is not supported by the sim backend: {exc}") from None
        return await self._fax_time(result, name or path.name)

    async def receive_fax(
        self, timeout_s: float, *, ident: str = "", name: str | None = None
    ) -> ReceivedFax:
        """A page from an in-process fax machine at the called number (see :meth:`send_fax`);
        a session longer than ``timeout_s`` fails as dropped."""
        from ringback.telephony.fax import loopback

        self._require_up("receive a fax")
        record = self._record
        try:
            received = await asyncio.to_thread(
                loopback.receive_from_far_end,
                local_ident=ident or record.from_number or "",
                remote_ident=record.to_number,
                when=self._clock.now(),
                max_seconds=timeout_s,
                far_end=self._far_fax,
            )
        except FaxUnavailable as exc:
            raise CallNotSupported(
                f"ReceiveFax is not supported by the sim backend: {exc}"
            ) from None
        result = await self._fax_time(received.result, name)
        return ReceivedFax(result, received.tiff if result.ok else b"")

    async def _fax_time(self, result: FaxResult, name: str | None) -> FaxResult:
        """Record the fax on the leg and, unless fast, let its audio time pass: the far fax
        machine stays on the line until the session ends (and hangs up then, if its talk
        time is over). Ringback hanging up meanwhile drops the fax (code 49)."""
        started = self._clock.now()
        if not self._fast and result.audio_seconds > 0:
            until = started + timedelta(seconds=result.audio_seconds)
            if self._end_at is not None and self._end_at < until:
                self._end_at = until
            try:
                await self._spend(result.audio_seconds, f"{result.operation} of a fax")
            except CallError:
                seconds = (self._clock.now() - started).total_seconds()
                result = result.dropped(seconds)
        self._record.played.append(
            {"type": "fax", "operation": result.operation, "file": name, "pages": result.pages,
             "code": result.code, "text": result.text, "seconds": result.audio_seconds}
        )  # fmt: skip
        return result

    async def detect_answering_machine(
        self, settings: AmdSettings, *, wait_for_beep: bool, beep_timeout_s: float
    ) -> AmdOutcome:
        """Who answered, from the number's rules (``answered_by``, ``beep_after_s``): decided
        :data:`SIM_AMD_SECONDS` after answer; with ``wait_for_beep`` a machine's beep ends
        ``beep_after_s`` after answer (none: ``beep_timeout_s`` pass in vain)."""
        self._require_up("detect an answering machine")
        decided_s = SIM_AMD_SECONDS[self._answered_by]
        await self._spend(decided_s, "detect an answering machine")
        beep_ms = None
        if wait_for_beep and self._answered_by == "machine":
            beep = self._beep_after_s
            if beep is not None and beep - decided_s <= beep_timeout_s:
                await self._spend(max(0.0, beep - decided_s), "wait for the beep")
                beep_ms = round(max(beep, decided_s) * 1000)
            else:
                await self._spend(beep_timeout_s, "wait for the beep")
        return AmdOutcome(self._answered_by, "simulated", round(decided_s * 1000), beep_ms)

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """BYE when answered, CANCEL while ringing (cause ORIGINATOR_CANCEL unless given)."""
        self._catch_up()
        self._hang_up_now(cause, "send_bye")

    async def wait_ended(self) -> CallRecord:
        """Until the leg ends; in fast mode an answered callee hangs up at once."""
        self._catch_up()
        while self._state is not _State.ENDED:
            if self._fast:
                self._hang_up_now("NORMAL_CLEARING", "recv_bye")
                break
            due = self._settles_at if self._state is _State.RINGING else self._end_at
            assert due is not None
            await self._sleep_until(due)
            self._catch_up()
        return self._record


def _check_loop(loop: int) -> None:
    if loop < 1:
        raise ValueError(f"loop must be at least 1, not {loop}")


# --- the dialer ---------------------------------------------------------------------------


class SimDialer:
    """The :class:`~ringback.telephony.base.Dialer` of the simulator."""

    name: str = "sim"

    def __init__(
        self,
        clock: Clock,
        rules: SimRules | None = None,
        fast: bool = False,
        truth_log: Path | None = None,
    ) -> None:
        self.clock = clock
        self.rules = rules if rules is not None else load_sim_rules(None)
        self.fast = fast
        # every originate / answer / hangup appended to <truth_log>/dials-<pid>.jsonl
        self.truth = None
        if truth_log is not None:
            aligned = clock if isinstance(clock, AlignedClock) else None
            self.truth = TruthLog(
                truth_log,
                (lambda: aligned.offset.total_seconds()) if aligned is not None else lambda: 0.0,
            )
        self.originated = 0  # legs originated since the dialer was made
        self._live: dict[str, SimCall] = {}

    async def originate(self, request: OriginateRequest) -> SimCall:
        behaviour = self.rules.behaviour_for(request.to_number)
        call = SimCall(
            self.clock, request, behaviour, fast=self.fast, on_end=self._forget, truth=self.truth
        )
        self.originated += 1
        if not call.ended:
            self._live[call.leg_uuid] = call
        return call

    def live_calls(self) -> list[SimCall]:
        """Legs not ended yet (as of ``clock.now()``)."""
        return [call for call in list(self._live.values()) if not call.ended]

    async def close(self) -> None:
        """Hang up every leg still up or ringing."""
        for call in list(self._live.values()):
            await call.hangup("SYSTEM_SHUTDOWN")
        if self.truth is not None:
            self.truth.close()

    def _forget(self, call: SimCall) -> None:
        self._live.pop(call.leg_uuid, None)


__all__ = ["SimCall", "SimConfigError", "SimDialer", "SimRules", "load_sim_rules", "wav_seconds"]
