"""``realconnect explain A B`` against the real Kafka and Redis (issue 39): the running matcher
(default settings) takes three pairs made by hand, and the command, reading the matcher's
changelogs and the suggestions topic, says for each what the matcher did and why: weeks of
talk are suggested (with the decision the suggestion carried, and now the cooldown); one-way
talk fails reciprocity; four weeks of talk pass every rule and fail the model's bar. Bad
input is a clear error with exit code 2."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest

from services import pipeline
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.settings import Settings
from services.explain import ExplainError, explain
from tests.factories import conversation, weeks_of_talk
from tests.integration.test_matcher_worker import produce, records
from tests.people import ADMIN
from tests.stack import BIN, ServiceStack


def run_cli(stack: ServiceStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``realconnect`` command with the stack's settings (its namespace, Kafka, Redis)."""
    return subprocess.run(
        [str(BIN), *args], env=stack.env, capture_output=True, text=True, timeout=300, check=False
    )


async def test_explain_says_what_the_matcher_did_and_why(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    await ensure_topics(settings)
    stack = ServiceStack(settings, tmp_path, ("matcher", "console"))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    weeks = weeks_of_talk("ex:ann", "ex:ben")  # suggested at its twelfth event
    one_way = [
        e for e in conversation("ex:cat", "ex:dan", per_direction=6, days=28) if e.actor == "ex:cat"
    ]
    young = conversation("ex:eve", "ex:fay", per_direction=6, days=28)  # 0.199: under the bar
    await produce(settings, records(weeks + one_way + young))
    await pipeline.drain_matcher(settings, timeout=90)
    made = {s.pair: s for s in await pipeline.read_suggestions(settings, idle_s=1.5)}
    assert set(made) == {("ex:ann", "ex:ben")}  # what the matcher did

    # the suggested pair: as decided then (every gate passed), and now in its cooldown
    got = (await explain(settings, "ex:ben", "ex:ann")).to_dict()
    assert got["suggested"] is True and got["decided_by"] is None
    assert got["suggestion_id"] == made[("ex:ann", "ex:ben")].suggestion_id
    assert all(g["passed"] for g in got["gates"])
    assert got["gates"][-1]["name"] == "tie_strength" and got["gates"][-1]["threshold"] == 0.35
    assert got["now"]["decided_by"] == "cooldown"
    assert "the cooldown ends on" in got["now"]["would_change"]

    # a person named by a linked handle (the people API's record on people.identities)
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        handle = "mastodon:@ben@example.social"
        await producer.send_and_wait(
            Topics(settings).identities,
            key=handle.encode(),
            value=orjson.dumps({"person_id": "ex:ben", "source": "mastodon", "handle": handle}),
        )
    finally:
        await producer.stop()
    by_handle = (await explain(settings, "ex:ann", handle)).to_dict()
    assert by_handle["suggestion_id"] == got["suggestion_id"] and by_handle["pair"] == got["pair"]

    # one-way talk: reciprocity decides, six one way and none back
    got = (await explain(settings, "ex:cat", "ex:dan")).to_dict()
    assert got["suggested"] is False and got["decided_by"] == "reciprocity"
    reciprocity = next(g for g in got["gates"] if g["name"] == "reciprocity")
    assert (reciprocity["value"], reciprocity["threshold"]) == (0, 3)
    assert got["exchanges"] == {"ex:cat->ex:dan": 6, "ex:dan->ex:cat": 0}

    # every rule passes, the model's bar does not
    got = (await explain(settings, "ex:eve", "ex:fay")).to_dict()
    assert got["decided_by"] == "tie_strength"
    assert [g["name"] for g in got["gates"] if not g["passed"]] == ["tie_strength"]
    assert got["probability"] < 0.25

    # the command line: the same answer as JSON, and clear errors
    cli = await asyncio.to_thread(run_cli, stack, "explain", "ex:eve", "ex:fay", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["decided_by"] == "tie_strength"
    cli = await asyncio.to_thread(run_cli, stack, "explain", "ex:ann", "ex:ben")
    assert cli.returncode == 0 and "suggested" in cli.stdout and "cooldown" in cli.stdout
    for a, b, says in (
        ("ex:ann", "ex:ann", "two different people"),
        ("ex:ann", "ex:zed", "no exchange between"),
    ):
        cli = await asyncio.to_thread(run_cli, stack, "explain", a, b)
        assert cli.returncode == 2 and says in cli.stderr, cli.stderr
        with pytest.raises(ExplainError, match=says):
            await explain(settings, a, b)

    # the operator API: the same record, behind the admin token, with clear errors
    url = f"{stack.url('console')}/api/explain"
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.get(url, params={"a": "ex:eve", "b": "ex:fay"}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["decided_by"] == "tie_strength"
        assert r.json()["gates"] == got["gates"]
        r = await http.get(url, params={"a": "ex:eve", "b": "ex:fay"})
        assert r.status_code == 401
        for params, status in (
            ({"a": "ex:ann", "b": "ex:ann"}, 422),
            ({"a": "ex:ann", "b": "ex:zed"}, 404),
            ({"a": "ex:ann"}, 422),
            ({"a": "x" * 300, "b": "ex:ann"}, 422),
        ):
            r = await http.get(url, params=params, headers=ADMIN)
            assert r.status_code == status, (params, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
