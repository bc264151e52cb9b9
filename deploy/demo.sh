#!/usr/bin/env bash
# make demo: the main job end to end on a fresh machine.
#  1. install what is missing and start Kafka, Redis and every service (deploy/stack.sh up)
#  2. convert the Copenhagen calls + SMS dataset to canonical JSONL (committed converter)
#  3. replay it through the ingest HTTP endpoint and wait until the pipeline has drained
#  4. print a summary and the console URL; keep running until Ctrl-C (DEMO_ONCE=1: stop now)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# A fresh namespace per run, so a second demo never counts the first one's events.
export REALCONNECT_NAMESPACE="${REALCONNECT_NAMESPACE:-demo-$(date +%Y%m%d-%H%M%S)}"
export REALCONNECT_DATA_DIR="${REALCONNECT_DATA_DIR:-$ROOT/../shared/data}"
# The one non-default setting: Copenhagen covers four weeks, and the tie-strength model's
# default bar (0.35, about six weeks of contact) is more than four weeks can show. 0.25 is
# about four weeks of contact for an average pair (docs/evaluation.md).
export REALCONNECT_MATCHER__MIN_PROBABILITY="${REALCONNECT_MATCHER__MIN_PROBABILITY:-0.25}"
RC="$ROOT/.venv/bin/realconnect"

stop() { deploy/stack.sh down; }
trap 'echo; echo "stopping…"; stop; exit 0' INT TERM

echo "==> namespace $REALCONNECT_NAMESPACE"
deploy/stack.sh up all
mkdir -p .run/demo
"$RC" convert copenhagen .run/demo/copenhagen.jsonl --data-dir "$REALCONNECT_DATA_DIR"
# The study's participants agreed to the study as a whole; in the demo they count as opted in.
"$RC" opt-in .run/demo/copenhagen.jsonl
echo "==> replaying through
 http://127.0.0.1:${REALCONNECT_INGEST__PORT:-8080}/v1/interactions:batch"
"$RC" replay .run/demo/copenhagen.jsonl --wait
echo
"$RC" summary --examples 3
echo
# one person's page: open the link in a browser, press the button, answer the suggestion
"$RC" signin-link --ttl-s 3600
echo "console: http://127.0.0.1:${REALCONNECT_CONSOLE__PORT:-8082}/ (admin token: dev-admin-token)"

if [[ "${DEMO_ONCE:-0}" == 1 ]]; then
  trap - INT TERM
  stop
  exit 0
fi
echo "running; Ctrl-C stops everything"
while true; do sleep 3600 & wait $!; done
