"""The faust fixes are wired into every worker app, and flow control leaves paused partitions
alone. (The race itself is shown against real Kafka by tests/integration/test_matcher_crash.py,
which fails on any offset gap.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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
    assert isinstance(app.assignor, faust_fixes.PartitionAssignor)


def test_a_global_changelog_missing_from_the_metadata_gets_no_standbys_instead_of_a_keyerror(
    tmp_path: Path,
) -> None:
    """What a restarted broker's first metadata does to faust's assignor (fix 4): the
    changelogs of the matcher's global tables (profiles, labels, circles) are not listed, so the
    partition counts it passes on lack them."""
    from faust.assignor.client_assignment import ClientAssignment
    from faust.assignor.partition_assignor import PartitionAssignor as FaustAssignor

    from services.common.settings import MatcherSettings
    from services.matcher.app import create_app

    app = create_app(Settings(namespace="unit", matcher=MatcherSettings(data_dir=tmp_path)))
    ours: Any = app.assignor
    changelogs = {t.changelog_topic.get_topic_name() for t in app.tables.values() if t.is_global}
    assert len(changelogs) == 4  # profiles, labels, circles and group_marks

    def assignments() -> dict[str, ClientAssignment]:
        return {"m1": ClientAssignment(actives={}, standbys={})}

    with pytest.raises(KeyError) as missing:  # faust 0.15.3's own assignor
        FaustAssignor._global_table_standby_assignments(ours, assignments(), {})
    assert missing.value.args[0] in changelogs
    got = ours._global_table_standby_assignments(assignments(), {})
    assert got["m1"].standbys == {c: [] for c in changelogs}

    listed = {c: 4 for c in changelogs}  # once listed, every partition, as faust does
    got = ours._global_table_standby_assignments(assignments(), listed)
    assert got["m1"].standbys == {c: [0, 1, 2, 3] for c in changelogs}


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


def _quiet(*_: object, **__: object) -> None:
    pass


class _Recorded:
    """Whatever recovery calls on the app and its consumer, in order (no broker)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def note(self, name: str, arg: object = None) -> None:
        self.calls.append((name, arg))


def _recovery(cls: type, record: _Recorded) -> object:
    """A recovery object of ``cls`` wired to a stand-in app whose consumer records calls."""
    from types import SimpleNamespace

    class Signal:
        async def send(self) -> None:
            record.note("rebalance_complete")

    class Consumer:
        def __init__(self) -> None:
            # what perform_seek found: partition 1 was never committed by the group
            self._committed_offset = {TP("t.interactions", 0): 41}

        def assignment(self) -> set[TP]:
            return {TP("t.interactions", 0), TP("t.interactions", 1), TP("t.pairs-changelog", 0)}

        async def seek(self, tp: TP, offset: int) -> None:
            record.note("seek_to", (tp, offset))

        def pause_partitions(self, tps: set[TP]) -> None:
            record.note("pause", frozenset(tps))

        def resume_partitions(self, tps: set[TP]) -> None:
            record.note("resume", frozenset(tps))

        async def perform_seek(self) -> None:
            record.note("seek")

        def resume_flow(self) -> None:
            record.note("resume_flow")

    class Fetcher:
        async def maybe_start(self) -> None:
            pass

    app = SimpleNamespace(
        consumer=Consumer(),
        on_rebalance_complete=Signal(),
        consumer_generation_id=0,
        conf=SimpleNamespace(broker_request_timeout=5.0),
        flow_control=SimpleNamespace(resume=lambda: record.note("flow_control_resume")),
        _fetcher=Fetcher(),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()),
        on_rebalance_end=lambda: None,
    )
    tables = SimpleNamespace(
        values=lambda: [], on_actives_ready=lambda: None, on_standbys_ready=lambda: None
    )
    recovery = cls.__new__(cls)
    fields = {
        "app": app,
        "tables": tables,
        "completed": SimpleNamespace(set=lambda: record.note("completed")),
        "actives_for_table": {},
        "standbys_for_table": {},
        "_set_recovery_ended": lambda: None,
        "_is_changelog_tp": lambda tp: tp.topic.endswith("-changelog"),
        "log": SimpleNamespace(info=_quiet, warning=_quiet, dev=_quiet),
    }
    for name, value in fields.items():
        object.__setattr__(recovery, name, value)

    async def wait(coro: object, timeout: float) -> None:
        await coro  # type: ignore[misc]

    object.__setattr__(recovery, "_wait", wait)
    return recovery


async def test_recovery_seeks_the_input_partitions_while_they_are_still_paused() -> None:
    """Deterministic: the order of the calls, not a race that may or may not happen."""
    from faust.tables.recovery import Recovery as Upstream

    stream = frozenset({TP("t.interactions", 0), TP("t.interactions", 1)})
    fixed, upstream = _Recorded(), _Recorded()
    await _recovery(faust_fixes.Recovery, fixed).on_recovery_completed(0)  # type: ignore[attr-defined]
    await _recovery(Upstream, upstream).on_recovery_completed(0)  # type: ignore[attr-defined]
    order = [name for name, _ in fixed.calls]
    assert ("pause", stream) in fixed.calls and ("resume", stream) in fixed.calls
    assert order.index("pause") < order.index("seek") < order.index("resume")
    assert order.index("seek") < order.index("flow_control_resume")
    # the never-committed partition starts at the beginning, still paused (fix 3); the
    # committed one stays where perform_seek put it
    assert [arg for name, arg in fixed.calls if name == "seek_to"] == [(TP("t.interactions", 1), 0)]
    assert order.index("seek") < order.index("seek_to") < order.index("resume")
    # faust-streaming 0.15.3 itself resumes first and seeks after, and leaves a
    # never-committed partition wherever a fetch before the pause left it
    up = [name for name, _ in upstream.calls]
    assert up.index("resume") < up.index("seek")
    assert "seek_to" not in up


async def test_the_stall_watchdog_tells_an_outage_from_a_stall() -> None:
    """No broker answering is an outage (nothing can commit), not a stall to end a worker
    for: the watchdog asks before it counts."""
    import asyncio
    import socket

    from services.common.worker import any_broker_answers

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, not listening: connections are refused
        assert await any_broker_answers(f"127.0.0.1:{port}")
        assert await any_broker_answers(f"127.0.0.1:{closed},127.0.0.1:{port}")
        assert not await any_broker_answers(f"127.0.0.1:{closed}")
    server.close()
    await server.wait_closed()


def test_the_stall_clock_counts_from_the_last_move() -> None:
    from services.common.worker import StallClock

    clock = StallClock()
    assert clock.observe(0.0, {}) == 0.0
    assert clock.observe(10.0, {"p0": 5, "p1": 0}) == 0.0  # first seen: the clock starts
    assert clock.observe(25.0, {"p0": 5, "p1": 0}) == 15.0
    assert clock.observe(30.0, {"p0": 7, "p1": 0}) == 20.0  # p0 moved; p1 still at 0
    assert clock.observe(40.0, {"p0": 7}) == 10.0  # p1 caught up: only p0, since 30
    assert clock.observe(41.0, {"p1": 0}) == 0.0  # waiting again: from zero
    clock.reset()
    assert clock.observe(50.0, {"p1": 0}) == 0.0
