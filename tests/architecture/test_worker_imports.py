"""A worker process loads what dialling needs: the HTTP stack (FastAPI, Starlette, uvicorn), the
console's templates and the fax and audio converters stay out of it until a call needs them
(each is ~5-40 MiB of a process's memory)."""

from __future__ import annotations

import json
import subprocess
import sys

#: what ``ringback worker`` imports before its first task: the command, the engine, the webhook
#: sender and the task resource webhook bodies carry
WORKER_MODULES = (
    "ringback.cli.serve",
    "ringback.engine.worker",
    "ringback.webhooks.dispatcher",
    "ringback.api.schemas",
    "ringback.telephony.sim",
)
#: never loaded by those
KEPT_OUT = (
    "fastapi", "starlette", "uvicorn", "jinja2", "numpy", "PIL", "pypdfium2", "soundfile",
    "phonenumbers",
)  # fmt: skip


def test_the_worker_modules_import_no_http_stack_console_or_media_converters() -> None:
    code = (
        f"import sys\nfor name in {WORKER_MODULES!r}:\n    __import__(name)\n"
        f"print(__import__('json').dumps([m for m in {KEPT_OUT!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
