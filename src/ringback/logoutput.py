"""Where the service's log lines go and how they look: one configuration for every logger.

A log call only puts the event on a queue — a structlog call its event dict (a few cheap
processors at the call site: context variables, level, time, a traceback taken where it was
caught), a stdlib ``logging`` call (uvicorn, the SIP stack, libraries) its record through a
``QueueHandler`` — and one writer thread renders and writes them to stderr, in batches (after
a line it waits ``GATHER_S`` for the next ones: a line is written at most ~20 ms late, and a
busy worker's thread wakes 50 times a second, not twice per call). A full stderr
pipe or a slow terminal then holds up that thread, not the event loop and the calls in
progress.

Every line has the same shape whoever logged it — time (UTC, ISO 8601), level, logger, the
event and its fields — rendered in the writer thread by structlog's renderers:

- ``RINGBACK_LOG_FORMAT=console`` (the default): one readable line, coloured on a terminal;
- ``RINGBACK_LOG_FORMAT=json``: one JSON object per line (``timestamp``, ``level``,
  ``logger``, ``event`` and the fields; a traceback as ``exception``), for log shippers.

``RINGBACK_LOG_LEVEL`` (``debug``, ``info``, ``warning``, ``error``; default ``info``) is the
level of every logger. Fields bound with :func:`structlog.contextvars.bind_contextvars` (the
API's ``request_id``) are on every line logged meanwhile.

    output = LogOutput.start(sys.stderr, format="json")
    try:
        ...  # the service
    finally:
        output.stop()  # writes what is queued, then ends the thread

The queue is unbounded: logging stays quiet under faults (:mod:`ringback.faults`) so it holds
a few lines, not a flood.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from logging.handlers import QueueHandler
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor

LOG_FORMATS = ("console", "json")
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR}  # fmt: skip
_HEAD = ("timestamp", "level", "logger", "event")
_STOP = object()
#: how long the writer waits after a line for the next ones, to write them together
GATHER_S = 0.02


def log_settings_from_env() -> tuple[str, int]:
    """``RINGBACK_LOG_FORMAT`` and ``RINGBACK_LOG_LEVEL``; ConfigError when one is wrong."""
    from ringback.config import ConfigError

    log_format = (os.environ.get("RINGBACK_LOG_FORMAT") or "console").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"RINGBACK_LOG_FORMAT={log_format!r}: use {' or '.join(LOG_FORMATS)}")
    level = (os.environ.get("RINGBACK_LOG_LEVEL") or "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"RINGBACK_LOG_LEVEL={level!r}: use {', '.join(LOG_LEVELS)}")
    return log_format, LOG_LEVELS[level]


class _QueueLogger:
    """structlog's last stop: the event dict, with its logger's name and the time, onto the
    writer's queue (no stdlib record, no formatting in the caller's thread)."""

    def __init__(self, items: queue.SimpleQueue[Any], name: str) -> None:
        self._items = items
        self._name = name

    def msg(self, event: EventDict) -> None:
        event["logger"] = self._name
        event["timestamp"] = time.time()  # wall-clock time on purpose: the line's time
        self._items.put(event)

    debug = info = warning = warn = error = critical = exception = fatal = msg


class _Enqueue(QueueHandler):
    """A stdlib record, as it is, onto the writer's queue (the writer formats it)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return copy.copy(record)


def _hand_over(_logger: Any, _name: str, event: EventDict) -> Any:
    return (event,), {}  # _QueueLogger.msg(event)


def _from_record(record: logging.LogRecord) -> EventDict:
    event: EventDict = {
        "timestamp": record.created,
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    if record.exc_info:
        event["exc_info"] = record.exc_info
    return event


def _iso(_logger: Any, _name: str, event: EventDict) -> EventDict:
    when = event.get("timestamp")
    if isinstance(when, float):
        event["timestamp"] = datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")
    return event


def _head_first(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """JSON lines start with what a reader scans for: time, level, logger, event."""
    head = {key: event.pop(key) for key in _HEAD if key in event}
    return {**head, **event}


def _plain(_logger: Any, _name: str, event: EventDict) -> str:
    """``time [level    ] event  [logger] key=value …`` and the traceback, as structlog's
    console renderer lays it out without colours."""
    when, level = event.pop("timestamp", ""), event.pop("level", "")
    logger, text = event.pop("logger", ""), str(event.pop("event", ""))
    trace = event.pop("exception", None)
    fields = " ".join(f"{key}={value}" for key, value in sorted(event.items()))
    line = f"{when} [{level:<9}] {text:<30} [{logger}] {fields}".rstrip()
    return f"{line}\n{trace}" if trace else line


def _json(event: Any, **_kw: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class LogOutput:
    """The queue, its writer thread, and the one format of every logger."""

    _current: LogOutput | None = None

    def __init__(self, stream: TextIO, level: int, log_format: str) -> None:
        self._stream = stream
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        renderer: Processor
        if log_format == "json":
            renderer = structlog.processors.JSONRenderer(serializer=_json)
        elif stream.isatty():
            renderer = structlog.dev.ConsoleRenderer(colors=True)
        else:  # a file or a pipe: the same layout, without colours, at a third of the cost
            renderer = _plain
        self._render: list[Processor] = [
            _iso,
            structlog.processors.format_exc_info,  # a stdlib record's traceback
            *([_head_first] if log_format == "json" else []),
            renderer,
        ]
        self._thread = threading.Thread(target=self._write, name="ringback-log", daemon=True)
        #: the loggers :func:`logger` made for this output, by name
        self._loggers: dict[str, Any] = {}
        root = logging.getLogger()
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        root.addHandler(_Enqueue(self._items))
        root.setLevel(level)
        items = self._items
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                # the traceback is taken here, in the thread that caught the exception
                structlog.processors.format_exc_info,
                _hand_over,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=lambda *args: _QueueLogger(items, str(args[0]) if args else "root"),
            cache_logger_on_first_use=False,
        )

    def _line(self, item: Any) -> str:
        event = _from_record(item) if isinstance(item, logging.LogRecord) else item
        for processor in self._render:
            event = processor(None, "", event)
        return str(event)

    def _write(self) -> None:
        """Lines in batches: the first line waits ``GATHER_S`` for those logged right after it,
        then all are written at once. One wake-up and one write per line cost a busy worker
        ~15% of its CPU (two lines per call; docs/performance.md, "Issue 19, eighth step")."""
        stopping = False
        while not stopping:
            items = [self._items.get()]
            if items[0] is not _STOP:
                time.sleep(GATHER_S)
            with contextlib.suppress(queue.Empty):
                while True:
                    items.append(self._items.get_nowait())
            lines: list[str] = []
            for item in items:
                if item is _STOP:
                    stopping = True  # stop() puts it last: every line before it is written
                    break
                try:
                    lines.append(self._line(item) + "\n")
                except Exception as exc:  # a line that cannot be rendered must not stop the log
                    lines.append(f"log line not rendered ({exc!r}): {item!r}\n")
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):  # stderr closed: nothing left to write to
                print("ringback: the log stream is closed", file=sys.__stderr__)
                break

    @classmethod
    def start(
        cls, stream: TextIO, level: int = logging.INFO, log_format: str = "console"
    ) -> LogOutput:
        """Route every log line of this process through a writer thread to ``stream``."""
        output = cls(stream, level, log_format)
        output._thread.start()
        cls._current = output
        return output

    def logger(self, name: str) -> Any:
        """A logger ``name`` writing to this output, made once (see :func:`logger`)."""
        bound = self._loggers.get(name)
        if bound is None:
            bound = self._loggers[name] = structlog.get_logger(name).bind()
        return bound

    def stop(self) -> None:
        """Write every queued line, then end the writer thread (at a clean stop)."""
        if LogOutput._current is self:
            LogOutput._current = None
        self._items.put(_STOP)
        self._thread.join()


def logger(name: str) -> Any:
    """The logger ``name``, for lines logged on a hot path (a worker's per-call lines).

    ``structlog.get_logger()`` gives a lazy proxy that makes a new bound logger at every call
    (its loggers are not cached: ``cache_logger_on_first_use`` stays off, as a logger made
    before :meth:`LogOutput.start` would keep writing where structlog wrote before). Here the
    running output's own logger for ``name`` is made once and kept by that output; before any
    output is started, structlog's proxy. Ask again at each use (it is a dictionary lookup):
    a logger kept across outputs would write to a stopped one."""
    output = LogOutput._current
    return structlog.get_logger(name) if output is None else output.logger(name)
