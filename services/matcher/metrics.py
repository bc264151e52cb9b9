"""The matcher's own Prometheus metrics (``/metrics`` of its worker, behind the admin token),
which the console reads too (``services.console.metrics``)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

EVENTS: Final = Counter(
    "realconnect_matcher_events", "Interactions the matcher's hot path took in (new or not)"
)
RECORDS: Final = Counter("realconnect_matcher_records", "interactions records handled")
BATCHES: Final = Counter("realconnect_matcher_batches", "Batches of records handled")
BATCH_RECORDS: Final = Histogram(
    "realconnect_matcher_batch_records",
    "Records per batch",
    buckets=(1, 5, 10, 50, 100, 500, 1000, 5000),
)
BATCH_EVENTS: Final = Histogram(
    "realconnect_matcher_batch_events",
    "Interactions per batch",
    buckets=(1, 10, 100, 1000, 5000, 10_000, 50_000, 100_000),
)
BATCH_SECONDS: Final = Histogram(
    "realconnect_matcher_batch_seconds",
    "Time to handle one batch (decide, send, write out)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
STATE_WRITES: Final = Counter(
    "realconnect_matcher_state_writes", "Pair states written (once per pair per batch)"
)
FALLBACKS: Final = Counter(
    "realconnect_matcher_batch_fallbacks",
    "Batches handled again record by record because the pure core raised for one of them",
)
