"""A short coverage-guided fuzzing run (atheris) of the adapters and scoring: no input may
crash them (``make fuzz`` and ``make reliability`` run it longer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fuzzer_finds_no_crash_in_a_short_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_adapters", "-runs=12000", "-seed=1"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done 12000 runs" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
