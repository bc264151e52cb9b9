"""Every batch is bounded before it is parsed: a flood of ``{}`` lines costs a 413 or a 422
with the first 100 errors, never megabytes of errors, seconds of CPU or gigabytes of memory
(before: a 0.57 MiB batch of ``{}`` lines gave 1.2 M error entries in a 107 MiB answer)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from tests.people import PRODUCER
from tests.stack import ServiceStack


@pytest.fixture
def ingest(settings: Settings, tmp_path: Path) -> Iterator[ServiceStack]:
    stack = ServiceStack(settings, tmp_path, ("ingest",))
    try:
        yield stack.start()
    finally:
        stack.stop()


def post(stack: ServiceStack, body: bytes, media: str) -> httpx.Response:
    return httpx.post(
        f"{stack.url('ingest')}/v1/interactions:batch",
        content=body,
        headers={**PRODUCER, "content-type": media},
        timeout=30,
    )


def test_a_flood_of_empty_lines_is_refused_by_its_count(ingest: ServiceStack) -> None:
    body = b"{}\n" * 200_000  # 0.57 MiB
    started = time.monotonic()
    r = post(ingest, body, "application/x-ndjson")
    assert r.status_code == 413, r.text[:500]
    assert "200000 lines" in r.json()["detail"]
    assert len(r.content) < 1024
    assert time.monotonic() - started < 5


def test_a_full_batch_of_bad_lines_lists_the_first_hundred(ingest: ServiceStack) -> None:
    r = post(ingest, b"{}\n" * 5000, "application/x-ndjson")
    assert r.status_code == 422
    problem = r.json()
    assert len(problem["errors"]) == 100
    assert "The first 100 of" in problem["detail"]
    assert len(r.content) < 64 * 1024


def test_json_arrays_are_counted_before_they_are_validated(ingest: ServiceStack) -> None:
    r = post(ingest, b"[" + b",".join([b"{}"] * 200_000) + b"]", "application/json")
    # over the schema's maxItems: one error, nothing validated
    assert r.status_code == 422 and len(r.content) < 1024
    assert [e["type"] for e in r.json()["errors"]] == ["too_long"]
    r = post(ingest, b"[" + b",".join([b"{}"] * 5000) + b"]", "application/json")
    assert r.status_code == 422 and len(r.json()["errors"]) == 100
    assert len(r.content) < 64 * 1024
    r = post(ingest, b'{"not": "a list"}', "application/json")
    assert r.status_code == 422
