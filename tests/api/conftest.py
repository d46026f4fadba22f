"""The API tests talk HTTP to a real ``ringback serve`` process, on both stores.

One server per store for the session (``live``; starting one takes seconds):
``python -m ringback serve --port P`` with a fresh database (a temporary SQLite file, or a
PostgreSQL database ``rb_api_<hex>`` created for it and dropped after), a temporary storage
folder and simulator rules that make calls finish in about a second. Each test module gets two
fresh API clients, alice and bob, made with ``ringback client create NAME --json`` (run in the
test process by typer's runner) against the same database; every route but /metrics is per
client, so modules cannot see each other's data.
Tests get an ``httpx.Client`` per client whose base URL is ``/api/ver1.0/client/{id}``.

Everything is bounded in time, listens on 127.0.0.1 only, and the server is stopped by its
PID (SIGTERM, then SIGKILL) whatever happens.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import stop_process, wav_bytes

API = "/api/ver1.0"
HOST = "127.0.0.1"
STORES = ["sqlite", "postgresql"]
PG_URL = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 60.0
SIM_RULES = "[defaults]\nring_seconds = 0.05\ntalk_seconds = 1.0\n"
# an answering machine (tests/api/test_http_amd.py): its beep ends 2.5 s after answer; a
# person who stays on the line
SIM_RULES += '[[rules]]\nsuffix = "0009001"\nanswered_by = "machine"\nbeep_after_s = 2.5\n'
SIM_RULES += "talk_seconds = 10.0\n"
SIM_RULES += '[[rules]]\nsuffix = "0009002"\nanswered_by = "human"\ntalk_seconds = 10.0\n'


# --- PostgreSQL: one database per module ------------------------------------------------------


def _root_require_pg(config: pytest.Config) -> None:
    """``tests/conftest.py: require_pg()`` (skips, or fails under RINGBACK_REQUIRE_PG=1).

    Every conftest.py here is module ``conftest``, so the root one is taken from pytest's
    plugin registry rather than imported by name.
    """
    root = config.pluginmanager.get_plugin(str(Path(__file__).parent.parent / "conftest.py"))
    assert root is not None, "tests/conftest.py is not loaded"
    root.require_pg()


def _pg_execute(url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # never inside a running loop
        pool.submit(asyncio.run, run()).result(timeout=60)


def _pg_database_url(name: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}"


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Tenant:
    """An API client (tenant) with a token, and an HTTP client rooted at its URL prefix."""

    name: str
    id: int
    key: str
    secret: str
    token: str
    http: httpx.Client

    @property
    def base(self) -> str:
        """``/api/ver1.0/client/{id}`` (the ``http`` client's base path)."""
        return f"{API}/client/{self.id}"

    def new_queue(self, **fields: Any) -> dict[str, Any]:
        body = {"name": f"q-{uuid.uuid4().hex[:8]}", **fields}
        answer = self.http.post("/task_scheduler/", json=body)
        assert answer.status_code == 201, answer.text
        queue: dict[str, Any] = answer.json()
        return queue

    def put_wav(self, name: str) -> str:
        """Store a short silent WAV as ``name`` (jobs naming a file need it there)."""
        answer = self.http.put(f"/storage/{name}", content=wav_bytes())
        assert answer.status_code in (200, 201), answer.text
        return name

    def add_tasks(self, sid: int, *tasks: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self.http.post(f"/task_scheduler/{sid}/tasks/", json={"tasks": list(tasks)})
        assert answer.status_code == 201, answer.text
        added: list[dict[str, Any]] = answer.json()["tasks"]
        return added

    def task_total(self, sid: int) -> int:
        answer = self.http.get(f"/task_scheduler/{sid}/tasks/", params={"limit": 1})
        assert answer.status_code == 200, answer.text
        total: int = answer.json()["total"]
        return total

    def queue_count(self) -> int:
        answer = self.http.get("/task_scheduler/")
        assert answer.status_code == 200, answer.text
        return len(answer.json()["queues"])

    def job_total(self) -> int:
        answer = self.http.get("/jobs/", params={"limit": 1})
        assert answer.status_code == 200, answer.text
        total: int = answer.json()["total"]
        return total


@dataclass
class LiveServer:
    store: str
    url: str
    env: dict[str, str]
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    tenants: dict[str, Tenant] = field(default_factory=dict)
    _clients: list[httpx.Client] = field(default_factory=list)

    def kill_and_restart(self) -> None:
        """``kill -9`` the server (by its PID), then start it again on the same database."""
        self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ringback", "serve", "--host", HOST, "--port",
                 self.url.rsplit(":", 1)[1]],
                env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        _wait_healthy(self)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        """An HTTP client rooted at the server (bearer ``token`` if given); closed at the end."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)
        self._clients.append(client)
        return client

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ringback ARGS`` against the server's database (bounded in time)."""
        return subprocess.run(
            [sys.executable, "-m", "ringback", *args],
            env=self.env, cwd=self.workdir, capture_output=True, text=True,
            timeout=CLI_TIMEOUT_S, check=False,
        )  # fmt: skip

    def token(self, key: str, secret: str) -> str:
        answer = httpx.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials", "client_id": key, "client_secret": secret},
            timeout=30.0,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def cli_in_process(self, *args: str) -> tuple[int, str, str]:
        """``ringback ARGS`` against the server's database, run in this process by typer's
        runner (the same command, without an interpreter start-up of seconds): exit code,
        stdout, stderr. Called outside any running event loop (the command runs its own)."""
        from typer.testing import CliRunner

        from ringback.cli import app

        ringback_env = {k: v for k, v in self.env.items() if k.startswith("RINGBACK_")}
        result = CliRunner().invoke(app, list(args), env=ringback_env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    def make_tenants(self, *names: str) -> dict[str, Tenant]:
        """``ringback client create NAME --json`` for each name (in this process), then a
        token. The real program's ``client create`` is tested in tests/cli."""
        for name in names:
            code, stdout, stderr = self.cli_in_process("client", "create", name, "--json")
            assert code == 0, stderr + stdout
            creds = json.loads(stdout)
            token = self.token(creds["client_id"], creds["client_secret"])
            http = self.client(token)
            http.base_url = httpx.URL(f"{self.url}{API}/client/{creds['id']}")
            made_tenant = Tenant(
                name, int(creds["id"]), creds["client_id"], creds["client_secret"], token, http
            )
            self.tenants[name] = made_tenant
        return {name: self.tenants[name] for name in names}

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()


def _wait_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    problem = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"ringback serve exited with {server.process.returncode}:\n{server.log()}")
        try:
            answer = httpx.get(f"{server.url}/healthz", timeout=2.0)
            if answer.status_code == 200:
                return
            problem = f"/healthz answered {answer.status_code}: {answer.text[:200]}"
        except httpx.HTTPError as exc:
            problem = repr(exc)
        time.sleep(0.1)
    pytest.fail(
        f"ringback serve not healthy after {START_TIMEOUT_S} s ({problem}):\n{server.log()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, to the server's PID (and its process group, which it leads)."""
    stop_process(process, timeout_s=STOP_TIMEOUT_S, group=True)


@contextlib.contextmanager
def run_server(
    store: str, workdir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """A ``ringback serve`` on ``store``, stopped (and its database dropped) on exit."""
    database: str | None = None
    if store == "sqlite":
        database_url = f"sqlite:///{workdir / 'ringback.db'}"
    else:
        database = f"rb_api_{uuid.uuid4().hex[:12]}"
        _pg_execute(PG_URL, f"CREATE DATABASE {database}")
        database_url = _pg_database_url(database)
    rules = workdir / "sim.toml"
    rules.write_text(SIM_RULES)
    storage = workdir / "storage"
    storage.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "RINGBACK_DATABASE_URL": database_url,
        "RINGBACK_STORAGE_DIR": str(storage),
        "RINGBACK_SIM_RULES": str(rules),
        "RINGBACK_HOST": HOST,
        "RINGBACK_PORT": str(port),
        "RINGBACK_WORKER_PROCESSES": "1",
        "RINGBACK_SHUTDOWN_GRACE": "2",
        # webhook receivers of the tests listen on 127.0.0.1; retries are quick and give up
        # after 3 s (instead of a day), so that dead deliveries can be seen
        "RINGBACK_WEBHOOK_ALLOW_PRIVATE": "1",
        "RINGBACK_WEBHOOK_CONNECT_TIMEOUT": "1",
        "RINGBACK_WEBHOOK_TIMEOUT": "2",
        "RINGBACK_WEBHOOK_RETRY_BASE": "0.2",
        "RINGBACK_WEBHOOK_RETRY_FOR": "3",
        **(extra_env or {}),
    }
    log_path = workdir / "serve.log"
    process: subprocess.Popen[bytes] | None = None
    server: LiveServer | None = None
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "ringback", "serve", "--host", HOST, "--port", str(port)],
                env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        server = LiveServer(store, f"http://{HOST}:{port}", env, workdir, log_path, process)
        _wait_healthy(server)
        yield server
    finally:
        if server is not None:
            server.close_clients()
        if server is not None:
            _stop(server.process)  # the one running now (a test may have restarted it)
        elif process is not None:
            _stop(process)
        if database is not None:
            with contextlib.suppress(Exception):
                _pg_execute(PG_URL, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture(scope="session", params=STORES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A running server on SQLite, and one on PostgreSQL (its own database, dropped after)."""
    if request.param == "postgresql":
        _root_require_pg(request.config)
    with run_server(request.param, tmp_path_factory.mktemp(f"api-{request.param}")) as server:
        yield server


@pytest.fixture(params=STORES)
def own_live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A server of this test's own (it may kill and restart it), on each store; webhook
    leases of 3 s and retries for a minute."""
    if request.param == "postgresql":
        _root_require_pg(request.config)
    extra = {"RINGBACK_WEBHOOK_LEASE_SECONDS": "3", "RINGBACK_WEBHOOK_RETRY_FOR": "60"}
    with run_server(request.param, tmp_path, extra) as server:
        yield server


@pytest.fixture(scope="module")
def fast_sim_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module's own on SQLite whose simulator is in fast mode (a fax's
    audio time does not pass; its T.30 session is real)."""
    workdir = tmp_path_factory.mktemp("api-fast-sim")
    with run_server("sqlite", workdir, {"RINGBACK_SIM_FAST": "1"}) as server:
        yield server


@pytest.fixture(scope="module")
def tenants(live: LiveServer) -> dict[str, Tenant]:
    """Fresh clients alice and bob for each test module: nothing another module stored is
    theirs (all data but /metrics is per client), without restarting the server."""
    suffix = uuid.uuid4().hex[:6]
    made = live.make_tenants(f"alice-{suffix}", f"bob-{suffix}")
    return {name.split("-")[0]: tenant for name, tenant in made.items()}


@pytest.fixture
def alice(tenants: dict[str, Tenant]) -> Tenant:
    return tenants["alice"]


@pytest.fixture
def bob(tenants: dict[str, Tenant]) -> Tenant:
    return tenants["bob"]


@pytest.fixture
def anon(live: LiveServer) -> httpx.Client:
    """No token at all."""
    return live.client()


# --- helpers used by the tests (through the ``rb`` fixture) ------------------------------------


class Helpers:
    """Assertions and builders shared by the test modules (conftest.py is not importable)."""

    @staticmethod
    def basic(key: str, secret: str) -> str:
        return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()

    @staticmethod
    def unique(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    @staticmethod
    def task(**fields: Any) -> dict[str, Any]:
        """A valid callback task (numbers the simulator answers), with ``fields`` on top."""
        return {"a_number": "+15550001001", "b_number": "+15550002002", **fields}

    @staticmethod
    def error(answer: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
        """The answer is the JSON error shape ``{error, message, details}`` with ``status``."""
        assert answer.status_code == status, (
            f"{answer.request.method} {answer.request.url.path}: expected {status}, "
            f"got {answer.status_code}: {answer.text[:500]}"
        )
        assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
        body: dict[str, Any] = answer.json()
        assert set(body) == {"error", "message", "details"}, body
        assert isinstance(body["message"], str) and body["message"], body
        assert isinstance(body["details"], list), body
        if error is not None:
            assert body["error"] == error, body
        return body

    @staticmethod
    def locs(body: dict[str, Any]) -> list[list[Any]]:
        """The ``loc`` of every detail of an error body."""
        return [list(detail.get("loc", [])) for detail in body["details"]]

    @staticmethod
    def poll(
        fetch: Callable[[], httpx.Response],
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
        what: str = "condition",
    ) -> dict[str, Any]:
        """GET until ``done(body)``; fails with the last answer after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last: httpx.Response | None = None
        while time.monotonic() < deadline:
            last = fetch()
            assert last.status_code == 200, last.text
            body: dict[str, Any] = last.json()
            if done(body):
                return body
            time.sleep(0.1)
        pytest.fail(
            f"{what} not reached in {timeout} s; last answer: {last.text if last else None}"
        )


@pytest.fixture(scope="session")
def rb() -> type[Helpers]:
    return Helpers
