"""Source adapters: each platform's payload in, ``Draft`` interactions out (pure).

``SOURCES`` maps the ``{source}`` of ``POST /v1/sources/{source}/events`` to its spec: the
pydantic adapter that validates the raw payload at the edge (422 with the field path), the
extraction run by the normalizer, how requests are authenticated, and how a handle given to
``PUT /v1/people/{id}/identities/{source}`` is written as a source-qualified id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import TypeAdapter

from services.sources import (
    bluesky,
    discord,
    generic,
    github,
    mastodon,
    phone,
    reddit,
    slack,
)
from services.sources.base import Draft, Extraction, Ignored

__all__ = ["SOURCES", "Draft", "Extraction", "Ignored", "Meta", "SourceName", "SourceSpec"]

SourceName = Literal[
    "generic", "phone", "mastodon", "bluesky", "reddit", "slack", "discord", "github"
]


@dataclass(frozen=True)
class Meta:
    """What the endpoint knew about the delivery; travels as Kafka record headers."""

    delivery_id: str
    received_at: datetime
    event: str | None = None  # GitHub's X-GitHub-Event
    #: the server that answered, for sources whose ids are per server (Mastodon), as the
    #: sender said in ``X-Realconnect-Origin``
    origin: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    name: str
    payload: TypeAdapter[Any]
    extract: Callable[[Any, Meta], Extraction]
    auth: Literal["slack", "github", "signed"]
    qualify: Callable[[str], str]


def _strip(prefix: str) -> Callable[[str], str]:
    def qualify(handle: str) -> str:
        return f"{prefix}:{handle.strip().removeprefix(prefix + ':')}"

    return qualify


def _lower(prefix: str, inner: str = "") -> Callable[[str], str]:
    def qualify(handle: str) -> str:
        h = handle.strip().removeprefix(prefix + ":").removeprefix(inner).lstrip("@").lower()
        return f"{prefix}:{inner}{h}"

    return qualify


def _reading(extract: Callable[[Any, Meta], Extraction]) -> Callable[[Any, Meta], Extraction]:
    """``extract``, and an ``Ignored`` delivery read as nothing (ingest answers those without
    storing them; a raw record of one, from an older version, is read the same way)."""

    def read(payload: Any, meta: Meta) -> Extraction:
        if isinstance(payload, Ignored):
            return Extraction(ignored=payload.kind)
        return extract(payload, meta)

    return read


SOURCES: Final[dict[str, SourceSpec]] = {
    s.name: replace(s, extract=_reading(s.extract))
    for s in (
        SourceSpec(
            "generic", generic.PAYLOAD, lambda p, m: generic.extract(p), "signed", lambda h: h
        ),
        SourceSpec(
            "phone", phone.PAYLOAD, lambda p, m: phone.extract(p), "signed", _strip("phone")
        ),
        SourceSpec(
            "mastodon",
            mastodon.PAYLOAD,
            lambda p, m: mastodon.extract(p, m.origin),
            "signed",
            lambda h: mastodon.handle(h.strip().removeprefix("mastodon:"), None),
        ),
        SourceSpec(
            "bluesky", bluesky.PAYLOAD, lambda p, m: bluesky.extract(p), "signed", _strip("bluesky")
        ),
        SourceSpec(
            "reddit",
            reddit.PAYLOAD,
            lambda p, m: reddit.extract(p),
            "signed",
            _lower("reddit", "u/"),
        ),
        SourceSpec("slack", slack.PAYLOAD, lambda p, m: slack.extract(p), "slack", _strip("slack")),
        SourceSpec(
            "discord",
            discord.PAYLOAD,
            lambda p, m: discord.extract(p, received_at=m.received_at),
            "signed",
            _strip("discord"),
        ),
        SourceSpec(
            "github",
            github.PAYLOAD,
            lambda p, m: github.extract(p, event=m.event or ""),
            "github",
            _lower("github"),
        ),
    )
}
