"""Meaningfulness of one interaction (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.matcher.scoring import (
    MEANINGFUL,
    call_weight,
    is_bot,
    scored,
    text_features,
    weight,
)
from tests.factories import interaction

PHATIC = [
    # English
    "ok",
    "OK!",
    "okay",
    "yes",
    "yeah",
    "thanks",
    "Thanks!!",
    "thank you",
    "thank you so much",
    "thx",
    "cool",
    "nice",
    "lol",
    "LOL",
    "lmao",
    "haha",
    "hahahaha",
    "+1",
    "same",
    "agreed",
    "sounds good",
    "got it",
    "ok thanks",
    "yes thank you",
    "nice one",
    # emoji only, a lone link
    "👍",
    "😂😂😂",
    "🙏",
    "!!!",
    "https://example.com/x",
    "www.example.com",
    # Spanish, French, German, Portuguese, Italian, Dutch
    "gracias",
    "muchas gracias",
    "vale",
    "jajaja",
    "sí",
    "genial",
    "ok gracias",
    "merci",
    "merci beaucoup",
    "oui",
    "d'accord",
    "mdr",
    "super",
    "danke",
    "danke schön",
    "vielen dank",
    "ja",
    "genau",
    "alles klar",
    "obrigado",
    "obrigada",
    "valeu",
    "kkkk",
    "legal",
    "beleza",
    "grazie",
    "grazie mille",
    "va bene",
    "perfetto",
    "certo",
    "bedankt",
    "dank je wel",
    "prima",
]
COMPOSED = [
    "That's a fair point, I hadn't thought about the cost of the second option.",
    "When are you free to talk about the project?",
    "¿Quieres venir a cenar el sábado con nosotros?",
    "Je pense que la deuxième partie de l'article est la plus intéressante.",
    "Hast du am Wochenende Zeit für einen Kaffee?",
    "Eu li o livro que você recomendou e adorei o final.",
    "Ho letto il tuo messaggio, possiamo parlarne domani mattina?",
]


@pytest.mark.parametrize("text", PHATIC)
def test_phatic_and_low_effort_replies_score_near_zero(text: str) -> None:
    w = weight(interaction("a", "b", kind="reply", text=text))
    assert w <= 0.05, (text, text_features(text))


@pytest.mark.parametrize("text", COMPOSED)
def test_composed_replies_are_meaningful(text: str) -> None:
    w = weight(interaction("a", "b", kind="reply", text=text))
    assert w >= 0.7, text


def test_questions_and_long_answers_score_higher_than_short_remarks() -> None:
    short = weight(interaction("a", "b", kind="comment", text="good talk today"))
    question = weight(interaction("a", "b", kind="comment", text="good talk today, slides online?"))
    assert question > short


def test_kinds_are_ordered_by_effort() -> None:
    w = {
        k: weight(interaction("a", "b", kind=k))
        for k in ("like", "share", "mention", "comment", "reply", "message")
    }
    assert w["like"] == 0
    assert w["like"] < w["share"] < w["mention"] < w["comment"] < w["reply"] == w["message"]
    assert w["share"] < MEANINGFUL <= w["mention"]


def test_calls_by_duration() -> None:
    assert call_weight(0) == call_weight(10) == 0
    assert 0 < call_weight(30) < call_weight(120) < call_weight(600) == 1.0
    assert weight(interaction("a", "b", kind="call", duration_s=0)) == 0
    assert weight(interaction("a", "b", kind="call", duration_s=900)) == 1.0


@pytest.mark.parametrize(
    "who",
    ["github:dependabot[bot]", "reddit:u/automoderator", "discord:remindmebot", "slack:T:renovate"],
)
def test_bots_score_zero(who: str) -> None:
    assert is_bot(who)
    assert weight(interaction(who, "b", kind="reply", text="Here is a thoughtful message?")) == 0


def test_automated_messages_score_zero_and_people_named_bo_are_people() -> None:
    msg = "I am a bot, and this action was performed automatically. Please contact the mods."
    assert weight(interaction("a", "b", kind="reply", text=msg)) == 0
    assert not is_bot("github:bo") and not is_bot("mastodon:@abbott@x")


def test_turn_taking_counts_more() -> None:
    i = interaction("a", "b", kind="reply", text="I agree with most of it, but the ending?")
    assert weight(i, turn_taking=True) > weight(i)


@given(st.text(max_size=300), st.sampled_from(["comment", "reply", "mention", "message"]))
def test_weight_is_always_in_the_unit_interval(text: str, kind: str) -> None:
    w = weight(interaction("a", "b", kind=kind, text=text or None))
    assert 0.0 <= w <= 1.0


def test_fan_out_and_large_audiences_are_down_weighted() -> None:
    one = weight(
        interaction("a", "b", kind="mention", text="Have a look at this, what do you think?")
    )
    many = weight(
        interaction(
            "a", "b", kind="mention", recipients=16, text="Have a look at this, what do you think?"
        )
    )
    assert many == pytest.approx(one / 4, abs=0.01)
    reply = interaction("a", "b", kind="reply", recipients=5, text="I think you're right, sadly.")
    assert weight(reply) == weight(reply.model_copy(update={"recipients": 1}))  # the one answered
    small = weight(interaction("a", "b", kind="reply", audience=80, text="Lovely, see you there!"))
    big = weight(
        interaction("a", "b", kind="reply", audience=100_000, text="Lovely, see you there!")
    )
    assert big < small / 3


def test_scored_carries_the_weight_and_drops_the_text() -> None:
    """What goes onto ``interactions``: hand-worked, a message (0.7) of eight words asking a
    question (+0.15) weighs 0.85; the text is gone, and a weight a sender supplied is
    replaced by the score of its text."""
    i = interaction(
        "x", "y", kind="message", text="Are you coming to the lecture on Friday?", weight=1.0
    )
    out = scored(i)
    assert out.text is None and out.weight == 0.85
    assert weight(out) == 0.85  # the matcher reads the carried score
    assert b"lecture" not in out.model_dump_json().encode()
    assert scored(interaction("x", "y", kind="like")).weight == 0.0
