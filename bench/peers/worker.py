"""One worker process of a peer system, until SIGTERM: ``python -m bench.peers.worker NAME``
(NAME: procrastinate, bullmq or arq). ringback's workers are ``ringback worker`` itself."""

from __future__ import annotations

import asyncio
import sys


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m bench.peers.worker procrastinate|bullmq|arq")
    name = argv[0]
    if name == "procrastinate":
        from bench.peers.procrastinate_side import run_worker
    elif name == "bullmq":
        from bench.peers.bullmq_side import run_worker
    elif name == "arq":
        from bench.peers.arq_side import run_worker
    else:
        sys.exit(f"unknown system {name!r}: procrastinate, bullmq or arq")
    asyncio.run(run_worker())


if __name__ == "__main__":
    main(sys.argv[1:])
