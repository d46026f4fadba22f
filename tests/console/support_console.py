"""What the console's tests share: a real ``ringback serve`` (SQLite, the simulator) driven
by Debian's Chromium through Playwright for Python.

The browser is the system's ``/usr/bin/chromium`` (Debian package ``chromium``), launched with
``executable_path`` and a fresh profile folder per test; Playwright's own browser download
(``playwright install``) is never used. Without chromium the browser tests are skipped, or fail
under ``RINGBACK_REQUIRE_BROWSER=1`` or ``CI`` (as in ``.ci/run``). Every request the page
makes to anything but the server under test is refused and recorded: the pages must work
offline. Tests wait on conditions (Playwright's ``expect``), never on fixed sleeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

HOST = "127.0.0.1"
CHROMIUM = os.environ.get("RINGBACK_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("RINGBACK_REQUIRE_BROWSER") == "1" or bool(os.environ.get("CI"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
START_TIMEOUT_S = 20.0
#: each Playwright wait (a page to load, a condition to hold), in ms
WAIT_MS = 20_000
SIM_RULES = "[defaults]\nring_seconds = 0.05\ntalk_seconds = 0.5\n"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SCREENSHOTS = os.environ.get("RINGBACK_SCREENSHOTS")  # a folder: the tests save pages there


def require_browser() -> str:
    """Chromium's path; skip without it, or fail under RINGBACK_REQUIRE_BROWSER=1 / CI."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path is None:
        problem = "chromium is not installed (Debian package chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(f"{problem} (RINGBACK_REQUIRE_BROWSER=1 or CI)")
        pytest.skip(problem)
    return path


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True)
class Client:
    """A client of the server with its credentials (``ringback client create NAME``)."""

    name: str
    id: int
    key: str
    secret: str


@dataclass
class Served:
    url: str
    env: dict[str, str]
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    clients: dict[str, Client] = field(default_factory=dict)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def cli(self, *args: str) -> str:
        """``ringback ARGS`` against the server's database; its output (it must succeed)."""
        done = subprocess.run(
            [sys.executable, "-m", "ringback", *args], env=self.env, cwd=self.workdir,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    def client(self, name: str) -> Client:
        """The client ``name`` (made on first use)."""
        if name not in self.clients:
            made = json.loads(self.cli("client", "create", name, "--json"))
            self.clients[name] = Client(
                name, int(made["id"]), made["client_id"], made["client_secret"]
            )
        return self.clients[name]


def wait_healthy(server: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    problem = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"ringback serve exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            problem = repr(exc)
        time.sleep(0.1)  # polling the start-up of another process
    pytest.fail(f"ringback serve not healthy in {START_TIMEOUT_S} s ({problem}):\n{server.log()}")


@dataclass
class Browser:
    """A page of a fresh Chromium profile, and the requests it tried to send elsewhere."""

    page: Page
    offsite: list[str]


def screenshot(page: Page, name: str) -> None:
    """Save the page as ``$RINGBACK_SCREENSHOTS/NAME.png`` when that folder is set."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def sign_in(page: Page, url: str, client: Client) -> None:
    """Sign in through the form and wait for the queues page."""
    page.goto(f"{url}/ui/signin")
    page.get_by_label("client_id").fill(client.key)
    page.get_by_label("client_secret").fill(client.secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/ui/queues")


class Signed:
    """An HTTP client signed in to the console, with the CSRF token of its session."""

    def __init__(self, served: Served, client: Client) -> None:
        self.http = httpx.Client(base_url=served.url, timeout=30.0)
        form = self.http.get("/ui/signin")
        answer = self.http.post(
            "/ui/signin",
            data={"csrf": _csrf(form.text), "client_id": client.key,
                  "client_secret": client.secret},
        )  # fmt: skip
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/ui/queues"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        self.csrf = _csrf(self.http.get("/ui/queues").text)


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def reload_until(page: Page, ready: Callable[[], bool], what: str) -> None:
    """Reload ``page`` until ``ready()`` (for pages that do not refresh themselves)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not ready():
        assert time.monotonic() < deadline, f"waited {WAIT_MS / 1000:.0f} s for {what}"
        page.wait_for_timeout(250)  # between reloads of a page that does not poll
        page.reload()
