"""Attack 9 of the second round, against the real ingest and feeds services: ids and names
with right-to-left overrides, zero-width characters or look-alike letters from another
script were taken and shown as they were, so that one person could pass for another. They
are refused where ids and names come in, each with a clear reason."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx

from services.common.settings import Settings
from tests.people import ADMIN, PRODUCER
from tests.stack import ServiceStack

CYRILLIC_A = "\u0430"
SLY = [
    "ann\u202egnp",  # right-to-left override
    "a\u200bnn",  # zero-width space
    f"{CYRILLIC_A}nn",  # "ann" with a Cyrillic a
]


def event(actor: str) -> dict[str, str]:
    return {
        "source": "generic",
        "event_id": f"e-{quote(actor)}",
        "kind": "reply",
        "actor": actor,
        "target": "bob",
        "occurred_at": "2026-11-30T12:00:00+00:00",
        "text": "See you at the climbing wall on Saturday?",
    }


def test_look_alike_ids_and_names_are_refused_where_they_come_in(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("ingest", "feeds"))
    stack_factory.append(stack)
    stack.start()
    ingest, feeds = stack.url("ingest"), stack.url("feeds")
    with httpx.Client(timeout=10) as c:
        assert (
            c.post(f"{ingest}/v1/interactions", json=event("ann"), headers=PRODUCER).status_code
            == 202
        )
        for sly in SLY:
            r = c.post(f"{ingest}/v1/interactions", json=event(sly), headers=PRODUCER)
            assert r.status_code == 422, (sly, r.status_code, r.text)
            assert "actor" in r.text and ("contains" in r.text or "mixes scripts" in r.text)
            path = quote(sly, safe="")
            r = c.put(f"{ingest}/v1/people/{path}", json={"city": "Porto"}, headers=ADMIN)
            assert r.status_code == 422, (sly, r.text)
            r = c.put(f"{ingest}/v1/people/ann", json={"display_name": sly}, headers=ADMIN)
            assert r.status_code == 422, (sly, r.text)
            r = c.put(
                f"{ingest}/v1/people/ann/identities/mastodon",
                json={"handle": f"@{sly}@x.social"},
                headers=ADMIN,
            )
            assert r.status_code == 422, (sly, r.text)
            r = c.post(f"{feeds}/v1/people/{path}/tokens", headers=ADMIN)
            assert r.status_code == 422, (sly, r.text)
        # names people really have still pass
        for name in ("\u0410\u043d\u043d\u0430", "Jos\u00e9"):
            r = c.put(f"{ingest}/v1/people/ann", json={"display_name": name}, headers=ADMIN)
            assert r.status_code == 200, (name, r.text)
