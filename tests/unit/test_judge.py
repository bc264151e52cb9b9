"""`realconnect judge`: the matcher against the baselines on a community's own labels.

The expected figures are worked out by hand (small cases) or counted independently in the
test from a generated community whose close pairs the generator knows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from schemas.events import Interaction
from services.cli import app
from services.evaluation import judge, synthetic
from services.evaluation.datasets import pair
from services.matcher import pairs
from tests.factories import interaction

POLICY = pairs.Policy()


def _events() -> list[Interaction]:
    out = []
    out += [interaction("a", "b", days=i) for i in range(6)]  # 6 one way, close
    out += [interaction(*(("c", "d") if i % 2 else ("d", "c")), days=i / 10) for i in range(5)]
    out += [interaction(*(("e", "f") if i % 2 else ("f", "e")), days=2 + i) for i in range(4)]
    out += [interaction(*(("g", "h") if i % 2 else ("h", "g")), days=7 + i) for i in range(3)]
    out += [interaction("i", "j", days=i) for i in range(2)]  # 2 one way, not close
    return sorted(out, key=lambda e: e.occurred_at)


CLOSE = {("a", "b"), ("e", "f"), ("g", "h")}


def test_the_figures_by_hand() -> None:
    j = judge.judge(_events(), CLOSE, {("f", "e"): 0.6, ("g", "h"): 0.5}, POLICY, rounds=200)
    assert (j.pairs, j.volume, j.unjudged) == (5, 2, 0)
    assert j.base_rate == pytest.approx(3 / 5)
    assert j.precision["matcher"].value == 1.0
    # raw count: a-b (6, close), c-d (5, not) -> 1/2
    assert j.precision["raw count"].value == 0.5
    # reciprocal first: c-d (5), e-f (4) -> 1/2
    assert j.precision["reciprocal first"].value == 0.5
    # recency, reciprocal pairs by their latest contact: g-h (day 9), e-f (day 5) -> 2/2
    assert j.precision["recency"].value == 1.0
    assert j.rival == "raw count"  # a tie between the two: the first
    assert j.lead_over_rival.value == 0.5
    assert j.lead["recency"].value == 0.0
    assert j.lead["raw count"].low <= 0.5 <= j.lead["raw count"].high


def test_people_outside_the_label_are_left_out_not_counted_as_not_close() -> None:
    people = frozenset("abcdefgh")  # j was not asked
    j = judge.judge(_events(), CLOSE, {("e", "f"): 0.6, ("i", "j"): 0.9}, POLICY, people=people)
    assert (j.pairs, j.volume, j.unjudged) == (4, 1, 1)
    assert j.base_rate == 0.75
    assert j.precision["matcher"].value == 1.0
    assert j.precision["raw count"].value == 1.0  # a-b, the busiest labelled pair


def test_labels_either_or_both_named(tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("# survey of March\na,b,when\nx,y,1\ny,x,2\nx,z,3\nq,q,4\n")
    close, rows, skipped = judge.read_labels(f)
    assert close == {("x", "y"), ("x", "z")} and (rows, skipped) == (4, 1)
    mutual, _, _ = judge.read_labels(f, mutual=True)
    assert mutual == {("x", "y")}


@pytest.mark.parametrize(
    ("text", "says"),
    [("x,y\n", "header a,b"), ("a,b\nx\n", "row 2 needs two ids"), ("", "header a,b")],
)
def test_a_bad_labels_file_is_a_clear_error(tmp_path: Path, text: str, says: str) -> None:
    f = tmp_path / "labels.csv"
    f.write_text(text)
    with pytest.raises(judge.LabelError, match=says):
        judge.read_labels(f)


def _write_community(tmp_path: Path) -> tuple[Path, Path, synthetic.Community]:
    c = synthetic.community(people=60, pairs=70, weeks=16, seed=3)
    events = tmp_path / "events.jsonl"
    lines = [orjson.dumps(e.model_dump(mode="json")) for e in c.events]
    lines.insert(10, b'{"kind": "message", "actor": "syn:1"}')  # a bad line: line 11
    events.write_bytes(b"\n".join(lines) + b"\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("a,b\n" + "".join(f"{a},{b}\n" for a, b in sorted(c.friends)))
    return events, labels, c


def test_the_command_judges_a_generated_community(tmp_path: Path) -> None:
    events, labels, c = _write_community(tmp_path)
    result = CliRunner().invoke(app, ["judge", str(events), str(labels), "--json"])
    assert result.exit_code == 1, result.output  # one bad line: reported, the rest judged
    assert "line 11:" in result.stderr and "1 bad line(s)" in result.stderr
    out = json.loads(result.stdout)
    n = out["volume"]
    assert n > 0 and out["pairs"] == c.pairs
    # raw count, counted here: the n busiest pairs (ties by pair), the share of friends
    count = Counter(pair(e.actor, e.target) for e in c.events)
    top = sorted(count, key=lambda p: (-count[p], p))[:n]
    assert out["precision"]["raw count"]["value"] == round(sum(p in c.friends for p in top) / n, 4)
    assert out["base_rate"] == round(len(c.friends) / c.pairs, 4)


def test_the_command_judges_the_pipelines_own_suggestions(tmp_path: Path) -> None:
    events, labels, c = _write_community(tmp_path)
    friend, other = (
        sorted(c.friends)[0],
        sorted(set(pair(e.actor, e.target) for e in c.events) - c.friends)[0],
    )
    made = tmp_path / "suggestions.jsonl"
    made.write_text(
        "".join(
            json.dumps(
                {
                    "suggestion_id": f"s{i}",
                    "pair": list(p),
                    "score": 0.5,
                    "suggested_at": "2026-03-02T09:00:00+00:00",
                    "evidence": {},
                    "explanation": "",
                }
            )
            + "\n"
            for i, p in enumerate([friend, other, friend])  # a pair suggested twice counts once
        )
    )
    result = CliRunner().invoke(
        app, ["judge", str(events), str(labels), "--suggestions", str(made), "--json"]
    )
    out = json.loads(result.stdout)
    assert out["volume"] == 2 and out["precision"]["matcher"]["value"] == 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"pair": ["x"]}\n')
    result = CliRunner().invoke(app, ["judge", str(events), str(labels), "--suggestions", str(bad)])
    assert result.exit_code == 2 and "line 1: not a suggestion" in result.stderr


def test_the_report_reads_as_text() -> None:
    j = judge.judge(_events(), CLOSE, {("e", "f"): 0.6, ("g", "h"): 0.5}, POLICY, rounds=100)
    text = judge.render(j)
    assert "pairs the matcher suggested: 2" in text
    assert "lead over the better of raw count and reciprocal-first (raw count): +0.500" in text
    assert "fewer than 20 suggested pairs" in text


def test_a_stricter_bar_keeps_the_matchers_most_confident_pairs() -> None:
    # twelve one-way pairs, pair i with i + 1 events; the even ones are close
    events = [interaction(f"p{i:02}", f"q{i:02}", days=d) for i in range(12) for d in range(i + 1)]
    close = {(f"p{i:02}", f"q{i:02}") for i in range(0, 12, 2)}
    # the matcher is surest of the six close pairs, then of the odd ones
    scores = {(f"p{i:02}", f"q{i:02}"): (0.9 if i % 2 == 0 else 0.4) - i / 100 for i in range(12)}
    j = judge.judge(events, close, scores, POLICY, rounds=100)
    assert j.volume == 12 and set(j.stricter) == {10}
    # the matcher's ten: the six close pairs and the four surest odd ones (1, 3, 5, 7)
    assert j.stricter[10]["matcher"] == 0.6
    # raw count's ten: pairs 11 down to 2, of which 2, 4, 6, 8 and 10 are close
    assert j.stricter[10]["raw count"] == 0.5
    assert "at a stricter bar" in judge.render(j)
