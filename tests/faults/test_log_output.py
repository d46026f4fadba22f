"""A log call returns at once while the log's sink (stderr) is blocked, and every line queued
is written by a clean stop."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import structlog

from ringback.logoutput import LogOutput, logger


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
    assert "stdlib line 0" in lines[2] and "[ringback.stdlib]" in lines[2]  # the same shape
    assert "stdlib line 199" in lines[-1]


def test_in_json_every_logger_writes_one_object_per_line_with_its_traceback(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    output = LogOutput.start(stream, log_format="json")
    try:
        structlog.contextvars.bind_contextvars(request_id="r-1")
        structlog.get_logger("ringback.test").info("structlog line", task_id=7)
        structlog.contextvars.clear_contextvars()
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("ringback.sip").exception("a datagram failed")
    finally:
        output.stop()
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]
    assert first["event"] == "structlog line" and first["task_id"] == 7
    assert first["request_id"] == "r-1"
    assert second["event"] == "Started server process [42]" and "request_id" not in second
    assert second["logger"] == "uvicorn.error" and second["level"] == "info"
    assert third["level"] == "error" and "ValueError: boom" in third["exception"]


class CountingStream(io.StringIO):
    """A stderr that counts the writes it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def isatty(self) -> bool:
        return False


def test_lines_logged_together_are_written_together_while_the_service_runs(
    restore_logging: None,
) -> None:
    """The writer gathers the lines of a burst into one write (it once woke, wrote and flushed
    for every line: ~8% of a busy worker's CPU), and writes them without waiting for a stop."""
    stream = CountingStream()
    output = LogOutput.start(stream)
    try:
        log = structlog.get_logger("ringback.test")
        for index in range(100):
            log.info("call placed", index=index)
        deadline = time.monotonic() + 10
        while stream.getvalue().count("\n") < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        written, writes = stream.getvalue().splitlines(), stream.writes
    finally:
        output.stop()
    assert len(written) == 100 and "index=99" in written[-1]
    assert writes <= 10, writes  # 100 before: one write per line


def test_a_hot_path_logger_writes_to_the_running_output_with_its_context_and_level(
    restore_logging: None,
) -> None:
    """``logoutput.logger`` keeps one logger per output (not a new one per line, as
    structlog's proxy makes): lines still carry the context bound meanwhile, lines below the
    level are dropped, and a later output gets its own logger, not the stopped one's."""
    first, second = io.StringIO(), io.StringIO()
    output = LogOutput.start(first, level=logging.INFO, log_format="json")
    try:
        assert logger("ringback.worker") is logger("ringback.worker")
        structlog.contextvars.bind_contextvars(request_id="r-2")
        logger("ringback.worker").info("call placed", task_id=1)
        structlog.contextvars.clear_contextvars()
        logger("ringback.worker").debug("below the level", task_id=2)
        logger("ringback.worker").warning("call not placed", task_id=3)
    finally:
        output.stop()
    later = LogOutput.start(second, log_format="json")
    try:
        logger("ringback.worker").info("call ended", task_id=4)
    finally:
        later.stop()
    lines = [json.loads(line) for line in first.getvalue().splitlines()]
    assert [(x["event"], x["task_id"], x["level"]) for x in lines] == [
        ("call placed", 1, "info"), ("call not placed", 3, "warning"),
    ]  # fmt: skip
    assert lines[0]["request_id"] == "r-2" and "request_id" not in lines[1]
    assert {x["logger"] for x in lines} == {"ringback.worker"}
    assert [json.loads(x)["event"] for x in second.getvalue().splitlines()] == ["call ended"]
