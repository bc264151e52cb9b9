"""How suggestions read (issue 41): golden sentences over a spread of real pairs from the
demo's data (Copenhagen calls and texts), in every shipped language.

The golden file was written once by this test (``UPDATE_GOLDEN=1``) and then read and
corrected by hand, sentence by sentence, in each language: it is what a person should read,
not what the code happens to say. A change to the sentences shows up here as a diff to read.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from services.common import i18n
from services.common.words import LANGUAGES
from services.datasets import copenhagen
from services.evaluation.offline import replay
from services.matcher import models, sentences
from services.matcher.pairs import Policy

GOLDEN = Path(__file__).parent / "golden" / "sentences.json"
#: how many of the demo's suggestions are read at most (a spread of sentence shapes)
SPREAD = 8


@pytest.fixture
def demo_suggestions(data_dir: Path) -> list[Any]:
    return _spread(data_dir)


@functools.cache
def _spread(data_dir: Path) -> list[Any]:
    """The suggestions the matcher makes on the demo's data with the demo's bar (0.25),
    first per pair, a spread of them by pair."""
    policy = Policy(model=models.load(), min_probability=0.25, closest_top=0)
    _, made = replay(copenhagen.interactions(data_dir), policy)
    first: dict[tuple[str, str], Any] = {}
    for s in made:
        first.setdefault(s.pair, s)
    # one pair for each way a sentence can be put together (what stood out, the kinds named),
    # the first by pair of each
    shapes: dict[tuple[Any, ...], Any] = {}
    for pair in sorted(first):
        ev = first[pair].evidence
        stood = tuple(ev.get("tie_strength", {}).get("stood_out", ()))
        kinds = tuple(sorted(k for k, n in ev["meaningful_kinds"].items() if n))
        shapes.setdefault((stood, kinds), first[pair])
    return list(shapes.values())[:SPREAD]


def _rendered(suggestions: list[Any]) -> dict[str, dict[str, str]]:
    return {
        "|".join(s.pair): {lang: sentences.pair(s.evidence, i18n.words(lang)) for lang in LANGUAGES}
        for s in suggestions
    }


def test_the_english_sentence_is_the_one_the_suggestion_carries(
    demo_suggestions: list[Any],
) -> None:
    assert len(demo_suggestions) >= 4
    for s in demo_suggestions:
        assert sentences.pair(s.evidence) == s.explanation


def test_real_demo_pairs_read_as_written_by_hand(demo_suggestions: list[Any]) -> None:
    got = _rendered(demo_suggestions)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert got.keys() == expected.keys(), "the spread of pairs changed"
    for pair, by_lang in expected.items():
        for lang, sentence in by_lang.items():
            assert got[pair][lang] == sentence, (pair, lang)


def test_no_sentence_says_an_id_a_score_or_a_field_name(demo_suggestions: list[Any]) -> None:
    for pair, by_lang in _rendered(demo_suggestions).items():
        for sentence in by_lang.values():
            assert "cns:" not in sentence and "_" not in sentence, sentence
            assert "0." not in sentence  # no probability
            for person in pair.split("|"):
                assert person not in sentence


@pytest.mark.parametrize("lang", LANGUAGES)
def test_hand_worked_sentences(lang: str) -> None:
    """A pair worked by hand: 23 replies and 4 messages over seven weeks on two platforms,
    in five of them, quick answers, both in Lisbon."""
    ev = {
        "meaningful_kinds": {"reply": 23, "message": 4},
        "sources": ["mastodon", "slack"],
        "first_exchange_at": "2026-10-01T10:00:00+00:00",
        "last_exchange_at": "2026-11-19T10:00:00+00:00",
        "distinct_weeks": 5,
        "distinct_days": 12,
        "meetup": {"kind": "coffee", "city": "Lisbon"},
        "tie_strength": {"stood_out": ["weeks", "back_and_forth", "span"]},
    }
    expected = {
        "en": "You two have traded 23 replies and 4 messages over 7 weeks on Mastodon and "
        "Slack. You kept in touch in 5 of those weeks and you tend to answer each other "
        "within a day. You're both in Lisbon — coffee?",
        "de": "Ihr zwei habt in 7 Wochen über Mastodon und Slack 23 Antworten und 4 "
        "Nachrichten ausgetauscht. Ihr hattet in 5 dieser Wochen Kontakt und ihr antwortet "
        "einander meist innerhalb eines Tages. Ihr seid beide in Lisbon – Lust auf einen "
        "Kaffee?",
        "fr": "Vous deux avez échangé 23 réponses et 4 messages en 7 semaines via Mastodon et "
        "Slack. Vous avez été en contact pendant 5 de ces semaines et vous vous répondez en "
        "général dans la journée. Vous êtes tous les deux à Lisbon\u00a0: un café\u00a0?",
    }
    assert sentences.pair(ev, i18n.words(lang)) == expected[lang]
    group = {
        "en": "You all write to each other, back and forth, and each of you is among the "
        "others' closest contacts. A table for three?",
        "de": "Ihr schreibt euch alle gegenseitig, hin und her, und jede und jeder von euch "
        "gehört zu den engsten Kontakten der anderen. Ein Tisch für drei?",
        "fr": "Vous vous écrivez tous, dans les deux sens, et chacun de vous fait partie des "
        "contacts les plus proches des autres. Une table pour trois\u00a0?",
    }
    assert sentences.group(3, i18n.words(lang)) == group[lang]
