#!/usr/bin/env bash
# The local stack without Docker: Apache Kafka (KRaft, jars from Maven Central), Redis
# (Debian's redis-server) and the realconnect services, as background processes.
#
#   deploy/stack.sh setup          install what is missing: venv + deps, Kafka jars, redis-server
#   deploy/stack.sh up [infra|all] start Kafka, Redis and SMTP (infra) and the services (all,
#                                  default)
#   deploy/stack.sh down           stop everything this script started (reused servers stay)
#   deploy/stack.sh status         show each component's state
#
# Idempotent: nothing is downloaded twice, and a server already answering on its configured
# port is reused instead of started. Logs: .run/logs/<name>.log. State: .run/data/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${REALCONNECT_RUN_DIR:-$ROOT/.run}"
CACHE="$ROOT/.cache"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
REDIS_PORT="${REDIS_PORT:-6379}"
# a real SMTP server (aiosmtpd) delivering every message to a Maildir: where the notifier's
# email goes on a laptop and in the tests (production points REALCONNECT_EMAIL__* elsewhere)
SMTP_PORT="${SMTP_PORT:-2525}"
export REALCONNECT_MAILDIR="${REALCONNECT_MAILDIR:-$RUN/mail}"
export REALCONNECT_EMAIL__PORT="${REALCONNECT_EMAIL__PORT:-$SMTP_PORT}"
export REALCONNECT_KAFKA__BOOTSTRAP_SERVERS="${REALCONNECT_KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
export REALCONNECT_REDIS__URL="${REALCONNECT_REDIS__URL:-redis://127.0.0.1:$REDIS_PORT/0}"
export REALCONNECT_MATCHER__DATA_DIR="${REALCONNECT_MATCHER__DATA_DIR:-$RUN/data/matcher}"
export REALCONNECT_NOTIFIER__DATA_DIR="${REALCONNECT_NOTIFIER__DATA_DIR:-$RUN/data/notifier}"
INGEST_PORT="${REALCONNECT_INGEST__PORT:-8080}"
FEEDS_PORT="${REALCONNECT_FEEDS__PORT:-8081}"
CONSOLE_PORT="${REALCONNECT_CONSOLE__PORT:-8082}"
MATCHER_WEB_PORT="${REALCONNECT_MATCHER__WEB_PORT:-6066}"
NOTIFIER_WEB_PORT="${REALCONNECT_NOTIFIER__WEB_PORT:-6067}"
NORMALIZER_WEB_PORT="${REALCONNECT_NORMALIZER__WEB_PORT:-6068}"
export REALCONNECT_NORMALIZER__DATA_DIR="${REALCONNECT_NORMALIZER__DATA_DIR:-$RUN/data/normalizer}"

SERVICES=(ingest feeds console normalizer matcher notifier)

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

answers() { # host port: true if something accepts TCP connections there
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running() { # pid: true if that process exists and is not a zombie (kill -0 is true for one:
  # a process that died but was not reaped, which an init that does not reap leaves behind)
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"  # the fields after "(comm) ": the state comes first
  [[ -n "$stat" && "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

alive() { [[ -f "$RUN/pids/$1.pid" ]] && running "$(cat "$RUN/pids/$1.pid")"; }

port_of() {
  case "$1" in
    kafka) echo "$KAFKA_PORT" ;; redis) echo "$REDIS_PORT" ;; smtp) echo "$SMTP_PORT" ;;
    ingest) echo "$INGEST_PORT" ;; feeds) echo "$FEEDS_PORT" ;; console) echo "$CONSOLE_PORT" ;;
    matcher) echo "$MATCHER_WEB_PORT" ;; notifier) echo "$NOTIFIER_WEB_PORT" ;;
    normalizer) echo "$NORMALIZER_WEB_PORT" ;;
  esac
}

wait_for_port() { # name port seconds [log offset]
  local deadline=$((SECONDS + $3))
  until answers "$2"; do
    if [[ -f "$RUN/pids/$1.pid" ]] && ! alive "$1"; then
      say "$1 exited during start; last log lines:"; tail -n 30 "$RUN/logs/$1.log" >&2 || true
      return 1
    fi
    # a supervised service that died while starting would be restarted for ever: stop it
    if [[ -n "${4:-}" ]] && tail -c "+$(( $4 + 1 ))" "$RUN/logs/$1.log" 2>/dev/null | grep -q "supervise\[$1\]: exited"; then
      say "$1 exited during start; last log lines:"; tail -n 30 "$RUN/logs/$1.log" >&2 || true
      stop_one "$1"; return 1
    fi
    (( SECONDS < deadline )) || { say "$1 did not answer on port $2 within $3 s"; tail -n 30 "$RUN/logs/$1.log" >&2 || true; return 1; }
    sleep 0.3
  done
}

start_bg() { # name command...: start in its own session, pid file + log file
  local name="$1"; shift
  mkdir -p "$RUN/pids" "$RUN/logs"
  setsid nohup "$@" >>"$RUN/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/pids/$name.pid"
}

# ---------------------------------------------------------------- setup
setup_python() {
  # the dependency set comes from requirements.lock (pinned, with hashes: `make lock` makes
  # it from pyproject.toml), then the project itself without resolving anything again
  local stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -c1-16)"
  [[ -f "$stamp" ]] && return 0
  say "==> Python environment (.venv, from requirements.lock)"
  [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q --require-hashes -r "$ROOT/requirements.lock"
  "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT"
  rm -f "$VENV"/.installed-*; touch "$stamp"
}

# the message catalogues (services/locale/*/LC_MESSAGES/messages.po -> .mo), every setup: a
# .po changes with the code (make messages)
compile_messages() {
  local out
  out="$("$VENV/bin/pybabel" compile -d "$ROOT/services/locale" -D messages 2>&1)" || {
    printf '%s\n' "$out" >&2; return 1; }
}

setup_kafka() {
  local stamp="$CACHE/kafka/.resolved-$(sha256sum "$ROOT/deploy/kafka/pom.xml" | cut -c1-16)"
  [[ -f "$stamp" ]] && return 0
  say "==> Apache Kafka jars from Maven Central (deploy/kafka/pom.xml)"
  command -v java >/dev/null || die "java not found (OpenJDK 17+ is needed for Kafka)"
  command -v mvn >/dev/null || die "mvn not found (Maven resolves the Kafka jars)"
  rm -rf "$CACHE/kafka/lib"; mkdir -p "$CACHE/kafka/lib"
  # Maven's output (colour resets even with -q) goes to a log, shown only if it fails
  if ! mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$CACHE/kafka/lib" -DincludeScope=runtime >"$CACHE/kafka/maven.log" 2>&1; then
    cat "$CACHE/kafka/maven.log" >&2; die "Maven could not resolve the Kafka jars (above)"
  fi
  rm -f "$CACHE"/kafka/.resolved-*; touch "$stamp"
}

setup_redis() {
  command -v redis-server >/dev/null && return 0
  say "==> redis-server from Debian"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
  # Debian's package starts a system instance on 6379; ours is managed here, not by the system.
  $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
  if pgrep -x redis-server >/dev/null && ! [[ -f "$RUN/pids/redis.pid" ]]; then
    $sudo service redis-server stop >/dev/null 2>&1 || true
  fi
}

setup_chromium() {
  # the console's browser test drives Debian's chromium through Playwright
  command -v chromium >/dev/null && return 0
  say "==> chromium from Debian (browser tests)"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

# Helm (the chart's tests: helm lint and helm template), built from its Go module at a pinned
# release into .cache/bin; Go's module and build caches make a rebuild take seconds
HELM_VERSION="v4.3.2"
setup_helm() {
  local helm="$CACHE/bin/helm" stamp="$CACHE/bin/.helm-$HELM_VERSION"
  [[ -x "$helm" && -f "$stamp" ]] && return 0
  say "==> helm $HELM_VERSION, built from helm.sh/helm/v4 (Go module proxy)"
  command -v go >/dev/null || die "go not found (Helm is built from its Go module)"
  mkdir -p "$CACHE/bin"
  if ! GOBIN="$CACHE/bin" GOFLAGS=-mod=mod go install \
    -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >"$CACHE/helm-build.log" 2>&1; then
    cat "$CACHE/helm-build.log" >&2; die "helm could not be built (above)"
  fi
  rm -f "$CACHE"/bin/.helm-*; touch "$stamp"
}

setup_wrk() {
  # make bench: the HTTP load generator (a separate process on loopback)
  command -v wrk >/dev/null && return 0
  say "==> wrk from Debian (ingest load generator)"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
}

setup_bench_python() {
  # make bench: the peer (Quix Streams) from requirements-bench.lock, the same pins as
  # requirements.lock plus the bench extra (`make lock` makes both)
  local stamp="$VENV/.bench-$(sha256sum "$ROOT/requirements-bench.lock" | cut -c1-16)"
  [[ -f "$stamp" ]] && return 0
  say "==> bench extra (.venv, from requirements-bench.lock)"
  "$VENV/bin/python" -m pip install -q --require-hashes --no-deps -r "$ROOT/requirements-bench.lock"
  rm -f "$VENV"/.bench-*; touch "$stamp"
}

cmd_setup() { setup_python; compile_messages; setup_kafka; setup_redis; setup_chromium; setup_helm; }



# ---------------------------------------------------------------- servers
render() { # template out key=value...
  local tpl="$1" out="$2"; shift 2
  local text; text="$(cat "$tpl")"
  for kv in "$@"; do text="${text//@${kv%%=*}@/${kv#*=}}"; done
  printf '%s\n' "$text" >"$out"
}

start_kafka() {
  if answers "$KAFKA_PORT"; then say "kafka: reusing the server on port $KAFKA_PORT"; return 0; fi
  local data="$RUN/data/kafka" conf="$RUN/conf/kafka.properties"
  mkdir -p "$data" "$RUN/conf"
  render "$ROOT/deploy/kafka/server.properties.in" "$conf" \
    "PORT=$KAFKA_PORT" "CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" "DATA_DIR=$data"
  local cp="$CACHE/kafka/lib/*" log4j="-Dlog4j2.configurationFile=$ROOT/deploy/kafka/log4j2.yaml"
  if [[ ! -f "$data/meta.properties" ]]; then
    local cluster; cluster="$(java -cp "$cp" "$log4j" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    java -cp "$cp" "$log4j" kafka.tools.StorageTool format -t "$cluster" -c "$conf" >>"$RUN/logs/kafka.log" 2>&1 \
      || { tail -n 20 "$RUN/logs/kafka.log" >&2; die "kafka storage format failed"; }
  fi
  say "kafka: starting on port $KAFKA_PORT (KRaft)"
  start_bg kafka java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -XX:+UseG1GC "$log4j" -cp "$cp" kafka.Kafka "$conf"
  wait_for_port kafka "$KAFKA_PORT" 90
  # A TCP accept is not readiness: wait until a metadata request succeeds.
  "$VENV/bin/python" "$ROOT/deploy/wait_ready.py" kafka --timeout 90
}

start_redis() {
  if answers "$REDIS_PORT"; then say "redis: reusing the server on port $REDIS_PORT"; return 0; fi
  local data="$RUN/data/redis" conf="$RUN/conf/redis.conf"
  mkdir -p "$data" "$RUN/conf"
  render "$ROOT/deploy/redis/redis.conf.in" "$conf" "PORT=$REDIS_PORT" "DATA_DIR=$data"
  say "redis: starting on port $REDIS_PORT (AOF everysec)"
  start_bg redis redis-server "$conf"
  wait_for_port redis "$REDIS_PORT" 30
  "$VENV/bin/python" "$ROOT/deploy/wait_ready.py" redis --timeout 30
}

start_smtp() {
  if answers "$SMTP_PORT"; then say "smtp: reusing the server on port $SMTP_PORT"; return 0; fi
  mkdir -p "$REALCONNECT_MAILDIR"/{cur,new,tmp}  # a Maildir
  say "smtp: starting on port $SMTP_PORT (aiosmtpd, delivering to $REALCONNECT_MAILDIR)"
  start_bg smtp "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
    -c aiosmtpd.handlers.Mailbox "$REALCONNECT_MAILDIR"
  wait_for_port smtp "$SMTP_PORT" 30
}

start_service() {
  local name="$1" port; port="$(port_of "$1")"
  if alive "$name"; then
    if [[ "$(cat "$RUN/pids/$name.ns" 2>/dev/null)" == "${REALCONNECT_NAMESPACE:-}" ]]; then
      say "$name: already running"; return 0
    fi
    say "$name: restarting in namespace '${REALCONNECT_NAMESPACE:-}'"; stop_one "$name"
  elif answers "$port"; then
    die "$name: port $port is taken by another process (set its REALCONNECT_*PORT)"
  fi
  # the log's size now (none yet on a fresh clone): readiness is looked for after it
  local offset=0; [[ -f "$RUN/logs/$name.log" ]] && offset="$(wc -c <"$RUN/logs/$name.log")"
  local kind=serve; case "$name" in normalizer|matcher|notifier) kind=worker ;; esac
  # through the supervisor: a service that dies is started again (deploy/supervise.sh)
  SUPERVISE_PIDFILE="$RUN/pids/$name.child" \
    start_bg "$name" "$ROOT/deploy/supervise.sh" "$name" "$VENV/bin/realconnect" "$kind" "$name"
  printf '%s' "${REALCONNECT_NAMESPACE:-}" >"$RUN/pids/$name.ns"
  wait_for_port "$name" "$port" 90 "$offset"
  say "$name: up on port $port"
}

stop_one() {
  local name="$1" pidf="$RUN/pids/$1.pid"
  [[ -f "$pidf" ]] || return 0
  local pid; pid="$(cat "$pidf")"
  if running "$pid"; then
    # the process itself (a supervisor passes it on to its service), not its group: a
    # second TERM makes uvicorn and faust skip their graceful shutdown
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$pid" || break; sleep 0.2; done
    if running "$pid"; then
      say "$name: did not stop in 20 s; killing"; kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    say "$name: stopped"
  fi
  rm -f "$pidf" "$RUN/pids/$1.ns" "$RUN/pids/$1.child"
}

cmd_up() {
  local what="${1:-all}"
  cmd_setup
  mkdir -p "$RUN/logs"
  start_kafka
  start_redis
  start_smtp
  "$VENV/bin/realconnect" topics >&2
  if [[ "$what" == all ]]; then
    for s in "${SERVICES[@]}"; do start_service "$s"; done
  fi
}

cmd_down() {
  local s
  for s in notifier matcher normalizer console feeds ingest smtp redis kafka; do stop_one "$s"; done
}

cmd_status() {
  local s port state
  printf '%-9s %-6s %-8s %s\n' component port state pid
  for s in kafka redis smtp "${SERVICES[@]}"; do
    port="$(port_of "$s")"
    if alive "$s"; then state=running; elif answers "$port"; then state=external; else state=down; fi
    printf '%-9s %-6s %-8s %s\n' "$s" "$port" "$state" "$(cat "$RUN/pids/$s.child" 2>/dev/null || cat "$RUN/pids/$s.pid" 2>/dev/null || echo -)"
  done
}

case "${1:-}" in
  setup) cmd_setup ;;
  setup-bench) cmd_setup; setup_bench_python; setup_wrk ;;
  up) shift; cmd_up "${1:-all}" ;;
  down) cmd_down ;;
  down-one) stop_one "$2" ;;

  status) cmd_status ;;
  *) say "usage: $0 setup|setup-bench|up [infra|all]|down|down-one NAME|status"; exit 2 ;;
esac
