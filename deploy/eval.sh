#!/usr/bin/env bash
# make eval: the matcher on real data, against baselines; writes docs/evaluation.md.
# Starts the stack in a fresh namespace, replays Copenhagen straight into Kafka, waits for the
# matcher, compares, and stops what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export REALCONNECT_NAMESPACE="${REALCONNECT_NAMESPACE:-eval-$(date +%Y%m%d-%H%M%S)}"
export REALCONNECT_DATA_DIR="${REALCONNECT_DATA_DIR:-$ROOT/../shared/data}"
trap 'deploy/stack.sh down' EXIT
deploy/stack.sh up all
.venv/bin/realconnect evaluate --data-dir "$REALCONNECT_DATA_DIR" --out docs/evaluation.md
