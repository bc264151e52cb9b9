"""Every source adapter under hypothesis: real platform payloads with random parts replaced,
removed or retyped, and arbitrary JSON. Whatever the payload model accepts, extraction and
canonicalisation must handle without raising; what the model refuses is a validation error,
which the normalizer dead-letters (reason "adapter")."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.normalizer.normalize import to_interactions
from services.sources import SOURCES, Meta
from tests.unit.sources.conftest import FIXTURES

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def fixtures(source: str) -> list[Any]:
    folder = FIXTURES / source
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def mutate(doc: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    if not path:
        return new
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = new
    return doc


def check(source: str, body: bytes) -> None:
    spec = SOURCES[source]
    meta = Meta(delivery_id="d-1", received_at=datetime(2026, 1, 1, tzinfo=UTC), event=None)
    try:
        payload = spec.payload.validate_json(body)
    except ValidationError:
        return  # refused at the edge of the adapter: dead-lettered by the normalizer
    extraction = spec.extract(payload, meta)
    refs = {d.target_ref: f"{source}:resolved" for d in extraction.drafts if d.target_ref}
    to_interactions(source, extraction, refs, lambda _handle: None)


SOURCE_NAMES = sorted(SOURCES)


@pytest.mark.parametrize("source", SOURCE_NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_payloads_never_crash_an_adapter(source: str, data: st.DataObject) -> None:
    docs = fixtures(source)
    if not docs:
        doc: Any = data.draw(JSON)
    else:
        doc = copy.deepcopy(data.draw(st.sampled_from(docs)))
        for _ in range(data.draw(st.integers(1, 4))):
            where = data.draw(st.sampled_from(paths(doc)))
            doc = mutate(doc, where, data.draw(JSON), data.draw(st.booleans()))
    check(source, json.dumps(doc).encode())


@pytest.mark.parametrize("source", SOURCE_NAMES)
@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_an_adapter(source: str, body: bytes) -> None:
    check(source, body)


def test_found_by_the_fuzzer_a_mastodon_account_url_that_urlparse_refuses(payload: Any) -> None:
    status = payload("mastodon/status.reply_with_mention.json")
    status["account"]["acct"] = "someone"  # no domain: the host comes from the URL
    status["account"]["url"] = "https://[broken/@someone"
    check("mastodon", json.dumps(status).encode())
