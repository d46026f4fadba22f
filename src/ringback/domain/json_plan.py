"""A JSON shape as plain data: which keys, in which order, from which input keys, with which
defaults and conversions. :func:`ringback.api.fast_dump.json_dumper` reads one from a
response model (pydantic); this module only applies it, so a process can shape a model's JSON
without importing pydantic (a worker delivering webhooks that carry a task: the plan is
written out once, ``api/task_plan.py``, and a test checks it is the model's).

A plan's ``repr`` is the Python that rebuilds it (every part is a frozen dataclass of plain
values), which is how ``api/task_plan.py`` is written.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class _Missing:
    """The default of a required field (and of one made afresh each time)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class AsFloat:
    """A float field: an integer becomes a float (as pydantic's lax mode makes it)."""

    def __call__(self, value: Any) -> Any:
        return float(value)


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list whose items are converted."""

    item: Any  # a converter

    def __call__(self, values: Any) -> Any:
        item = self.item
        return [item(value) for value in values]


@dataclass(frozen=True, slots=True)
class UnionOf:
    """A union of models: of those whose required fields the values have, the first whose
    fields hold most of their keys (pydantic's smart mode, for values that validate)."""

    plans: tuple[JsonPlan, ...]

    def __call__(self, values: Mapping[str, Any]) -> dict[str, Any]:
        keys = values.keys()
        fits = [plan for plan in self.plans if plan.required <= keys]
        if not fits:
            raise ValueError("the values fit no member of the union")
        return max(fits, key=lambda plan: len(plan.fields & keys))(values)


@dataclass(frozen=True, slots=True)
class Equals:
    """A field left out when its value equals ``value`` (a model's ``exclude_if``)."""

    value: Any

    def __call__(self, value: Any) -> bool:
        return bool(value == self.value)


@dataclass(frozen=True, slots=True, repr=False)
class JsonPlan:
    """One model's JSON: ``keys`` (output, in order) from ``sources`` (input keys; empty:
    the keys themselves) with ``defaults`` (``MISSING``: none, or one in ``made``,
    deep-copied each time)."""

    name: str
    keys: tuple[str, ...]
    defaults: tuple[Any, ...]
    made: tuple[tuple[str, Any], ...]  # (key, default copied for each dump)
    converts: tuple[tuple[str, Any], ...]  # (key, AsFloat / JsonPlan / ListOf / UnionOf)
    excludes: tuple[tuple[str, Equals], ...]
    required: frozenset[str]
    sources: tuple[str, ...] = ()
    fields: frozenset[str] = field(init=False, repr=False, compare=False)  # ``sources``' keys

    def __post_init__(self) -> None:
        if not self.sources:
            object.__setattr__(self, "sources", self.keys)
        object.__setattr__(self, "fields", frozenset(self.sources))

    def __repr__(self) -> str:  # the same text on every run: sets sorted, sources if not keys
        parts = []
        for name, spec in self.__dataclass_fields__.items():
            value = getattr(self, name)
            if not spec.repr or (name == "sources" and value == self.keys):
                continue
            if isinstance(value, frozenset):
                parts.append(f"{name}=frozenset({sorted(value)!r})")
            else:
                parts.append(f"{name}={value!r}")
        return f"JsonPlan({', '.join(parts)})"

    def __call__(self, values: Mapping[str, Any]) -> dict[str, Any]:
        if not self.required <= values.keys():
            missing = ", ".join(sorted(self.required - values.keys()))
            raise ValueError(f"{self.name}: missing {missing}")
        out = dict(zip(self.keys, map(values.get, self.sources, self.defaults), strict=True))
        for key, default in self.made:
            if out[key] is MISSING:
                out[key] = copy.deepcopy(default)
        for key, convert in self.converts:
            value = out[key]
            if value is not None:
                out[key] = convert(value)
        for key, excluded in self.excludes:
            if excluded(out[key]):
                del out[key]
        return out
