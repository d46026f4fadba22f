"""Campaign intake benchmark: a CSV of ``--rows`` callback tasks imported end to end with
``ringback remote task import`` (the real program) into a local ``ringback serve`` on SQLite.

A fresh database and storage in a temporary folder, a server on a free port (its queue
switched off, so nothing is dialled while measuring), credentials from ``ringback client
create``, a profile from ``ringback remote login`` (in a temporary config folder). The time
is the import command's whole run (its start-up, reading the CSV, the HTTP batches, the
server's inserts), measured here. Progress goes to stderr; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _ringback(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ringback", *args], env=env, check=True,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    return done.stdout


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"ringback serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"ringback serve not healthy after {START_TIMEOUT_S} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rb-intake-") as folder:
        work = Path(folder)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
        env |= {"RINGBACK_DATABASE_URL": f"sqlite:///{work / 'rb.db'}",
                "RINGBACK_STORAGE_DIR": str(work / "storage"), "RINGBACK_PORT": str(port),
                "RINGBACK_HOST": "127.0.0.1", "RINGBACK_WORKER_PROCESSES": "1",
                "XDG_CONFIG_HOME": str(work / "config")}  # fmt: skip
        campaign = work / "campaign.csv"
        with campaign.open("w") as out:
            out.write("name,a_number,b_number,try_count,try_again_pause,var.customer\n")
            for i in range(options.rows):
                out.write(f"lead-{i},1555{i:07d},1666{i:07d},2,60,customer-{i}\n")
        with (work / "serve.log").open("wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "ringback", "serve"], env=env,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)  # fmt: skip
        try:
            _wait_healthy(url, server)
            creds = json.loads(_ringback(env, "client", "create", "bench", "--json"))
            _ringback(env, "remote", "login", "--url", url, "--client-id", creds["client_id"],
                      "--client-secret", creds["client_secret"], "--json")  # fmt: skip
            _ringback(env, "remote", "queue", "add", "campaign", "--json")
            print(f"importing {options.rows:,} rows…", file=sys.stderr)
            started = time.perf_counter()
            summary = json.loads(_ringback(
                env, "remote", "task", "import", str(campaign), "--queue", "campaign",
                "--batch-size", str(options.batch_size), "--parallel", str(options.parallel),
                "--json",
            ))  # fmt: skip
            seconds = time.perf_counter() - started
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
    print(json.dumps({
        "bench": "intake", "store": "sqlite", "rows": options.rows, "added": summary["added"],
        "refused": len(summary["refused"]), "batch_size": options.batch_size,
        "parallel": options.parallel, "seconds": round(seconds, 2),
        "rows_per_second": round(options.rows / seconds), "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
