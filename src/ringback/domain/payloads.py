"""A stored task's payload as the dialler reads it: what each kind of task dials, read without
the intake's models.

The intake (:mod:`ringback.domain.tasks`, pydantic) validated the payload when the task was
added or replaced; the store keeps what it produced. The dialler reads back only the fields it
dials with, checks their shape and the number rule again (:func:`check_number`, the same
function the intake applies), and ignores fields it does not use, so that a rule or field
added since never makes an older task undialable. A payload that cannot be dialled raises
:class:`PayloadError`, naming every field at fault; the task then fails without a call.

Reading here instead of through the models keeps pydantic (~8 MiB) out of a worker
(docs/design-notes.md, "A worker without the intake's models");
``tests/domain/test_payloads.py`` checks that every payload the intake stores reads back to
the same values the models give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ringback.domain.amd import AMD_POLICIES
from ringback.domain.task_rules import check_number

T = TypeVar("T")
IVR_SOURCES = ("inline", "storage", "url")


class PayloadError(ValueError):
    """The payload cannot be dialled: one ``field: problem`` per fault, joined by ``; ``."""


@dataclass(frozen=True, slots=True)
class MsgCallPayload:
    """A msg_call: who to call, from which caller id, what to play."""

    calling_number: str
    called_number: str
    audio_file: str
    amd: str = "off"


@dataclass(frozen=True, slots=True)
class IvrCallPayload:
    """An ivr_call: who to call and the IVR document (inline, a storage name or answer URLs)."""

    calling_number: str
    called_number: str
    ivr_type: str
    ivr_data: str
    amd: str = "off"


@dataclass(frozen=True, slots=True)
class CallbackPayload:
    """A callback: the A numbers rung first, B, caller ids per attempt, digits for B."""

    a_number: str
    b_number: str
    extended_a_numbers: tuple[str, ...] = ()
    caller_id_name: str | None = None
    caller_id_number: str | None = None
    dst_dtmf: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    attempts_src_ani_numbers: tuple[str, ...] = ()
    attempts_dst_ani_numbers: tuple[str, ...] = ()


class _Reader:
    """Fields of one mapping read with their checks; every fault collected, then raised."""

    def __init__(self, payload: Any) -> None:
        self.problems: list[str] = []
        self.payload: dict[str, Any] = payload if isinstance(payload, dict) else {}
        if not isinstance(payload, dict):
            self.problems.append("payload: not an object")

    def get(self, path: str, check: Callable[[Any], T], default: Any = ...) -> T:
        """The value at ``path`` (dotted: ``callback_params.dst_dtmf``) checked, or
        ``default`` when it is absent or null; absent without a default is a fault. A value
        that fails its check is a fault, and gives ``default`` (None if it has none)."""
        value: Any = self.payload
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            if default is ...:
                self.problems.append(f"{path}: missing")
                return None  # type: ignore[return-value]
            return default  # type: ignore[no-any-return]
        try:
            return check(value)
        except ValueError as exc:
            self.problems.append(f"{path}: {exc}")
            return None if default is ... else default  # type: ignore[return-value]

    def done(self) -> None:
        if self.problems:
            raise PayloadError("; ".join(self.problems))


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("not a non-empty string")
    return value


def _number(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a phone number")
    return check_number(value)


def _numbers(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("not a list of numbers")
    return tuple(_number(item) for item in value)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    return check


_AMD_POLICY = _one_of(AMD_POLICIES)
_IVR_SOURCE = _one_of(IVR_SOURCES)


def _variables(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("not an object of names and texts")
    return dict(value)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def read_msg_call(payload: Any) -> MsgCallPayload:
    r = _Reader(payload)
    read = MsgCallPayload(
        calling_number=r.get("calling_number", _number),
        called_number=r.get("called_number", _number),
        audio_file=r.get("audio_file", _text),
        amd=r.get("amd", _AMD_POLICY, "off"),
    )
    r.done()
    return read


def read_ivr_call(payload: Any) -> IvrCallPayload:
    r = _Reader(payload)
    xml = r.get("ivr_xml", _object)  # absent or not an object: its fields are not read
    read = IvrCallPayload(
        calling_number=r.get("calling_number", _number),
        called_number=r.get("called_number", _number),
        ivr_type=r.get("ivr_xml.type", _IVR_SOURCE) if xml else "",
        ivr_data=r.get("ivr_xml.data", _text) if xml else "",
        amd=r.get("amd", _AMD_POLICY, "off"),
    )
    r.done()
    return read


def read_callback(payload: Any) -> CallbackPayload:
    r = _Reader(payload)
    r.get("callback_params", _object, {})  # its fields are read below when it is an object
    read = CallbackPayload(
        a_number=r.get("a_number", _number),
        b_number=r.get("b_number", _number),
        extended_a_numbers=r.get("callback_params.extended_a_numbers", _numbers, ()),
        caller_id_name=r.get("callback_params.caller_id_name", _string, None),
        caller_id_number=r.get("callback_params.caller_id_number", _number, None),
        dst_dtmf=r.get("callback_params.dst_dtmf", _text, None),
        variables=r.get("variables", _variables, {}),
        attempts_src_ani_numbers=r.get("attempts_src_ani_numbers", _numbers, ()),
        attempts_dst_ani_numbers=r.get("attempts_dst_ani_numbers", _numbers, ()),
    )
    r.done()
    return read
