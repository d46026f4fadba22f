"""The console's fixtures (see support_console.py): a ``ringback serve`` per module and a
fresh headless Chromium per test."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Route, expect, sync_playwright
from support_console import (
    CHROMIUM_ARGS,
    HOST,
    SIM_RULES,
    WAIT_MS,
    Browser,
    Served,
    Signed,
    free_port,
    require_browser,
    wait_healthy,
)

from support import stop_process
from support_webhooks import Receiver


@pytest.fixture(scope="module")
def serve_env() -> dict[str, str]:
    """More settings of the module's server (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, serve_env: dict[str, str]) -> Iterator[Served]:
    """A ``ringback serve`` on a fresh SQLite database, stopped by its PID after the module."""
    workdir = tmp_path_factory.mktemp("console")
    (workdir / "sim.toml").write_text(SIM_RULES)
    (workdir / "storage").mkdir()
    port = free_port()
    env = {
        **os.environ,
        "RINGBACK_DATABASE_URL": f"sqlite:///{workdir / 'ringback.db'}",
        "RINGBACK_STORAGE_DIR": str(workdir / "storage"),
        "RINGBACK_SIM_RULES": str(workdir / "sim.toml"),
        "RINGBACK_WORKER_PROCESSES": "1",
        "RINGBACK_SHUTDOWN_GRACE": "2",
        **serve_env,
    }
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ringback", "serve", "--host", HOST, "--port", str(port)],
            env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = Served(f"http://{HOST}:{port}", env, workdir, log_path, process)
    try:
        wait_healthy(server)
        yield server
    finally:
        stop_process(process, timeout_s=10.0, group=True)


@pytest.fixture
def browser(served: Served, tmp_path: Path) -> Iterator[Browser]:
    """Chromium (headless, a fresh profile) whose requests may reach the server only."""
    executable = require_browser()
    offsite: list[str] = []

    def only_the_server(route: Route) -> None:
        url = route.request.url
        # the browser's own pages (its PDF viewer: chrome://…) are not the network
        if url.startswith(served.url + "/") or url.startswith(("chrome://", "chrome-extension://")):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800},
        )  # fmt: skip
        try:
            context.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            context.route("**/*", only_the_server)
            page = context.pages[0] if context.pages else context.new_page()
            yield Browser(page, offsite)
        finally:
            with contextlib.suppress(Exception):
                context.close()


def _signed(served: Served, name: str) -> Iterator[Signed]:
    served.client(name)
    signed = Signed(served, served.clients[name])
    yield signed
    signed.http.close()


@pytest.fixture
def acme(served: Served) -> Iterator[Signed]:
    """Client ``acme`` (made on first use) signed in to the console over HTTP."""
    yield from _signed(served, "acme")


@pytest.fixture
def globex(served: Served) -> Iterator[Signed]:
    """Client ``globex``, a second tenant, signed in to the console over HTTP."""
    yield from _signed(served, "globex")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()
