"""The decision record (``services.matcher.decisions``, issue 39): gate by gate, it agrees with
``pairs.qualifies`` on every state a random history reaches (a disagreement is a bug in one of
the two), and on hand-built pairs it names the gate that decided and what would change it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Interaction
from services.evaluation import offline
from services.matcher import decisions, models, pairs
from tests.factories import conversation
from tests.unit.test_pairs import histories

MODEL = models.load()
POLICIES = [
    pairs.Policy(),  # the rules alone
    replace(pairs.Policy(), model=MODEL),  # the default gate
    replace(pairs.Policy(), model=MODEL, min_probability=0.05, closest_min_probability=0.01),
]


@settings(max_examples=150, deadline=None)
@given(
    histories(),
    st.integers(0, 2),
    st.sampled_from([None, 1, 3, 4]),
    st.sampled_from([None, "declined", "accepted", "met", "undelivered"]),
)
def test_the_record_agrees_with_qualifies_on_every_state(
    events: list[Interaction], which: int, rank: int | None, answered: str | None
) -> None:
    policy = POLICIES[which]

    def closest(a: str, b: str) -> int | None:
        return rank

    # states built by a policy that never suggests (no counter is reset), so that many reach
    # the point where the judged policy would suggest them; half the runs suggest as they go
    build = policy if answered else replace(policy, model=offline._ANY, min_probability=2.0)
    state = None
    for i, e in enumerate(sorted(events, key=lambda e: e.occurred_at)):
        state, _ = pairs.receive(state, e, build, closest=closest)
        if answered and i == len(events) // 2 and state.suggestion_id is not None:
            state = pairs.record_outcome(state, answered, e.occurred_at.timestamp())
        ts = e.occurred_at.timestamp()
        for now in (ts, ts + 0.5 * pairs.DAY, ts + 2 * pairs.DAY, ts + 20 * pairs.DAY):
            d = decisions.decide(state, policy, now, closest)
            assert d.suggested == pairs.qualifies(state, policy, now, closest), d
            assert [g.name for g in d.gates] == list(
                decisions.GATES if policy.model else decisions.GATES[:-1]
            )
            failed = [g.name for g in d.gates if not g.passed]
            assert d.decided_by == (failed[0] if failed else None)


def test_a_short_conversation_is_decided_by_the_model_and_says_what_would_change_it() -> None:
    # six each way over four weeks: the rules pass, the shipped model gives 0.199
    talk = conversation("ann", "ben", per_direction=6, days=28)
    policy = replace(pairs.Policy(), model=MODEL)
    states, made = pairs_replay(talk, policy)
    assert made == []
    d = decisions.decide(states, policy, talk[-1].occurred_at.timestamp())
    assert not d.suggested and d.decided_by == "tie_strength"
    g = d.gate("tie_strength")
    assert g is not None and g.threshold == 0.35 and isinstance(g.value, float) and g.value < 0.25
    assert all(x.passed for x in d.gates[:-1])
    assert d.model == MODEL.version and d.contributions and d.contributions[0][0] == "weeks"
    out = d.to_dict()
    assert out["suggested"] is False and out["decided_by"] == "tie_strength"
    assert "more different weeks" in out["would_change"]
    assert {"name", "passed", "value", "threshold"} <= set(out["gates"][0])


def test_one_way_talk_is_decided_by_reciprocity_with_the_count_missing() -> None:
    talk = [e for e in conversation("ann", "ben", per_direction=6, days=28) if e.actor == "ann"]
    states, _ = pairs_replay(talk, pairs.Policy())
    d = decisions.decide(states, pairs.Policy(), talk[-1].occurred_at.timestamp())
    assert d.decided_by == "reciprocity"
    assert d.gate("reciprocity") == decisions.Gate(
        "reciprocity",
        False,
        0,
        3,
        "6 meaningful exchanges one way and 0 the other; 3 each way are needed",
    )
    assert decisions.nearest(d) == "3 more meaningful exchanges from the quieter of the two"


def test_a_suggested_pair_is_in_cooldown_until_a_date() -> None:
    talk = conversation("ann", "ben", per_direction=3, days=2)
    states, made = pairs_replay(talk, pairs.Policy())
    assert len(made) == 1
    at = made[0].suggested_at
    d = decisions.decide(states, pairs.Policy(), (at + timedelta(days=10)).timestamp())
    assert d.decided_by == "cooldown"
    ends = (at + timedelta(days=30)).date().isoformat()
    assert decisions.nearest(d) == f"suggested 10.0 days ago; the cooldown ends on {ends}"


def test_between_the_bars_the_closest_rule_is_named() -> None:
    talk = conversation("ann", "ben", per_direction=6, days=42)  # 0.304 at the end
    policy = replace(pairs.Policy(), model=MODEL, min_probability=2.0)  # never suggested
    states, _ = pairs_replay(talk, policy)
    policy = replace(policy, min_probability=0.35)
    now = talk[-1].occurred_at.timestamp()
    near = decisions.decide(states, policy, now, lambda a, b: 2)
    assert near.suggested and near.decided_by is None
    g = near.gate("tie_strength")
    assert g is not None and g.threshold == 0.25 and "among the other's 2 closest" in g.says
    far = decisions.decide(states, policy, now, lambda a, b: 9)
    assert far.decided_by == "tie_strength" and far.gate("tie_strength").threshold == 0.35  # type: ignore[union-attr]


def pairs_replay(
    talk: list[Interaction], policy: pairs.Policy
) -> tuple[pairs.PairState, list[object]]:
    state = None
    made: list[object] = []
    for e in talk:
        state, m = pairs.receive(state, e, policy)
        made += m
    assert state is not None
    state, m = pairs.flush(state, None, policy)
    return state, made + m


def test_a_suggestion_carries_the_decision_made_then() -> None:
    from schemas.suggestions import SUGGESTION_ADAPTER

    talk = conversation("ann", "ben", per_direction=6, days=42)  # between the bars
    policy = replace(pairs.Policy(), model=MODEL)
    state = None
    made = []
    for e in talk:
        state, m = pairs.receive(state, e, policy, closest=lambda a, b: 1)
        made += m
    (s,) = made
    d = s.decision
    assert d is not None and d.suggested and d.decided_by is None and d.would_change is None
    assert [g.name for g in d.gates] == list(decisions.GATES) and all(g.passed for g in d.gates)
    assert d.gates[-1].threshold == 0.25  # the person-relative bar, not the global one
    assert d.model == MODEL.version
    assert d.probability is not None and abs(d.probability - s.score) < 0.001  # score: 3 places
    assert max(d.contributions, key=d.contributions.__getitem__) == "weeks"
    # it travels on the wire and back unchanged
    assert SUGGESTION_ADAPTER.validate_json(SUGGESTION_ADAPTER.dump_json(s)) == s
