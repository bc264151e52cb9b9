"""What an answer does to its pair (``services.matcher.answers``), and the labelled examples
it leaves for learning, worked by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from schemas.feedback import FeedbackGiven
from schemas.people import person_hash
from services.matcher import learning
from services.matcher.answers import answer
from services.matcher.pairs import new_pair

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
SUGGESTED = replace(
    new_pair("alice", "bob"), suggestion_id="s2", signals=("replies",), x=(1.0, 2.5)
)


def fb(outcome: str, person: str = "alice", suggestion_id: str = "s2") -> FeedbackGiven:
    return FeedbackGiven(
        suggestion_id=suggestion_id,
        pair=("alice", "bob"),
        person_id=person,
        outcome=outcome,  # type: ignore[arg-type]
        at=AT,
    )


def test_an_acceptance_is_recorded_teaches_a_positive_example_and_counts() -> None:
    done = answer(SUGGESTED, fb("accepted"))
    assert done.after.outcome == "accepted"
    assert done.example == learning.Example(
        suggestion_id="s2", person=person_hash("alice"), x=(1.0, 2.5), label=1, at=AT.timestamp()
    )
    assert done.counted


def test_a_decline_teaches_a_negative_example_and_is_not_counted() -> None:
    done = answer(SUGGESTED, fb("declined", person="bob"))
    assert done.after.outcome == "declined"
    assert done.example is not None and done.example.label == 0
    assert done.example.person == person_hash("bob")  # a hash: no id is kept
    assert not done.counted


def test_a_snooze_changes_and_teaches_nothing() -> None:
    done = answer(SUGGESTED, fb("snoozed"))
    assert done.after is SUGGESTED
    assert done.example is None and not done.counted


def test_an_answer_to_an_older_suggestion_teaches_nothing_and_is_not_counted() -> None:
    done = answer(SUGGESTED, fb("accepted", suggestion_id="s1"))
    assert done.after.outcome == "accepted"  # still recorded for the pair
    assert done.example is None and not done.counted


def test_met_counts_once_both_said_so() -> None:
    one = answer(SUGGESTED, fb("met", person="alice"))
    assert one.after.outcome != "met" and not one.counted
    assert one.example is not None and one.example.label == 1
    both = answer(one.after, fb("met", person="bob"))
    assert both.after.outcome == "met" and both.counted


def test_a_pair_never_suggested_with_features_leaves_no_example() -> None:
    done = answer(replace(SUGGESTED, x=()), fb("accepted"))
    assert done.example is None and done.counted


def test_examples_round_trip_through_the_labels_table_format() -> None:
    example = answer(SUGGESTED, fb("declined")).example
    assert example is not None
    key, value = learning.encode_example(example)
    assert key == f"s2|{person_hash('alice')}".encode()
    assert learning.decode_example(value) == example
    assert learning.decode_example(b"not json") is None
    assert learning.decode_example(b'{"suggestion_id": "s"}') is None


def _talked() -> tuple[object, object]:
    """A pair that exchanged both ways (three replies each, two weeks apart), never
    suggested on its own, and the shipped model's policy."""
    from services.evaluation import offline
    from services.matcher import models, pairs
    from tests.factories import conversation

    policy = replace(pairs.Policy(), model=models.load())
    talk = conversation("alice", "bob", per_direction=3, days=14)
    states, made = offline.replay(talk, replace(policy, min_probability=1.0, closest_top=0))
    assert made == []  # not suggested: the group's answer is the pair's only one
    return states[talk[0].key], policy


def group_fb(person: str, outcome: str = "accepted") -> FeedbackGiven:
    return FeedbackGiven(
        suggestion_id="g1",
        group_id="g1",
        pair=("alice", "bob"),
        person_id=person,
        outcome=outcome,  # type: ignore[arg-type]
        at=AT,
    )


def test_a_group_yes_teaches_each_member_pair_and_leaves_the_pair_alone() -> None:
    import hashlib

    from services.matcher import pairs
    from services.matcher.model import vector

    state, policy = _talked()
    assert isinstance(state, pairs.PairState) and isinstance(policy, pairs.Policy)
    assert policy.model is not None and state.last_at is not None
    done = answer(state, group_fb("alice"), policy)
    assert done.after is state  # no outcome, cooldown or suggestion of the pair's own
    assert not done.counted
    # the pair's features as of its latest exchange, as the fitted examples are
    x = vector(policy.model, pairs.features(state, state.last_at, policy))
    key = hashlib.sha256(b"g1|alice|bob").hexdigest()[:32]
    assert done.example == learning.Example(
        suggestion_id=key, person=person_hash("alice"), x=x, label=1, at=AT.timestamp()
    )
    # each member of the pair gives their own example (one key per group, pair and person)
    bob = answer(state, group_fb("bob"), policy).example
    assert bob is not None and bob.person == person_hash("bob") and bob.suggestion_id == key


def test_a_group_answer_without_a_model_or_contact_both_ways_teaches_nothing() -> None:
    from services.matcher import pairs

    state, policy = _talked()
    assert isinstance(state, pairs.PairState) and isinstance(policy, pairs.Policy)
    assert answer(state, group_fb("alice"), None).example is None
    assert answer(state, group_fb("alice"), replace(policy, model=None)).example is None
    one_way = replace(state, n_ba=0)
    assert answer(one_way, group_fb("alice"), policy).example is None
    assert answer(state, group_fb("alice", "snoozed"), policy).example is None
