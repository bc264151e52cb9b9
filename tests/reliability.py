"""make reliability: numbered replays under injected faults, checked end to end.

Each scenario runs ingest, matcher, notifier and feeds in a namespace of its own against the
real Kafka and a Redis of its own (AOF on), and:

1. opts in the people of ``PAIRS`` conversations (each ends in exactly one suggestion under
   the default policy) and sends ``EVENTS`` numbered interactions over HTTP in small batches
   (conversation turns among likes between strangers; ``event_id`` = sequence number); a
   batch counts as acknowledged only on a 202, and is retried until it gets one;
2. meanwhile injects its faults at random moments while events are still being sent
   (SIGKILL of a worker, of the broker or of Redis; a second matcher joining and leaving);
   a fault after the last event, or a worker that exits by itself (a stall), fails it;
3. drains the pipeline and checks it against two references that are not the code under
   test: the generator's own answer (each conversation: exactly one suggestion, in both
   people's feeds once, with three replies each way over the conversation's span; nothing
   else), and the same input replayed without faults in a namespace of its own (every
   suggestion's score, explanation and evidence, and every feed item, the same). The
   matcher's own count of the interactions it took in must equal those acknowledged.

Run: ``python -m tests.reliability`` (``make reliability``); the table goes to stdout and to
``docs/reliability.md``. Exit status 1 if any scenario lost or duplicated anything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import Interaction
from services import pipeline
from services.common.kafka import Topics, delete_namespace_topics, ensure_topics
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from tests.stack import BIN, PrivateKafka, PrivateRedis, ServiceStack, free_port

ROOT = Path(__file__).resolve().parent.parent
PAIRS = 60
EVENTS = 6000
BATCH = 50
EVERY_S = 0.1
START = datetime(2026, 3, 2, 8, tzinfo=UTC)


def numbered_events(run: str) -> list[Interaction]:
    """EVENTS interactions in event-time order: PAIRS conversations among likes between
    strangers. Each conversation spans a third of the run (so it crosses a day boundary) and
    they start one after another, so suggestions are made all along the run, not only at
    its end: a fault at any moment meets some in flight."""
    rng = random.Random(run)
    turns: dict[int, tuple[str, str]] = {}
    window = EVENTS // 3
    for p in range(PAIRS):
        first = p * (EVENTS - window) // PAIRS
        for i in range(6):  # three meaningful turns each way
            a, b = (f"r{run}a{p}", f"r{run}b{p}")
            slot = first + i * (window - 1) // 5
            while slot in turns:  # another conversation's turn is there: the next free one
                slot += 1
            turns[slot] = (a, b) if i % 2 == 0 else (b, a)
    out = []
    for n in range(EVENTS):
        t = START + timedelta(seconds=80 * n)  # 5.5 days of event time in all
        if n in turns:
            actor, target = turns[n]
            kind, text = "reply", "How did the interview go, and what did they ask you?"
        else:
            actor, target = f"r{run}n{rng.randrange(5000)}", f"r{run}m{rng.randrange(5000)}"
            kind, text = "like", None
        out.append(
            Interaction(
                source="reliability",
                event_id=f"{run}-{n:06d}",
                kind=kind,
                actor=actor,
                target=target,
                occurred_at=t,
                text=text,
            )
        )
    return out


@dataclass(frozen=True)
class Conversation:
    """What the generator knows of one conversation, whatever the matcher's code says."""

    a: str
    b: str
    first_at: str
    last_at: str

    def agrees_with(self, evidence: dict[str, Any]) -> bool:
        """Three replies each way, replies only, from the one source, over the known span."""
        return (
            evidence.get("exchanges") == {f"{self.a}->{self.b}": 3, f"{self.b}->{self.a}": 3}
            and evidence.get("kinds") == {"reply": 6}
            and evidence.get("sources") == ["reliability"]
            and evidence.get("first_exchange_at") == self.first_at
            and evidence.get("last_exchange_at") == self.last_at
        )


def ground_truth(events: list[Interaction]) -> dict[tuple[str, str], Conversation]:
    """The PAIRS conversations of the generated events (their replies; the likes are between
    strangers): each must end in exactly one suggestion, in both people's feeds."""
    replies: dict[tuple[str, str], list[Interaction]] = {}
    for e in events:
        if e.kind == "reply":
            pair = (e.actor, e.target) if e.actor < e.target else (e.target, e.actor)
            replies.setdefault(pair, []).append(e)
    assert len(replies) == PAIRS and all(len(r) == 6 for r in replies.values())
    return {
        pair: Conversation(
            a=pair[0],
            b=pair[1],
            first_at=min(e.occurred_at for e in r).isoformat(),
            last_at=max(e.occurred_at for e in r).isoformat(),
        )
        for pair, r in replies.items()
    }


@dataclass
class Observed:
    """What a run produced, to compare with the fault-free run of the same input."""

    #: pair -> (score, explanation, evidence) of each distinct suggestion of the pair
    suggestions: dict[tuple[str, str], list[tuple[float, str, dict[str, Any]]]]
    #: (person, the other person) -> suggestion items in the person's feed
    feed: Counter[tuple[str, str]]


def differences(run: Observed, baseline: Observed) -> int:
    """Pairs whose suggestions or feed items differ between the two runs."""
    pairs = set(run.suggestions) | set(baseline.suggestions)
    differ = {p for p in pairs if run.suggestions.get(p) != baseline.suggestions.get(p)}
    for person, other in set(run.feed) | set(baseline.feed):
        if run.feed[(person, other)] != baseline.feed[(person, other)]:
            differ.add((person, other) if person < other else (other, person))
    return len(differ)


@dataclass
class Result:
    scenario: str
    faults: list[str] = field(default_factory=list)
    sent: int = 0
    acknowledged: int = 0
    processed: int = 0
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    lost: int = 0
    extra: int = 0
    evidence_mismatches: int = 0
    #: workers that exited on their own (the stall watchdog) and had to be started again
    stalls: int = 0
    #: faults injected after the last event was acknowledged (not mid-stream)
    late_faults: int = 0
    #: pairs whose suggestion (or feed items) differ from the fault-free run of the same input
    differs: int = 0
    seconds: float = 0.0

    aborted: str | None = None  # the scenario could not finish (an acknowledged-never batch)

    @property
    def ok(self) -> bool:
        return not (
            self.aborted
            or self.duplicates
            or self.lost
            or self.extra
            or self.evidence_mismatches
            or self.processed != self.acknowledged  # counters true across redelivery
            or self.stalls
            or self.late_faults
            or self.differs
        )


Fault = Callable[["Run"], Awaitable[str]]


class Run:
    """One scenario's services, Redis and load."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        cluster: Cluster | None = None,
        broker: PrivateKafka | None = None,
    ) -> None:
        self.name = name
        self.redis = PrivateRedis(workdir / "redis")
        self.redis.start()
        #: the one-node broker the faults kill, when not the local stack's (the test suite
        #: runs in parallel against the shared broker: a fault must not take it from others)
        self.broker = broker
        kafka = {} if cluster is None else {"bootstrap_servers": cluster.bootstrap}
        if broker is not None:
            kafka = {"bootstrap_servers": broker.bootstrap}
        replication = "1" if cluster is None else "3"
        self.settings = Settings(
            namespace=f"rel{uuid.uuid4().hex[:8]}",
            redis={"url": f"redis://127.0.0.1:{self.redis.port}/0"},
            kafka={**kafka, "replication_factor": int(replication)},
        )
        self.stack = ServiceStack(
            self.settings,
            workdir,
            ("ingest", "feeds", "matcher", "notifier"),
            REALCONNECT_INGEST__RATE_PER_S="1000000",
            REALCONNECT_INGEST__BURST="1000000",
            REALCONNECT_MATCHER__IDLE_FLUSH_S="2",
            REALCONNECT_KAFKA__STALL_TIMEOUT_S="15",
            REALCONNECT_KAFKA__REPLICATION_FACTOR=replication,
            # the generator's answer (one suggestion per conversation) is the rule gates':
            # its conversations span a third of a run, far less than the model's weeks
            REALCONNECT_MATCHER__MIN_PROBABILITY="0",
        )
        self.extra: subprocess.Popen[bytes] | None = None
        self.workdir = workdir
        self.progress = 0  # events acknowledged so far

    async def supervise(self, result: Result) -> None:
        """What an orchestrator does (compose `restart: unless-stopped`, a k8s Deployment):
        start again a worker that exited on its own (the stall watchdog exits with 70). No
        scenario expects one: each is counted as a stall, and fails the scenario."""
        while True:
            await asyncio.sleep(1.0)
            for name in ("matcher", "notifier"):
                proc = self.stack.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    result.faults.append(f"STALL: {name} exited {proc.returncode}, restarted")
                    result.stalls += 1
                    self.stack.start_one(name)

    async def restart_worker(self, name: str) -> None:
        self.stack.kill(name, signal.SIGKILL)
        await asyncio.sleep(random.uniform(0.2, 1.5))
        self.stack.start_one(name)
        await asyncio.to_thread(self.stack.wait_ready, name, 120)

    def second_matcher(self) -> None:
        env = {
            **self.stack.env,
            "REALCONNECT_MATCHER__WEB_PORT": str(free_port()),
            "REALCONNECT_MATCHER__DATA_DIR": str(self.workdir / "matcher2"),
        }
        with (self.workdir / "matcher2.log").open("ab") as log:
            self.extra = subprocess.Popen(
                [str(BIN), "worker", "matcher"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop_second_matcher(self) -> None:
        if self.extra and self.extra.poll() is None:
            os.killpg(self.extra.pid, signal.SIGTERM)
            self.extra.wait(timeout=60)


async def kill_matcher(run: Run) -> str:
    await run.restart_worker("matcher")
    return "SIGKILL matcher"


async def kill_notifier(run: Run) -> str:
    await run.restart_worker("notifier")
    return "SIGKILL notifier"


async def kill_redis(run: Run) -> str:
    run.redis.kill()  # SIGKILL: what Redis acknowledged is in its AOF (written, not fsynced)
    await asyncio.sleep(1.0)
    run.redis.start()
    return "SIGKILL Redis"


async def restart_local_broker(down_s: float = 2.0) -> None:
    """SIGKILL the local stack's broker (the one every scenario and test uses), leave it down
    ``down_s`` seconds, then start it again (``deploy/stack.sh up infra`` waits until it
    answers)."""
    pid = int((ROOT / ".run" / "pids" / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(down_s)
    stack = str(ROOT / "deploy" / "stack.sh")
    await asyncio.to_thread(
        subprocess.run, [stack, "up", "infra"], check=True, stdout=subprocess.DEVNULL
    )


async def kill_broker(run: Run) -> str:
    if run.broker is not None:
        await asyncio.to_thread(run.broker.restart, 2.0)
    else:
        await restart_local_broker()
    return "SIGKILL Kafka broker"


async def scale_matcher(run: Run) -> str:
    run.second_matcher()  # 1 -> 2 workers: a rebalance moves half the partitions
    await asyncio.sleep(random.uniform(8, 12))
    run.stop_second_matcher()  # 2 -> 1: they move back
    return "matcher 1→2→1"


SCENARIOS: dict[str, list[Fault]] = {
    "matcher killed ×3": [kill_matcher, kill_matcher, kill_matcher],
    "notifier killed ×3": [kill_notifier, kill_notifier, kill_notifier],
    "Redis killed": [kill_redis],
    "Kafka broker killed": [kill_broker],
    "matcher scaled 1→2→1": [scale_matcher],
}


async def send(run: Run, events: list[Interaction]) -> list[Interaction]:
    """POST the events in numbered batches, each retried until acknowledged (202)."""
    acked: list[Interaction] = []
    async with httpx.AsyncClient(base_url=run.stack.url("ingest"), timeout=15) as client:
        next_at = time.monotonic()
        for start in range(0, len(events), BATCH):
            batch = events[start : start + BATCH]
            body = b"[" + b",".join(e.model_dump_json().encode() for e in batch) + b"]"
            deadline = time.monotonic() + 120
            while True:
                try:
                    r = await client.post(
                        "/v1/interactions:batch",
                        content=body,
                        headers={
                            "content-type": "application/json",
                            "authorization": "Bearer dev-producer-token",
                        },
                    )
                    if r.status_code == 202:
                        acked += batch
                        run.progress = len(acked)
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"batch at {start} never acknowledged")
                await asyncio.sleep(0.5)
            next_at += EVERY_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return acked


async def inject(run: Run, faults: list[Fault], result: Result) -> None:
    """Each fault once the replay has reached a random point of its own share of the first
    80% of the events (a restart takes seconds: the last fault still meets events in
    flight). Each says how far the replay was; one after the last event proves nothing
    about work in flight and fails the scenario."""
    share = 0.8 / max(1, len(faults))
    for i, fault in enumerate(faults):
        at_least = int(EVENTS * (0.05 + share * (i + random.uniform(0.1, 0.9))))
        while run.progress < at_least:  # noqa: ASYNC110 - polls a counter that send() moves
            await asyncio.sleep(0.05)
        at = run.progress
        name = await fault(run)
        result.faults.append(f"{name} at event {at:,}")
        if at >= EVENTS:
            result.late_faults += 1


async def scenario(
    name: str,
    faults: list[Fault],
    workdir: Path,
    tag: str,
    baseline: Observed | None,
    cluster: Cluster | None = None,
    broker: PrivateKafka | None = None,
) -> tuple[Result, Observed | None]:
    """One run of the input of ``tag`` with ``faults``, checked against the generator's own
    answer and, when given, the fault-free run of the same input (``baseline``)."""
    started = time.monotonic()
    run = Run(name, workdir, cluster, broker)
    result = Result(name)
    observed: Observed | None = None
    try:
        for attempt in range(60):  # a fresh cluster elects its controller first
            try:
                await ensure_topics(run.settings)
                break
            except Exception:
                if attempt == 59:
                    raise
                await asyncio.sleep(1)
        await asyncio.to_thread(run.stack.start)
        events = numbered_events(tag)
        people = sorted({p for e in events if e.kind == "reply" for p in (e.actor, e.target)})
        admin = {"authorization": f"Bearer {run.settings.admin_token.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=run.stack.url("feeds"), timeout=15) as feeds:
            for person in people:
                r = await feeds.post(f"/v1/people/{person}/tokens", headers=admin)
                r.raise_for_status()
                auth = {"authorization": f"Bearer {r.json()['token']}"}
                body = {"opted_in": True, "max_per_week": 50}
                (await feeds.put("/v1/me/preferences", json=body, headers=auth)).raise_for_status()
        result.sent = len(events)
        supervisor = asyncio.create_task(run.supervise(result))
        acked, _ = await asyncio.gather(send(run, events), inject(run, faults, result))
        result.acknowledged = len({e.event_id for e in acked})  # retried batches count once
        run.stop_second_matcher()
        await pipeline.drain(run.settings, timeout=300)
        await asyncio.sleep(2)  # the notifier's last Redis writes
        supervisor.cancel()

        # against the generator's own answer: one suggestion per conversation, nothing else
        truth = ground_truth(events)
        got_topic = await pipeline.read_suggestions(run.settings, idle_s=2.0, unique=False)
        made: dict[tuple[str, str], list[Any]] = {}
        for s in {s.suggestion_id: s for s in got_topic}.values():  # a re-emission is one
            made.setdefault(s.pair, []).append(s)
        result.expected = len(truth)
        for pair, conversation in truth.items():
            if len(made.get(pair, [])) == 1 and not conversation.agrees_with(
                made[pair][0].evidence
            ):
                result.evidence_mismatches += 1
        seen: Counter[tuple[str, str]] = Counter()
        async with httpx.AsyncClient(base_url=run.stack.url("feeds"), timeout=15) as feeds:
            for person in people:
                r = await feeds.get(f"/v1/people/{person}/feed", headers=admin)
                r.raise_for_status()
                for item in r.json()["items"]:
                    if item["type"] == "suggestion":
                        seen[(person, item["other_person_id"])] += 1
        wanted = {(a, b) for a, b in truth} | {(b, a) for a, b in truth}
        result.delivered = sum(1 for a, b in truth if seen[(a, b)] and seen[(b, a)])
        result.duplicates = sum(c - 1 for c in seen.values() if c > 1)
        result.duplicates += sum(len(v) - 1 for v in made.values() if len(v) > 1)
        result.lost = len(wanted - set(seen))
        result.extra = len(set(seen) - wanted) + len(set(made) - set(truth))
        observed = Observed(
            suggestions={
                pair: sorted((s.score, s.explanation, s.evidence) for s in v)  # type: ignore[misc]
                for pair, v in made.items()
            },
            feed=seen,
        )
        if baseline is not None:
            result.differs = differences(observed, baseline)
        rc = new_redis(run.settings)
        try:
            # the matcher's own count (per partition, kept with its states): a redelivered
            # interaction must not count twice, a lost count would show here too
            counts = await rc.hgetall(Keys(run.settings).matcher_counts)
            result.processed = sum(
                int(v) for k, v in counts.items() if k.startswith(b"interactions_processed:")
            )
        finally:
            await rc.aclose()
    finally:
        run.stop_second_matcher()
        await asyncio.to_thread(run.stack.stop)
        run.redis.stop()
        await delete_namespace_topics(
            run.settings.kafka.bootstrap_servers, [run.settings.namespace]
        )
        result.seconds = time.monotonic() - started
    return result, observed


class Cluster:
    """Three KRaft nodes (broker + controller each) as local java processes."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = [free_port() for _ in range(3)]
        self.controllers = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.cp = str(ROOT / ".cache" / "kafka" / "lib" / "*")
        self.log4j = f"-Dlog4j2.configurationFile={ROOT / 'deploy' / 'kafka' / 'log4j2.yaml'}"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> None:
        template = (ROOT / "deploy" / "kafka" / "cluster.properties.in").read_text()
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, c in enumerate(self.controllers))
        java = ["java", "-Xms384m", "-Xmx384m", self.log4j, "-cp", self.cp]
        cluster_id = subprocess.run(
            [*java, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        for i in range(3):
            conf = self.workdir / f"node{i + 1}.properties"
            text = template
            for k, v in {
                "NODE": str(i + 1),
                "PORT": str(self.ports[i]),
                "CONTROLLER_PORT": str(self.controllers[i]),
                "VOTERS": voters,
                "DATA_DIR": str(self.workdir / f"node{i + 1}"),
            }.items():
                text = text.replace(f"@{k}@", v)
            conf.write_text(text)
            subprocess.run(
                [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(conf)],
                capture_output=True,
                check=True,
            )
        for i in range(3):
            self.start_node(i)

    def start_node(self, i: int) -> None:
        conf = self.workdir / f"node{i + 1}.properties"
        with (self.workdir / f"node{i + 1}.log").open("ab") as log:
            self.procs[i] = subprocess.Popen(
                [
                    "java",
                    "-Xms384m",
                    "-Xmx384m",
                    self.log4j,
                    "-cp",
                    self.cp,
                    "kafka.Kafka",
                    str(conf),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_node(self, i: int) -> None:
        os.killpg(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


async def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        leader = consumer._client.cluster.leader_for_partition(TopicPartition(topic, partition))
        return int(leader)
    finally:
        await consumer.stop()


async def cluster_scenario(
    workdir: Path, tag: str, baseline: Observed | None
) -> tuple[Result, Observed | None]:
    """The whole pipeline on three KRaft nodes (RF 3, min.insync.replicas 2): the leader of
    the first ``interactions`` partition is SIGKILLed mid-stream and stays dead. Checked end
    to end like every other scenario."""
    cluster = Cluster(workdir / "cluster")
    (workdir / "cluster").mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(cluster.start)

    async def kill_leader(run: Run) -> str:
        leader = await leader_of(cluster.bootstrap, Topics(run.settings).interactions, 0)
        cluster.kill_node(leader - 1)
        return f"SIGKILL broker {leader} (leader of interactions-0)"

    try:
        return await scenario(
            "3-broker cluster, partition leader SIGKILLed",
            [kill_leader],
            workdir,
            tag,
            baseline,
            cluster=cluster,
        )
    finally:
        await asyncio.to_thread(cluster.stop)


def table(results: list[Result]) -> str:
    head = (
        "| scenario | faults injected | events sent | acknowledged | processed¹ "
        "| suggestions expected | delivered (both feeds) | duplicates | lost | extra "
        "| evidence ≠ generator | ≠ fault-free run | stalls | |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = "".join(
        f"| {r.scenario} | {'; '.join(r.faults + ([r.aborted] if r.aborted else []))} "
        f"| {r.sent:,} | {r.acknowledged:,} "
        f"| {r.processed:,} | {r.expected} | {r.delivered} | {r.duplicates} | {r.lost} "
        f"| {r.extra} | {r.evidence_mismatches} | {r.differs} | {r.stalls} "
        f"| {'ok' if r.ok else '**FAIL**'} |\n"
        for r in results
    )
    return head + rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="run only scenarios whose name contains this")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = ap.parse_args()
    results = []
    # every scenario replays the same input; the fault-free run of it is the reference
    tag = uuid.uuid4().hex[:6]
    baseline: Observed | None = None
    for name, faults in {"no faults (the reference run)": [], **SCENARIOS}.items():
        if args.only and args.only not in name and faults:
            continue
        workdir = Path(tempfile.mkdtemp(prefix="reliability-"))
        print(f"== {name}", flush=True)
        try:
            r, observed = asyncio.run(scenario(name, faults, workdir, tag, baseline))
        except Exception as exc:  # a failed scenario is a FAIL row; the others still run
            r, observed = Result(scenario=name, aborted=f"aborted: {exc} (logs: {workdir})"), None
        if not faults:
            baseline = observed
            if observed is None:
                print("   the reference run failed: the others are checked without it")
        print(f"   {r}", flush=True)
        results.append(r)
    if not args.only or "cluster" in args.only:
        print("== 3-broker cluster", flush=True)
        workdir = Path(tempfile.mkdtemp(prefix="reliability-"))
        try:
            r, _ = asyncio.run(cluster_scenario(workdir, tag, baseline))
        except Exception as exc:
            r = Result("3-broker cluster", aborted=f"aborted: {exc} (logs: {workdir})")
        print(f"   {r}", flush=True)
        results.append(r)
    text = table(results)
    print(text)
    marker = "<!-- reliability-results -->"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    section = (
        f"{marker}\n### Latest run — {stamp}, commit `{commit}`\n\n{text}\n"
        "¹ the matcher's count of the interactions it took in, kept per partition with its "
        "pair states (a redelivered interaction changes no state and is not counted): it must "
        "equal the acknowledged events. In the cluster row: the records on the topic.\n"
    )
    if args.out.exists() and marker in args.out.read_text():
        before = args.out.read_text().split(marker)[0]
        args.out.write_text(before + section)
    else:
        with args.out.open("a") as f:
            f.write("\n" + section)
    raise SystemExit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
