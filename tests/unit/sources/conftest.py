from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA_DIR, IN_CI

FIXTURES = DATA_DIR.parent / "fixtures" / "payloads"


@pytest.fixture
def payload() -> Any:
    """Load a real platform payload from ../shared/fixtures/payloads (a deep copy to edit)."""
    if not FIXTURES.is_dir():
        if IN_CI:
            pytest.fail(f"fixtures not found at {FIXTURES} (CI=true)")
        pytest.skip(f"fixtures not found at {FIXTURES}")

    def load(path: str) -> Any:
        return copy.deepcopy(json.loads((FIXTURES / path).read_text()))

    return load


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def fixture_path(name: str) -> Path:
    return FIXTURES / name
