"""A response model's JSON built from values it would accept, without validating them.

``json_dumper(Model)(values)`` equals ``Model.model_validate(values).model_dump(mode="json",
by_alias=True)`` for ``values`` the model accepts as they are (the API shows data it stored
after validating it): the model's fields in its order under their (serialization) aliases, a
missing field's default, a float field's integer as a float (as pydantic's lax mode makes it),
nested models dumped the same way (one, a list of them, or a union of them: the member whose
fields the values fit, as a model refusing extra fields selects itself), ``exclude_if``
honoured and unknown keys dropped. Nothing else is checked or converted (a missing required
field is still refused). What it saves is the validation (for a task: one model per leg,
per fax, per detection, the job's data and options); the values are built either way.
Models with serializers or computed fields are refused: the plan could not follow them.
``tests/api/test_task_json.py`` checks the equality over generated tasks.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Mapping
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

_Convert = Callable[[Any], Any]
_MISSING: Any = object()


class JsonDumper:
    """Dumps one model's JSON from values it accepts (see the module): a plan of its fields."""

    __slots__ = (
        "converts", "defaults", "excludes", "fields", "keys", "made", "name", "required",
        "sources",
    )  # fmt: skip

    def __init__(self, model: type[BaseModel]) -> None:
        decorators = model.__pydantic_decorators__
        if decorators.field_serializers or decorators.model_serializers:
            raise TypeError(f"{model.__name__} has serializers")
        if model.model_computed_fields:
            raise TypeError(f"{model.__name__} has computed fields")
        self.name = model.__name__
        plan: list[tuple[str, str, Any]] = []  # output key, input key, default
        self.made: list[tuple[str, Callable[[], Any]]] = []  # defaults made afresh each time
        self.converts: list[tuple[str, _Convert]] = []
        self.excludes: list[tuple[str, Callable[[Any], bool]]] = []
        required = set()
        for name, field in model.model_fields.items():
            if field.exclude is True:
                continue
            key = field.serialization_alias or field.alias or name
            given = field.validation_alias if isinstance(field.validation_alias, str) else None
            source = given or field.alias or name
            default, make = _default(field)
            if make is not None:
                self.made.append((key, make))
            elif default is _MISSING:
                required.add(source)
            plan.append((key, source, default))
            convert = _converter(field.annotation)
            if convert is not None:
                self.converts.append((key, convert))
            if field.exclude_if is not None:
                self.excludes.append((key, field.exclude_if))
        self.required = frozenset(required)
        self.keys = tuple(key for key, _, _ in plan)
        self.sources = tuple(source for _, source, _ in plan)
        self.defaults = tuple(default for _, _, default in plan)
        self.fields = frozenset(self.sources)

    def __call__(self, values: Mapping[str, Any]) -> dict[str, Any]:
        if not self.required <= values.keys():
            missing = ", ".join(sorted(self.required - values.keys()))
            raise ValueError(f"{self.name}: missing {missing}")
        out = dict(zip(self.keys, map(values.get, self.sources, self.defaults), strict=True))
        for key, make in self.made:
            if out[key] is _MISSING:
                out[key] = make()
        for key, convert in self.converts:
            value = out[key]
            if value is not None:
                out[key] = convert(value)
        for key, excluded in self.excludes:
            if excluded(out[key]):
                del out[key]
        return out


@cache
def json_dumper(model: type[BaseModel]) -> JsonDumper:
    """The dumper of ``model``'s JSON from values it accepts (one per model)."""
    return JsonDumper(model)


def _default(field: FieldInfo) -> tuple[Any, Callable[[], Any] | None]:
    """The field's default value (``_MISSING``: required), or the function making it."""
    factory = field.default_factory
    if factory is not None:
        if field.default_factory_takes_validated_data:
            raise TypeError("no plan for a default factory taking the data")
        return _MISSING, factory  # type: ignore[return-value]
    if field.is_required():
        return _MISSING, None
    default = field.default
    if isinstance(default, list | dict | set):  # pydantic copies a mutable default too
        return _MISSING, lambda: copy.deepcopy(default)
    return default, None


def _converter(annotation: Any) -> _Convert | None:
    """How a value of this type changes between validation and dump (None: it does not)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _converter(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _converter(members[0])
        if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
            return _union([json_dumper(m) for m in members])
        if any(_converter(m) is not None for m in members):
            raise TypeError(f"no plan for the union {annotation}")
        return None
    if annotation is float:
        return float
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return json_dumper(annotation)
    if origin is list:
        item = _converter(get_args(annotation)[0])
        return None if item is None else lambda values: [item(value) for value in values]
    if origin in (dict, tuple, set, frozenset) and any(_converter(a) for a in get_args(annotation)):
        raise TypeError(f"no plan for {annotation}")
    return None


def _union(dumpers: list[JsonDumper]) -> _Convert:
    """A union of models: of those whose required fields the values have, the first whose
    fields hold most of their keys (pydantic's smart mode, for values that validate)."""

    def dump(values: Mapping[str, Any]) -> dict[str, Any]:
        keys = values.keys()
        fits = [d for d in dumpers if d.required <= keys]
        if not fits:
            raise ValueError("the values fit no member of the union")
        return max(fits, key=lambda d: len(d.fields & keys))(values)

    return dump
