"""The shipped tie-strength model files, and reading one (the matcher's wiring calls `load`)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import orjson

from services.matcher.model import TieModel, from_dict

#: the model the matcher uses unless ``REALCONNECT_MATCHER__MODEL_PATH`` names another
DEFAULT: Final = Path(__file__).with_name("tie-strength-v2.json")


def load(path: Path | None = None) -> TieModel:
    """The model in ``path`` (default: the shipped one); a clear error if it is unreadable."""
    path = path or DEFAULT
    try:
        return from_dict(orjson.loads(path.read_bytes()))
    except OSError as exc:
        raise ValueError(f"cannot read the tie model {path}: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the tie model {path} is not JSON: {exc}") from exc
