"""IVR elements that steer the run: Answer, Hangup, If, Cond, Switch, Section, GoTo, Redirect,
SetErrorHandler.

Each handler takes the :class:`~ringback.ivr.interpret.Interpreter` and the element's node;
jumps raise :class:`~ringback.ivr.run.Continue` (through
:meth:`~ringback.ivr.interpret.Interpreter.follow` for targets), the end of the call
:class:`~ringback.ivr.run.Stop`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ringback.ivr.expr import render_value
from ringback.ivr.parse import Node
from ringback.ivr.run import Continue, Stop

if TYPE_CHECKING:
    from ringback.ivr.interpret import Interpreter

HANGUP_CAUSES: Mapping[str | None, str] = {
    None: "NORMAL_CLEARING",
    "rejected": "CALL_REJECTED",
    "busy": "USER_BUSY",
}


async def answer(ivr: Interpreter, node: Node) -> None:
    if ivr.call.record.answered_at is not None:
        ivr.trace(node.line, "Answer", "already answered")
        return
    outcome = await ivr.call.wait_answer()
    ivr.trace(node.line, "Answer", f"answered ({outcome.value})")


async def hangup(ivr: Interpreter, node: Node) -> None:
    reason = node.attrs.get("reason")
    ivr.trace(node.line, "Hangup", reason or "normal")
    ivr.result.hung_up_by = "Hangup"
    await ivr.call.hangup(HANGUP_CAUSES[reason])
    raise Stop


async def if_(ivr: Interpreter, node: Node) -> None:
    truth = bool(ivr.evaluate(node, node.attrs["expr"]))
    ivr.trace(node.line, "If", f"{node.attrs['expr']} -> {str(truth).lower()}")
    wanted = "Then" if truth else "Else"
    for child in node.children:
        if child.tag == wanted:
            await ivr.block(child.children)


async def cond(ivr: Interpreter, node: Node) -> None:
    for child in node.children:
        if child.tag == "Clause":
            if bool(ivr.evaluate(child, child.attrs["expr"])):
                ivr.trace(child.line, "Cond", f"clause {child.attrs['expr']} is true")
                await ivr.block(child.children)
                return
        else:
            ivr.trace(child.line, "Cond", "no clause is true: Else")
            await ivr.block(child.children)
            return
    ivr.trace(node.line, "Cond", "no clause is true")


async def switch(ivr: Interpreter, node: Node) -> None:
    if "expr" in node.attrs:
        value = ivr.evaluate(node, node.attrs["expr"])
    else:
        value = ivr.result.variables.get(node.attrs["var"])
    text = render_value(value)
    for child in node.children:
        if child.tag == "Default" or child.attrs["val"] == text:
            which = "Default" if child.tag == "Default" else f"Case {text!r}"
            ivr.trace(node.line, "Switch", f"{text!r}: {which}")
            await ivr.block(child.children)
            return
    ivr.trace(node.line, "Switch", f"{text!r}: no Case")


async def section(ivr: Interpreter, node: Node) -> None:
    ivr.trace(node.line, "Section", node.attrs["name"])
    await ivr.block(node.children)


async def goto(ivr: Interpreter, node: Node) -> None:
    ivr.count_jump(node.line)
    section = node.text or ""
    ivr.trace(node.line, "GoTo", section)
    raise Continue(ivr.document, ivr.document.sections[section], ivr.result.answer_url)


async def redirect(ivr: Interpreter, node: Node) -> None:
    targets = [part.strip() for part in (node.text or "").split(",") if part.strip()]
    raise await ivr.follow(node, targets, "Redirect", method=node.attrs["method"])


async def set_error_handler(ivr: Interpreter, node: Node) -> None:
    text = ivr.render(node, node.text or "")
    targets = tuple(part.strip() for part in text.split(",") if part.strip())
    if not targets:
        raise ivr.fail(node, "The error handler names no target")
    ivr.error_handler = targets
    ivr.trace(node.line, "SetErrorHandler", ", ".join(targets))
