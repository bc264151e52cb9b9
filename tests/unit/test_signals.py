"""Single signals against counting (services/evaluation/signals.py), on a hand-worked community:
every ranking below was worked out by hand from the events, not read from the code."""

from __future__ import annotations

from services.evaluation import signals
from tests.factories import interaction

# T0 is Monday 2026-03-02, 09:00 UTC
EVENTS = [
    # a-b: a burst, six messages on one morning, three each way
    *(interaction("a", "b", days=i / 100) for i in range(3)),
    *(interaction("b", "a", days=i / 100 + 0.005) for i in range(3)),
    # c-d: one message a week for four weeks, taking turns
    interaction("c", "d", days=0),
    interaction("d", "c", days=7),
    interaction("c", "d", days=14),
    interaction("d", "c", days=21),
    # e-f: five messages one way, over two days
    *(interaction("e", "f", days=i / 4) for i in range(5)),
    # g-h: a ten-minute call, a missed (five-second) call, and a message back the next day
    interaction("g", "h", kind="call", duration_s=600.0),
    interaction("g", "h", kind="call", duration_s=5.0, days=0.01),
    interaction("h", "g", days=1),
    # a and b both know c
    interaction("a", "c", days=2),
    interaction("b", "c", days=2),
]

AB, CD, EF, GH, AC, BC = ("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("a", "c"), ("b", "c")


def test_each_ranking_by_hand() -> None:
    r = signals.rankings(signals.stats(EVENTS))
    assert r["raw count"] == [AB, EF, CD, GH, AC, BC]
    assert r["reciprocal first"] == [AB, CD, GH, EF, AC, BC]
    # distinct days: c-d 4; e-f and g-h 2 (e-f has more events); the rest 1
    assert r["days"] == [CD, EF, GH, AB, AC, BC]
    assert r["weeks"] == [CD, AB, EF, GH, AC, BC]
    # only the ten-minute call is a conversation
    assert r["phone calls"] == [GH, AB, EF, CD, AC, BC]
    # a-b share c; a-c share b; b-c share a; nobody else shares anyone
    assert r["common contacts"] == [AB, AC, BC, EF, CD, GH]
    # c ranks c-d first, then a-c, then b-c: b-c's worse rank is 3
    assert r["each other's top contact"] == [AB, EF, CD, GH, AC, BC]
    # e-f and g-h are all of their people's contact; a-b 6/7; c-d 4/6 of c's
    assert r["share of their contact"] == [EF, GH, AB, CD, AC, BC]


def test_stats_count_directions_local_days_and_weeks() -> None:
    s = signals.stats(EVENTS)
    assert (s[AB].events, s[AB].forward, s[AB].backward) == (6, 3, 3)
    assert (len(s[CD].days), len(s[CD].weeks)) == (4, 4)
    assert (len(s[EF].days), len(s[EF].weeks), s[EF].backward) == (2, 1, 0)
    assert s[GH].calls == 1


def test_leads_over_counting_with_intervals() -> None:
    rows = {r.signal: r for r in signals.judge(EVENTS, {CD, GH}, 2, rounds=200)}
    assert rows["raw count"].precision == 0.0 and rows["raw count"].lead is None
    weeks = rows["weeks"]
    assert weeks.precision == 0.5 and weeks.lead is not None and weeks.lead.value == 0.5
    assert weeks.lead.low <= 0.5 <= weeks.lead.high
    # the same two pairs as counting: said so, not given as a lead of zero
    assert rows["each other's top contact"].same_as_count
    assert signals.cell(rows["each other's top contact"]) == "0.000 (the same pairs)"
    assert signals.cell(rows["raw count"]) == "0.000"
    assert signals.cell(weeks).startswith("0.500 (")


def test_volume_is_capped_at_the_pairs_there_are() -> None:
    rows = signals.judge(EVENTS, {CD}, 100, rounds=50)
    assert rows[0].precision == 1 / 6


def test_the_report_tables() -> None:
    from services.evaluation import report
    from services.evaluation.feedback import EqualVolume

    single = {"tiny": {k: signals.judge(EVENTS, {CD, GH}, k, rounds=50) for k in (20, 50)}}
    text = report._signals_section(single)
    assert "| signal | tiny |" in text
    assert "| raw count | 0.333 |" in text  # 2 of the 6 pairs: every pair is taken
    assert text.count("\n| weeks | ") == 2
    rows = report._equal_rows(
        {"made": EqualVolume(112, 163, 0.337, 0.393), "real": EqualVolume(94, 10, 0.9, 0.9)}
    )
    assert "| made | 112 | 163 | 0.337 | 0.393 | +0.056 |" in rows
    assert "On real the answers taught nothing" in rows


def test_a_lead_of_zero_prints_as_plus_zero_and_other_leads_keep_their_sign() -> None:
    from services.evaluation.signals import signed

    assert f"{-0.0:+.3f}" == "-0.000"  # what the report printed for a negated zero lead
    assert signed(-0.0) == "+0.000"
    assert signed(-0.0004) == "+0.000"  # rounds to zero: no sign of its own
    assert signed(-0.0006) == "-0.001"
    assert signed(0.0226) == "+0.023"
    assert signed(-0.022) == "-0.022"


def test_the_ranking_table_says_where_the_model_orders_pairs_better() -> None:
    from services.evaluation import report
    from services.evaluation.offline import Interval, RankingQuality

    def q(lead: Interval) -> RankingQuality:
        return RankingQuality(100, 0.5, Interval(0.6, 0.55, 0.65), Interval(0.6, 0.5, 0.7), lead)

    ranking = {
        "up": q(Interval(0.04, 0.01, 0.07)),
        "down": q(Interval(-0.1, -0.2, -0.05)),
        "flat": q(Interval(0.0, -0.02, 0.02)),
    }
    labels = {"up": "friendship", "down": "persistence", "flat": "persistence"}
    text = report._ranking_section(ranking, labels)
    assert "| up (friendship) | 100 | 0.500 | 0.600 [0.550, 0.650] | 0.600 [0.500, 0.700] " in text
    assert "| +0.040 [+0.010, +0.070] |" in text
    assert (
        "better than counting on up; worse than counting on down; "
        "not clearly different from counting on flat" in " ".join(text.split())
    )
