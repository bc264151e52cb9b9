"""Waiting between retries: full-jitter exponential backoff and the server's Retry-After.

Used by every client that retries another service: the connectors (platforms and ingest) and
``realconnect replay`` (ingest).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "retry_after"]


def retry_after(headers: Mapping[str, str], default: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), else ``default``."""
    raw = headers.get("retry-after")
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return default


@dataclass
class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
    Jitter"): the n-th wait is uniform in [0, min(cap, base * 2**n)]."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0

    def next(self) -> float:
        delay = random.uniform(0, min(self.cap, self.base * 2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return delay

    def reset(self) -> None:
        self.attempt = 0
