"""Benchmarks run by ``make bench``: each updates its rows of the current results in
docs/benchmarks.md and appends its run to docs/benchmarks-history.md (bench.current)."""

from __future__ import annotations

import subprocess


def git_commit() -> str:
    """The short hash of the checked-out commit, for the figures' headings."""
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - read-only git
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
