"""IVR elements that set variables: Set, GetJSON.

Each handler takes the :class:`~ringback.ivr.interpret.Interpreter` and the element's node;
values go through :meth:`~ringback.ivr.interpret.Interpreter.assign`, within the variable caps.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ringback.client_files import StorageError
from ringback.ivr.expr import render_value
from ringback.ivr.fetch import FetchError
from ringback.ivr.limits import shorten, value_size
from ringback.ivr.parse import Node
from ringback.ivr.run import is_url

if TYPE_CHECKING:
    from ringback.ivr.interpret import Interpreter


async def set_(ivr: Interpreter, node: Node) -> None:
    name = node.attrs["var"]
    if "expr" in node.attrs:
        value = ivr.evaluate(node, node.attrs["expr"])
    else:
        value = ivr.render(node, node.attrs["val"])
    ivr.assign(node, name, value)
    if name not in ivr.result.set_variables:
        ivr.result.set_variables.append(name)
    shown = (
        value if not isinstance(value, str) else shorten(value, ivr.limits.max_trace_detail_chars)
    )
    ivr.trace(node.line, "Set", f"{name} = {shown!r}")


async def get_json(ivr: Interpreter, node: Node) -> None:
    name = node.attrs["var"]
    url = ivr.render(node, node.attrs["url"]).strip()
    method = node.attrs["method"]
    value: Any = None
    problem = ""
    data: bytes | None = None
    if is_url(url):
        if ivr.fetcher is None:
            problem = f"{url}: no HTTP fetcher is available here"
        else:
            form = ivr.form() if method == "POST" else None
            try:
                data = (await ivr.fetcher.fetch([url], method=method, form=form)).body
            except FetchError as exc:
                problem = str(exc)
    elif url.startswith("file://") or "://" not in url:
        path = url.removeprefix("file://")
        if ivr.storage is None or ivr.client_id is None:
            problem = f"{url}: no client storage is available here"
        else:
            try:
                data = ivr.storage.read_bytes(ivr.client_id, path, max_bytes=1024 * 1024)
            except StorageError as exc:
                problem = f"{url}: {exc}"
    else:
        problem = f"{url}: only http, https and file URLs are supported"
    if data is not None:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            problem = f"{url}: the reply is not JSON"
    if value_size(value, ivr.limits.max_value_chars) > ivr.limits.max_value_chars:
        problem = f"{url}: the data is larger than {ivr.limits.max_value_chars} characters"
        value = None
    ivr.assign(node, name, value)
    source = f"{method} {url}" if is_url(url) else url
    if problem:
        ivr.trace(node.line, "GetJSON", f"{name} = null ({problem})")
    else:
        shown = render_value(value)
        shown = shown if len(shown) <= 80 else shown[:80] + "…"
        ivr.trace(node.line, "GetJSON", f"{name} = {shown} ({source})")
