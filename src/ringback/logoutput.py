"""Where the service's log lines go and how they look: one configuration for every logger.

A log call (structlog or stdlib ``logging``: uvicorn, the SIP stack, libraries) only puts the
record on a queue (``QueueHandler``); a ``QueueListener`` thread formats and writes it to
stderr. A full stderr pipe or a slow terminal then holds up that thread, not the event loop and
the calls in progress.

Every line has the same shape whoever logged it — time (UTC, ISO 8601), level, logger, the
event and its fields — rendered by structlog's ``ProcessorFormatter`` in the writer thread:

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

import copy
import logging
import os
import queue
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor

LOG_FORMATS = ("console", "json")
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR}  # fmt: skip


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


class _Enqueue(QueueHandler):
    """Queues each record as it is; formats nothing here (the writer thread formats)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return copy.copy(record)


def _renderer(log_format: str, stream: TextIO) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer(serializer=_json)
    return structlog.dev.ConsoleRenderer(colors=stream.isatty())


def _json(event: Any, **_kw: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def _record_time(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """A stdlib record's own time (formatting happens later, in the writer thread)."""
    record = event.get("_record")
    if record is not None:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat()
        event["timestamp"] = stamp.replace("+00:00", "Z")
    return event


def _head_first(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """JSON lines start with what a reader scans for: time, level, logger, event."""
    head = {key: event.pop(key) for key in _HEAD if key in event}
    return {**head, **event}


_HEAD = ("timestamp", "level", "logger", "event")


class LogOutput:
    """The queue, its writer thread, and the one format of every logger."""

    _current: LogOutput | None = None

    def __init__(self, stream: TextIO, level: int, log_format: str) -> None:
        self._records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        named: list[Processor] = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name]
        sink = logging.StreamHandler(stream)
        sink.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[*named, _record_time],
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,  # a stdlib record's traceback
                    *([_head_first] if log_format == "json" else []),
                    _renderer(log_format, stream),
                ],
            )
        )
        self._listener = QueueListener(self._records, sink)
        root = logging.getLogger()
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        root.addHandler(_Enqueue(self._records))
        root.setLevel(level)
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                *named,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                # the traceback is taken here, in the thread that caught the exception
                structlog.processors.format_exc_info,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            # the event goes to the stdlib logger of the same name, then to the queue
            logger_factory=structlog.stdlib.LoggerFactory(),
        )

    @classmethod
    def start(
        cls, stream: TextIO, level: int = logging.INFO, log_format: str = "console"
    ) -> LogOutput:
        """Route every log line of this process through a writer thread to ``stream``."""
        output = cls(stream, level, log_format)
        output._listener.start()
        cls._current = output
        return output

    def stop(self) -> None:
        """Write every queued line, then end the writer thread (at a clean stop)."""
        if LogOutput._current is self:
            LogOutput._current = None
        self._listener.stop()
