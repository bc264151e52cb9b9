"""Several uvicorn processes on one port, each with its own ``SO_REUSEPORT`` listener.

uvicorn's ``--workers`` binds one socket in the parent and shares it: every worker accepts
from the same queue, and the kernel hands most connections to whichever worker is warm.
Under ``make bench`` one ingest process ran at 94% of a core while the other idled at 18%
(long-lived keep-alive connections stay where they were accepted). With a listener per
process in one ``SO_REUSEPORT`` group, Linux spreads new connections over the processes by
their address hash (uvicorn issue #2467, PR #2472; gunicorn PR #2938).

The parent only supervises: a worker that dies is started again (after a pause, so a crash
loop does not spin), SIGTERM / SIGINT stop every worker, and a worker that cannot start its
app (uvicorn's startup-failure exit, or workers dying right after their start, three in a row)
stops the whole service with exit code 1.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: uvicorn's exit code when the app's lifespan startup failed (uvicorn.server.STARTUP_FAILURE)
STARTUP_FAILURE = 3


def listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket in the ``SO_REUSEPORT`` group of (host, port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _serve(host: str, port: int, log_level: str, uvicorn_kwargs: dict[str, Any]) -> None:
    """One worker process: its own listener, then uvicorn on it until SIGTERM."""
    import uvicorn

    from services.common.logging import configure_logging

    configure_logging(log_level)
    sock = listener(host, port)
    config = uvicorn.Config(host=host, port=port, **uvicorn_kwargs)
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class Supervisor:
    host: str
    port: int
    workers: int
    log_level: str
    uvicorn_kwargs: dict[str, Any]
    restart_delay_s: float = 1.0
    #: this many workers in a row dying within ``quick_death_s`` of their start stop the
    #: service (exit 1)
    quick_death_s: float = 10.0
    max_quick_deaths: int = 3
    processes: list[SpawnProcess] = field(default_factory=list)
    _stopping: bool = False

    def _start(self) -> SpawnProcess:
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(
            target=_serve,
            args=(self.host, self.port, self.log_level, self.uvicorn_kwargs),
            daemon=False,
        )
        proc.start()
        log.info("http_worker_started", pid=proc.pid, port=self.port)
        return proc

    def _stop(self, *_: Any) -> None:
        self._stopping = True

    def run(self) -> int:
        """Run until SIGTERM / SIGINT (0) or until a worker cannot start its app (1)."""
        # Fail here, not in a restart loop, if the port is taken by a process outside the group.
        listener(self.host, self.port).close()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.processes = [self._start() for _ in range(self.workers)]
        started = [time.monotonic()] * self.workers
        quick_deaths, code = 0, 0
        while not self._stopping:
            time.sleep(0.2)
            for i, proc in enumerate(self.processes):
                if proc.is_alive() or self._stopping:
                    continue
                quick = time.monotonic() - started[i] < self.quick_death_s
                quick_deaths = quick_deaths + 1 if quick else 0
                if proc.exitcode == STARTUP_FAILURE or quick_deaths >= self.max_quick_deaths:
                    # the app cannot start (its lifespan failed, or it dies at once): a
                    # restart loop would only hide that
                    log.error("http_worker_cannot_start", pid=proc.pid, exitcode=proc.exitcode)
                    self._stopping, code = True, 1
                    break
                log.error("http_worker_died", pid=proc.pid, exitcode=proc.exitcode)
                time.sleep(self.restart_delay_s)
                self.processes[i], started[i] = self._start(), time.monotonic()
        for proc in self.processes:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        return code
