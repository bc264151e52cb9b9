"""The decay half-life and the silence rule, each on its own (issue 38, item 8): hand-worked
pair states, every other gate out of the way."""

from __future__ import annotations

import dataclasses

import pytest

from services.matcher import scoring
from services.matcher.pairs import DAY, PairState, Policy, decayed, flush, qualifies, receive
from tests.factories import conversation, interaction


def one_message(policy: Policy) -> tuple[float, float, PairState]:
    """ann writes ben one message at day 0: its weight, its event time, the pair state."""
    m = interaction("ann", "ben", kind="message", text="shall we try the new place on Friday?")
    s, _ = receive(None, m, policy)
    s, _ = flush(s, None, policy)
    return scoring.weight(m), m.occurred_at.timestamp(), s


@pytest.mark.parametrize("half_life", [21.0, 7.0, 60.0])
def test_a_score_halves_every_half_life(half_life: float) -> None:
    """A message of weight w is worth w now, w/2 one half-life later, w/4 two later; the
    other direction stays 0 (hand-worked: 0.5 ** (days / half-life))."""
    policy = Policy(half_life_days=half_life)
    w, t, s = one_message(policy)
    assert w > scoring.MEANINGFUL
    for days, factor in ((0, 1.0), (half_life, 0.5), (2 * half_life, 0.25), (3.5, None)):
        ab, ba = decayed(s, t + days * DAY, policy)
        want = w * (factor if factor is not None else 0.5 ** (3.5 / half_life))
        assert (ab, ba) == (pytest.approx(want), 0.0)


def test_the_half_life_decides_when_a_quiet_pair_falls_below_the_bar() -> None:
    """The same conversation, judged 30 days after its last exchange with every other gate
    open: with a 21-day half-life its weaker direction (3 messages of 0.7, two days old at
    most, so about 2.1) is about 0.78 by then, under the bar of 1.0; with a 60-day half-life
    about 1.5, over it."""
    talk = conversation("ann", "ben", per_direction=3, days=2)
    for half_life, passes in ((21.0, False), (60.0, True)):
        policy = Policy(
            half_life_days=half_life,
            max_silence_days=365,
            window_days=365,
            model=None,
        )
        s = None
        for e in talk:
            s, _ = receive(s, e, dataclasses.replace(policy, suggest_early=False))
        assert s is not None
        s, _ = flush(s, None, dataclasses.replace(policy, min_exchanges_per_direction=99))
        assert s.last_at is not None
        assert qualifies(s, policy, s.last_at + 30 * DAY) is passes


def test_silence_longer_than_the_rule_stops_a_suggestion_to_the_second() -> None:
    """Every other gate open (no decay bar, a year's window): a pair qualifies up to
    ``max_silence_days`` after its last meaningful exchange, and not one second later."""
    policy = Policy(min_decayed_per_direction=0.0, window_days=365, model=None)
    talk = conversation("ann", "ben", per_direction=3, days=2)
    s = None
    for e in talk:
        s, _ = receive(s, e, dataclasses.replace(policy, suggest_early=False))
    assert s is not None
    s, _ = flush(s, None, dataclasses.replace(policy, min_exchanges_per_direction=99))
    assert s.last_at is not None
    limit = s.last_at + policy.max_silence_days * DAY
    assert qualifies(s, policy, limit)
    assert not qualifies(s, policy, limit + 1)
    longer = dataclasses.replace(policy, max_silence_days=90)
    assert qualifies(s, longer, limit + 1)
