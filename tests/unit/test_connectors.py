"""The connectors' pure parts: backoff, Retry-After and rate-limit headers, positions as
numbers, Jetstream URLs, Reddit listing bodies, the backfill spool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.backoff import Backoff, retry_after
from services.connectors import discord, mastodon, reddit
from services.connectors.backfill import Spool, since_epoch
from services.connectors.bluesky import subscribe_url
from services.connectors.core import Fatal, id_order


@given(
    base=st.floats(0.01, 10),
    cap=st.floats(0.01, 120),
    n=st.integers(1, 60),
)
def test_backoff_waits_stay_within_the_doubling_envelope_and_the_cap(
    base: float, cap: float, n: int
) -> None:
    b = Backoff(base, cap)
    for attempt in range(n):
        wait = b.next()
        assert 0 <= wait <= min(cap, base * 2**attempt) + 1e-9
    b.reset()
    assert b.next() <= base + 1e-9


def test_backoff_is_jittered_not_a_fixed_schedule() -> None:
    """Full jitter: many clients retrying after one outage spread out over the whole window
    instead of all coming back together (a fixed schedule would give one value)."""
    waits = []
    for _ in range(400):
        b = Backoff(base=1.0, cap=60.0)
        b.attempt = 4  # the window is [0, 16]
        waits.append(b.next())
    assert min(waits) < 4 and max(waits) > 12
    assert 6 < sum(waits) / len(waits) < 10  # uniform on [0, 16]: mean 8


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "7"})) == 7
    in_30s = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (retry_after(httpx.Headers({"Retry-After": in_30s})) or 0) <= 30
    assert retry_after(httpx.Headers({"Retry-After": "soon"}), 3.0) == 3.0
    assert retry_after(httpx.Headers({}), None) is None
    assert retry_after(httpx.Headers({"Retry-After": "-5"})) == 0


def test_ids_compare_as_numbers() -> None:
    assert id_order("9") < id_order("10") < id_order("109999999999999999")
    assert reddit.number("t1_zz") > reddit.number("t1_10") > reddit.number("t1_z")


def test_rate_limit_headers_say_when_to_pause() -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=40)).isoformat()
    spent = httpx.Response(200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert 38 <= (mastodon.pace(spent) or 0) <= 40
    assert mastodon.pace(httpx.Response(200, headers={"X-RateLimit-Remaining": "250"})) is None
    spent_r = {"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "12"}
    assert reddit.pace(httpx.Response(200, headers=spent_r)) == 12
    assert reddit.pace(httpx.Response(200, headers={"x-ratelimit-remaining": "50"})) is None
    spent_d = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2.5"}
    assert discord.pace(httpx.Response(200, headers=spent_d)) == 2.5
    assert discord.pace(httpx.Response(200, headers={"X-RateLimit-Remaining": "3"})) is None


def test_jetstream_url_filters_at_the_source_and_resumes_from_the_cursor() -> None:
    url = subscribe_url(
        "wss://js.example/subscribe",
        ["app.bsky.feed.post", "app.bsky.feed.like"],
        ["did:plc:a", "did:plc:b"],
        1_700_000_000_000_000,
    )
    assert url == (
        "wss://js.example/subscribe?wantedCollections=app.bsky.feed.post"
        "&wantedCollections=app.bsky.feed.like&wantedDids=did%3Aplc%3Aa&wantedDids=did%3Aplc%3Ab"
        "&cursor=1700000000000000"
    )
    assert subscribe_url("wss://js.example/subscribe", [], [], None) == "wss://js.example/subscribe"


def test_mastodon_streams_name_their_stream_and_timeline() -> None:
    s = mastodon.stream("hashtag:lisbon")
    assert (s.stream_path, s.stream_params, s.rest_path, s.event) == (
        "/api/v1/streaming/hashtag",
        {"tag": "lisbon"},
        "/api/v1/timelines/tag/lisbon",
        "update",
    )
    assert mastodon.stream("notifications").kind == "notification"
    with pytest.raises(Fatal, match="unknown Mastodon stream"):
        mastodon.stream("federated")


def test_discord_deliveries_name_the_platform_ids() -> None:
    assert discord.delivery_id("MESSAGE_CREATE", {"id": "42"}) == "discord:message:42"
    reaction = {"message_id": "42", "user_id": "7", "emoji": {"id": None, "name": "😊"}}
    assert discord.delivery_id("MESSAGE_REACTION_ADD", reaction) == "discord:reaction:42:7:😊"


def test_reddit_listings_are_cut_under_the_body_limit_in_order() -> None:
    things = [{"kind": "t1", "data": {"name": f"t1_{i}", "body": "x" * 50_000}} for i in range(30)]
    parts = reddit.chunks(things)
    assert [t for p in parts for t in p] == things
    for p in parts:
        body = reddit.listing(p)
        assert len(body) <= reddit.MAX_BODY + 1024
        assert orjson.loads(body)["kind"] == "Listing"


def test_the_spool_gives_back_oldest_first() -> None:
    spool = Spool()
    for i in range(5):  # as listed: newest first
        spool.add(f'{{"n": {4 - i}}}'.encode(), f"d{4 - i}", float(4 - i))
    out = list(spool.oldest_first())
    spool.close()
    assert [orjson.loads(b)["n"] for b, _, _ in out] == [0, 1, 2, 3, 4]
    assert [d for _, d, _ in out] == ["d0", "d1", "d2", "d3", "d4"]


def test_since_takes_dates_and_times() -> None:
    assert since_epoch("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC).timestamp()
    assert (
        since_epoch("2026-01-31T10:00:00+01:00") == datetime(2026, 1, 31, 9, tzinfo=UTC).timestamp()
    )
    with pytest.raises(ValueError, match="--since"):
        since_epoch("last tuesday")
