"""The console's reading of the matcher's Prometheus metrics (pure: the parser)."""

from __future__ import annotations

from services.console.metrics import matcher_totals


def test_the_console_reads_the_matcher_s_own_metrics() -> None:
    """Prometheus text as the matcher serves it (hand-written): the totals the console shows."""
    text = (
        "# HELP realconnect_matcher_events_total Interactions\n"
        "# TYPE realconnect_matcher_events_total counter\n"
        "realconnect_matcher_events_total 1500.0\n"
        "# HELP realconnect_matcher_batches_total Batches\n"
        "# TYPE realconnect_matcher_batches_total counter\n"
        "realconnect_matcher_batches_total 3.0\n"
        "# HELP realconnect_matcher_batch_seconds Time\n"
        "# TYPE realconnect_matcher_batch_seconds histogram\n"
        'realconnect_matcher_batch_seconds_bucket{le="+Inf"} 3.0\n'
        "realconnect_matcher_batch_seconds_count 3.0\n"
        "realconnect_matcher_batch_seconds_sum 0.25\n"
        "# HELP python_gc_objects_collected_total Objects\n"
        "# TYPE python_gc_objects_collected_total counter\n"
        'python_gc_objects_collected_total{generation="0"} 7.0\n'
    )
    assert matcher_totals(text) == {"events": 1500.0, "batches": 3.0, "batch_seconds": 0.25}
