"""Ids and names shown to people (schemas.text), worked by hand: invisible and
direction-changing characters, and look-alike mixes of scripts, are refused."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas.events import Interaction
from schemas.text import shown_safely
from services.feeds.page import who

CYRILLIC_A = "\u0430"
GREEK_ZETA = "\u0396"


@pytest.mark.parametrize(
    "value",
    [
        "ann",
        "mastodon:@bob@x.social",
        "\u0410\u043d\u043d\u0430",  # Анна: one script
        "web:\u0410\u043d\u043d\u0430",  # a Latin prefix, then a Cyrillic run
        "\u7530\u4e2d\u3055\u3093",  # 田中さん: Han with Hiragana, a restrictive set
        "Jos\u00e9 \u00d1",
        "\u0645\u062d\u0645\u062f",  # Arabic
        "Bob & Co. (2026)",
    ],
)
def test_names_people_really_have_pass(value: str) -> None:
    assert shown_safely(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ann\u202egnp.exe", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("ann\u2066x\u2069", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ("a\u200bnn", "U+200B (ZERO WIDTH SPACE)"),
        ("ann\u200d", "U+200D (ZERO WIDTH JOINER)"),
        ("\ufeffann", "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
        ("ann\u2028ben", "U+2028 (LINE SEPARATOR)"),
        ("ann\u0085", "U+0085"),
        ("ann\ue000", "U+E000"),
        (f"p{CYRILLIC_A}ypal", "mixes scripts"),
        (f"{GREEK_ZETA}eus", "mixes scripts"),
        (f"mastodon:@{CYRILLIC_A}nn@x.social", "mixes scripts"),
        ("ann\tben", "control character U+0009"),
    ],
)
def test_look_alikes_are_refused_saying_why(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=r"contains|mixes") as refused:
        shown_safely(value)
    assert why in str(refused.value)


def test_an_interaction_naming_a_look_alike_is_refused() -> None:
    base = {
        "source": "generic",
        "event_id": "e1",
        "kind": "reply",
        "target": "bob",
        "occurred_at": "2026-11-30T12:00:00+00:00",
    }
    Interaction.model_validate_json(json.dumps({**base, "actor": "ann"}))
    with pytest.raises(ValidationError, match="RIGHT-TO-LEFT OVERRIDE"):
        Interaction.model_validate_json(json.dumps({**base, "actor": "ann\u202e"}))
    with pytest.raises(ValidationError, match="mixes scripts"):
        Interaction.model_validate_json(json.dumps({**base, "actor": f"{CYRILLIC_A}nn"}))


def test_the_page_shows_the_platform_beside_every_name_in_a_bidi_isolate() -> None:
    assert str(who({}, "mastodon:@bob@x.social")) == (
        '<bdi class="who">@bob@x.social</bdi> <span class="platform">on Mastodon</span>'
    )
    assert str(who({}, "web:<b>ann</b>")) == '<bdi class="who">web:&lt;b&gt;ann&lt;/b&gt;</bdi>'
    # with a profile name: the name, and the handle and platform beside it (issue 41)
    names = {"names": {"mastodon:@bob@x.social": "Bob <3", "p:ann": "Ann"}}
    assert str(who(names, "mastodon:@bob@x.social")) == (
        '<bdi class="who">Bob &lt;3</bdi> <span class="handle">'
        "(<bdi>@bob@x.social</bdi> on Mastodon)</span>"
    )
    assert str(who(names, "p:ann")) == (
        '<bdi class="who">Ann</bdi> <span class="handle">(<bdi>p:ann</bdi>)</span>'
    )
