"""A webhook receiver for trying ringback locally: checks each request's signature, prints
the event and answers 204 (401 to a request that is not signed with the secret).

    RINGBACK_WEBHOOK_SECRET=<the secret> python examples/webhook_receiver.py 9000

The secret is the one `POST /webhooks/` answered (or `GET /webhook_secret` for the task URLs).
Start ringback with RINGBACK_ALLOW_PRIVATE=1 to let it reach 127.0.0.1 (private addresses are
refused otherwise). Only the standard library: copy it into any project.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300  # a signature older (or newer) than this is refused: a replay


def verified(header: str, body: bytes, secret: str, now: float) -> bool:
    """``Ringback-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>[,v1=…]``."""
    parts = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t" and value.isdigit()]
    if not stamps or abs(now - int(stamps[0])) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"." + body, hashlib.sha256)
    return any(
        hmac.compare_digest(expected.hexdigest(), value) for key, _, value in parts if key == "v1"
    )


class Receiver(BaseHTTPRequestHandler):
    secret = os.environ.get("RINGBACK_WEBHOOK_SECRET", "")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verified(self.headers.get("Ringback-Signature", ""), body, self.secret, time.time()):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        print(self.headers.get("Ringback-Event-Type"), self.headers.get("Ringback-Event-Id"),
              json.dumps(event)[:200], flush=True)  # fmt: skip
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return  # the events are printed instead


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    if not Receiver.secret:
        sys.exit("set RINGBACK_WEBHOOK_SECRET to the secret ringback gave for the webhook")
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
