"""Ingest throughput from a separate load generator on loopback (make bench).

wrk (Debian's package, C, one process) drives the running ingest service with
``POST /v1/interactions`` (one event per request) and ``POST /v1/interactions:batch`` (many
per request). Every event carries a unique ``event_id``, so nothing is absorbed by the dedupe
and every accepted event was acknowledged by Kafka before its 202. Non-202 answers are counted
and reported; only 202s count as accepted.

Run: ``python -m bench.ingest_load --url http://127.0.0.1:8080`` with the stack up.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

#: wrk's Lua: unique ids per thread and request; people drawn from a pool so that pairs repeat
#: (realistic key skew for the partitioner) without ever being one hot key.
LUA = r"""
local threads = {}
local next_id = 1
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  n = 0
  bad = 0
  run = "@RUN@"
  per = @PER@
end
local function event()
  n = n + 1
  local a = (n * 7919 + tid * 104729) % 50000
  local b = (a + 1 + (n % 97)) % 50000
  return string.format(
    '{"source":"bench","event_id":"%s-%d-%d","kind":"reply","actor":"u%d",' ..
    '"target":"u%d","occurred_at":"2026-03-01T09:30:00+00:00","text":"sounds good, see you"}',
    run, tid, n, a, b)
end
function request()
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer dev-producer-token",
  }
  if per == 1 then
    return wrk.format("POST", "/v1/interactions", headers, event())
  end
  local items = {}
  for i = 1, per do items[i] = event() end
  local body = "[" .. table.concat(items, ",") .. "]"
  return wrk.format("POST", "/v1/interactions:batch", headers, body)
end
function response(status, headers, body)
  if status ~= 202 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non202=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, b,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Load:
    per_request: int
    requests: int
    seconds: float
    rejected: int  # non-202 answers and socket errors
    p50_ms: float
    p99_ms: float

    @property
    def requests_per_s(self) -> float:
        return (self.requests - self.rejected) / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.requests_per_s * self.per_request


def run_wrk(url: str, per_request: int, seconds: int, connections: int, threads: int) -> Load:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: run `deploy/stack.sh setup-bench` (Debian's package)")
    script = LUA.replace("@RUN@", uuid.uuid4().hex[:12]).replace("@PER@", str(per_request))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                "-s",
                f.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(f.name).unlink()
    m = re.search(
        r"RESULT requests=(\d+) duration_us=(\d+) non202=(\d+) errors=(\d+) "
        r"p50_us=(\d+) p99_us=(\d+)",
        out,
    )
    if m is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, duration, non202, errors, p50, p99 = map(int, m.groups())
    return Load(per_request, requests, duration / 1e6, non202 + errors, p50 / 1e3, p99 / 1e3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    single = run_wrk(args.url, 1, args.seconds, args.connections, args.threads)
    batch = run_wrk(args.url, args.batch, args.seconds, min(args.connections, 8), args.threads)
    figures = {
        "single_requests_per_s": single.requests_per_s,
        "single_p50_ms": single.p50_ms,
        "single_p99_ms": single.p99_ms,
        "single_rejected": single.rejected,
        "batch_size": args.batch,
        "batch_events_per_s": batch.events_per_s,
        "batch_p50_ms": batch.p50_ms,
        "batch_p99_ms": batch.p99_ms,
        "batch_rejected": batch.rejected,
        # uvicorn processes of the ingest under test (set by deploy/bench.sh)
        "ingest_workers": int(os.environ.get("REALCONNECT_INGEST__WORKERS", "1")),
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
