#!/usr/bin/env bash
# make bench: measurements on this machine; the current results in docs/benchmarks.md, every
# run appended to docs/benchmarks-history.md.
#   1. console page load with BENCH_PAIRS pairs tracked (the stack's services)
#   2. ingest throughput from wrk on loopback (the stack's ingest, the other services stopped)
#   3. HTTP accept -> feed latency at an offered 5,000 events/s (its own services)
#   4. throughput: bare aiokafka floor vs normalizer + matcher (its own workers); prints
#      the one-line summary with pipeline_ratio=
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
deploy/stack.sh setup-bench
export REALCONNECT_NAMESPACE="${REALCONNECT_NAMESPACE:-bench-$(date +%Y%m%d-%H%M%S)}"
# the ingest bench offers far more than the default per-source rate limit
export REALCONNECT_INGEST__RATE_PER_S=10000000 REALCONNECT_INGEST__BURST=10000000
# ingest is measured alone on the box: one uvicorn process per core, as in production
export REALCONNECT_INGEST__WORKERS="${BENCH_INGEST_WORKERS:-$(nproc)}"
OUT="$ROOT/.run/bench"; mkdir -p "$OUT"
trap 'deploy/stack.sh down' EXIT
deploy/stack.sh up all
.venv/bin/python -m bench.console_page --pairs "${BENCH_PAIRS:-100000}"
# ingest's own capacity: only ingest, Kafka and Redis compete with the load generator
for s in matcher notifier normalizer feeds console; do deploy/stack.sh down-one "$s"; done
.venv/bin/python -m bench.ingest_load --url "http://127.0.0.1:${REALCONNECT_INGEST__PORT:-8080}" \
  --seconds "${BENCH_SECONDS:-15}" --json "$OUT/ingest.json"
# the later steps run their own services (one ingest process: the workers share the cores)
deploy/stack.sh down-one ingest
unset REALCONNECT_INGEST__WORKERS
REALCONNECT_NAMESPACE="$REALCONNECT_NAMESPACE-lat" .venv/bin/python -m bench.latency \
  --rate "${BENCH_RATE:-5000}" --json "$OUT/latency.json"
REALCONNECT_NAMESPACE="$REALCONNECT_NAMESPACE-tp" .venv/bin/python -m bench.throughput \
  --events "${BENCH_EVENTS:-200000}" --ingest-json "$OUT/ingest.json" --latency-json "$OUT/latency.json"
