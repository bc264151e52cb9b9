"""Delivery policy: double opt-in, exclusions, quiet hours, pause, weekly cap (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from schemas.people import Preferences, QuietHours
from schemas.suggestions import Suggestion
from services.notifier.feeds import decide, items_for, meeting_window, mutual_items, week_of

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday, noon UTC
S = Suggestion(
    suggestion_id="abc",
    pair=("ann", "ben"),
    score=2.0,
    suggested_at=NOW,
    evidence={"sources": ["mastodon"], "meetup": {"kind": "coffee", "city": "Lisbon"}},
    explanation="x",
)
YES = Preferences(opted_in=True)


def test_each_person_gets_one_item_naming_the_other() -> None:
    a, b = items_for(S, NOW)
    assert (a.person_id, a.other_person_id) == ("ann", "ben")
    assert (b.person_id, b.other_person_id) == ("ben", "ann")
    assert a.item_id == b.item_id == "abc"
    assert a.meetup == {"kind": "coffee", "city": "Lisbon"}


def test_double_opt_in() -> None:
    assert decide(S, {"ann": YES, "ben": YES}, NOW, {}).action == "deliver"
    for prefs in ({"ann": YES}, {"ann": YES, "ben": Preferences()}, {}):
        d = decide(S, prefs, NOW, {})  # type: ignore[arg-type]
        assert (d.action, d.reason) == ("drop", "consent")


def test_never_with_is_honoured_both_ways_and_sources_restrict() -> None:
    ex = Preferences(opted_in=True, never_with=["ben"])
    assert decide(S, {"ann": ex, "ben": YES}, NOW, {}).reason == "excluded"
    assert (
        decide(
            S, {"ann": YES, "ben": Preferences(opted_in=True, never_with=["ann"])}, NOW, {}
        ).reason
        == "excluded"
    )
    only_slack = Preferences(opted_in=True, sources=["slack"])
    assert decide(S, {"ann": only_slack, "ben": YES}, NOW, {}).reason == "sources"


def test_quiet_hours_hold_until_they_end_in_the_persons_time_zone() -> None:
    quiet = Preferences(
        opted_in=True, time_zone="Europe/Lisbon", quiet_hours=QuietHours(start="11:00", end="13:30")
    )
    d = decide(S, {"ann": quiet, "ben": YES}, NOW, {})
    assert (d.action, d.reason) == ("hold", "quiet_hours")
    assert d.until == datetime(2026, 3, 4, 13, 30, tzinfo=UTC)  # Lisbon is UTC in March
    overnight = Preferences(
        opted_in=True,
        time_zone="Asia/Tokyo",  # 21:00 in Tokyo
        quiet_hours=QuietHours(start="20:00", end="07:00"),
    )
    d = decide(S, {"ann": YES, "ben": overnight}, NOW, {})
    assert d.action == "hold"
    assert d.until == datetime(2026, 3, 4, 22, 0, tzinfo=UTC)  # 07:00 Tokyo next morning


def test_pause_and_weekly_cap_hold_never_drop() -> None:
    paused = Preferences(opted_in=True, paused_until=date(2026, 3, 10))
    d = decide(S, {"ann": paused, "ben": YES}, NOW, {})
    assert (d.action, d.until) == ("hold", datetime(2026, 3, 11, tzinfo=UTC))
    capped = Preferences(opted_in=True, max_per_week=2)
    d = decide(S, {"ann": capped, "ben": YES}, NOW, {"ann": 2})
    assert (d.action, d.reason, d.until) == ("hold", "weekly_cap", datetime(2026, 3, 9, tzinfo=UTC))
    assert decide(S, {"ann": capped, "ben": YES}, NOW, {"ann": 1}).action == "deliver"
    assert week_of(NOW, "UTC") == "2026-W10"


def test_mutual_items_propose_a_window_that_suits_both_time_zones() -> None:
    a, b = items_for(S, NOW)
    ma, mb = mutual_items(a, b, NOW, ["America/New_York", "Europe/Lisbon"])
    assert ma.type == mb.type == "mutual" and ma.item_id == mb.item_id != a.item_id
    window = ma.meetup["window"]  # type: ignore[index]
    start = datetime.fromisoformat(window["start"])
    assert start > NOW
    for tz in ("America/New_York", "Europe/Lisbon"):
        from zoneinfo import ZoneInfo

        assert 9 <= start.astimezone(ZoneInfo(tz)).hour < 20
    assert ma.explanation == "You both said yes! Coffee in Lisbon?"
    assert meeting_window([], NOW)["start"] == (NOW + timedelta(days=1)).replace(hour=9).isoformat()


def test_weekly_counters_are_counted_again_from_delivered_items_in_each_person_s_week() -> None:
    from services.notifier.rebuild import weekly_counts

    # NOW is Wednesday 2026-03-04 12:00 UTC: ISO week 2026-W10 in UTC and in New York
    this_week = items_for(S, NOW - timedelta(days=1))  # ann and ben, Tuesday
    monday_utc = items_for(
        S.model_copy(update={"suggestion_id": "m"}), datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    )  # Monday 01:00 UTC: W10 in UTC; Sunday 20:00 in New York, W09 there
    sunday_ny = items_for(
        S.model_copy(update={"suggestion_id": "s"}), datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    )  # Monday 03:00 UTC is Sunday 22:00 in New York: last week (W09) for a New Yorker
    last_week = items_for(S.model_copy(update={"suggestion_id": "old"}), NOW - timedelta(days=7))
    mutual = mutual_items(this_week[0], this_week[1], NOW, ["UTC"])  # not counted by the cap
    items = [*this_week, *monday_utc, *sunday_ny, *last_week, *mutual]
    counts = weekly_counts(items, {"ben": "America/New_York"}, NOW)
    # ann (no preferences: UTC): Tuesday, Monday 01:00 and 03:00 -> 3 (last week's and the
    # mutual items do not count); ben (New York): both Monday items fall on Sunday -> 1
    assert counts == {"ann": ("2026-W10", 3), "ben": ("2026-W10", 1)}


def test_the_delivery_record_names_every_gate_in_order_and_the_one_that_decided() -> None:
    """Issue 39's notifier records, worked by hand: ben has not opted in and is in quiet
    hours, ann's weekly cap (2) is reached. Consent decides (a drop is checked before a
    hold); the record still shows the cap; ben's quiet hours are not looked at, since
    nothing of a person not opted in is used."""
    quiet = Preferences(
        opted_in=False,
        time_zone="Europe/Lisbon",
        quiet_hours=QuietHours(start="11:00", end="13:30"),
    )
    capped = Preferences(opted_in=True, max_per_week=2)
    d = decide(S, {"ann": capped, "ben": quiet}, NOW, {"ann": 2})
    assert (d.action, d.reason) == ("drop", "consent")
    gates = {g.name: g for g in d.gates}
    assert [g.name for g in d.gates] == [
        "consent",
        "never_with",
        "sources",
        "paused",
        "quiet_hours",
        "weekly_cap",
    ]
    assert (gates["consent"].passed, gates["consent"].value, gates["consent"].threshold) == (
        False,
        1,
        2,
    )
    assert gates["never_with"].passed and gates["sources"].passed
    assert gates["quiet_hours"].passed  # ben's: not opted in, not used
    assert not gates["weekly_cap"].passed
    assert gates["weekly_cap"].value == "2026-03-09T00:00:00+00:00"  # next Monday, UTC
    record = d.record(NOW)
    assert record["decided_by"] == "consent" and record["action"] == "drop"

    # both opted in, ben's quiet hours: held until they end, every other gate passed
    d = decide(S, {"ann": YES, "ben": quiet.model_copy(update={"opted_in": True})}, NOW, {})
    assert (d.action, d.reason) == ("hold", "quiet_hours")
    assert [g.name for g in d.gates if not g.passed] == ["quiet_hours"]
    assert d.record(NOW)["until"] == "2026-03-04T13:30:00+00:00"

    d = decide(S, {"ann": YES, "ben": YES}, NOW, {})
    assert d.action == "deliver" and all(g.passed for g in d.gates) and len(d.gates) == 6
    assert d.record(NOW)["decided_by"] is None
