"""Helpers shared by the tests (importable as ``support``: tests/ is on sys.path)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import os
import shutil
import signal
import subprocess
import uuid
import wave
from collections.abc import Awaitable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import TaskKind
from ringback.engine.context import AttemptContext
from ringback.ivr.fetch import Fetcher
from ringback.telephony.base import CallRecord

T = TypeVar("T")

PG_URL = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("RINGBACK_REQUIRE_PG") == "1"


def _pg_available() -> str | None:
    """None when the server answers, else the reason."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=3)
        await conn.close()

    try:  # in a thread of its own: callers may be inside a running event loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} is not reachable: {exc}"
    return None


_PG_PROBLEM: str | bool | None = False


def require_pg() -> None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _pg_available()
    if _PG_PROBLEM:
        if REQUIRE_PG:
            pytest.fail(f"{_PG_PROBLEM} (RINGBACK_REQUIRE_PG=1)")
        pytest.skip(str(_PG_PROBLEM))


class PgSchema:
    """A throw-away schema in the test database."""

    def __init__(self) -> None:
        self.name = f"t_{uuid.uuid4().hex[:12]}"

    async def create(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f"CREATE SCHEMA {self.name}")
        finally:
            await conn.close()

    async def drop(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        finally:
            await conn.close()

    def url(self) -> str:
        return PG_URL


def wav_bytes(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A silent 16-bit mono WAV of ``seconds``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * round(rate * seconds))
    return buffer.getvalue()


def make_wav(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    """A silent 16-bit mono WAV file of ``seconds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(seconds, rate))
    return path


class WatchedClock(FakeClock):
    """A FakeClock that remembers every sleep asked of it, as (seconds, wakes at): a test can
    wait until the code under test has gone to sleep until a given moment (it reached the
    point where it waits) instead of pausing for a while of real time."""

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__(start)
        self.asked: list[tuple[float, datetime]] = []

    async def sleep(self, seconds: float) -> None:
        self.asked.append((seconds, self.now() + timedelta(seconds=seconds)))
        await super().sleep(seconds)

    def asked_to_wake_at(self, when: datetime) -> bool:
        return any(wakes == when for _, wakes in self.asked)

    def sleeps_of(self, seconds: float) -> int:
        """How many sleeps of exactly ``seconds`` were asked so far."""
        return sum(1 for asked, _ in self.asked if asked == seconds)


async def settle() -> None:
    """Let every task that can run, run (the clock does not move)."""
    for _ in range(50):
        await asyncio.sleep(0)


async def on_clock(
    clock: FakeClock, awaitable: Awaitable[T], step: float = 0.1, limit: float = 600.0
) -> T:
    """Await ``awaitable`` while moving the fake clock forward in small steps."""
    task = asyncio.ensure_future(awaitable)
    moved = 0.0
    while True:
        await settle()
        if task.done():
            return task.result()
        if moved >= limit:
            task.cancel()
            raise AssertionError(f"still waiting after {limit} s of fake time")
        clock.advance(step)
        moved += step


def attempt_context(
    kind: TaskKind,
    payload: dict[str, Any],
    dialer: Any,
    storage: Storage,
    *,
    client_id: int,
    call_uuid: str = "c0ffee",
    attempt: int = 1,
    ring_timeout_s: float = 30.0,
    fetcher: Fetcher | None = None,
) -> AttemptContext:
    """What the worker gives a runner for one attempt of task 1 in queue 1 (the dialer's clock)."""
    return AttemptContext(
        task_id=1,
        client_id=client_id,
        queue_id=1,
        kind=kind,
        attempt=attempt,
        call_uuid=call_uuid,
        payload=payload,
        dialer=dialer,
        storage=storage,
        clock=dialer.clock,
        ring_timeout_s=ring_timeout_s,
        fetcher=fetcher,
    )


def stop_process(
    process: subprocess.Popen[bytes], *, timeout_s: float = 5.0, group: bool = False
) -> int:
    """SIGTERM to a process the test started, by its PID; SIGKILL if it has not ended within
    ``timeout_s`` (to its whole process group with ``group``: it was started with
    ``start_new_session`` and has children of its own). Its exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                (os.killpg if group else os.kill)(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)
    return process.returncode


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the process group of ``process`` (started with ``start_new_session``): it
    and every child it started, whether it is still running or already gone; then reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def leg_record(
    clock: FakeClock, leg_uuid: str = "leg-1", to: str = "0901234000", **fields: Any
) -> CallRecord:
    """The record of one outbound main leg started now, with ``fields`` set."""
    from ringback.domain.model import Leg

    record = CallRecord(
        leg_uuid=leg_uuid,
        call_uuid="call-1",
        leg=Leg.MAIN,
        direction="outbound",
        from_number="0506868000",
        to_number=to,
        caller_id_name=None,
        started_at=clock.now(),
    )
    for name, value in fields.items():
        setattr(record, name, value)
    return record


#: tests that need an external program (sipp, baresip, kamailio, openssl…) fail instead of
#: skipping without it (CI sets it)
REQUIRE_SIPP = os.environ.get("RINGBACK_REQUIRE_SIPP") == "1"


def require_program(name: str, package: str) -> str:
    """The program's path; skip without it, or fail when RINGBACK_REQUIRE_SIPP=1 (as in CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package})"
        if REQUIRE_SIPP:
            pytest.fail(f"{message} (RINGBACK_REQUIRE_SIPP=1)")
        pytest.skip(message)
    return path
