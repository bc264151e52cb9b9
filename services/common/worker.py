"""Builds faust apps and runs them as workers, configured from Settings."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import faust
import structlog
from mode import Service

from services.common import records
from services.common.gc_tuning import tune_gc
from services.common.kafka import Topics
from services.common.settings import Settings


def survives(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A timer body whose error is logged, not raised: an exception escaping a faust timer
    ends that timer for good (no more ticks, no more published counts)."""

    @functools.wraps(fn)
    async def run() -> None:
        try:
            await fn()
        except Exception:
            structlog.get_logger(__name__).exception("timer_failed", timer=fn.__name__)

    return run


def owned_partitions(app: faust.App, topic: str) -> list[int]:
    """The partitions of ``topic`` this worker's consumer holds right now (the consumer's
    own assignment: the assignor's bookkeeping has lagged behind it)."""
    assigned = app.consumer.assignment()
    return sorted(tp.partition for tp in assigned if tp.topic == topic)


def new_faust_app(
    settings: Settings,
    service: str,
    *,
    store: str,
    data_dir: Path,
    web_port: int,
    standby_replicas: int = 1,
) -> faust.App:
    """A faust app with broker, store and guarantees passed explicitly from Settings."""
    datadir = data_dir / (settings.namespace or "default")
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        Topics(settings).app_id(service),
        # ikafka = aiokafka with an idempotent acks=all producer (services.common.faust_transport)
        broker=f"ikafka://{settings.kafka.bootstrap_servers}",
        # rocksdb with one memory cap per worker (services.common.rocksdb_store)
        store="rocksdb-bounded://" if store == "rocksdb" else "memory://",
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_linger_ms=settings.kafka.linger_ms,
        # a record's changelog writes go out as one producer batch (send_many): faust's
        # 16 KiB default split them into several, each waiting for the one before to drain
        producer_max_batch_size=512 * 1024,
        producer_partitioner=records.KafkaPartitioner(),  # Kafka's murmur2, in C
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_s,
        web_enabled=True,
        # web_bind is the address the server listens on (web_host only names it in URLs):
        # loopback by default
        web_bind=settings.worker_web_host,
        web_host=settings.worker_web_host,
        web_port=web_port,
        # faust's own pages show state (table keys and values, sensors, assignments, the
        # cluster's URLs) with no authentication: all off. This project routes nothing over
        # HTTP between workers (no @table_route), so the router is not needed either.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_in_thread=False,
        autodiscover=False,
        # Stdout/stderr are ours (structlog); faust must not re-route them.
        worker_redirect_stdouts=False,
        consumer_auto_offset_reset="earliest",
        # a fetch's records in runs of one partition (services.common.faust_transport)
        ConsumerScheduler="services.common.faust_transport.PartitionRuns",
        # recovery that seeks input partitions before resuming them (faust_fixes)
        TableManager="services.common.faust_fixes.TableManager",
        # an assignment made while the broker's metadata lacks topics (faust_fixes)
        PartitionAssignor="services.common.faust_fixes.PartitionAssignor",
        table_standby_replicas=standby_replicas,
    )
    add_metrics_page(app, settings)
    return app


def add_metrics_page(app: faust.App, settings: Settings) -> None:
    """``/healthz`` (no state, no token: what a liveness probe and the console's badge read)
    and Prometheus text at ``/metrics`` behind the admin token (master or ``metrics``
    scope), as on every HTTP service."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from services.common.admin import UNAUTHENTICATED, bearer_valid

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        header = request.headers.get("Authorization", "").encode("latin-1", "replace")
        if not bearer_valid(header, settings, "metrics"):
            return web.bytes(
                UNAUTHENTICATED,
                content_type="application/problem+json",
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


async def any_broker_answers(bootstrap: str, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to one of the bootstrap brokers opens within ``timeout``."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False


class StallClock:
    """How long partitions with records waiting have stayed where they are (pure).

    ``observe`` takes each waiting partition at its position (a committed offset); a
    partition that moved, or is no longer waiting, starts again from zero."""

    def __init__(self) -> None:
        self._since: dict[Any, tuple[int, float]] = {}

    def observe(self, now: float, waiting: dict[Any, int]) -> float:
        """The longest any of ``waiting`` has stayed at its position, in seconds (0 if none)."""
        since = {}
        for key, at in waiting.items():
            first = self._since.get(key)
            since[key] = first if first is not None and first[0] == at else (at, now)
        self._since = since
        return max((now - t for _, t in since.values()), default=0.0)

    def reset(self) -> None:
        self._since.clear()


class IdleWatch(Service):
    """A worker holding **no** input partition while its group has records waiting.

    The stall watchdog's timer sees only the partitions its worker holds, and faust starts
    timers only once table recovery is complete, which a worker that was never assigned
    anything never reaches. That is how faust's assignor left a matcher after a broker
    restart (fix 4 in ``faust_fixes``): idle for good, its input waiting, no timer running.
    This service starts with the app, before recovery, and asks Kafka (with ``bootstrap``)
    whether the group has records waiting on an input partition whose committed position
    has not moved while this worker held none: after ``stall_s`` it logs it, after twice
    that it exits 70 like the watchdog, and its restart makes the group assign again.
    While no broker answers that is an outage, and the clock starts again.

    A worker beyond the partition count is idle by design: while another member recovers a
    large state for longer than twice ``stall_s``, such a worker exits and rejoins.
    """

    def __init__(
        self, app: faust.App, topics: set[str], stall_s: float, bootstrap: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.topics = topics
        self.stall_s = stall_s
        self.bootstrap = bootstrap
        self.interval = max(1.0, stall_s / 3)
        self.clock = StallClock()
        self._probe: Any = None  # open only while the worker holds no input partition
        self._log = structlog.get_logger("realconnect.watchdog")

    def holds_input(self) -> bool:
        consumer: Any = self.app.consumer
        try:
            assigned = consumer.assignment()
        except Exception:  # its Kafka consumer is not started (yet): it holds nothing
            return False
        return any(tp.topic in self.topics for tp in assigned)

    @Service.task
    async def _watch(self) -> None:
        import time

        while not self.should_stop:
            await self.sleep(self.interval)
            try:
                if self.holds_input() or self.app.in_recovery:
                    self.clock.reset()
                    await self._close_probe()
                    continue
                await self.check(time.monotonic())
            except Exception:  # never end the watch: log, and look again next time
                self._log.exception("idle_check_failed")
                self.clock.reset()
                await self._close_probe()

    async def check(self, now: float) -> None:
        from services.common.kafka import LagProbe

        if self._probe is None:
            self._probe = await LagProbe(self.bootstrap).__aenter__()
        waiting = await self._probe.waiting(self.topics, str(self.app.conf.id))
        stalled = self.clock.observe(now, waiting)
        if stalled < self.stall_s:
            return
        if not await any_broker_answers(self.bootstrap):
            self._log.warning("broker_unreachable", note="not a stall: the clock starts again")
            self.clock.reset()
            return
        facts = {
            "waiting": {f"{tp.topic}[{tp.partition}]": at for tp, at in sorted(waiting.items())},
            "rebalancing": bool(self.app.rebalancing),
            "stalled_s": round(stalled),
        }
        if stalled < self.stall_s + self.interval:  # once, then the exit
            self._log.warning("idle_while_input_waits", **facts)
        if stalled >= 2 * self.stall_s:
            self._log.critical("idle_while_input_waits", exiting=70, **facts)
            os._exit(70)

    async def _close_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            await probe.__aexit__()

    async def on_stop(self) -> None:
        await self._close_probe()


def add_stall_watchdog(
    app: faust.App, topics: set[str], stall_s: float, bootstrap: str | None = None
) -> None:
    """Watch the worker's input partitions: one with records waiting whose committed offset
    has not moved for ``stall_s`` seconds (outside recovery and rebalances) is stalled.
    While no broker of ``bootstrap`` answers, nothing can commit: that is an outage, not a
    stall, and the clock starts again once a broker is back (make reliability caught the
    watchdog ending the workers during a broker restart).

    A last resort: the stall ``make reliability`` and CI caught after SIGKILLs was faust's
    recovery race, fixed in ``services.common.faust_fixes``. The watchdog logs what faust
    holds for the partition and resumes it if faust left it paused; if it is still stalled
    ``stall_s`` later, it exits the worker with status 70 so that the orchestrator restarts
    it on a fresh consumer (processing is at-least-once and idempotent: nothing is lost).

    With ``bootstrap``, an `IdleWatch` covers the worker that holds no input partition.
    """
    import time

    log = structlog.get_logger("realconnect.watchdog")
    since: dict[Any, tuple[int | None, float]] = {}
    if bootstrap is not None:
        app.add_dependency(IdleWatch(app, topics, stall_s, bootstrap))

    interval = max(1.0, stall_s / 3)

    @app.timer(interval=interval)  # type: ignore[untyped-decorator]
    async def stall_watchdog() -> None:
        consumer: Any = app.consumer
        now = time.monotonic()
        if app.in_recovery or app.rebalancing:
            since.clear()
            return
        for tp in consumer.assignment():
            if tp.topic not in topics:
                continue
            committed = consumer._committed_offset.get(tp)
            end = consumer.highwater(tp)
            if end is None or committed is None or committed >= end:
                since.pop(tp, None)  # caught up (or nothing committed yet)
                continue
            first = since.get(tp)
            if first is None or first[0] != committed:
                since[tp] = (committed, now)
                continue
            stalled = now - first[1]
            if stalled < stall_s:
                continue
            if bootstrap is not None and not await any_broker_answers(bootstrap):
                log.warning("broker_unreachable", note="not a stall: the clock starts again")
                since.clear()
                return
            if stalled < stall_s + interval:  # once per stall: what faust and aiokafka hold
                log.warning("partition_stall_suspected", **consumer_diagnosis(app, tp))
            if tp in consumer._paused_partitions:
                consumer.resume_partitions([tp])
                log.warning("partition_resumed", topic=tp.topic, partition=tp.partition)
            if stalled >= 2 * stall_s:
                log.critical(
                    "partition_stalled",
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=committed,
                    end=end,
                    stalled_s=round(stalled),
                )
                os._exit(70)


def consumer_diagnosis(app: faust.App, tp: Any) -> dict[str, Any]:
    """What faust's consumer and the aiokafka consumer under it hold for ``tp``: enough to
    tell a paused or flow-controlled partition from one whose commits are stuck behind an
    offset that was read and never acknowledged. Reads private state: diagnostics only."""
    consumer: Any = app.consumer
    out: dict[str, Any] = {"topic": tp.topic, "partition": tp.partition}
    try:
        acked = sorted(consumer._acked.get(tp) or [])
        gap = sorted((i.begin, i.end) for i in consumer._gap.get(tp) or [])
        out |= {
            "committed": consumer._committed_offset.get(tp),
            "read_offset": consumer._read_offset.get(tp),
            "acked_n": len(acked),
            "acked_head": acked[:5],
            "gap_head": gap[:5],
            "active": tp in (consumer._active_partitions or ()),
            "paused": tp in consumer._paused_partitions,
            "buffered": tp in consumer._buffered_partitions,
            "flow_active": consumer.flow_active,
            "unacked": sorted(m.offset for m in list(consumer._unacked_messages) if m.tp == tp)[:5],
            "highwater": consumer.highwater(tp),
            "in_conductor": len(cast(Any, app.topics)._tp_index.get(tp, ())),
        }
        kafka = consumer._thread._consumer
        if kafka is not None:
            state = kafka._subscription.subscription.assignment.state_value(tp)
            out |= {
                "kafka_paused": state.paused if state else None,
                "kafka_position": state.position if state else None,
            }
    except Exception as exc:  # private state moved: say so, never fail the timer
        out["diagnosis_error"] = repr(exc)
    return out


def run_worker(
    app: faust.App,
    log_level: str,
    gc_thresholds: tuple[int, int, int] | None = None,
    **kwargs: Any,
) -> None:
    """Run ``app`` as a worker in this process until SIGTERM/SIGINT, with
    ``gc_thresholds`` (``Settings.gc_thresholds``: services.common.gc_tuning) if given."""
    from faust.worker import Worker

    if gc_thresholds is not None:
        tune_gc(gc_thresholds)

    worker = Worker(
        app, loglevel=log_level, override_logging=False, redirect_stdouts=False, **kwargs
    )
    worker.execute_from_commandline()
