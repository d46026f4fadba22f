"""A real HTTP receiver on 127.0.0.1 for webhook tests (a ``ThreadingHTTPServer`` in a thread).

``mode`` says how it answers: ``ok`` (200), ``error`` (500), ``gone`` (410), ``slow`` (records
the request as processed, then waits ``slow_s`` before answering 200, longer than the
dispatcher's timeout) or ``hold`` (the same, for a ``slow_s`` within the timeout). ``peak`` is
the most requests it had under way at once. :meth:`stop` closes the port (the receiver is
down); :meth:`start` opens the same port again.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    mode: str

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mode = "ok"
        self.slow_s = 1.0
        self.received: list[Received] = []
        self.active = 0  # requests being answered now
        self.peak = 0  # the most at once
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                mode = receiver.mode
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, mode)
                    )
                    receiver.active += 1
                    receiver.peak = max(receiver.peak, receiver.active)
                try:
                    if mode in ("slow", "hold"):
                        time.sleep(receiver.slow_s)
                finally:
                    with receiver._lock:
                        receiver.active -= 1
                code = {"ok": 200, "slow": 200, "hold": 200, "error": 500, "gone": 410}[mode]
                answer = b'{"ok": true}' if code == 200 else b"no" * 2000
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the sender gave up (timed out) or died: that is expected
                    self.close_connection = True

            def log_message(self, *_args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def signed_with(received: list[Received], path: str, secret: str) -> bool:
    """Whether a request to ``path`` carries a ``v1=`` signature made with ``secret``."""
    for request in received:
        if request.path != path:
            continue
        headers = {k.lower(): v for k, v in request.headers.items()}
        parts = dict(p.split("=", 1) for p in headers["ringback-signature"].split(",") if "=" in p)
        mac = hmac.new(secret.encode(), b"%s." % parts["t"].encode() + request.body, "sha256")
        if any(p == f"v1={mac.hexdigest()}" for p in headers["ringback-signature"].split(",")):
            return True
    return False
