"""HTTP in -> Kafka -> faust matcher -> Kafka -> notifier -> Redis -> feed API out."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from services import pipeline
from tests.factories import interaction, weeks_of_talk
from tests.people import ADMIN, PRODUCER, admin_feed, opt_in
from tests.stack import ServiceStack


def poll(fn, timeout: float = 60.0, interval: float = 0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def test_a_conversation_posted_over_http_reaches_both_feeds(pipeline_stack: ServiceStack) -> None:
    ingest, feeds = pipeline_stack.url("ingest"), pipeline_stack.url("feeds")
    auth = {p: opt_in(feeds, p) for p in ("e2e:ann", "e2e:ben", "e2e:cat")}
    talk = weeks_of_talk("e2e:ann", "e2e:ben")  # the default gate passes it
    noise = [interaction("e2e:ann", "e2e:cat", kind="like", days=d) for d in range(5)]
    with httpx.Client(timeout=10) as http:
        for e in noise + talk:
            r = http.post(
                f"{ingest}/v1/interactions",
                content=e.model_dump_json(),
                headers={**PRODUCER, "content-type": "application/json"},
            )
            assert r.status_code == 202, r.text
            assert r.json() == {"accepted": 1, "event_ids": [e.event_id], "duplicates": 0}

        def feed(person: str) -> list[dict]:
            r = http.get(f"{feeds}/v1/me/feed", headers=auth[person])  # as the person sees it
            assert r.status_code == 200
            return r.json()["items"]

        ann = poll(lambda: feed("e2e:ann"))
        ben = poll(lambda: feed("e2e:ben"))
        assert len(ann) == 1 and len(ben) == 1
        assert ann[0]["item_id"] == ben[0]["item_id"]
        assert ann[0]["other_person_id"] == "e2e:ben" and ben[0]["other_person_id"] == "e2e:ann"
        assert ann[0]["explanation"].startswith("You two have traded 12 messages over 7 weeks")
        assert feed("e2e:cat") == []  # likes are not a connection

        def stats() -> dict:
            return http.get(f"{pipeline_stack.url('console')}/api/stats", headers=ADMIN).json()

        # pairs_tracked is published by the matcher once a second
        assert poll(lambda: stats()["pairs_tracked"] == 2), stats()
        s = stats()
        assert s["interactions_in"] == len(noise) + len(talk)
        assert (s["suggestions_emitted"], s["suggestions_delivered"], s["feed_items"]) == (1, 1, 2)
        page = http.get(f"{pipeline_stack.url('console')}/")
        assert page.status_code == 200 and "Pairs tracked" in page.text


def test_batch_ndjson_is_accepted_in_order(pipeline_stack: ServiceStack) -> None:
    for person in ("e2e:dan", "e2e:eve"):
        opt_in(pipeline_stack.url("feeds"), person)
    events = weeks_of_talk("e2e:dan", "e2e:eve")
    body = b"\n".join(e.model_dump_json().encode() for e in events)
    r = httpx.post(
        f"{pipeline_stack.url('ingest')}/v1/interactions:batch",
        content=body,
        headers={**PRODUCER, "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 202
    assert r.json()["accepted"] == len(events)
    items = poll(lambda: admin_feed(pipeline_stack.url("feeds"), "e2e:dan"))
    assert len(items) == 1 and items[0]["other_person_id"] == "e2e:eve"


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({"kind": "hug"}, "/kind"),
        ({"occurred_at": "2026-03-01T09:00:00"}, "/occurred_at"),
        ({"actor": "same", "target": "same"}, "/"),
        ({"event_id": None}, "/event_id"),
    ],
)
def test_invalid_events_get_field_level_422(
    pipeline_stack: ServiceStack, payload: dict, pointer: str
) -> None:
    good = orjson.loads(interaction("x", "y").model_dump_json())
    r = httpx.post(
        f"{pipeline_stack.url('ingest')}/v1/interactions",
        content=orjson.dumps({**good, **payload}),
        headers={**PRODUCER, "content-type": "application/json"},
    )
    errors = _problem(r, 422)["errors"]
    assert any(e["pointer"] == pointer for e in errors), errors


def test_malformed_json_wrong_type_and_oversize_are_clear_errors(
    pipeline_stack: ServiceStack,
) -> None:
    url = pipeline_stack.url("ingest")
    _problem(
        httpx.post(
            f"{url}/v1/interactions",
            content=b"{not json",
            headers={**PRODUCER, "content-type": "application/json"},
        ),
        422,
    )
    _problem(
        httpx.post(
            f"{url}/v1/interactions",
            content=b"a=b",
            headers={**PRODUCER, "content-type": "application/x-www-form-urlencoded"},
        ),
        415,
    )
    _problem(
        httpx.post(
            f"{url}/v1/interactions",
            content=b"{" + b" " * 70_000 + b"}",
            headers={**PRODUCER, "content-type": "application/json"},
        ),
        413,
    )
    too_many = b"\n".join(interaction("p", "q").model_dump_json().encode() for _ in range(51))
    body = _problem(
        httpx.post(
            f"{url}/v1/interactions:batch",
            content=too_many,
            headers={**PRODUCER, "content-type": "application/x-ndjson"},
        ),
        413,
    )
    assert "50" in body["detail"]


def test_one_bad_line_rejects_the_whole_batch_and_names_it(pipeline_stack: ServiceStack) -> None:
    url = pipeline_stack.url("ingest")
    lines = [interaction("r", "s").model_dump_json().encode() for _ in range(3)]
    lines.insert(2, b'{"kind":"call"}')
    body = _problem(
        httpx.post(
            f"{url}/v1/interactions:batch",
            content=b"\n".join(lines),
            headers={**PRODUCER, "content-type": "application/x-ndjson"},
        ),
        422,
    )
    assert {e["loc"][0] for e in body["errors"]} == {2}
    assert admin_feed(pipeline_stack.url("feeds"), "r") == []


def test_openapi_documents_the_ingest_endpoints(pipeline_stack: ServiceStack) -> None:
    spec = httpx.get(f"{pipeline_stack.url('ingest')}/openapi.json").json()
    assert {"/v1/interactions", "/v1/interactions:batch"} <= set(spec["paths"])
    assert "Interaction" in spec["components"]["schemas"]


def test_metrics_are_exposed(pipeline_stack: ServiceStack) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{pipeline_stack.url('ingest')}/metrics/", headers=ADMIN).text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "realconnect_interactions_ingested" in names


def test_drain_sees_the_pipeline_idle(pipeline_stack: ServiceStack) -> None:
    import asyncio

    asyncio.run(pipeline.drain(pipeline_stack.settings, timeout=60))
