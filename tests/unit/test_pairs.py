"""The decision, its determinism under shuffling, its bounds and its memory (pure)."""

from __future__ import annotations

import itertools
import math
import random
from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Interaction
from schemas.suggestions import Suggestion
from services.matcher import pairs, scoring
from services.matcher.pairs import (
    MAX_DAYS,
    MAX_RECENT_IDS,
    PairState,
    Place,
    Policy,
    decayed,
    earliest_pending,
    event_hash,
    flush,
    new_pair,
    newest_instant,
    receive,
    receive_many,
    record_outcome,
)
from tests.factories import T0, conversation, interaction

POLICY = Policy()
#: the mode before issue 37: every event buffered for the lateness, applied in event-time order
BUFFERING = Policy(apply_in_order=False)


def fold(
    events: list[Interaction],
    policy: Policy = POLICY,
    places=lambda _: None,
    state: PairState | None = None,
) -> tuple[PairState | None, list[Suggestion]]:
    out: list[Suggestion] = []
    for e in events:
        state, s = receive(state, e, policy, places)
        out += s
    if state is not None:
        state, s = flush(state, None, policy, places)
        out += s
    return state, out


def talk(
    a: str,
    b: str,
    *,
    per_direction: int = 3,
    days: int = 2,
    start: float = 0,
    kind: str = "reply",
    text: str | None = "What did you think of the lecture on Tuesday?",
    source: str = "test",
) -> list[Interaction]:
    out = []
    for i in range(per_direction * 2):
        actor, target = (a, b) if i % 2 == 0 else (b, a)
        day = start + (i * days) // (per_direction * 2)
        out.append(
            interaction(
                actor,
                target,
                kind=kind,
                days=day + i / 100,
                text=text,
                source=source,
                thread_id="t1",
                in_reply_to="x",
            )
        )
    return out


def test_a_two_day_conversation_is_suggested_once_with_evidence() -> None:
    state, out = fold(talk("bob", "alice", per_direction=3, days=2))
    assert len(out) == 1
    s = out[0]
    assert s.pair == ("alice", "bob")
    assert s.evidence["exchanges"] == {"alice->bob": 3, "bob->alice": 3}
    assert s.evidence["distinct_days"] == 2
    assert s.evidence["turn_taking"] >= 4
    assert "turn_taking" in s.evidence["signals"]
    assert s.explanation.startswith("You two have traded 6 replies lately")
    assert "How about a video call?" in s.explanation
    assert state is not None and state.suggestion_id == s.suggestion_id


def test_suggested_at_is_the_event_time_of_the_trigger() -> None:
    events = talk("a", "b")
    _, out = fold(events)
    assert out[0].suggested_at == max(e.occurred_at for e in events)


def test_one_day_is_not_enough() -> None:
    assert fold(talk("a", "b", per_direction=10, days=1))[1] == []


def test_one_directional_attention_never_triggers() -> None:
    events = [
        interaction("fan", "star", kind="reply", days=d, text="You are wonderful, truly!")
        for d in range(30)
    ]
    assert fold(events)[1] == []


def test_likes_and_shares_alone_never_trigger() -> None:
    for kind in ("like", "share"):
        assert fold(conversation("a", "b", per_direction=30, days=10, kind=kind))[1] == []


def test_phatic_replies_never_trigger() -> None:
    for text in ("ok", "thanks!", "lol", "👍", "merci", "gracias", "danke", "+1", "https://x.y/z"):
        assert fold(talk("a", "b", per_direction=10, days=5, text=text))[1] == [], text


def test_missed_and_very_short_calls_are_not_conversations() -> None:
    calls = [
        interaction(*(("a", "b") if i % 2 else ("b", "a")), kind="call", duration_s=d, days=i)
        for i, d in enumerate([0, 5, 0, 8, 10, 0, 3, 9])
    ]
    assert fold(calls)[1] == []
    long = [
        interaction(*(("a", "b") if i % 2 else ("b", "a")), kind="call", duration_s=600, days=i)
        for i in range(6)
    ]
    assert len(fold(long)[1]) == 1


def test_bots_never_count() -> None:
    events = talk("github:dependabot[bot]", "github:ann", per_direction=5, days=4)
    assert fold(events)[1] == []


def test_pairs_who_already_meet_in_person_need_no_suggestion() -> None:
    events = [interaction("a", "b", kind="in_person", days=0), *talk("a", "b", start=1)]
    assert fold(events)[1] == []


def test_cooldown_then_a_new_suggestion_needs_new_exchanges() -> None:
    first = talk("a", "b", per_direction=3, days=2)
    more_soon = talk("a", "b", per_direction=3, days=2, start=10)
    later = talk("a", "b", per_direction=3, days=2, start=40)
    _, out = fold(first + more_soon + later)
    assert len(out) == 2  # the one inside the 30-day cooldown is skipped
    assert (out[1].suggested_at - out[0].suggested_at) >= timedelta(days=30)
    assert out[0].suggestion_id != out[1].suggestion_id


def test_a_decline_holds_the_pair_back_much_longer_and_a_meeting_ends_it() -> None:
    state, out = fold(talk("a", "b"))
    assert len(out) == 1
    declined = record_outcome(state, "declined", out[0].suggested_at.timestamp())
    _, again = fold(talk("a", "b", start=40) + talk("a", "b", start=80), state=declined)
    assert again == []  # 180-day decline cooldown
    _, after = fold(talk("a", "b", start=200), state=declined)
    assert len(after) == 1
    met = record_outcome(state, "met", out[0].suggested_at.timestamp())
    assert fold(talk("a", "b", start=200), state=met)[1] == []
    assert record_outcome(met, "declined", 0).outcome == "met"


def test_a_suggestion_not_delivered_for_want_of_consent_holds_the_pair_a_day() -> None:
    """Issue 39: the notifier could not deliver it (a person had not opted in). The pair is
    suggested again after new exchanges a few days on, not after 30 days; the reciprocity
    gate still asks for new exchanges each way since the last suggestion."""
    state, out = fold(talk("a", "b"))
    assert len(out) == 1
    at = out[0].suggested_at.timestamp()
    held = record_outcome(state, "undelivered", at)
    assert held.outcome == "undelivered"
    assert pairs.cooldown_ends(held, POLICY) == at + POLICY.undelivered_retry_days * pairs.DAY
    assert pairs.cooldown_ends(state, POLICY) == at + POLICY.cooldown_days * pairs.DAY
    _, again = fold(talk("a", "b", start=5), state=held)
    assert len(again) == 1  # five days on, where the cooldown would have held it 30
    assert fold(talk("a", "b", start=5), state=state)[1] == []
    # the notifier's word never undoes a person's answer
    for answered in ("declined", "accepted", "met"):
        assert record_outcome(record_outcome(state, answered, at), "undelivered", at).outcome == (
            answered
        )


def test_met_ends_a_pair_only_when_both_people_say_so() -> None:
    state, out = fold(talk("a", "b"))
    at = out[0].suggested_at.timestamp()
    one = record_outcome(state, "met", at, person="a")
    assert one.outcome is None and one.met_by == ("a",)
    assert record_outcome(one, "met", at, person="a").outcome is None  # saying it twice
    assert record_outcome(one, "met", at, person="mallory") == one  # not one of the pair
    both = record_outcome(one, "met", at + 60, person="b")
    assert both.outcome == "met" and both.met_by == ("a", "b")
    # a lone claim does not stop later suggestions; two do
    assert len(fold(talk("a", "b", start=200), state=one)[1]) == 1
    assert fold(talk("a", "b", start=200), state=both)[1] == []


def test_coffee_in_the_shared_city_else_a_video_call() -> None:
    places = {
        "a": Place(city="Lisbon", time_zone="Europe/Lisbon"),
        "b": Place(city="lisbon", time_zone="Europe/Lisbon"),
    }.get
    _, out = fold(talk("a", "b"), places=places)
    assert out[0].evidence["meetup"] == {"kind": "coffee", "city": "Lisbon"}
    assert out[0].explanation.endswith("You're both in Lisbon — coffee?")
    far = {
        "a": Place(city="Lisbon", time_zone="Europe/Lisbon"),
        "b": Place(city="Tokyo", time_zone="Asia/Tokyo"),
    }.get
    _, out = fold(talk("a", "b"), places=far)
    assert out[0].evidence["meetup"] == {
        "kind": "video_call",
        "time_zones": ["Asia/Tokyo", "Europe/Lisbon"],
    }


def test_several_sources_strengthen_the_pair() -> None:
    one = fold(talk("a", "b", source="mastodon"))[1][0]
    mixed = talk("a", "b", source="mastodon")
    mixed[1] = mixed[1].model_copy(update={"source": "slack"})
    two = fold(mixed)[1][0]
    assert two.score > one.score
    assert "on Mastodon and Slack" in two.explanation


def test_thresholds_are_settings() -> None:
    events = talk("a", "b", per_direction=3, days=2)
    assert fold(events, Policy(min_exchanges_per_direction=4))[1] == []
    assert fold(events, Policy(min_distinct_days=3))[1] == []
    assert fold(events, Policy(min_decayed_per_direction=5))[1] == []
    assert len(fold(events, Policy(min_exchanges_per_direction=2))[1]) == 1


def test_a_redelivered_event_changes_nothing() -> None:
    events = talk("a", "b")
    state, _ = fold(events[:4])
    again, s = receive(state, events[2], POLICY)
    assert again is state
    assert s == []


def test_state_is_bounded_however_long_the_history() -> None:
    events = [
        interaction("a", "b", kind="reply", text="and what about the next one then?", days=d)
        for d in range(400)
    ]
    events += [interaction("b", "a", kind="message", days=d + 0.5) for d in range(400)]
    state, _ = fold(events)
    assert state is not None
    assert len(state.days) == MAX_DAYS
    assert len(state.recent_ids) == MAX_RECENT_IDS
    assert len(state.encode()) < 12_000


def test_state_round_trips_and_keeps_no_text() -> None:
    events = talk("a", "b", text="a very private sentence about my health, can we talk?")
    state = None
    for e in events[:3]:
        state, _ = receive(state, e, BUFFERING)  # no final flush: the last ones stay buffered
    assert state is not None and state.pending
    assert PairState.decode(state.encode()) == state
    assert b"private" not in state.encode()


def test_encoding_is_compact_and_reads_the_object_forms_written_before() -> None:
    events = talk("a", "b")
    first, _ = receive(None, events[0], BUFFERING)
    assert first == PairState(a="a", b="b", pending=first.pending, max_seen=first.max_seen)
    positional = orjson.loads(first.encode())
    assert positional[0] == 2 and positional[1:3] == ["a", "b"]  # format 2, field order
    state, _ = fold(events)
    assert state is not None
    fields = state.__dataclass_fields__
    full = orjson.dumps({f: getattr(state, f) for f in fields})
    sparse = orjson.dumps({f: v for f, v in state.__dict__.items() if v != fields[f].default})
    assert len(state.encode()) < len(full)
    assert PairState.decode(full) == PairState.decode(sparse) == PairState.decode(state.encode())
    assert PairState.decode(state.encode()) == state
    assert earliest_pending(first.encode()) == earliest_pending(orjson.dumps(first.__dict__))
    assert earliest_pending(first.encode()) == first.pending[0][0]
    assert earliest_pending(state.encode()) is None


def test_a_format_1_state_is_read_with_the_new_counters_at_zero() -> None:
    """States written before the tie-strength fields (format 1: fields up to ``outcome_at``,
    buffered events of 9 values) still decode, and keep deciding."""
    events = talk("a", "b")
    state, _ = receive(None, events[0], BUFFERING)
    names = list(state.__dataclass_fields__)
    old = [1, *(state.__dict__[f] for f in names[: names.index("outcome_at") + 1])]
    old[1 + names.index("pending")] = [list(p[:9]) for p in state.pending]
    back = PairState.decode(orjson.dumps(old))
    assert back.pending == tuple((*p[:9], 0.0, 0.0) for p in state.pending)
    assert back.days_total == 0 and back.weeks == () and back.mkinds == {}
    made = []
    for e in events[1:]:
        back, out = receive(back, e, POLICY)
        made += out
    assert made + flush(back, None, POLICY)[1]  # still suggested


def test_a_new_pair_is_the_dataclass_default() -> None:
    made = new_pair("a", "b")
    assert made == PairState(a="a", b="b")
    assert made.kinds is not new_pair("a", "b").kinds  # fresh dicts, never shared


def test_decode_refuses_an_array_of_another_format() -> None:
    raw = orjson.loads(new_pair("a", "b").encode())
    for bad in ([3, *raw[1:]], raw[:-1], [1, None, "b", *raw[3:]]):
        with pytest.raises(ValueError, match=r"format|both people"):
            PairState.decode(orjson.dumps(bad))


# --- properties -----------------------------------------------------------------------------

people = st.sampled_from(["ann", "ben"])
texts = st.sampled_from(
    [
        None,
        "ok",
        "thanks!",
        "lol",
        "Are you coming to the game on Friday?",
        "I read the paper you sent, the second part is brilliant.",
        "👍",
    ]
)
kinds = st.sampled_from(["like", "share", "comment", "reply", "mention", "message", "call"])


@st.composite
def histories(draw: st.DrawFn, max_size: int = 60) -> list[Interaction]:
    out = []
    for i in range(draw(st.integers(0, max_size))):
        a, b = draw(st.permutations(["ann", "ben"]))
        kind = draw(kinds)
        out.append(
            interaction(
                a,
                b,
                kind=kind,
                event_id=f"h{i}",
                at=T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 40))),
                text=draw(texts) if kind not in ("like", "share", "call") else None,
                duration_s=draw(st.sampled_from([None, 0, 5, 60, 900])) if kind == "call" else None,
                thread_id=draw(st.sampled_from([None, "t1", "t2"])),
            )
        )
    return out


WAITING = Policy(suggest_early=False, apply_in_order=False)


def shuffle_within_lateness(events: list[Interaction], rnd: random.Random) -> list[Interaction]:
    """Events displaced by at most the lateness: sorted by a jittered time."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    jitter = {e.event_id: rnd.uniform(0, POLICY.lateness_s * 0.99) for e in ordered}
    return sorted(ordered, key=lambda e: e.occurred_at.timestamp() + jitter[e.event_id])


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_shuffling_within_the_lateness_gives_the_same_suggestions(
    events: list[Interaction], rnd: random.Random
) -> None:
    """With suggestions waiting for the lateness too, arrival order within it changes
    nothing: not the suggestions, not the state."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    shuffled = shuffle_within_lateness(events, rnd)
    assert fold(shuffled, WAITING) == fold(ordered, WAITING)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_suggesting_early_changes_nothing_when_events_arrive_in_time_order(
    events: list[Interaction],
) -> None:
    """The default (a suggestion as soon as the buffered events qualify) gives exactly the
    suggestions and the final state of waiting for the lateness, for events that arrive in
    the order the matcher applies them: event time, and events of the same instant by id
    (one of those arriving after the trigger but ordered before it is a late event)."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, event_hash(e)))
    assert fold(ordered, POLICY) == fold(ordered, WAITING)


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_a_pair_suggested_in_time_order_is_suggested_whatever_the_arrival_order(
    events: list[Interaction], rnd: random.Random
) -> None:
    """Shuffled within the lateness, a pair that in time order is suggested is suggested
    too (perhaps sooner, from the events that had arrived by then)."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    if fold(ordered, WAITING)[1]:
        assert fold(shuffle_within_lateness(events, rnd), POLICY)[1]


def test_a_suggestion_does_not_wait_for_the_lateness() -> None:
    """Hand-worked: three replies each way over two days, the last one just now. Waiting,
    the events sit in the buffer (lateness one hour, nothing newer has come); by default the
    last reply makes the suggestion at once, with all six exchanges applied."""
    events = talk("a", "b")
    waited = state = None
    made_waiting: list[Suggestion] = []
    made: list[Suggestion] = []
    for e in events:
        waited, out = receive(waited, e, WAITING)
        made_waiting += out
        state, out = receive(state, e, POLICY)
        made += out
    assert made_waiting == [] and waited is not None and waited.pending
    assert len(made) == 1 and state is not None and not state.pending
    assert made[0].evidence["exchanges"] == {"a->b": 3, "b->a": 3}
    assert made[0].suggested_at == events[-1].occurred_at
    # the same suggestion the lateness gives once it has passed
    assert flush(waited, None, WAITING)[1] == made


def test_only_the_newest_instant_waits() -> None:
    """Hand-worked: by default an event waits only while it is its pair's newest instant. The
    first reply is held; the second (twelve hours later) applies it (one exchange a -> b, its
    decayed score its weight at its own time) and is held in turn; a watermark past it (the
    partition has seen something later) applies it too. A redelivery changes nothing (the same
    object). The buffering mode holds both for the lateness."""
    events = talk("a", "b")
    first, made = receive(None, events[0], POLICY)
    assert made == [] and len(first.pending) == 1 and first.n_ab == 0
    second, _ = receive(first, events[1], POLICY)
    assert len(second.pending) == 1 and second.pending[0][0] == events[1].occurred_at.timestamp()
    assert (second.n_ab, second.x_ab, second.days_total) == (1, 1, 1)
    assert second.ref_t == events[0].occurred_at.timestamp()
    assert second.s_ab == scoring.weight(events[0]) > 0 and second.s_ba == 0.0
    assert receive(second, events[1], POLICY)[0] is second
    later = events[1].occurred_at.timestamp() + 1
    both, _, new = receive_many(first, [(events[1], 0.0)], POLICY, until=later)
    assert both is not None and both.pending == () and (both.n_ab, both.n_ba) == (1, 1)
    assert new == 1
    held, _ = receive(receive(None, events[0], BUFFERING)[0], events[1], BUFFERING)
    assert len(held.pending) == 2 and held.n_ab == 0


@settings(max_examples=200, deadline=None)
@given(histories())
def test_applying_in_order_at_once_decides_as_the_buffer_did(events: list[Interaction]) -> None:
    """Events in time order: the default makes exactly the suggestions, and ends in exactly
    the state, of the mode before (buffered for the lateness, suggesting early)."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, event_hash(e)))
    assert fold(ordered, POLICY) == fold(ordered, BUFFERING)


def unthreaded(events: list[Interaction]) -> list[Interaction]:
    return [e.model_copy(update={"thread_id": None, "in_reply_to": None}) for e in events]


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_out_of_order_events_are_applied_at_their_own_age(
    events: list[Interaction], rnd: random.Random
) -> None:
    """Shuffled within the lateness and applied at once: what does not depend on turn-taking
    comes out as in time order (counts of every exchange, likes, kinds, sources); without
    threads (no turn-taking) the meaningful counts, distinct days and weeks too, and the
    decayed scores valued at the same time agree to rounding."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    shuffled = shuffle_within_lateness(events, rnd)
    s1, s2 = fold(ordered)[0], fold(shuffled)[0]
    if s1 is None:
        assert s2 is None
        return
    assert s2 is not None and s2.pending == ()
    for f in ("x_ab", "x_ba", "likes", "kinds", "sources", "in_person_at", "max_seen"):
        assert getattr(s1, f) == getattr(s2, f), f
    plain = unthreaded(ordered)
    t1, t2 = fold(plain)[0], fold([plain[ordered.index(e)] for e in shuffled])[0]
    assert t1 is not None and t2 is not None
    for f in ("n_ab", "n_ba", "days_total", "weeks_total", "first_at", "last_at", "night"):
        assert getattr(t1, f) == getattr(t2, f), f
    if t1.max_seen is not None:
        d1, d2 = decayed(t1, t1.max_seen, POLICY), decayed(t2, t1.max_seen, POLICY)
        for x, y in zip(d1, d2, strict=True):
            assert x == pytest.approx(y, rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(histories(), st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_a_batch_of_any_size_makes_the_same_decisions(
    events: list[Interaction], sizes: list[int]
) -> None:
    """``receive_many`` over a pair's events cut into batches of any sizes: the same state,
    suggestions and count of new events as one ``receive`` per event."""
    one_by_one = fold(events)[0] if events else None
    single = fold(events)[1]
    state: PairState | None = None
    made: list[Suggestion] = []
    new = 0
    i = 0
    for size in itertools.cycle(sizes):
        if i >= len(events):
            break
        state, out, n = receive_many(state, [(e, 0.0) for e in events[i : i + size]], POLICY)
        made += [s for s, _ in out]
        new += n
        i += size
    if state is not None:
        state, tail = flush(state, None, POLICY)
        made += tail
    assert state == one_by_one and made == single
    assert new == len({(e.source, e.event_id) for e in events})


@settings(max_examples=300, deadline=None)
@given(
    histories(),
    st.lists(st.integers(1, 7), min_size=1, max_size=20),
    st.lists(st.sampled_from([0, 0, 60, 3600, 3 * 86400]), min_size=1, max_size=20),
    st.sampled_from(["as drawn", "in order", "in order, hours"]),
)
def test_a_batch_with_its_partition_s_watermark_makes_the_same_decisions(
    events: list[Interaction], sizes: list[int], ahead: list[int], order: str
) -> None:
    """``receive_many`` with the partition's watermark (``until``: newer events of other
    pairs move it ahead of this pair's own) makes the decisions of one ``receive`` per event
    followed by a flush to the same watermark (its contract; the matcher's hot path calls it
    so). In order, most events take its direct path (applied at once); on the hour, many
    share an instant (which waits, and is applied by id); as drawn, they arrive late too."""
    if order != "as drawn":
        events = sorted(events, key=lambda e: e.occurred_at)
    if order == "in order, hours":
        events = [
            e.model_copy(update={"occurred_at": e.occurred_at.replace(minute=0)}) for e in events
        ]
    want: PairState | None = None
    got: PairState | None = None
    want_made: list[Suggestion] = []
    got_made: list[Suggestion] = []
    watermark = -math.inf
    i = 0
    for size, extra in zip(itertools.cycle(sizes), itertools.cycle(ahead), strict=False):
        if i >= len(events):
            break
        batch = events[i : i + size]
        newest = max(e.occurred_at.timestamp() for e in batch) + extra
        watermark = max(watermark, newest_instant(newest))
        for e in batch:
            want, out = receive(want, e, POLICY)
            want_made += out
        if want is not None and want.pending and want.pending[0][0] <= watermark:
            want, out = flush(want, watermark, POLICY)
            want_made += out
        got, made, _ = receive_many(got, [(e, 0.0) for e in batch], POLICY, until=watermark)
        got_made += [s for s, _ in made]
        i += size
    assert got == want
    assert got_made == want_made


@settings(max_examples=150, deadline=None)
@given(histories())
def test_the_decision_is_symmetric_in_the_pair(events: list[Interaction]) -> None:
    mirrored = [e.model_copy(update={"actor": e.target, "target": e.actor}) for e in events]
    s1, out1 = fold(events)
    s2, out2 = fold(mirrored)
    assert len(out1) == len(out2)
    assert [s.score for s in out1] == [s.score for s in out2]
    if s1 is not None:
        assert s2 is not None
        assert (s1.n_ab, s1.n_ba) == (s2.n_ba, s2.n_ab)


@settings(max_examples=100, deadline=None)
@given(histories())
def test_likes_alone_never_trigger_whatever_their_pattern(events: list[Interaction]) -> None:
    likes = [e.model_copy(update={"kind": "like", "text": None}) for e in events]
    assert fold(likes)[1] == []


@settings(max_examples=100, deadline=None)
@given(histories())
def test_one_directional_histories_never_trigger(events: list[Interaction]) -> None:
    one_way = [e.model_copy(update={"actor": "ann", "target": "ben"}) for e in events]
    assert fold(one_way)[1] == []


@settings(max_examples=100, deadline=None)
@given(histories(), st.integers(0, 10_000))
def test_duplicates_anywhere_never_change_the_result(events: list[Interaction], seed: int) -> None:
    rng = random.Random(seed)
    with_dupes = list(events)
    for _ in range(min(5, len(events))):
        i = rng.randrange(len(with_dupes))
        with_dupes.insert(i + 1, with_dupes[i])
    assert fold(with_dupes)[1] == fold(events)[1]


@settings(max_examples=100, deadline=None)
@given(histories(max_size=80))
def test_a_pair_in_cooldown_is_never_suggested_twice_within_it(events: list[Interaction]) -> None:
    _, out = fold(sorted(events, key=lambda e: e.occurred_at))
    for first, second in itertools.pairwise(out):
        assert second.suggested_at - first.suggested_at >= timedelta(days=POLICY.cooldown_days)
