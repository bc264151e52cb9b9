"""The foundation rule, its determinism and its bounds (pure, no Kafka)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Interaction
from services.matcher.pairs import MAX_DAYS, MAX_RECENT_IDS, PairState, Rule, step
from tests.factories import conversation, interaction

RULE = Rule(min_exchanges_per_direction=3, min_distinct_days=2)


def fold(events: list[Interaction], rule: Rule = RULE) -> tuple[PairState | None, list]:
    state, out = None, []
    for e in events:
        state, s = step(state, e, rule)
        if s is not None:
            out.append(s)
    return state, out


def test_three_each_way_on_two_days_triggers_exactly_one_suggestion() -> None:
    events = conversation("bob", "alice", per_direction=5, days=3)
    state, out = fold(events)
    assert len(out) == 1
    s = out[0]
    assert s.pair == ("alice", "bob")
    assert s.evidence["exchanges"] == {"alice->bob": 3, "bob->alice": 3}
    assert s.evidence["distinct_days"] == 2
    assert s.suggested_at == events[5].occurred_at  # event time of the trigger
    assert "6 messages in both directions on 2 different days" in s.explanation
    assert state is not None and state.n_ab + state.n_ba == 10


def test_one_day_is_not_enough() -> None:
    _, out = fold(conversation("a", "b", per_direction=10, days=1))
    assert out == []


def test_one_directional_attention_never_triggers() -> None:
    events = [interaction("fan", "star", days=d) for d in range(30)]
    _, out = fold(events)
    assert out == []


def test_likes_alone_never_trigger() -> None:
    _, out = fold(conversation("a", "b", per_direction=20, days=10, kind="like"))
    assert out == []


def test_rule_thresholds_are_configurable() -> None:
    events = conversation("a", "b", per_direction=3, days=2)
    assert fold(events, Rule(min_exchanges_per_direction=4, min_distinct_days=2))[1] == []
    assert len(fold(events, Rule(min_exchanges_per_direction=2, min_distinct_days=2))[1]) == 1
    assert fold(events, Rule(min_exchanges_per_direction=3, min_distinct_days=3))[1] == []


def test_a_redelivered_event_changes_nothing() -> None:
    events = conversation("a", "b", per_direction=3, days=2)
    state, _ = fold(events[:4])
    again, s = step(state, events[2], RULE)
    assert again is state and s is None


def test_suggestion_ids_are_deterministic() -> None:
    events = conversation("a", "b", per_direction=3, days=2)
    assert fold(events)[1][0].suggestion_id == fold(events)[1][0].suggestion_id


def test_state_is_bounded_however_long_the_history() -> None:
    events = [interaction("a", "b", days=d) for d in range(400)]
    events += [interaction("b", "a", days=d + 0.5) for d in range(400)]
    state, _ = fold(events)
    assert state is not None
    assert len(state.days) == MAX_DAYS
    assert len(state.recent_ids) == MAX_RECENT_IDS
    assert len(state.encode()) < 8_000


def test_state_round_trips_through_its_encoding() -> None:
    state, _ = fold(conversation("a", "b", per_direction=4, days=3))
    assert state is not None
    assert PairState.decode(state.encode()) == state


def test_no_message_text_is_kept_in_pair_state() -> None:
    e = interaction("a", "b", text="a very private sentence")
    state, _ = step(None, e, RULE)
    assert b"private" not in state.encode()


people = st.sampled_from(["ann", "ben", "cat"])
kinds = st.sampled_from(["like", "share", "comment", "reply", "mention", "message", "call"])


@st.composite
def histories(draw: st.DrawFn) -> list[Interaction]:
    n = draw(st.integers(0, 40))
    out = []
    for _ in range(n):
        a, b = draw(st.lists(people, min_size=2, max_size=2, unique=True))
        out.append(
            interaction(
                a, b, kind=draw(kinds), days=draw(st.integers(0, 20)) + draw(st.floats(0, 0.9))
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(histories())
def test_swapping_who_is_actor_mirrors_the_state(events: list[Interaction]) -> None:
    """Symmetric in the pair: mirroring every direction mirrors the counts, nothing else."""
    pair = [e for e in events if e.pair == ("ann", "ben")]
    mirrored = [e.model_copy(update={"actor": e.target, "target": e.actor}) for e in pair]
    s1, out1 = fold(pair)
    s2, out2 = fold(mirrored)
    if s1 is None:
        assert s2 is None
        return
    assert s2 is not None
    assert (s1.n_ab, s1.n_ba) == (s2.n_ba, s2.n_ab)
    assert s1.days == s2.days
    assert len(out1) == len(out2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=60))
def test_likes_never_trigger_whatever_their_pattern(pattern: list[tuple[bool, int]]) -> None:
    events = [
        interaction("a", "b", kind="like", days=d)
        if fwd
        else interaction("b", "a", kind="like", days=d)
        for fwd, d in pattern
    ]
    assert fold(events)[1] == []


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000))
def test_duplicates_anywhere_in_the_stream_never_change_the_result(seed: int) -> None:
    events = conversation("a", "b", per_direction=4, days=3)
    rng = random.Random(seed)
    with_dupes = list(events)
    for _ in range(5):
        i = rng.randrange(len(with_dupes))
        with_dupes.insert(i + 1, with_dupes[i])
    s1, out1 = fold(events)
    s2, out2 = fold(with_dupes)
    assert s1 == s2
    assert out1 == out2
