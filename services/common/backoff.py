"""Waiting between retries: full-jitter exponential backoff and the server's Retry-After.

Used by every client that retries another service: the connectors (platforms and ingest) and
``realconnect replay`` (ingest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

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
    """Exponential backoff with full jitter: the n-th wait (from 0) is uniform in
    [0, min(cap, base * 2**n)]. The wait is tenacity's ``wait_random_exponential`` (the "Full
    Jitter" of the AWS architecture blog's "Exponential Backoff And Jitter"); this class only
    keeps the attempt count for loops that retry across awaits, reconnects and records (the
    webhook retry topic), where tenacity's own retry loop does not fit."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0

    def __post_init__(self) -> None:
        self._wait = wait_random_exponential(multiplier=self.base, max=self.cap)

    def next(self) -> float:
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = self.attempt + 1  # tenacity counts attempts from 1
        self.attempt = min(self.attempt + 1, 30)
        return float(self._wait(state))

    def reset(self) -> None:
        self.attempt = 0
