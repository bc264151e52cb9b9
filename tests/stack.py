"""Runs realconnect services as real subprocesses for integration and e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.common.settings import Settings

BIN = Path(sys.executable).parent / "realconnect"
ROOT = Path(__file__).parents[1]

_HTTP = {
    "ingest": "REALCONNECT_INGEST__PORT",
    "feeds": "REALCONNECT_FEEDS__PORT",
    "console": "REALCONNECT_CONSOLE__PORT",
}
_WORKERS = {
    "normalizer": "REALCONNECT_NORMALIZER__WEB_PORT",
    "matcher": "REALCONNECT_MATCHER__WEB_PORT",
    "notifier": "REALCONNECT_NOTIFIER__WEB_PORT",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _listeners(port: int) -> set[str]:
    """The socket inodes listening on ``port`` (Linux: /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.add(inode)
    return found


def _group_holds(pgid: int, inodes: set[str]) -> bool:
    """Whether a process of the process group ``pgid`` (a service and any process it
    started) has one of the sockets ``inodes`` open."""
    wanted = {f"socket:[{i}]" for i in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


class ServiceStack:
    """Some of ingest, feeds, console, matcher, notifier in one namespace, on free ports."""

    def __init__(
        self, settings: Settings, workdir: Path, services: tuple[str, ...], **env: str
    ) -> None:
        self.settings = settings
        self.workdir = workdir
        self.services = services
        self.ports = {name: free_port() for name in services}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **os.environ,
            "REALCONNECT_NAMESPACE": settings.namespace,
            "REALCONNECT_ENV": "test",
            "REALCONNECT_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "REALCONNECT_KAFKA__PARTITIONS": str(settings.kafka.partitions),
            "REALCONNECT_REDIS__URL": settings.redis.url,
            "REALCONNECT_MATCHER__DATA_DIR": str(workdir / "matcher"),
            "REALCONNECT_NOTIFIER__DATA_DIR": str(workdir / "notifier"),
            "REALCONNECT_NORMALIZER__DATA_DIR": str(workdir / "normalizer"),
            **env,
        }
        for name, var in {**_HTTP, **_WORKERS}.items():
            if name in self.ports:
                self.env[var] = str(self.ports[name])
        if "feeds" in self.ports:  # the links in emails point at this stack's feeds service
            self.env.setdefault("REALCONNECT_FEEDS__PUBLIC_URL", self.url("feeds"))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, timeout: float = 90.0) -> ServiceStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in self.services:
            self.start_one(name)
        for name in self.services:
            self.wait_ready(name, timeout)
        return self

    def start_one(self, name: str) -> None:
        verb = "serve" if name in _HTTP else "worker"
        with self.log(name).open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [str(BIN), verb, name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, name: str, timeout: float = 90.0) -> None:
        """Until the service listens on its port: its own socket, not another process's.
        ``free_port`` picks a port that is free then; another test's process may take it
        before the service binds it (CI saw a matcher exit on "address already in use"
        while a stranger answered on its port). Then the service is started again on
        another port."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.procs[name]
            port = self.ports[name]
            if _answers(port) and _group_holds(proc.pid, _listeners(port)):
                return
            if proc.poll() is not None:
                if "address already in use" in self.tail(name):
                    self._move(name)
                    continue
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready after {timeout} s:\n{self.tail(name)}")
            time.sleep(0.2)

    def _move(self, name: str) -> None:
        """Start ``name`` again on a new port (its old one was taken by someone else)."""
        old = self.url(name)
        self.ports[name] = free_port()
        self.env[{**_HTTP, **_WORKERS}[name]] = str(self.ports[name])
        if name == "feeds" and self.env.get("REALCONNECT_FEEDS__PUBLIC_URL") == old:
            self.env["REALCONNECT_FEEDS__PUBLIC_URL"] = self.url("feeds")
        with self.log(name).open("ab") as log:
            log.write(f"--- port taken: {name} started again on {self.ports[name]}\n".encode())
        self.start_one(name)

    def tail(self, name: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)


class PrivateRedis:
    """A redis-server of this test's own (AOF on), so it can be stopped and started."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes its AOF and exits
            self.proc.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL: no shutdown of its own (what it acknowledged was written to the AOF)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)


@contextmanager
def fresh_stack(workdir: Path, services: tuple[str, ...], **env: str) -> Iterator[ServiceStack]:
    """``services`` running in a new namespace of the real Kafka, Redis and SMTP server
    (unreachable servers: a skip outside CI, a failure in CI), stopped afterwards."""
    import asyncio

    from services.common.kafka import ensure_topics
    from tests.conftest import _check_servers, new_namespace, settings_for, unavailable

    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    stack = ServiceStack(settings, workdir, services, **env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


class PrivateKafka:
    """A one-node KRaft Kafka of this test's own (the jars `make setup` resolved), so that it
    can be SIGKILLed without touching the shared broker."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.controller = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        cp = str(ROOT / ".cache" / "kafka" / "lib" / "*")
        log4j = f"-Dlog4j2.configurationFile={ROOT / 'deploy' / 'kafka' / 'log4j2.yaml'}"
        # 512 MiB at most: a restart loads every log (200+ partitions with the circles' topics)
        # and the log cleaner allocates its 128 MiB dedupe buffer on top; at 256 MiB a
        # restarted private broker died of OutOfMemoryError in CI
        self.java = ["java", "-Xms256m", "-Xmx512m", log4j, "-cp", cp]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "server.properties"
        text = (ROOT / "deploy" / "kafka" / "server.properties.in").read_text()
        for key, value in {
            "PORT": str(self.port),
            "CONTROLLER_PORT": str(self.controller),
            "DATA_DIR": str(self.workdir / "data"),
        }.items():
            text = text.replace(f"@{key}@", value)
        conf.write_text(text)
        if not (self.workdir / "data" / "meta.properties").exists():  # else: a restart
            cluster = subprocess.run(
                [*self.java, "kafka.tools.StorageTool", "random-uuid"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
            subprocess.run(
                [*self.java, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(conf)],
                capture_output=True,
                check=True,
            )
        with (self.workdir / "kafka.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.java, "kafka.Kafka", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kafka did not start: see {self.workdir / 'kafka.log'}")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self, down_s: float = 2.0) -> None:
        """SIGKILL, ``down_s`` seconds down, then started again on its own data."""
        self.kill()
        time.sleep(down_s)
        self.start()
