"""The faust fixes are wired into every worker app, and flow control leaves paused partitions
alone. (The race itself is shown against real Kafka by tests/integration/test_matcher_crash.py,
which fails on any offset gap.)"""

from __future__ import annotations

from pathlib import Path

from faust.types import TP

from services.common import faust_fixes
from services.common.settings import Settings
from services.common.worker import new_faust_app


def test_worker_apps_recover_with_the_seek_first_recovery_and_the_fixed_consumer(
    tmp_path: Path,
) -> None:
    app = new_faust_app(
        Settings(namespace="unit"), "matcher", store="memory", data_dir=tmp_path, web_port=6999
    )
    assert isinstance(app.tables.recovery, faust_fixes.Recovery)
    assert app.transport.Consumer is faust_fixes.Consumer


def _consumer() -> faust_fixes.Consumer:
    consumer = faust_fixes.Consumer.__new__(faust_fixes.Consumer)  # no app, no broker
    consumer._active_partitions = set()
    consumer._paused_partitions = set()
    consumer._buffered_partitions = set()
    return consumer


def test_a_drained_buffer_does_not_resume_a_partition_recovery_paused() -> None:
    tp = TP("t.interactions", 3)
    consumer = _consumer()
    consumer._buffered_partitions.add(tp)  # its stream buffer was full...
    consumer._paused_partitions.add(tp)  # ...then a rebalance paused it for recovery
    consumer.on_buffer_drop(tp)
    assert tp not in consumer._active_partitions
    assert tp not in consumer._buffered_partitions  # resume_partitions brings it back


def test_a_drained_buffer_still_resumes_a_partition_that_is_not_paused() -> None:
    tp = TP("t.interactions", 1)
    consumer = _consumer()
    consumer._buffered_partitions.add(tp)
    consumer.on_buffer_drop(tp)
    assert tp in consumer._active_partitions
