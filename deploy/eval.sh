#!/usr/bin/env bash
# make eval: the matcher on real data, against baselines; writes docs/evaluation.md.
# Starts the stack in a fresh namespace, replays Copenhagen straight into Kafka, waits for the
# matcher, compares, and stops what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export REALCONNECT_NAMESPACE="${REALCONNECT_NAMESPACE:-eval-$(date +%Y%m%d-%H%M%S)}"
export REALCONNECT_DATA_DIR="${REALCONNECT_DATA_DIR:-$ROOT/../shared/data}"
# The pipeline check replays Copenhagen (four weeks) through the running matcher: with the
# default bar (about six weeks of contact) it would compare two empty sets, so that matcher
# runs with 0.25 (about four weeks). Every offline figure uses the default bar
# (MatcherSettings.min_probability); docs/evaluation.md says which is which.
export REALCONNECT_MATCHER__MIN_PROBABILITY="${REALCONNECT_MATCHER__MIN_PROBABILITY:-0.25}"
trap 'deploy/stack.sh down' EXIT
deploy/stack.sh up all
.venv/bin/realconnect evaluate --data-dir "$REALCONNECT_DATA_DIR" --out docs/evaluation.md
