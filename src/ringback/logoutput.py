"""Where the service's log lines go: stderr, written by a thread, never by the event loop.

A log call (structlog or stdlib ``logging``) only puts the record on a queue
(``QueueHandler``); a ``QueueListener`` thread formats and writes it. A full stderr pipe or a
slow terminal then holds up that thread, not the event loop and the calls in progress. The
format is unchanged: structlog's console renderer for structlog lines, the message (and any
traceback) for stdlib lines, and loggers that have handlers of their own (uvicorn's) keep them
— :meth:`LogOutput.take_over` puts them behind the same queue.

    output = LogOutput.start(sys.stderr)
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
import queue
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

import structlog

_SINKS = "ringback_sinks"  # the record attribute naming the handlers that write it


class _Enqueue(QueueHandler):
    """Queues each record with the handlers that are to write it; formats nothing here (the
    writer's handlers format, some of them from the record's ``args``)."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord], sinks: list[logging.Handler]):
        super().__init__(records)
        self.sinks = sinks

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        setattr(record, _SINKS, self.sinks)
        return record


class _Dispatch(logging.Handler):
    """In the writer thread: hands each record to the handlers it was queued for."""

    def emit(self, record: logging.LogRecord) -> None:
        for sink in getattr(record, _SINKS, ()):
            if record.levelno >= sink.level:
                sink.handle(record)


class LogOutput:
    """The queue, its writer thread, and the loggers that write through it."""

    _current: LogOutput | None = None

    def __init__(self, stream: TextIO, level: int) -> None:
        self._records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = QueueListener(self._records, _Dispatch())
        sink = logging.StreamHandler(stream)
        sink.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger()
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        root.addHandler(_Enqueue(self._records, [sink]))
        root.setLevel(level)
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.dev.ConsoleRenderer(colors=stream.isatty()),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            # the rendered line goes to the stdlib logger of the same name, then to the queue
            logger_factory=structlog.stdlib.LoggerFactory(),
        )

    @classmethod
    def start(cls, stream: TextIO, level: int = logging.INFO) -> LogOutput:
        """Route every log line of this process through a writer thread to ``stream``."""
        output = cls(stream, level)
        output._listener.start()
        cls._current = output
        return output

    def stop(self) -> None:
        """Write every queued line, then end the writer thread (at a clean stop)."""
        if LogOutput._current is self:
            LogOutput._current = None
        self._listener.stop()

    @classmethod
    def take_over(cls, *names: str) -> None:
        """Put the handlers the named loggers have (uvicorn's) behind the queue, unchanged;
        nothing when no :class:`LogOutput` runs (a test building the API by itself)."""
        output = cls._current
        if output is None:
            return
        for name in names:
            logger = logging.getLogger(name)
            sinks = [h for h in logger.handlers if not isinstance(h, _Enqueue)]
            if not sinks:
                continue
            for handler in sinks:
                logger.removeHandler(handler)
            logger.addHandler(_Enqueue(output._records, sinks))
