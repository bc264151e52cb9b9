"""Debian's headless Chromium, driven by Playwright, for the tests that need a browser."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def need_chromium() -> None:
    """Fail in CI, skip elsewhere, when Chromium is not installed (make test installs it)."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("chromium is not installed (make test installs it)")
        pytest.skip("chromium is not installed (run deploy/stack.sh setup)")


def launch(pw: Any) -> Any:
    """A headless Chromium browser (``pw``: a started ``sync_playwright``)."""
    return pw.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
    )
