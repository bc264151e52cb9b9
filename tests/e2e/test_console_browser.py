"""The operator console in a real headless Chromium (Debian's, driven by Playwright), and every
service's /metrics scraped and parsed."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.kafka import Topics, ensure_topics, new_producer
from tests.browser import launch, need_chromium
from tests.conftest import IN_CI, _check_servers, new_namespace, settings_for, unavailable
from tests.factories import interaction
from tests.people import ADMIN, PRODUCER, opt_in
from tests.stack import ServiceStack

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ALL = ("ingest", "feeds", "console", "normalizer", "matcher", "notifier")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    s = ServiceStack(settings, tmp_path_factory.mktemp("console"), ALL)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def post(stack: ServiceStack, events: list) -> None:
    body = b"\n".join(e.model_dump_json().encode() for e in events)
    r = httpx.post(
        f"{stack.url('ingest')}/v1/interactions:batch",
        content=body,
        headers={**PRODUCER, "content-type": "application/x-ndjson"},
        timeout=30,
    )
    assert r.status_code == 202, r.text


#: fourteen replies five days apart: the shipped model passes its default bar (0.35) at the
#: tenth (0.399), the rest in the cooldown. One suggestion under the default gate.
WEEKS = {"n": 14, "every": timedelta(days=5)}


def conversation(
    a: str, b: str, n: int, start: datetime, every: timedelta = timedelta(hours=10)
) -> list:
    return [
        interaction(
            *((a, b) if i % 2 == 0 else (b, a)),
            kind="reply",
            text="What do you think about the plan for Saturday?",
            at=start + every * i,
            event_id=f"{a}-{b}-{i}",
        )
        for i in range(n)
    ]


def test_the_console_shows_the_live_funnel_lag_and_dead_letters(stack: ServiceStack) -> None:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("chromium is not installed (make test installs it)")
        pytest.skip("chromium is not installed (run deploy/stack.sh setup)")
    from playwright.sync_api import expect, sync_playwright

    feeds = stack.url("feeds")
    for p in ("ui:ann", "ui:ben"):
        opt_in(feeds, p)
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)
    first = conversation("ui:ann", "ui:ben", start=start, **WEEKS)  # type: ignore[arg-type]
    post(stack, first)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(stack.url("console") + "/")
            page.get_by_test_id("token").fill("wrong-token")
            page.get_by_test_id("login").click()
            expect(page.locator("#login-error")).to_contain_text("not accepted", timeout=10_000)
            page.get_by_test_id("token").fill("dev-admin-token")
            page.get_by_test_id("login").click()

            # the funnel equals what was ingested and processed
            expect(page.get_by_test_id("interactions_in")).to_have_attribute(
                "data-raw", "14", timeout=20_000
            )
            expect(page.get_by_test_id("pairs_tracked")).to_have_attribute(
                "data-raw", "1", timeout=20_000
            )
            expect(page.get_by_test_id("suggestions_emitted")).to_have_attribute(
                "data-raw", "1", timeout=30_000
            )
            expect(page.get_by_test_id("suggestions_delivered")).to_have_attribute(
                "data-raw", "1", timeout=30_000
            )
            expect(page.get_by_test_id("feed_items")).to_have_attribute(
                "data-raw", "2", timeout=30_000
            )
            # the matcher's own metrics, read by the console from its /metrics: a row of
            # figures, no longer "not answering"
            expect(page.get_by_test_id("matcher")).not_to_contain_text(
                "not answering", timeout=20_000
            )
            stats = httpx.get(f"{stack.url('console')}/api/stats", headers=ADMIN).json()
            assert stats["matcher"]["totals"]["events"] == 14  # the fourteen ingested
            assert stats["matcher"]["totals"]["state_writes"] >= 1
            assert stats["matcher"]["totals"]["transactions"] >= 1  # exactly once, the default
            assert stats["transaction_aborts"] == 0
            expect(page.get_by_test_id("transaction-aborts")).to_have_text("0")
            funnel = page.get_by_test_id("funnel")
            expect(funnel.locator('[data-stage="interactions"]')).to_have_attribute("title", "14")
            expect(funnel.locator('[data-stage="meaningful interactions"]')).to_have_attribute(
                "title", "14", timeout=20_000
            )
            expect(funnel.locator('[data-stage="candidate pairs"]')).to_have_attribute("title", "1")
            expect(funnel.locator('[data-stage="delivered"]')).to_have_attribute("title", "1")
            for service in (
                "ingest",
                "feeds",
                "matcher",
                "notifier",
                "normalizer",
                "kafka",
                "redis",
            ):
                expect(page.locator(f'[data-service="{service}"]')).to_have_attribute(
                    "data-state", "up", timeout=10_000
                )

            # more events arrive: the page updates without a reload
            post(stack, conversation("ui:cat", "ui:dan", 4, start))
            expect(page.get_by_test_id("interactions_in")).to_have_attribute(
                "data-raw", "18", timeout=20_000
            )
            expect(page.get_by_test_id("pairs_tracked")).to_have_attribute(
                "data-raw", "2", timeout=20_000
            )

            # a deliberately bad event shows up under dead letters, with its payload
            # Playwright's sync API owns this thread's event loop: produce from another thread
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, _poison(stack)).result(timeout=30)

            dead = page.get_by_test_id("dlq").locator('details[data-reason="schema"]')
            expect(dead).to_have_count(1, timeout=20_000)
            dead.locator("summary").click()
            expect(dead.locator("pre")).to_contain_text("this is not an interaction")
            expect(page.get_by_test_id("dead_letters")).to_have_attribute(
                "data-raw", "1", timeout=10_000
            )
            page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
        finally:
            browser.close()


async def _poison(stack: ServiceStack) -> None:
    producer = new_producer(stack.settings, client_id="test")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics(stack.settings).interactions,
            key=b"a|b",
            value=b'{"note": "this is not an interaction"}',
        )
    finally:
        await producer.stop()


def test_every_service_serves_prometheus_metrics(stack: ServiceStack) -> None:
    expected = {
        "ingest": "realconnect_interactions_ingested",
        "feeds": "python_gc_objects_collected",
        "console": "realconnect_consumer_lag",
        "normalizer": "realconnect_normalized",
        "matcher": "realconnect_matcher_batch_seconds",
        "notifier": "realconnect_ingest_to_feed_seconds",
    }
    httpx.get(f"{stack.url('console')}/api/stats", headers=ADMIN)  # fills the console's gauges
    for service, metric in expected.items():
        path = "/metrics/" if service in ("ingest", "feeds", "console") else "/metrics"
        # every service's /metrics is behind the admin token (the workers' on loopback too)
        r = httpx.get(stack.url(service) + path, timeout=10, headers=ADMIN)
        assert r.status_code == 200, (service, r.text[:200])
        names = {f.name for f in text_string_to_metric_families(r.text)}
        assert metric in names, (service, sorted(names)[:20])


def test_the_pair_inspector_shows_a_circle_and_each_pair_s_record(
    tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    """Issue 39's console inspector: search a person, see their circle and the decision about
    each partner, open one pair's full record. Expected by hand: fourteen replies five days
    apart are suggested (the conversation above); six messages one way and none back fail
    reciprocity, 0 of 3 (the gate's default); three replies each way on one day fail
    repetition, contact on 1 day of the 2 needed."""
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    stack = ServiceStack(settings, tmp_path, ("ingest", "matcher", "console"))
    stack_factory.append(stack)
    stack.start()
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)
    weeks = conversation("in:eve", "in:fay", start=start, **WEEKS)  # type: ignore[arg-type]
    one_way = [
        e
        for e in conversation("in:eve", "in:gus", 12, start + timedelta(days=3))
        if e.actor == "in:eve"
    ]
    one_day = conversation("in:eve", "in:hal", 6, start + timedelta(days=20), timedelta(hours=1))
    post(stack, weeks + one_way + one_day)

    console = stack.url("console")
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while True:  # the circle stage folds after the hot path: until all three partners are in
        r = httpx.get(f"{console}/api/circle", params={"person": "in:eve"}, headers=ADMIN)
        got = r.json() if r.status_code == 200 else {}
        if len(got.get("partners", [])) == 3:
            break
        assert datetime.now(UTC) < deadline, r.text
        time.sleep(0.5)
    by = {p["partner"]: p for p in got["partners"]}
    assert by["in:fay"]["suggested"] is True and by["in:fay"]["decided_by"] is None
    assert by["in:gus"]["decided_by"] == "reciprocity"
    assert by["in:hal"]["decided_by"] == "repetition"
    assert [p["rank"] for p in got["partners"]] == [1, 2, 3]
    assert got["partners"][0]["partner"] == "in:fay"  # fourteen exchanges: the closest

    # the route's errors: token, unknown person, bad input
    url = f"{console}/api/circle"
    assert httpx.get(url, params={"person": "in:eve"}).status_code == 401
    assert httpx.get(url, params={"person": "in:eve"}, headers=PRODUCER).status_code == 401
    for params, status in (({"person": "in:nobody"}, 404), ({}, 422), ({"person": "x" * 300}, 422)):
        r = httpx.get(url, params=params, headers=ADMIN)
        assert r.status_code == status, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(console + "/inspect")
            page.get_by_test_id("token").fill("dev-admin-token")
            page.get_by_test_id("login").click()
            page.get_by_test_id("person").fill("in:nobody")
            page.get_by_test_id("inspect").click()
            expect(page.get_by_test_id("search-error")).to_contain_text("no circle", timeout=20_000)
            page.get_by_test_id("person").fill("in:eve")
            page.get_by_test_id("inspect").click()
            circle = page.get_by_test_id("circle")
            expect(circle.locator("tbody tr")).to_have_count(3, timeout=20_000)
            expect(circle.locator('[data-partner="in:fay"]')).to_have_attribute(
                "data-suggested", "true"
            )
            expect(circle.locator('[data-partner="in:gus"]')).to_have_attribute(
                "data-decided-by", "reciprocity"
            )
            expect(circle.locator('[data-partner="in:hal"]')).to_contain_text(
                "1 more different day"
            )
            circle.locator('[data-partner="in:gus"] button').click()
            gates = page.get_by_test_id("gates")
            expect(gates.locator('[data-gate="reciprocity"]')).to_have_attribute(
                "data-passed", "false", timeout=20_000
            )
            expect(gates.locator('[data-gate="reciprocity"]')).to_contain_text("3")
            expect(page.get_by_test_id("pair-summary")).to_contain_text("in:eve->in:gus: 6")
            # a deep link opens the same circle
            page.goto(console + "/inspect?person=in%3Aeve")
            expect(page.get_by_test_id("who")).to_have_text("in:eve", timeout=20_000)
            circle.locator('[data-partner="in:hal"] button').click()
            expect(gates.locator('[data-gate="repetition"]')).to_have_attribute(
                "data-passed", "false", timeout=20_000
            )
            page.screenshot(path=str(ARTIFACTS / "inspector.png"), full_page=True)
        finally:
            browser.close()
