"""Extra service processes on this machine, started and stopped with the main one.

One Python process uses one core; ``ringback worker --processes N`` runs N-1 more workers as
child processes (``python -m ringback worker``) with the same settings, and ``ringback serve
--processes N`` runs N-1 more ``serve`` processes, each with the HTTP API beside its worker,
all accepting connections from the one listening socket the parent opened and handed down
(a process busy with a request is not waiting to accept, so an idle one takes the next). Claims stay
correct across them (queue row locks on PostgreSQL, the write lock on SQLite). On stop each
child gets SIGTERM and shuts down gracefully; one that does not exit in time is killed. A
child whose parent dies without stopping it (``kill -9``, a crash) gets SIGTERM from the kernel
and shuts down gracefully too (:func:`follow_parent`) instead of dialling on as an orphan that
no supervisor knows of.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("ringback.processes")

#: for the children of ``serve --processes N``: the parent's listening socket, by descriptor
LISTEN_FD_ENV = "RINGBACK_LISTEN_FD"
#: for every child: the process id of the parent that started it (:func:`follow_parent`)
PARENT_PID_ENV = "RINGBACK_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def follow_parent() -> None:
    """In a child process: have the kernel send SIGTERM (the graceful stop) when the parent
    that started it dies, ``kill -9`` included (Linux's ``PR_SET_PDEATHSIG``; elsewhere
    nothing). A parent already gone by now stops this process at once."""
    parent = os.environ.get(PARENT_PID_ENV)
    if parent is None or not parent.isdigit():
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != int(parent):  # it died before the call above could take effect
        log.warning("the parent process is gone: stopping", parent_pid=int(parent))
        os.kill(os.getpid(), signal.SIGTERM)


class WorkerProcesses:
    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        count: int,
        command: str = "worker",
        listen_fd: int | None = None,
        env_for: Callable[[int], Mapping[str, str]] | None = None,
    ) -> None:
        """``count`` child processes running ``ringback COMMAND`` (``worker`` or ``serve``);
        ``listen_fd``: the listening socket the ``serve`` children accept from; ``env_for(i)``:
        settings of child i (1 to count) alone, such as its own SIP port."""
        env = {**os.environ, "RINGBACK_WORKER_PROCESSES": "1", PARENT_PID_ENV: str(os.getpid())}
        env.pop(LISTEN_FD_ENV, None)
        if listen_fd is not None:
            env[LISTEN_FD_ENV] = str(listen_fd)
        for index in range(1, count + 1):
            child = subprocess.Popen(
                [sys.executable, "-m", "ringback", command, "--processes", "1"],
                env={**env, **(env_for(index) if env_for is not None else {})},
                pass_fds=() if listen_fd is None else (listen_fd,),
            )
            self.children.append(child)
            log.info(f"{command} process started", pid=child.pid)

    def stop(self, grace_seconds: float) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                code = child.wait(timeout=grace_seconds + 10)
            except subprocess.TimeoutExpired:
                log.error("worker process did not stop; killing it", pid=child.pid)
                child.kill()
                code = child.wait()
            if code not in (0, -signal.SIGTERM):
                log.warning("worker process ended badly", pid=child.pid, exit_code=code)
        self.children.clear()
