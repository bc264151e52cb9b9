"""The local stack's liveness and restarts (``deploy/supervise.sh``, ``deploy/stack.sh``):
a service that dies is started again, a configuration error is not retried, a stop stops it,
and a zombie is not mistaken for a running service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
SUPERVISE = ROOT / "deploy" / "supervise.sh"
STACK = ROOT / "deploy" / "stack.sh"


def wait_until(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"


def supervise(tmp_path: Path, *command: str) -> tuple[subprocess.Popen[bytes], Path]:
    pidfile = tmp_path / "child.pid"
    env = {**os.environ, "SUPERVISE_PIDFILE": str(pidfile), "SUPERVISE_HEALTHY_S": "30"}
    proc = subprocess.Popen(
        [str(SUPERVISE), "svc", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, pidfile


def test_a_killed_service_is_started_again_and_a_stop_stops_it(tmp_path: Path) -> None:
    proc, pidfile = supervise(tmp_path, sys.executable, "-c", "import time; time.sleep(300)")
    try:
        wait_until(lambda: pid_in(pidfile) is not None)
        first = pid_in(pidfile)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: pid_in(pidfile) not in (None, first))  # back after ~1 s
        second = pid_in(pidfile)
        assert second is not None and not gone(second)
        proc.send_signal(signal.SIGTERM)  # the stop stack.sh sends
        assert proc.wait(timeout=10) != 0  # the service's status: ended by TERM
        wait_until(lambda: gone(second))
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert "supervise[svc]: exited with status 137" in out  # the SIGKILL, logged
        assert out.count("restarting") == 1  # the stop was not followed by a restart
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_configuration_error_is_not_retried(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc, _ = supervise(tmp_path, "bash", "-c", f"echo run >> {runs}; exit 78")
    assert proc.wait(timeout=10) == 78
    assert runs.read_text() == "run\n"


def test_restarts_back_off_while_the_service_keeps_dying(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc, _ = supervise(tmp_path, "bash", "-c", f"date +%s.%N >> {runs}; exit 1")
    try:
        wait_until(lambda: runs.exists() and len(runs.read_text().split()) >= 3, timeout=15)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    t = [float(x) for x in runs.read_text().split()]
    assert t[1] - t[0] >= 0.9  # 1 s
    assert t[2] - t[1] >= 1.9  # then 2 s


def status(tmp_path: Path, pid: int) -> str:
    """``stack.sh status``'s line for the matcher, given a pid file holding ``pid``."""
    pids = tmp_path / "run" / "pids"
    pids.mkdir(parents=True, exist_ok=True)
    (pids / "matcher.pid").write_text(str(pid))
    env = {**os.environ, "REALCONNECT_RUN_DIR": str(tmp_path / "run")}
    env["REALCONNECT_MATCHER__WEB_PORT"] = "1"  # nothing answers there
    out = subprocess.run(
        [str(STACK), "status"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return next(line for line in out.splitlines() if line.startswith("matcher"))


def test_a_zombie_is_not_a_running_service(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])  # never waited for: a zombie once it exits
    try:
        wait_until(lambda: gone(child.pid))
        os.kill(child.pid, 0)  # what the old check used: it says the zombie is there
        assert " down " in status(tmp_path, child.pid)
        assert " running " in status(tmp_path, os.getpid())
    finally:
        child.wait()
