"""`realconnect replay` on a file with bad lines, against the real Kafka: the valid lines are
sent, each bad one is reported with its line number and reason, the command exits 1 with a
summary; ``--strict`` sends nothing. (Held-out data once stopped a replay at line 1,525 of
11,198 on one call with a negative duration, and nothing after it was sent.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from services.common.kafka import Topics, end_offsets
from services.common.settings import Settings
from tests.stack import BIN


def write(path: Path) -> int:
    """40 valid calls and messages, with a negative duration at line 7, a broken line at 20
    and a missing actor at 33; returns the number of valid lines."""
    t = datetime(2026, 3, 2, 9, tzinfo=UTC)
    lines = []
    for i in range(43):
        e = {
            "source": "phone",
            "event_id": f"x{i}",
            "kind": "call" if i % 2 else "message",
            "actor": "p:a" if i % 3 else "p:b",
            "target": "p:b" if i % 3 else "p:a",
            "occurred_at": (t + timedelta(hours=i)).isoformat(),
            "duration_s": 120.0 if i % 2 else None,
        }
        if i == 6:
            e["duration_s"] = -4.0
        if i == 32:
            del e["actor"]
        line = orjson.dumps(e)
        lines.append(b'{"source": "phone", "event_id"' if i == 19 else line)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return 40


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REALCONNECT_NAMESPACE": settings.namespace, "REALCONNECT_ENV": "test"}
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def records_on(settings: Settings) -> int:
    ends = asyncio.run(end_offsets(settings.kafka.bootstrap_servers, Topics(settings).interactions))
    return sum(ends.values())


def test_bad_lines_are_reported_and_the_rest_is_sent(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "dirty.jsonl"
    valid = write(path)
    out = run(settings, "replay", str(path), "--direct")
    assert out.returncode == 1, out.stderr
    assert f"replayed {valid} interactions" in out.stderr
    assert "line 7: duration_s: Input should be greater than or equal to 0" in out.stderr
    assert "line 20:" in out.stderr and "line 33: actor: Field required" in out.stderr
    assert f"3 bad line(s) of 43 skipped; the other {valid} were sent" in out.stderr
    # every valid line is on the topic (one record per interaction or arrays: count them)
    from aiokafka import AIOKafkaConsumer

    async def count() -> int:
        c = AIOKafkaConsumer(
            Topics(settings).interactions,
            bootstrap_servers=settings.kafka.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await c.start()
        n = 0
        try:
            while True:
                batch = await c.getmany(timeout_ms=1500)
                if not batch:
                    return n
                for recs in batch.values():
                    for r in recs:
                        v = orjson.loads(r.value)
                        n += len(v) if isinstance(v, list) else 1
        finally:
            await c.stop()

    assert asyncio.run(count()) == valid


def test_strict_sends_nothing_if_a_line_is_bad(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "dirty.jsonl"
    write(path)
    out = run(settings, "replay", str(path), "--direct", "--strict")
    assert out.returncode == 1
    assert "--strict: 3 bad line(s) of 43; nothing sent" in out.stderr
    assert "line 7:" in out.stderr
    assert records_on(settings) == 0
