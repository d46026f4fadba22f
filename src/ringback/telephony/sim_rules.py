"""The simulator's number rules: what the "callee" of a number does (rings for how long,
answers or fails with which SIP code, talks for how long, presses which keys), read from the
built-in ``sim_defaults.toml`` and an optional rules file of the operator's, tried first.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

#: keys a callee can press; the script may also hold DTMF_PAUSE
DTMF_KEYS = frozenset("0123456789*#ABCD")
#: in a dtmf script: the callee stops pressing, the current collection times out
DTMF_PAUSE = ","
MAX_SECONDS = 86_400.0
BUILTIN_RULES_NAME = "ringback/telephony/sim_defaults.toml"

_MATCHERS = ("suffix", "prefix", "number", "pattern")
_SETTINGS = ("ring_seconds", "talk_seconds", "dtmf", "fax", "answered_by", "beep_after_s")
#: who answers a number, as answering-machine detection finds (the ``amd`` task policy)
ANSWERED_BY = ("human", "machine", "unknown")
#: what the fax machine at a number does when SendFax or ReceiveFax runs
FAX_MODES = ("answers", "silent", "drops", "incompatible")
_RULE_KEYS = frozenset((*_MATCHERS, *_SETTINGS, "sip_code"))
_TOP_KEYS = frozenset(("defaults", "rules"))


class SimConfigError(Exception):
    """A simulator rules file is unreadable or wrong; says which file, which rule and why."""

    def __init__(self, source: str, problem: str, rule_number: int | None = None) -> None:
        where = source if rule_number is None else f"{source}: [[rules]] #{rule_number}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.problem = problem
        self.rule_number = rule_number  # 1-based, in file order


@dataclass(frozen=True, slots=True)
class SimDefaults:
    ring_seconds: float = 1.0
    talk_seconds: float = 3.0
    dtmf: str = ""
    fax: str = "answers"
    answered_by: str = "human"
    beep_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class SimRule:
    """One ``[[rules]]`` entry: a matcher and what a matching number does."""

    matcher: str  # suffix | prefix | number | pattern
    value: str
    sip_code: int | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    dtmf: str | None = None
    fax: str | None = None
    answered_by: str | None = None
    beep_after_s: float | None = None
    regex: re.Pattern[str] | None = field(default=None, compare=False)

    def matches(self, number: str) -> bool:
        if self.matcher == "suffix":
            return number.endswith(self.value)
        if self.matcher == "prefix":
            return number.startswith(self.value)
        if self.matcher == "number":
            return number == self.value
        return self.regex is not None and self.regex.fullmatch(number) is not None


@dataclass(frozen=True, slots=True)
class CalleeBehaviour:
    """What the callee of one leg does, all rules applied."""

    sip_code: int  # 200: answers
    ring_seconds: float
    talk_seconds: float
    dtmf: str
    fax: str = "answers"  # one of FAX_MODES
    answered_by: str = "human"  # one of ANSWERED_BY
    beep_after_s: float | None = None  # a machine's beep ends this long after answer


@dataclass(frozen=True, slots=True)
class SimRules:
    defaults: SimDefaults = field(default_factory=SimDefaults)
    rules: tuple[SimRule, ...] = ()

    def behaviour_for(self, number: str) -> CalleeBehaviour:
        """The first rule matching ``number`` decides; what it leaves out comes from defaults."""
        dialled = _dialled_part(number)
        defaults = self.defaults
        for rule in self.rules:
            if rule.matches(dialled):
                return CalleeBehaviour(
                    sip_code=rule.sip_code if rule.sip_code is not None else 200,
                    ring_seconds=_first(rule.ring_seconds, defaults.ring_seconds),
                    talk_seconds=_first(rule.talk_seconds, defaults.talk_seconds),
                    dtmf=rule.dtmf if rule.dtmf is not None else defaults.dtmf,
                    fax=rule.fax if rule.fax is not None else defaults.fax,
                    answered_by=_first_text(rule.answered_by, defaults.answered_by),
                    beep_after_s=_first_or_none(rule.beep_after_s, defaults.beep_after_s),
                )
        return CalleeBehaviour(
            200, defaults.ring_seconds, defaults.talk_seconds, defaults.dtmf, defaults.fax,
            defaults.answered_by, defaults.beep_after_s,
        )  # fmt: skip


def load_sim_rules(path: Path | None) -> SimRules:
    """The built-in rules, with the rules file at ``path`` (if any) put in front of them.

    The file's ``[defaults]`` replace the built-in defaults key by key; its ``[[rules]]`` are
    tried before the built-in ones.
    """
    builtin = _builtin_rules()
    if path is None:
        return builtin
    source = str(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SimConfigError(source, f"cannot read the file: {exc.strerror or exc}") from exc
    defaults, rules = _parse_rules_document(text, source)
    return SimRules(
        defaults=replace(builtin.defaults, **defaults),
        rules=(*rules, *builtin.rules),
    )


@cache
def _builtin_rules() -> SimRules:
    data = resources.files("ringback.telephony").joinpath("sim_defaults.toml").read_bytes()
    defaults, rules = _parse_rules_document(data, BUILTIN_RULES_NAME)
    return SimRules(defaults=replace(SimDefaults(), **defaults), rules=rules)


def _parse_rules_document(data: bytes, source: str) -> tuple[dict[str, Any], tuple[SimRule, ...]]:
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SimConfigError(source, f"not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SimConfigError(source, f"not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise SimConfigError(
            source, f"unknown key(s) {', '.join(unknown)} (expected [defaults] and [[rules]])"
        )
    raw_defaults = document.get("defaults", {})
    if not isinstance(raw_defaults, dict):
        raise SimConfigError(source, "[defaults] must be a table")
    try:
        defaults = _parse_settings(raw_defaults, frozenset(_SETTINGS), "[defaults]")
    except ValueError as exc:
        raise SimConfigError(source, str(exc)) from exc
    raw_rules = document.get("rules", [])
    if not isinstance(raw_rules, list):
        raise SimConfigError(source, "rules must be an array of tables ([[rules]])")
    rules = []
    for number, raw in enumerate(raw_rules, start=1):
        try:
            rules.append(_parse_rule(raw))
        except ValueError as exc:
            raise SimConfigError(source, str(exc), number) from exc
    return defaults, tuple(rules)


def _parse_rule(raw: Any) -> SimRule:
    if not isinstance(raw, dict):
        raise ValueError("a rule must be a table")
    matchers = [key for key in _MATCHERS if key in raw]
    if len(matchers) != 1:
        found = ", ".join(matchers) if matchers else "none"
        raise ValueError(f"a rule needs exactly one of {', '.join(_MATCHERS)} (found {found})")
    matcher = matchers[0]
    value = raw[matcher]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{matcher} must be a non-empty string")
    regex = None
    if matcher == "pattern":
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} is not a valid regular expression: {exc}") from exc
    settings = {key: val for key, val in raw.items() if key != matcher}
    parsed = _parse_settings(settings, _RULE_KEYS - set(_MATCHERS), "a rule")
    return SimRule(matcher=matcher, value=value, regex=regex, **parsed)


def _parse_settings(raw: dict[str, Any], allowed: frozenset[str], where: str) -> dict[str, Any]:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} in {where} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "sip_code":
            parsed[key] = _sip_code(value)
        elif key == "dtmf":
            parsed[key] = _dtmf_script(value)
        elif key == "fax":
            parsed[key] = _fax_mode(value)
        elif key == "answered_by":
            if value not in ANSWERED_BY:
                raise ValueError(
                    f"answered_by must be one of {', '.join(ANSWERED_BY)}, not {value!r}"
                )
            parsed[key] = str(value)
        else:
            parsed[key] = _seconds(key, value)
    return parsed


def _sip_code(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"sip_code must be an integer, not {value!r}")
    if value != 200 and not 400 <= value <= 699:
        raise ValueError(f"sip_code {value} is not 200 (answer) or a failure code from 400 to 699")
    return value


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number of seconds, not {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0.0 <= seconds <= MAX_SECONDS:
        raise ValueError(f"{key} must be between 0 and {MAX_SECONDS:g} seconds, not {value!r}")
    return seconds


def _dtmf_script(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"dtmf must be a string, not {value!r}")
    script = value.upper()
    bad = sorted({key for key in script if key not in DTMF_KEYS and key != DTMF_PAUSE})
    if bad:
        raise ValueError(f"dtmf {value!r} holds {''.join(bad)!r}: use 0-9 * # A-D and ','")
    return script


def _fax_mode(value: Any) -> str:
    if value not in FAX_MODES:
        raise ValueError(f"fax must be one of {', '.join(FAX_MODES)}, not {value!r}")
    return str(value)


def _first(value: float | None, default: float) -> float:
    return default if value is None else value


def _first_or_none(value: float | None, default: float | None) -> float | None:
    return default if value is None else value


def _first_text(value: str | None, default: str) -> str:
    return default if value is None else value


def _dialled_part(number: str) -> str:
    """What the rules match: the number, or the user part of a ``sip:user@host`` URI."""
    if number.startswith(("sip:", "sips:")):
        return number.split(":", 1)[1].split("@", 1)[0]
    return number
