"""`realconnect replay FILE --wait` then `realconnect suggestions`: the same suggestions for
the same file in two namespaces (event time, deterministic ids) — one with the simple topic
layout (one keyed record per interaction), one with the optimised one (arrays of up to 500
interactions of one partition per record): the speed-up changes no result."""

from __future__ import annotations

import asyncio
import subprocess
from itertools import islice
from pathlib import Path

import orjson

from services.common.kafka import Topics, end_offsets
from services.datasets import copenhagen
from tests.conftest import new_namespace, settings_for
from tests.stack import BIN, ServiceStack


def run_cli(stack: ServiceStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "REALCONNECT_INGEST__PORT": str(stack.ports["ingest"])}
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_simple_and_optimised_pipelines_suggest_exactly_the_same(
    servers: None, data_dir: Path, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    replay_file = tmp_path / "cns-slice.jsonl"
    with replay_file.open("wb") as f:
        for e in islice(copenhagen.interactions(data_dir), 5000):
            f.write(e.model_dump_json().encode() + b"\n")

    results = []
    records = []
    for run, per_record in enumerate(("1", "500")):
        settings = settings_for(new_namespace())
        stack = ServiceStack(
            settings,
            tmp_path / f"run{run}",
            ("ingest", "matcher", "notifier"),
            REALCONNECT_KAFKA__INTERACTIONS_PER_RECORD=per_record,
            # the two layouts must agree on many suggestions: 5,000 Copenhagen events (days,
            # not the six weeks the shipped model's bar asks) give them under the rule gates
            REALCONNECT_MATCHER__MIN_PROBABILITY="0",
            # nobody here opted in: the notifier's "undelivered" answers would let pairs be
            # suggested again a day later, at a point that depends on when each answer
            # reaches the matcher; the full cooldown keeps the two runs comparable
            REALCONNECT_MATCHER__UNDELIVERED_RETRY_DAYS="30",
        )
        stack_factory.append(stack)
        stack.start()
        replay = run_cli(stack, "replay", str(replay_file), "--wait", "--timeout", "120")
        assert replay.returncode == 0, replay.stderr
        assert "replayed 5000 interactions (drained)" in replay.stderr
        out = run_cli(stack, "suggestions", "--from-beginning", "--until-idle", "--idle", "2")
        assert out.returncode == 0, out.stderr
        # ``around`` is context read from the circles as far as their stage had folded them
        # when the pair was suggested, so it may differ between runs (schemas/suggestions.py);
        # the decisions, evidence and sentences must not
        lines = [
            {k: v for k, v in orjson.loads(line).items() if k != "around"}
            for line in out.stdout.splitlines()
        ]
        results.append(lines)
        ends = asyncio.run(
            end_offsets(settings.kafka.bootstrap_servers, Topics(settings).interactions)
        )
        records.append(sum(ends.values()))
        stack.stop()

    assert records[0] == 5000  # one record per interaction
    assert records[1] < 5000 / 20  # arrays: the layouts really differed

    first, second = results
    assert len(first) > 10
    assert first == second
    assert len({s["suggestion_id"] for s in first}) == len(first)
    for s in first:
        assert s["pair"] == sorted(s["pair"]) and s["explanation"] and s["evidence"]
