"""Campaign rules of a client: frequency caps per callee and allowed caller ids
(``ringback.domain.frequency_caps``), read and replaced, and the caller-id check of intake.

Both rules are enforced by the engine in the store's write of every call leg, right before it
is dialled (``store/campaign_rules.py``). Intake refuses, in addition, a task or job that names
a caller id off the list (:func:`caller_id_problems`): the mistake is reported when it is made,
not when the call would have been placed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ringback.clock import Clock
from ringback.domain.frequency_caps import (
    MAX_CALLER_IDS,
    CallerIdEntry,
    CapRule,
    caller_id_allowed,
    check_rule,
    check_rules,
    not_allowed_message,
    parse_caller_id,
)
from ringback.domain.rows import InvalidInput
from ringback.store import Store

if TYPE_CHECKING:  # the intake's models: annotations only
    from ringback.domain.tasks import CallbackTask, Job


class CampaignRuleService:
    """A client's frequency caps and allowed caller ids. Every method takes the client's id."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def frequency_caps(self, client_id: int) -> list[CapRule]:
        return await self.store.frequency_caps(client_id)

    async def set_frequency_caps(
        self, client_id: int, rules: Sequence[tuple[int, int]], *, field: str = "rules"
    ) -> list[CapRule]:
        """Replace the client's caps by ``rules`` ((max_calls, window_seconds) each; none: no
        cap). InvalidInput names the rule (``field``, index) that is wrong."""
        checked, details = [], []
        for index, (max_calls, window_seconds) in enumerate(rules):
            try:
                checked.append(check_rule(max_calls, window_seconds))
            except ValueError as exc:
                details.append({"loc": ["body", field, index], "msg": str(exc)})
        try:
            ordered = check_rules(checked)
        except ValueError as exc:
            details.append({"loc": ["body", field], "msg": str(exc)})
        if details:
            raise InvalidInput(f"{len(details)} problem(s): {field}; nothing was changed", details)
        await self.store.set_frequency_caps(client_id, ordered, self.clock.now())
        return ordered

    async def caller_ids(self, client_id: int) -> list[CallerIdEntry]:
        return await self.store.caller_ids(client_id)

    async def set_caller_ids(
        self, client_id: int, numbers: Sequence[str], *, field: str = "caller_ids"
    ) -> list[CallerIdEntry]:
        """Replace the client's allowed caller ids by ``numbers`` (numbers, or prefixes ending
        in ``*``; none: any caller id). InvalidInput names each bad one by its index."""
        entries, details = [], []
        for index, text in enumerate(numbers):
            try:
                entries.append(parse_caller_id(text))
            except ValueError as exc:
                details.append({"loc": ["body", field, index], "msg": str(exc)})
        if len(numbers) > MAX_CALLER_IDS:
            details.append({"loc": ["body", field], "msg": f"at most {MAX_CALLER_IDS} entries"})
        if details:
            raise InvalidInput(f"{len(details)} problem(s): {field}; nothing was changed", details)
        await self.store.set_caller_ids(client_id, entries, self.clock.now())
        return await self.store.caller_ids(client_id)


def caller_id_problems(
    allowed: Sequence[CallerIdEntry], items: Sequence[tuple[list[Any], str | None]]
) -> list[dict[str, Any]]:
    """The intake problems of ``items`` (each a field's location and the caller id it names,
    None: names none) against the client's ``allowed`` list (empty: any)."""
    if not allowed:
        return []
    return [
        {"loc": loc, "msg": not_allowed_message(caller)}
        for loc, caller in items
        if caller and not caller_id_allowed(allowed, caller)
    ]


def job_caller_ids(index: int, job: Job) -> list[tuple[list[Any], str | None]]:
    """The caller id an AddJob job names: ``data.calling_number``."""
    return [([index, "data", "calling_number"], job.data.calling_number)]


def callback_caller_ids(
    index: int | None, spec: CallbackTask
) -> list[tuple[list[Any], str | None]]:
    """The caller ids a callback task names: ``callback_params.caller_id_number`` and each of
    ``attempts_src_ani_numbers`` / ``attempts_dst_ani_numbers``."""
    base: list[Any] = [] if index is None else [index]
    found: list[tuple[list[Any], str | None]] = [
        ([*base, "callback_params", "caller_id_number"], spec.callback_params.caller_id_number)
    ]
    for name in ("attempts_src_ani_numbers", "attempts_dst_ani_numbers"):
        found.extend(([*base, name, k], n) for k, n in enumerate(getattr(spec, name)))
    return found


async def check_caller_ids(
    store: Store, client_id: int, items: Sequence[tuple[list[Any], str | None]]
) -> None:
    """InvalidInput naming each field whose caller id is not on the client's list."""
    raise_caller_id_problems(await store.caller_ids(client_id), items)


def raise_caller_id_problems(
    allowed: Sequence[CallerIdEntry], items: Sequence[tuple[list[Any], str | None]]
) -> None:
    """InvalidInput naming each field of ``items`` whose caller id ``allowed`` refuses."""
    details = caller_id_problems(allowed, items)
    if details:
        names = {next(p for p in reversed(d["loc"]) if isinstance(p, str)) for d in details}
        if len(details) == 1:  # one line says it all (the CLI prints the message only)
            [name] = names
            raise InvalidInput(f"{name}: {details[0]['msg']}; nothing was added", details)
        fields = ", ".join(sorted(names))
        raise InvalidInput(f"{len(details)} problem(s): {fields}; nothing was added", details)
