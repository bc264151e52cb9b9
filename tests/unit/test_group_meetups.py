"""Group meetups, the pure parts (issue 38): the circle stage finds groups from folded
exchanges, the schema holds them consistent, the notifier's policy asks every member, and
the "on" item names only those who said yes. The real topics, worker, feeds and page are in
tests/integration/test_group_meetups.py. Expected groups come from how the exchanges were
generated (who talks with whom), never from the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from icalendar import Calendar
from pydantic import ValidationError

from schemas.people import FeedItem, Preferences
from schemas.suggestions import GroupSuggestion, MemberTie, group_id
from services.feeds.page import plain_evidence, proposal
from services.matcher.circle_stage import CircleStage, Entry
from services.matcher.groups import same_table
from services.notifier import mail
from services.notifier.feeds import decide_group, group_items, group_on_items
from services.notifier.store import without_member
from tests.factories import circle_stage

T0 = 1.77e9
DAY = 86_400.0


def exchanges(pairs: list[tuple[str, str]], rounds: int, weight: float = 0.8) -> list[Entry]:
    """Each pair replies back and forth ``rounds`` times, a day apart: two entries per reply
    (one per person, as ``activity_of`` sends them)."""
    out: list[Entry] = []
    for r in range(rounds):
        for a, b in pairs:
            at = T0 + r * DAY
            out += [(a, b, weight, at), (b, a, weight, at)]
    return out


def stage() -> CircleStage:
    return circle_stage()[0]


def found(s: CircleStage, people: set[str], at: float) -> list[tuple[str, ...]]:
    return [g.members for g in s.groups(people, at, top=5, min_weight=3.0)]


def test_three_colleagues_who_all_reply_to_each_other_are_one_group() -> None:
    s = stage()
    trio = [("ann", "bo"), ("bo", "cy"), ("ann", "cy")]
    entries = exchanges(trio, rounds=6)
    s.fold(entries, 0, set())
    groups = s.groups({"ann", "bo", "cy"}, T0 + 6 * DAY, top=5, min_weight=3.0)
    assert [g.members for g in groups] == [("ann", "bo", "cy")]
    g = groups[0]
    assert g.group_id == group_id(("ann", "bo", "cy"))
    assert set(g.ties) == {"ann|bo", "ann|cy", "bo|cy"}
    assert all(t.rank == (1, 1) or max(t.rank) <= 2 for t in g.ties.values())
    assert "A table for three?" in g.explanation
    assert not any(m in g.explanation for m in g.members)  # named in the heading, by name


def test_a_few_messages_are_not_a_group_however_few_contacts_people_have() -> None:
    s = stage()
    s.fold(exchanges([("ann", "bo"), ("bo", "cy"), ("ann", "cy")], rounds=1), 0, set())
    assert found(s, {"ann", "bo", "cy"}, T0 + DAY) == []


def test_a_group_fades_when_its_talk_is_long_past() -> None:
    s = stage()
    s.fold(exchanges([("ann", "bo"), ("bo", "cy"), ("ann", "cy")], rounds=6), 0, set())
    assert found(s, {"ann"}, T0 + 6 * DAY) == [("ann", "bo", "cy")]
    # a year on (about 17 half-lives), the same circles hold no tie strong enough
    assert found(s, {"ann"}, T0 + 365 * DAY) == []


def test_a_chain_is_not_a_group() -> None:
    s = stage()  # ann-bo and bo-cy talk a lot; ann and cy never
    s.fold(exchanges([("ann", "bo"), ("bo", "cy")], rounds=10), 0, set())
    assert found(s, {"ann", "bo", "cy"}, T0 + 10 * DAY) == []


def test_the_group_schema_refuses_what_is_not_one() -> None:
    ties = {k: MemberTie(rank=(1, 2), share=(0.5, 0.4)) for k in ("a|b", "a|c", "b|c")}
    at = datetime(2026, 1, 1, tzinfo=UTC)
    ok = GroupSuggestion(
        group_id=group_id(("a", "b", "c")),
        members=("a", "b", "c"),
        suggested_at=at,
        ties=ties,
        explanation="x",
    )
    assert ok.without("c") is None  # two left: withdrawn
    with pytest.raises(ValidationError, match="sorted"):
        GroupSuggestion(
            group_id=group_id(("a", "b", "c")),
            members=("b", "a", "c"),
            suggested_at=at,
            ties=ties,
            explanation="x",
        )
    with pytest.raises(ValidationError, match="every pair"):
        GroupSuggestion(
            group_id=group_id(("a", "b", "c")),
            members=("a", "b", "c"),
            suggested_at=at,
            ties={"a|b": ties["a|b"]},
            explanation="x",
        )
    with pytest.raises(ValidationError, match="group_id"):
        GroupSuggestion(
            group_id="made-up", members=("a", "b", "c"), suggested_at=at, ties=ties, explanation="x"
        )
    with pytest.raises(ValidationError):
        GroupSuggestion(
            group_id=group_id(("a", "b")),
            members=("a", "b"),
            suggested_at=at,
            ties={"a|b": ties["a|b"]},
            explanation="x",
        )


def group(*members: str) -> GroupSuggestion:
    ms = tuple(sorted(members))
    ties = {
        f"{a}|{b}": MemberTie(rank=(1, 1), share=(0.4, 0.4))
        for i, a in enumerate(ms)
        for b in ms[i + 1 :]
    }
    return GroupSuggestion(
        group_id=group_id(ms),
        members=ms,
        suggested_at=datetime(2026, 1, 1, tzinfo=UTC),
        ties=ties,
        explanation="x",
    )


NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday, midday UTC
YES = Preferences(opted_in=True)


def test_every_member_must_consent_and_none_may_exclude_another() -> None:
    g = group("a", "b", "c")
    assert decide_group(g, dict.fromkeys("abc", YES), NOW, {}).action == "deliver"
    no = {"a": YES, "b": YES, "c": Preferences(opted_in=False)}
    assert decide_group(g, no, NOW, {}).reason == "consent"
    assert decide_group(g, {"a": YES, "b": YES}, NOW, {}).reason == "consent"
    never = {"a": YES, "b": YES, "c": Preferences(opted_in=True, never_with=["a"])}
    assert decide_group(g, never, NOW, {}).action == "drop"
    limited = {"a": YES, "b": YES, "c": Preferences(opted_in=True, sources=["slack"])}
    assert decide_group(g, limited, NOW, {}).reason == "sources"


def test_a_member_at_their_weekly_cap_holds_the_group_for_everyone() -> None:
    g = group("a", "b", "c")
    d = decide_group(g, dict.fromkeys("abc", YES), NOW, {"b": YES.max_per_week})
    assert d.action == "hold" and d.reason == "weekly_cap"
    assert d.until is not None and d.until > NOW


def answered(items: tuple[FeedItem, ...], answers: dict[str, str | None]) -> list[FeedItem]:
    return [i.model_copy(update={"response": answers.get(i.person_id)}) for i in items]


def test_a_group_is_on_at_three_yes_and_names_only_those() -> None:
    g = group("a", "b", "c", "d")
    items = group_items(g, NOW, ["UTC"])
    assert [i.person_id for i in items] == ["a", "b", "c", "d"]
    assert all(i.members == g.members and i.type == "group" for i in items)
    assert items[0].others == ("b", "c", "d")
    two = answered(items, {"a": "accepted", "b": "accepted", "c": "declined"})
    assert group_on_items(two, NOW, ["UTC"]) == ()
    three = answered(items, {"a": "accepted", "b": "accepted", "c": "declined", "d": "accepted"})
    on = group_on_items(three, NOW, ["UTC"])
    assert [i.person_id for i in on] == ["a", "b", "d"]
    assert all(i.members == ("a", "b", "d") and i.type == "group_on" for i in on)
    assert all("c" not in i.explanation.split() for i in on)  # a decline stays private
    window = on[0].meetup["window"] if on[0].meetup else {}
    assert window["start"] is not None
    assert datetime.fromisoformat(window["start"]) >= NOW + timedelta(hours=12)


def test_forgetting_a_member_shrinks_the_group_and_withdraws_it_below_three() -> None:
    items = group_items(group("a", "b", "c", "d"), NOW, ["UTC"])
    smaller = without_member(items[0], "d")
    assert smaller is not None and smaller.members == ("a", "b", "c")
    assert "d" not in {p for k in smaller.evidence["ties"] for p in k.split("|")}
    assert without_member(smaller, "c") is None  # two left: withdrawn
    pair_item = items[0].model_copy(update={"type": "suggestion", "members": ()})
    assert without_member(pair_item, "b") is None  # not a group item: removed as before


def test_group_emails_name_everyone_and_the_on_email_carries_the_invite() -> None:
    items = group_items(group("ann", "bo", "cy"), NOW, ["Europe/Berlin"])
    ask = mail.compose(
        items[0], to="ann@example.com", sender="rc <no@rc.test>", page_link="L", unsubscribe="U"
    )
    assert (
        ask.message["Subject"]
        == "Meet bo and cy together? realconnect has a group suggestion for you"
    )
    assert not any(p.get_content_type() == "text/calendar" for p in ask.message.walk())
    assert plain_evidence(items[0])[0] == "bo is your closest contact, and you are theirs."
    assert proposal(items[0])["what"] == "A meetup for the three of you"

    yes = answered(items, {"ann": "accepted", "bo": "accepted", "cy": "accepted"})
    on = group_on_items(yes, NOW, ["Europe/Berlin"])
    attendees = {"ann": "ann@example.com", "bo": None, "cy": "cy@example.com"}
    sent = mail.compose(
        on[0],
        to="ann@example.com",
        sender="rc <no@rc.test>",
        page_link="L",
        unsubscribe="U",
        attendees=attendees,
    )
    assert sent.message["Subject"].startswith("It's on: you, bo, and cy said yes")
    parsed = message_from_bytes(sent.message.as_bytes(), policy=policy.default)
    [ics] = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    [event] = Calendar.from_ical(ics.get_content()).walk("VEVENT")
    assert str(event["summary"]) == "realconnect: a meetup for the three of you with bo and cy"
    assert sorted(str(a) for a in event["attendee"]) == [
        "mailto:ann@example.com",
        "mailto:cy@example.com",
    ]
    assert event.decoded("dtstart").astimezone(UTC) >= NOW


def test_a_group_that_grows_or_shrinks_is_the_same_table() -> None:
    trio = ("a", "b", "c")
    assert same_table(("a", "b", "c", "d"), [trio])  # d joined
    assert same_table(("a", "b", "c"), [("a", "b", "c", "d")])  # d left
    assert not same_table(trio, [trio])  # the same group again (a record handled again)
    assert not same_table(("a", "b", "x"), [trio])  # two in common: another table
    assert not same_table(trio, [])
