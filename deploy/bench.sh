#!/usr/bin/env bash
# make bench: measurements on this machine, appended to docs/benchmarks.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export REALCONNECT_NAMESPACE="${REALCONNECT_NAMESPACE:-bench-$(date +%Y%m%d-%H%M%S)}"
trap 'deploy/stack.sh down' EXIT
deploy/stack.sh up all
.venv/bin/python -m bench.console_page --pairs "${BENCH_PAIRS:-100000}"
# throughput runs its own matcher: stop the stack's one so that both start from zero
deploy/stack.sh down-one matcher
REALCONNECT_NAMESPACE="$REALCONNECT_NAMESPACE-tp" .venv/bin/python -m bench.throughput --events "${BENCH_EVENTS:-200000}"

