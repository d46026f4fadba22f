"""A log call returns at once while the log's sink (stderr) is blocked, and every line queued
is written by a clean stop."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import structlog

from ringback.logoutput import LogOutput


class BlockedStream(io.StringIO):
    """A stderr that blocks writers until released (a full pipe, a stopped terminal)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(timeout=10)
        return super().write(text)

    def isatty(self) -> bool:
        return False


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_log_calls_return_promptly_while_stderr_is_blocked_and_none_is_lost(
    restore_logging: None,
) -> None:
    stream = BlockedStream()
    output = LogOutput.start(stream)
    try:
        log = structlog.get_logger("ringback.test")
        log.info("first line")
        assert stream.entered.wait(timeout=5)  # the writer is stuck in write()
        started = time.perf_counter()
        for index in range(200):
            log.warning("structlog line", index=index)
            logging.getLogger("ringback.stdlib").info("stdlib line %d", index)
        elapsed = time.perf_counter() - started
    finally:
        stream.release.set()
        output.stop()
    assert elapsed < 1.0  # blocked for 10 s per write without the queue
    lines = stream.getvalue().splitlines()
    assert len(lines) == 401
    assert "first line" in lines[0] and "[info" in lines[0]
    assert "structlog line" in lines[1] and "index=0" in lines[1]
    assert lines[2] == "stdlib line 0"
    assert lines[-1] == "stdlib line 199"


def test_a_logger_with_its_own_handler_keeps_its_format_behind_the_queue(
    restore_logging: None,
) -> None:
    written = io.StringIO()
    access = logging.getLogger("ringback.test.access")
    own = logging.StreamHandler(written)
    own.setFormatter(logging.Formatter("ACCESS %(levelname)s %(message)s"))
    access.addHandler(own)
    access.propagate = False
    output = LogOutput.start(io.StringIO())
    try:
        LogOutput.take_over("ringback.test.access")
        access.warning("%s - %s %d", "127.0.0.1", "GET /healthz", 200)
    finally:
        output.stop()
        access.handlers.clear()
    assert written.getvalue() == "ACCESS WARNING 127.0.0.1 - GET /healthz 200\n"
