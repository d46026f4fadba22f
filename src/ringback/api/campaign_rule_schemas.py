"""Request and response bodies of a client's campaign rules: frequency caps
(``/frequency_caps/``) and allowed caller ids (``/caller_ids/``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ringback.domain.frequency_caps import (
    MAX_CALLER_IDS,
    MAX_CALLS,
    MAX_RULES,
    MAX_WINDOW_SECONDS,
    CallerIdEntry,
    CapRule,
)

_CAPS_EXAMPLE: dict[str, Any] = {"rules": [{"max_calls": 1, "window_seconds": 3600},
                           {"max_calls": 3, "window_seconds": 86400}]}  # fmt: skip
_IDS_EXAMPLE: dict[str, Any] = {"caller_ids": ["+33184800000", "+3318480*"]}


class CapRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"max_calls": 3, "window_seconds": 86400}]})  # fmt: skip

    max_calls: int = Field(
        description=f"at most this many calls to one number (1 to {MAX_CALLS}) ...",
        examples=[3],
    )
    window_seconds: int = Field(
        description=f"... per this many seconds (1 to {MAX_WINDOW_SECONDS}: 366 days), "
        "counted back from the moment of the call",
        examples=[86400],
    )


class FrequencyCapsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CAPS_EXAMPLE]})

    rules: list[CapRuleIn] = Field(
        max_length=MAX_RULES,
        description=f"the client's caps, replacing the ones it had (0 to {MAX_RULES}, one per "
        "window; empty: no cap). A call to a number must fit every rule, counting the calls "
        "already placed to it from any queue; one that would not waits, spending no try",
        examples=[_CAPS_EXAMPLE["rules"]],
    )


class CapRuleOut(BaseModel):
    max_calls: int = Field(description="at most this many calls to one number ...")
    window_seconds: int = Field(description="... per this many seconds")
    text: str = Field(description="the rule in short, as the CLI takes it", examples=["3/1d"])

    @classmethod
    def of(cls, rule: CapRule) -> CapRuleOut:
        text = rule.describe().replace(" per ", "/")
        return cls(max_calls=rule.max_calls, window_seconds=rule.window_seconds, text=text)


class FrequencyCapsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "rules": [{"max_calls": 1, "window_seconds": 3600, "text": "1/1h"},
                  {"max_calls": 3, "window_seconds": 86400, "text": "3/1d"}]}]})  # fmt: skip

    rules: list[CapRuleOut] = Field(description="the client's caps, shortest window first")

    @classmethod
    def of(cls, rules: list[CapRule]) -> FrequencyCapsOut:
        return cls(rules=[CapRuleOut.of(r) for r in rules])


class CallerIdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_IDS_EXAMPLE]})

    caller_ids: list[str] = Field(
        max_length=MAX_CALLER_IDS,
        description=f"the caller ids the client's calls may show, replacing its list (0 to "
        f"{MAX_CALLER_IDS}; numbers, or prefixes ending in '*'; empty: any caller id). A task "
        "or job naming another one is refused (422 naming the field)",
        examples=[_IDS_EXAMPLE["caller_ids"]],
    )


class CallerIdsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_IDS_EXAMPLE]})

    caller_ids: list[str] = Field(
        description="the allowed caller ids (a prefix ends in '*'); empty: any caller id"
    )

    @classmethod
    def of(cls, entries: list[CallerIdEntry]) -> CallerIdsOut:
        return cls(caller_ids=[e.text() for e in entries])
