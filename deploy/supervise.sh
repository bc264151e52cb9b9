#!/usr/bin/env bash
# supervise.sh NAME COMMAND...: run COMMAND and start it again whenever it dies, until this
# script is asked to stop (TERM or INT, which it passes on to COMMAND and then exits).
#
# The local stack's process supervisor (deploy/stack.sh starts every service through it): a
# worker killed by the kernel, by an operator's mistake or by a crash comes back by itself.
# Deployments use their own supervisor instead: compose's `restart: unless-stopped`, or a
# systemd unit with `Restart=always` (docs/operations.md).
#
# - Exit status 78 (EX_CONFIG: a setting is wrong) is not retried: the same start would fail
#   the same way. The script exits 78 too.
# - Restarts back off: 1 s after a run shorter than SUPERVISE_HEALTHY_S (default 30 s), then
#   doubling up to SUPERVISE_MAX_DELAY_S (default 30 s); a run that lasted longer resets it.
# - COMMAND's pid is in $SUPERVISE_PIDFILE when that is set (for tests and `status`).
set -uo pipefail

name="$1"; shift
healthy_s="${SUPERVISE_HEALTHY_S:-30}"
max_delay="${SUPERVISE_MAX_DELAY_S:-30}"
child=0
stopping=0

log() { printf '%s supervise[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$*"; }

stop() {
  stopping=1
  if (( child > 0 )); then kill -TERM "$child" 2>/dev/null || true; fi
}
trap stop TERM INT

delay=1
while true; do
  started=$SECONDS
  "$@" &
  child=$!
  [[ -n "${SUPERVISE_PIDFILE:-}" ]] && printf '%s\n' "$child" >"$SUPERVISE_PIDFILE"
  # `wait` returns early when a trapped signal arrives: wait until the child has really gone
  while true; do
    wait "$child"; rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=0
  if (( stopping )); then exit "$rc"; fi
  if (( rc == 78 )); then
    log "exited 78 (a configuration error): not restarted"
    exit 78
  fi
  if (( SECONDS - started >= healthy_s )); then delay=1; fi
  log "exited with status $rc after $((SECONDS - started)) s; restarting in $delay s"
  sleep "$delay" & wait $! || true
  if (( stopping )); then exit "$rc"; fi
  delay=$(( delay * 2 > max_delay ? max_delay : delay * 2 ))
done
