"""A worker process loads what dialling needs: the HTTP stack (FastAPI, Starlette, uvicorn), the
console's templates and the fax and audio converters stay out of it until a call needs them
(each is ~5-40 MiB of a process's memory). So do the IVR interpreter (lxml), the HTTP client
(aiohttp: the first webhook delivery or IVR fetch imports it), the API's task view (the first
webhook carrying a task; it imports none of the API's models), the numbers' service (inbound
IVRs), the SIP stack and, on SQLite, PostgreSQL's driver and dialect and SQLAlchemy's asyncio
layer with the ORM it imports: SQLite's reads run in helper threads of their own. Nor does it
load rich (nor pygments, which rich's tracebacks import): the CLI's consoles are made when
something is printed, and structlog is imported with rich hidden from it
(ringback/structlog_import.py). bench/worker_rss.py measures the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: what ``ringback worker`` imports before its first task: the command, the services it runs
#: over, the engine, the webhook sender, the simulator and the SQLite store (not opened)
WORKER_MODULES = (
    "ringback.cli",
    "ringback.cli.serve",
    "ringback.service",
    "ringback.engine.worker",
    "ringback.webhooks.dispatcher",
    "ringback.telephony.sim",
    "ringback.store.sqlite",
    "ringback.store.db",
)
#: never loaded by those
KEPT_OUT = (
    "fastapi", "starlette", "uvicorn", "jinja2", "numpy", "PIL", "pypdfium2", "soundfile",
    "phonenumbers", "aiohttp", "lxml", "httpx", "asyncpg", "aiosqlite", "ringback.api",
    "ringback.console", "ringback.ivr.interpret", "ringback.ivr.parse", "ringback.ivr.runner",
    "ringback.service.numbers", "ringback.service.inbound", "ringback.telephony.sip",
    "ringback.store.postgres", "sqlalchemy.ext.asyncio", "sqlalchemy.orm",
    "sqlalchemy.dialects.postgresql", "rich", "pygments", "greenlet",
)  # fmt: skip


def python_output(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """What a fresh interpreter running ``code`` (with ``args``) prints."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
        check=True, env=env,
    )  # fmt: skip
    return done.stdout.strip()


def loaded_after_importing(modules: tuple[str, ...], watched: tuple[str, ...]) -> list[str]:
    """The ``watched`` modules a fresh interpreter has loaded once it imported ``modules``."""
    code = (
        f"import sys\nfor name in {modules!r}:\n    __import__(name)\n"
        f"print(__import__('json').dumps([m for m in {watched!r} if m in sys.modules]))"
    )
    loaded: list[str] = json.loads(python_output(code).splitlines()[-1])
    return loaded


#: nor, until something adds a task, the intake's models and pydantic (~8 MiB): the dialler reads
#: stored payloads without them (ringback.domain.payloads; `ringback worker` itself does not run
#: typer's parser, which imports pydantic: tests/cli/test_cli_worker_command.py)
INTAKE = ("pydantic", "ringback.domain.tasks", "ringback.service.job_inputs")


def test_the_worker_modules_import_no_http_stack_console_ivr_or_media_converters() -> None:
    assert loaded_after_importing(WORKER_MODULES, (*KEPT_OUT, *INTAKE)) == []


def test_a_worker_that_sends_a_task_in_a_webhook_still_imports_no_pydantic_nor_http_stack() -> None:
    # cli.serve.task_json imports the task view at the first webhook that carries a task
    kept_out = tuple(name for name in KEPT_OUT if name != "ringback.api")
    loaded = loaded_after_importing((*WORKER_MODULES, "ringback.api.task_view"), kept_out + INTAKE)
    assert loaded == []


def test_structlog_imported_after_ringback_leaves_rich_and_greenlet_out_yet_importable() -> None:
    code = (
        "import sys, ringback, structlog\n"
        "before = 'rich' in sys.modules or 'greenlet' in sys.modules\n"
        "structlog.get_logger('t').info('works')\n"
        "import rich.console, structlog.dev, greenlet\n"
        "print(before, structlog.dev.rich is None, greenlet.getcurrent() is not None)"
    )
    assert python_output(code).splitlines()[-1].split() == ["False", "True", "True"]


def test_a_table_printed_by_the_cli_imports_rich_then() -> None:
    code = (
        "import sys\n"
        "from ringback.cli import output\n"
        "before = 'rich' in sys.modules\n"
        "table = output.make_table('queue', 'limit')\n"
        "table.add_row('sales', '5')\n"
        "output.print_table(table)\n"
        "print(before, 'rich' in sys.modules)"
    )
    output = python_output(code, env={**os.environ, "COLUMNS": "80"})
    assert "sales" in output and output.splitlines()[-1] == "False True"


def test_what_the_worker_keeps_out_is_still_there_for_those_that_need_it() -> None:
    # the lazy imports name modules that exist: the API, an IVR's run and its first fetch (the
    # outbound client's resolver, ``aiohttp.abc``) load them
    needed = ("ringback.api.schemas", "ringback.engine.runners", "ringback.ivr.runner")
    watched = ("lxml", "aiohttp", "ringback.ivr.interpret", "ringback.service.numbers")
    code_paths = (*needed, "ringback.outbound", "aiohttp.abc", "ringback.service.numbers")
    assert loaded_after_importing(code_paths, watched) == list(watched)


#: a worker's work in a fresh interpreter: a msg_call added, dialled with the simulator and
#: finished, and a round of the webhook sender (nothing to deliver: no webhook is set)
_RUN = """
import asyncio, json, sys, wave
from pathlib import Path
from ringback.cli.serve import task_json
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.engine.worker import Worker
from ringback.service import Services
from ringback.store.db import open_store
from ringback.telephony.sim import SimDialer, load_sim_rules
from ringback.webhooks.dispatcher import Dispatcher

async def main(tmp: Path, watched: list[str]) -> None:
    clock = FakeClock()
    store = await open_store(f"sqlite:///{tmp / 'worker.db'}", clock, migrate=True)
    storage = Storage(tmp / "storage")
    services = Services(store, clock, storage=storage)
    client = await store.ensure_client("acme", clock.now())
    path = storage.resolve(client, "hi.wav")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(1600))
    data = {"calling_number": "0506868000", "called_number": "0901234000", "audio_file": "hi.wav"}
    [task_id] = await services.tasks.add_jobs(client, [{"type": "msg_call", "data": data}])
    dialer = SimDialer(clock, load_sim_rules(None), fast=True)
    ran = await Worker(store, dialer, storage, clock).drain()
    await Dispatcher(services.webhooks, clock, owner="test", task_json=task_json).run_once()
    result = (await store.get_task(task_id, clock.now())).finish_result
    await store.close()
    print(json.dumps([ran, result, [m for m in watched if m in sys.modules]]))

asyncio.run(main(Path(sys.argv[1]), sys.argv[2:]))
"""


def test_a_worker_that_dials_a_message_and_sends_no_webhook_loads_none_of_those(
    tmp_path: Path,
) -> None:
    output = python_output(_RUN, str(tmp_path), *KEPT_OUT)
    ran, result, loaded = json.loads(output.splitlines()[-1])
    assert (ran, result, loaded) == (1, "success", [])


def test_a_webhook_posted_through_the_outbound_client_loads_no_aiohttp() -> None:
    # the dispatcher posts through OutboundClient.post (ringback.http_pool); aiohttp is the
    # client of IVR fetches only, made by the first request()
    code = (
        "import asyncio, sys\n"
        "from ringback.outbound import OutboundClient\n"
        "async def answer(reader, writer):\n"
        "    await reader.readuntil(b'\\r\\n\\r\\n')\n"
        "    await reader.readexactly(2)\n"
        "    writer.write(b'HTTP/1.1 204 No Content\\r\\nContent-Length: 0\\r\\n\\r\\n')\n"
        "    await writer.drain()\n"
        "    writer.close()\n"
        "async def main():\n"
        "    server = await asyncio.start_server(answer, '127.0.0.1', 0)\n"
        "    port = server.sockets[0].getsockname()[1]\n"
        "    async with OutboundClient(allow_private=True, connect_timeout_s=5) as client:\n"
        "        got = await asyncio.wait_for(client.post(\n"
        "            f'http://127.0.0.1:{port}/hook', b'{}', {'Content-Type': 'application/json'}\n"
        "        ), 30)\n"
        "    server.close()\n"
        "    print(got.status, 'aiohttp' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    assert python_output(code).split() == ["204", "False"]
