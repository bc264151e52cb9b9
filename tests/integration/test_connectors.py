"""The connectors against local servers that speak each platform's protocol (tests/platforms.py),
through the real ingest, Kafka and normalizer: connections dropped mid-stream, the connector
killed with SIGKILL and started again, 429 with ``Retry-After``; every platform event must
reach ``interactions`` exactly once.

The expected interactions come from the fixtures themselves: each payload the fake platform
publishes is run through its source adapter (the same extraction ingest's normalizer runs),
which gives the event ids that must appear once each on the topic, whatever the connector
did in between (the connector under test never sees this list)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.connectors import bluesky
from services.console.metrics import PipelineStats
from services.sources import SOURCES, Meta
from tests import platforms
from tests.conftest import DATA_DIR, IN_CI
from tests.people import ADMIN
from tests.stack import BIN, ServiceStack, free_port, fresh_stack
from tests.webhooks import interactions

FIXTURES = DATA_DIR.parent / "fixtures" / "payloads"


@pytest.fixture(scope="module")
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        if IN_CI:
            pytest.fail(f"fixtures not found at {FIXTURES} (CI=true)")
        pytest.skip(f"fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    with fresh_stack(tmp_path_factory.mktemp("connectors"), ("ingest", "normalizer")) as s:
        yield s


class Connector:
    """``realconnect connect SOURCE`` (or ``backfill``) as a real process of this stack."""

    def __init__(self, stack: ServiceStack, source: str, **env: str) -> None:
        self.stack, self.source = stack, source
        self.metrics_port = free_port()
        self.env = {
            **stack.env,
            "REALCONNECT_CONNECT__INGEST_URL": stack.url("ingest"),
            "REALCONNECT_CONNECT__METRICS_PORT": str(self.metrics_port),
            # quicker retries than the defaults (1 s doubling to 60 s), for a short test
            "REALCONNECT_CONNECT__BACKOFF_S": "0.2",
            "REALCONNECT_CONNECT__BACKOFF_MAX_S": "2",
            **env,
        }
        self.log = stack.workdir / f"connect-{source}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN), "connect", self.source],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill(signal.SIGTERM)

    def alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.tail()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    async def backfill(self, since: str) -> subprocess.CompletedProcess[str]:
        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(BIN), "backfill", self.source, "--since", since],
                env={**self.env, "REALCONNECT_CONNECT__METRICS_PORT": "0"},
                capture_output=True,
                text=True,
                timeout=120,
            )

        return await asyncio.to_thread(run)

    async def metrics(self) -> str:
        """The connector's /metrics, read with the admin token; without one it is a 401."""
        url = f"http://127.0.0.1:{self.metrics_port}"
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"{url}/metrics")).status_code == 401
            assert (await c.get(f"{url}/healthz")).status_code == 200
            r = await c.get(f"{url}/metrics", headers=ADMIN)
            assert r.status_code == 200, r.text
            return r.text


def expected_ids(source: str, payloads: list[Any]) -> set[str]:
    """The event ids the source adapter gives for these payloads (each must resolve its
    counterpart within the payload: the test builds them so)."""
    spec = SOURCES[source]
    out: set[str] = set()
    meta = Meta(delivery_id="expected", received_at=datetime.now(UTC))
    for p in payloads:
        extraction = spec.extract(spec.payload.validate_python(p), meta)
        for d in extraction.drafts:
            assert d.target, f"the test's payload leaves a counterpart unresolved: {d}"
            out.add(d.event_id)
    return out


async def exactly_once(settings: Settings, expected: set[str], timeout: float = 60) -> None:
    got = await interactions(
        settings,
        until=lambda items: expected <= {i["event_id"] for i in items},
        timeout=timeout,
        settle=2.0,
    )
    counts = Counter(i["event_id"] for i in got)
    missing = expected - set(counts)
    assert not missing, f"{len(missing)} of {len(expected)} never reached interactions"
    twice = {k: n for k, n in counts.items() if n > 1}
    assert not twice, f"produced more than once: {twice}"


async def until(check: Any, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


async def status(settings: Settings, source: str) -> dict[str, Any]:
    """The connector's line in the console's connector table."""
    r = new_redis(settings)
    stats = PipelineStats(settings, r)
    try:
        rows = {c["name"]: c for c in await stats.connectors()}
    finally:
        await stats.stop()
        await r.aclose()
    assert f"{source}:default" in rows, f"the console does not list the connector: {rows}"
    return rows[f"{source}:default"]


# -- Bluesky -------------------------------------------------------------------------------

BSKY_DIDS = [f"did:plc:member{i:02d}aaaaaaaaaaaaaaa" for i in range(6)]


class BlueskyFrames:
    """Jetstream frames built from the captured ones: replies, likes, reposts and mention
    facets among the community's DIDs, plus what the connector must pass over."""

    def __init__(self, fixtures: Path) -> None:
        self.reply = platforms.load(fixtures, "bluesky/commit.post.create.reply.json")
        self.like = platforms.load(fixtures, "bluesky/commit.like.create.json")
        self.repost = platforms.load(fixtures, "bluesky/commit.repost.create.json")
        self.facet = platforms.load(fixtures, "bluesky/record.post.with_mention_facet.docs.json")
        self.n = 0
        self.t_us = int(time.time() * 1e6)

    def _next(self, frame: dict[str, Any], did: str) -> dict[str, Any]:
        self.n += 1
        self.t_us += 1000
        frame["did"] = did
        frame["time_us"] = self.t_us
        if "commit" in frame:
            frame["commit"]["rkey"] = f"3rc{self.n:010d}"
            frame["commit"]["rev"] = f"3rev{self.n:010d}"
            rec = frame["commit"].get("record")
            if rec is not None:
                rec["createdAt"] = platforms.iso(self.t_us / 1e6)
        return frame

    def batch(self, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``n`` frames the connector must forward, and all frames to publish."""
        wanted: list[dict[str, Any]] = []
        frames: list[dict[str, Any]] = []
        for i in range(n):
            a, b = BSKY_DIDS[i % 6], BSKY_DIDS[(i + 1 + i // 6) % 6]
            if a == b:
                b = BSKY_DIDS[(i + 2) % 6]
            kind = i % 4
            if kind == 0:
                f = self._next(json.loads(json.dumps(self.reply)), a)
                uri = f"at://{b}/app.bsky.feed.post/3parent{i:06d}"
                f["commit"]["record"]["reply"]["parent"]["uri"] = uri
                f["commit"]["record"]["reply"]["root"]["uri"] = uri
            elif kind == 1:
                f = self._next(json.loads(json.dumps(self.like)), a)
                f["commit"]["record"]["subject"]["uri"] = f"at://{b}/app.bsky.feed.post/3p{i:06d}"
            elif kind == 2:
                f = self._next(json.loads(json.dumps(self.repost)), a)
                f["commit"]["record"]["subject"]["uri"] = f"at://{b}/app.bsky.feed.post/3r{i:06d}"
            else:
                record = json.loads(json.dumps(self.facet))
                record["facets"][0]["features"][0]["did"] = b
                f = self._next(
                    {
                        "did": a,
                        "time_us": 0,
                        "kind": "commit",
                        "commit": {
                            "rev": "",
                            "operation": "create",
                            "collection": "app.bsky.feed.post",
                            "rkey": "",
                            "record": record,
                            "cid": "bafyreib2rxk3rh6kzwq",
                        },
                    },
                    a,
                )
            wanted.append(f)
            frames.append(f)
            if i % 10 == 0:  # what a subscriber gets whatever its filter, and a stranger
                frames.append(
                    self._next(
                        {
                            "did": a,
                            "time_us": 0,
                            "kind": "identity",
                            "identity": {
                                "did": a,
                                "handle": "x.bsky.social",
                                "seq": i,
                                "time": platforms.iso(time.time()),
                            },
                        },
                        a,
                    )
                )
                stranger = self._next(json.loads(json.dumps(self.like)), "did:plc:stranger0000")
                stranger["commit"]["record"]["subject"]["uri"] = f"at://{a}/app.bsky.feed.post/3s"
                frames.append(stranger)
        return wanted, frames


async def test_bluesky_jetstream_drop_kill_and_429_each_event_once(
    stack: ServiceStack, fixtures: Path
) -> None:
    js = platforms.Jetstream()
    await js.start()
    gen = BlueskyFrames(fixtures)
    conn = Connector(
        stack,
        "bluesky",
        REALCONNECT_CONNECT__BLUESKY__URL=js.url,
        REALCONNECT_CONNECT__BLUESKY__DIDS=json.dumps(BSKY_DIDS),
    )
    try:
        conn.start()
        await until(lambda: js.connections, what="the connector to subscribe")
        q = js.connections[0]
        assert set(q["wantedDids"]) == set(BSKY_DIDS)  # filtered at the source
        assert "app.bsky.feed.like" in q["wantedCollections"] and "cursor" not in q

        wanted1, frames1 = gen.batch(60)
        bad = json.loads(json.dumps(wanted1[5]))  # not Jetstream's shape: ingest answers 422
        bad["commit"]["operation"] = "explode"
        frames1.insert(30, bad)
        js.drop_after = 20  # the connection breaks after 20 frames
        await js.publish(frames1)
        await exactly_once(stack.settings, expected_ids("bluesky", wanted1))
        assert len(js.connections) >= 2, "the dropped connection was not reopened"
        assert "cursor" in js.connections[1], "the reconnect did not resume from its cursor"

        conn.kill()  # SIGKILL, then events while it is down, then a 429 on its return
        wanted2, frames2 = gen.batch(40)
        await js.publish(frames2)
        js.refuse.count, js.refuse.retry_after = 1, 2
        before = len(js.connections)
        conn.start()
        await until(lambda: len(js.connections) > before, what="the connector to come back")
        waited = time.time() - js.refuse.at[0]
        assert waited >= 1.9, f"Retry-After: 2 was not honoured (came back after {waited:.2f} s)"

        await exactly_once(stack.settings, expected_ids("bluesky", wanted1 + wanted2))
        conn.alive()
        text = await conn.metrics()
        assert (
            'realconnect_connector_events_total{account="default",connector="bluesky",outcome="accepted"}'
            in text
        )
        assert "realconnect_connector_reconnects_total" in text
        s = await status(stack.settings, "bluesky")
        assert s["state"] == "live" and s["lag_s"] is not None
        assert s["forwarded"] >= 1 and s["reconnects"] >= 1  # after the 429
        r = new_redis(stack.settings)
        try:  # the refused payload was kept for the operator, and the rest went on
            kept = await r.lrange(
                Keys(stack.settings).connector_rejected("bluesky", "default"), 0, -1
            )
        finally:
            await r.aclose()
        # (once, or again when a reconnect's rewind plays it back: each time it is refused)
        entries = [json.loads(k) for k in kept]
        assert entries and {e["delivery"] for e in entries} == {bluesky.delivery_id(bad)}
        assert all(e["status"] == 422 and '"explode"' in e["body"] for e in entries)
    finally:
        conn.stop()
        await js.stop()


# -- Mastodon ------------------------------------------------------------------------------

MASTODON_PEOPLE = [f"member{i}" for i in range(5)]
HOST = "social.example"


def _account(name: str, n: int) -> dict[str, Any]:
    return {
        "id": str(1000 + n),
        "username": name,
        "acct": name,
        "bot": False,
        "url": f"https://{HOST}/@{name}",
    }


class MastodonItems:
    """Notifications built from the recorded ones: mentions (with the status's other
    mentions) and favourites, among the community's members."""

    def __init__(self, fixtures: Path) -> None:
        self.mention = platforms.load(fixtures, "mastodon/notification.mention.json")
        self.favourite = platforms.load(
            fixtures, "mastodon/notification.favourite.docs_abbreviated.json"
        )
        self.status = platforms.load(fixtures, "mastodon/status.reply_with_mention.json")
        self.n = 0
        self.ms = int(time.time() * 1000) - 86_400_000  # a day ago, then onwards

    def _id(self) -> str:
        # Mastodon ids: milliseconds << 16 plus a sequence
        self.n += 1
        self.ms += 1000
        return str((self.ms << 16) + self.n)

    def notifications(self, n: int) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            a = MASTODON_PEOPLE[i % 5]
            b = MASTODON_PEOPLE[(i + 1 + i // 5) % 5]
            if a == b:
                b = MASTODON_PEOPLE[(i + 2) % 5]
            base = self.mention if i % 3 else self.favourite
            item = json.loads(json.dumps(base))
            item["id"] = self._id()
            item["created_at"] = platforms.iso(self.ms / 1000)
            item["account"] = _account(a, i % 5)
            status = item["status"]
            status["id"] = self._id()
            status["created_at"] = item["created_at"]
            status["in_reply_to_id"] = status["in_reply_to_account_id"] = None
            if item["type"] == "mention":
                status["account"] = _account(a, i % 5)
                status["mentions"] = [
                    {
                        "id": "1",
                        "username": "community",
                        "acct": "community",
                        "url": f"https://{HOST}/@community",
                    },
                    {
                        "id": str(1000 + MASTODON_PEOPLE.index(b)),
                        "username": b,
                        "acct": b,
                        "url": f"https://{HOST}/@{b}",
                    },
                ]
            else:
                status["account"] = _account(b, MASTODON_PEOPLE.index(b))
            out.append(item)
        return out

    def statuses(self, n: int) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            s = json.loads(json.dumps(self.status))
            s["id"] = self._id()
            s["created_at"] = platforms.iso(self.ms / 1000)
            s["account"] = {
                "id": "1",
                "username": "community",
                "acct": "community",
                "url": f"https://{HOST}/@community",
            }
            b = MASTODON_PEOPLE[i % 5]
            s["in_reply_to_id"] = None
            s["in_reply_to_account_id"] = None
            s["mentions"] = [
                {"id": str(1000 + i % 5), "username": b, "acct": b, "url": f"https://{HOST}/@{b}"}
            ]
            out.append(s)
        return out


async def test_mastodon_stream_catch_up_kill_429_and_backfill_each_event_once(
    stack: ServiceStack, fixtures: Path
) -> None:
    token = "mastodon-test-token"
    m = platforms.Mastodon(token)
    await m.http.start()
    gen = MastodonItems(fixtures)
    history = gen.notifications(6)  # before the connector's first start: backfill's job
    await m.publish(history)
    m.statuses = gen.statuses(3)
    conn = Connector(
        stack,
        "mastodon",
        REALCONNECT_CONNECT__MASTODON__URL=m.http.url,
        REALCONNECT_CONNECT__MASTODON__TOKEN=token,
    )
    try:
        conn.start()
        await until(lambda: m.stream_opened, what="the stream to open")
        await asyncio.sleep(0.5)  # its first catch-up (which only notes where "now" is)

        batch1 = gen.notifications(30)
        m.drop_after = 10  # the server ends the stream after 10 events
        await m.publish(batch1)
        await exactly_once(stack.settings, expected_ids("mastodon", batch1))
        assert len(m.stream_opened) >= 2, "the ended stream was not reopened"

        conn.kill()
        batch2 = gen.notifications(20)
        await m.publish(batch2)  # while the connector is down: the REST catch-up's job
        m.refuse.count, m.refuse.retry_after = 1, 2
        conn.start()
        await exactly_once(stack.settings, expected_ids("mastodon", batch1 + batch2))
        assert m.refuse.at, "the 429 was never asked for"
        conn.alive()
        got = await interactions(stack.settings, settle=0.5, timeout=5)
        hist = expected_ids("mastodon", history)
        assert not hist & {i["event_id"] for i in got}, "a first start read history"

        # history, then everything once more: backfill forwards it, ingest drops repeats
        since = platforms.iso(time.time() - 2 * 86400)[:10]
        done = await conn.backfill(since)
        assert done.returncode == 0, done.stderr
        assert "backfilled" in done.stderr and "read" in done.stderr  # the progress bars
        everything = history + batch1 + batch2 + m.statuses
        await exactly_once(stack.settings, expected_ids("mastodon", everything))
    finally:
        conn.stop()
        await m.http.stop()


# -- Discord -------------------------------------------------------------------------------

GUILD = "694205451682978886"
CHANNELS = ["727947198481956945", "727947198481956946"]
OTHER_CHANNEL = "999999999999999999"
DISCORD_PEOPLE = [str(562268917771413264 + i) for i in range(5)]


class DiscordDispatches:
    """Gateway dispatches from the captured ones: guild messages with user mentions,
    replies (``message_reference`` + ``referenced_message``) and reactions naming the
    message's author."""

    def __init__(self, fixtures: Path) -> None:
        self.message = platforms.load(fixtures, "discord/gateway.MESSAGE_CREATE.guild_message.json")
        self.reply = platforms.load(fixtures, "discord/gateway.MESSAGE_CREATE.reply.json")
        self.reaction = platforms.load(fixtures, "discord/gateway.MESSAGE_REACTION_ADD.json")
        self.ms = int(time.time() * 1000)
        self.posted: list[dict[str, Any]] = []

    def _snowflake(self) -> str:
        self.ms += 7
        return str((self.ms - 1_420_070_400_000) << 22)

    def _user(self, uid: str) -> dict[str, Any]:
        return {"id": uid, "username": f"user{uid[-2:]}", "discriminator": "0", "avatar": None}

    def batch(
        self, n: int, *, reactions: bool = True
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        wanted, all_ = [], []
        for i in range(n):
            a = DISCORD_PEOPLE[i % 5]
            kind = i % 3 if (reactions and self.posted) else (i % 2 if self.posted else 0)
            if kind == 0:
                d = json.loads(json.dumps(self.message))
                d["d"]["mentions"] = [self._user(DISCORD_PEOPLE[(i + 1) % 5])]
            elif kind == 1:
                d = json.loads(json.dumps(self.reply))
                parent = self.posted[-1]
                d["d"]["message_reference"] = {
                    "message_id": parent["id"],
                    "channel_id": parent["channel_id"],
                    "guild_id": GUILD,
                }
                d["d"]["referenced_message"] = {**parent, "referenced_message": None}
                d["d"]["mentions"] = [parent["author"]]
            else:
                d = json.loads(json.dumps(self.reaction))
                parent = self.posted[-2]
                d["d"].update(
                    user_id=a,
                    message_id=parent["id"],
                    channel_id=parent["channel_id"],
                    guild_id=GUILD,
                    message_author_id=parent["author"]["id"],
                )
                d["d"]["member"]["user"]["id"] = a
            if d["t"] == "MESSAGE_CREATE":
                msg = d["d"]
                msg.update(
                    id=self._snowflake(),
                    channel_id=CHANNELS[i % 2],
                    guild_id=GUILD,
                    timestamp=datetime.fromtimestamp(self.ms / 1000, UTC).isoformat(),
                )
                msg["author"] = self._user(a)
                if msg["mentions"] and msg["mentions"][0]["id"] == a:
                    msg["mentions"] = [self._user(DISCORD_PEOPLE[(i + 2) % 5])]
                self.posted.append(msg)
            if d["t"] == "MESSAGE_REACTION_ADD" and d["d"]["message_author_id"] == a:
                continue
            wanted.append(d)
            all_.append(d)
            if i % 10 == 0:  # another channel's message, and a dispatch the connector skips
                other = json.loads(json.dumps(self.message))
                other["d"].update(
                    id=self._snowflake(),
                    channel_id=OTHER_CHANNEL,
                    guild_id=GUILD,
                    author=self._user(a),
                    mentions=[self._user(DISCORD_PEOPLE[0])],
                )
                all_.append(other)
                all_.append(
                    {
                        "op": 0,
                        "t": "TYPING_START",
                        "d": {"channel_id": CHANNELS[0], "user_id": a, "timestamp": 1},
                    }
                )
        return wanted, all_


async def test_discord_gateway_resume_kill_new_session_catch_up_and_429(
    stack: ServiceStack, fixtures: Path
) -> None:
    token = "discord-test-bot-token"
    dc = platforms.Discord(token)
    await dc.start()
    gen = DiscordDispatches(fixtures)
    conn = Connector(
        stack,
        "discord",
        REALCONNECT_CONNECT__DISCORD__API_URL=f"{dc.http.url}/api/v10",
        REALCONNECT_CONNECT__DISCORD__TOKEN=token,
        REALCONNECT_CONNECT__DISCORD__GUILDS=json.dumps([GUILD]),
        REALCONNECT_CONNECT__DISCORD__CHANNELS=json.dumps(CHANNELS),
    )
    try:
        conn.start()
        await until(lambda: dc.opened, what="the bot to identify")
        assert dc.opened[0]["op"] == 2 and dc.opened[0]["intents"] & (1 << 15)
        await asyncio.sleep(0.5)

        wanted1, all1 = gen.batch(30)
        dc.drop_after = 10  # the gateway connection breaks after 10 dispatches
        await dc.publish(all1)
        await exactly_once(stack.settings, expected_ids("discord", wanted1))
        assert any(o["op"] == 6 for o in dc.opened), "the broken connection was not resumed"

        conn.kill()  # SIGKILL: it resumes its stored session and sequence when back
        wanted2, all2 = gen.batch(20)
        await dc.publish(all2)
        resumes = sum(o["op"] == 6 for o in dc.opened)
        conn.start()
        await exactly_once(stack.settings, expected_ids("discord", wanted1 + wanted2))
        assert sum(o["op"] == 6 for o in dc.opened) > resumes, "the restart did not resume"

        conn.kill()  # and now the session expires while it is down: a new session, and the
        dc.forget_sessions()  # channels' history read over REST (through a 429)
        wanted3, all3 = gen.batch(16, reactions=False)
        await dc.publish(all3)
        dc.refuse.count, dc.refuse.retry_after = 1, 2
        identifies = sum(o["op"] == 2 for o in dc.opened)
        conn.start()
        await exactly_once(stack.settings, expected_ids("discord", wanted1 + wanted2 + wanted3))
        assert sum(o["op"] == 2 for o in dc.opened) > identifies, "no new session after op 9"
        assert dc.refuse.at, "the REST catch-up never met the 429"
        assert dc.heartbeats > 0
        conn.alive()

        since = datetime.fromtimestamp(time.time() - 3600, UTC).isoformat()
        done = await conn.backfill(since)
        assert done.returncode == 0, done.stderr
        await exactly_once(stack.settings, expected_ids("discord", wanted1 + wanted2 + wanted3))
    finally:
        conn.stop()
        await dc.stop()


# -- Reddit --------------------------------------------------------------------------------

SUB = "realconnecttest"
REDDITORS = [f"Redditor_{i}" for i in range(5)]


class RedditThings:
    """Posts and comments from PRAW's recorded thread, renumbered: top-level comments (whose
    post author Reddit lists as ``link_author``) and replies to comments."""

    def __init__(self, fixtures: Path) -> None:
        thread = platforms.load(fixtures, "reddit/thread.submission_with_comment_and_reply.json")
        self.post = thread[0]["data"]["children"][0]
        self.comment = thread[1]["data"]["children"][0]
        self.n = 36**5
        self.t = time.time() - 86400
        self.posts: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []

    def _name(self, kind: str) -> tuple[str, str]:
        self.n += 1
        self.t += 10
        return platforms.b36(self.n), f"{kind}_{platforms.b36(self.n)}"

    def batch(self, posts: int, comments: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        new_posts, new_comments = [], []
        for i in range(posts):
            p = json.loads(json.dumps(self.post))
            id_, name = self._name("t3")
            p["data"].update(
                id=id_, name=name, author=REDDITORS[i % 5], created_utc=self.t, subreddit=SUB
            )
            new_posts.append(p)
            self.posts.append(p)
        for i in range(comments):
            c = json.loads(json.dumps(self.comment))
            id_, name = self._name("t1")
            author = REDDITORS[(i + 2) % 5]
            post = self.posts[-1 - i % len(self.posts)]["data"]
            parent = None
            if i % 2 and self.comments:
                parent = self.comments[-1]["data"]
                if parent["author"] == author:
                    parent = None
            c["data"].update(
                id=id_,
                name=name,
                author=author,
                created_utc=self.t,
                subreddit=SUB,
                link_id=post["name"],
                link_author=post["author"],
                parent_id=parent["name"] if parent else post["name"],
                replies="",
            )
            if not parent and post["author"] == author:
                c["data"]["author"] = author = REDDITORS[(i + 3) % 5]
            new_comments.append(c)
            self.comments.append(c)
        return new_posts, new_comments


async def test_reddit_polling_kill_429_and_backfill_each_event_once(
    stack: ServiceStack, fixtures: Path
) -> None:
    rd = platforms.Reddit("app-id", "app-secret")
    await rd.http.start()
    gen = RedditThings(fixtures)

    def add(posts: list[dict[str, Any]], comments: list[dict[str, Any]]) -> None:
        rd.things.setdefault(f"{SUB}/new", []).extend(posts)
        rd.things.setdefault(f"{SUB}/comments", []).extend(comments)

    def payloads(comments: list[dict[str, Any]]) -> list[Any]:
        return [{"kind": "Listing", "data": {"children": comments}}]

    hist_posts, hist_comments = gen.batch(2, 4)
    add(hist_posts, hist_comments)
    conn = Connector(
        stack,
        "reddit",
        REALCONNECT_CONNECT__REDDIT__AUTH_URL=rd.http.url,
        REALCONNECT_CONNECT__REDDIT__API_URL=rd.http.url,
        REALCONNECT_CONNECT__REDDIT__CLIENT_ID="app-id",
        REALCONNECT_CONNECT__REDDIT__CLIENT_SECRET="app-secret",
        REALCONNECT_CONNECT__REDDIT__SUBREDDITS=json.dumps([SUB]),
        REALCONNECT_CONNECT__REDDIT__POLL_S="1",
    )
    try:
        conn.start()
        await until(lambda: len(rd.requests) >= 2, what="the first poll")

        posts1, comments1 = gen.batch(3, 25)
        add(posts1, comments1)
        await exactly_once(stack.settings, expected_ids("reddit", payloads(comments1)))

        conn.kill()
        posts2, comments2 = gen.batch(1, 150)  # more than a page: paged back with after=
        add(posts2, comments2)
        rd.refuse.count, rd.refuse.retry_after = 1, 2
        conn.start()
        await exactly_once(stack.settings, expected_ids("reddit", payloads(comments1 + comments2)))
        assert rd.refuse.at
        after_429 = [t for t, _ in rd.requests if t > rd.refuse.at[0]]
        assert after_429 and after_429[0] - rd.refuse.at[0] >= 1.9, "Retry-After not honoured"
        assert any("realconnect" in ua for ua in rd.user_agents)
        conn.alive()

        since = datetime.fromtimestamp(time.time() - 2 * 86400, UTC).date().isoformat()
        done = await conn.backfill(since)
        assert done.returncode == 0, done.stderr
        everything = hist_comments + comments1 + comments2
        await exactly_once(stack.settings, expected_ids("reddit", payloads(everything)))
    finally:
        conn.stop()
        await rd.http.stop()


async def test_a_connector_with_a_wrong_secret_stops_with_the_reason(
    stack: ServiceStack, fixtures: Path
) -> None:
    js = platforms.Jetstream()
    await js.start()
    gen = BlueskyFrames(fixtures)
    conn = Connector(
        stack,
        "bluesky",
        REALCONNECT_CONNECT__BLUESKY__URL=js.url,
        REALCONNECT_SOURCES__BLUESKY__SECRETS='["not-the-secret-ingest-knows"]',
        REALCONNECT_CONNECT__ACCOUNT="wrong-secret",
    )
    try:
        conn.start()
        await until(lambda: js.connections, what="the connector to subscribe")
        _, frames = gen.batch(1)
        await js.publish(frames)
        assert conn.proc is not None
        code = await asyncio.to_thread(conn.proc.wait, 30)
        assert code == 78, conn.tail()
        assert "REALCONNECT_SOURCES__BLUESKY__SECRETS" in conn.tail()
    finally:
        conn.stop()
        await js.stop()
