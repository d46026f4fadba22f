"""The errors of the IVR engine, worded like the Basix dialect's own error notifications."""

from __future__ import annotations

#: an error message is cut to this many characters (a message may quote a client's value)
MAX_MESSAGE_CHARS = 2_000


class IvrError(Exception):
    """The IVR document is wrong, or one of its elements cannot be executed.

    ``str()`` gives ``line N: <message>`` when the line is known, else the message alone;
    ``message`` is the dialect-style text alone (e.g. what goes into ``Error=`` of a
    ``CallStatus=error`` notification).
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[:MAX_MESSAGE_CHARS]}… ({len(message) - MAX_MESSAGE_CHARS} more)"
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class IvrNotSupported(IvrError):
    """A valid element, or use of one, that ringback cannot run: e.g. a Transfer to a Basix
    voicemail box, or a fax on a backend that cannot fax."""
