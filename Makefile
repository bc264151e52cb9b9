# realconnect — the two commands that do all set-up on a fresh machine:
#   make demo   the whole pipeline on a real dataset, end to end
#   make test   the whole suite (unit, integration, e2e) against real Kafka and Redis
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PYTEST := $(VENV)/bin/pytest
STACK := deploy/stack.sh

.PHONY: help setup up down status test test-unit demo eval bench lint reliability audit bench-memory bench-recovery fuzz lock messages

help:
	@echo "make demo     run the pipeline end to end on the Copenhagen calls+SMS data (DEMO_ONCE=1 to stop after the summary)"
	@echo "make test     start Kafka + Redis, run unit, integration and e2e tests, stop what was started"
	@echo "make up|down|status   the local stack: Kafka (KRaft), Redis, ingest, feeds, console, matcher, notifier"
	@echo "make eval     the matcher judged on real data against baselines -> docs/evaluation.md"
	@echo "make bench    throughput (floor, layers, Quix peer), ingest, latency, console -> docs/benchmarks.md"
	@echo "make reliability  numbered replays under faults, 3-broker leader kill -> docs/reliability.md"
	@echo "make audit    pip-audit of the installed dependencies"
	@echo "make lint     ruff"
	@echo "make lock     re-resolve requirements.lock from pyproject.toml (make setup installs the lock)"

setup:
	@$(STACK) setup

# Re-resolve the dependency set from pyproject.toml into requirements.lock (pinned, hashed);
# commit both. `make setup` installs the lock.
# The current pins are kept (uv prefers the versions already in its output file); UPGRADE=1
# re-resolves everything to the newest versions pyproject.toml allows.
lock: setup
	@$(VENV)/bin/python -m pip install -q uv
	@sed 1,3d requirements.lock > requirements.lock.new; sed 1,3d requirements-runtime.lock > requirements-runtime.lock.new
	@$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
	  --no-header $(if $(UPGRADE),--upgrade) -o requirements.lock.new
	@$(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	  --no-header $(if $(UPGRADE),--upgrade) -o requirements-runtime.lock.new
	@sed 1,3d requirements.lock > requirements-bench.lock.new
	@$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra bench --override bench/overrides.txt \
	  --generate-hashes --python-version 3.11 --no-header -o requirements-bench.lock.new
	@{ printf '%s\n' "# requirements.lock plus the bench extra (Quix Streams, the peer of make bench), pinned with" \
	  "# hashes; made by make lock with bench/overrides.txt. deploy/stack.sh setup-bench installs it" \
	  "# into .venv (--no-deps: every dependency is in this file)."; cat requirements-bench.lock.new; } > requirements-bench.lock
	@{ sed -n 1,3p requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp
	@{ sed -n 1,3p requirements-runtime.lock; cat requirements-runtime.lock.new; } > requirements-runtime.lock.tmp
	@mv requirements.lock.tmp requirements.lock; mv requirements-runtime.lock.tmp requirements-runtime.lock
	@rm -f requirements.lock.new requirements-runtime.lock.new requirements-bench.lock.new
	@echo "requirements.lock and requirements-runtime.lock updated: review, run make test, commit"

up:
	@$(STACK) up all

down:
	@$(STACK) down

status:
	@$(STACK) status

# Tests start their own services (unique namespace, free ports) against the shared Kafka,
# Redis and SMTP server, started once per run; whatever this target started is stopped again,
# whatever the outcome. The tiers run in parallel (pytest-xdist, TEST_WORKERS processes; a
# module's tests stay on one worker, so a module-scoped stack is started once); the time per
# tier is printed at the end (docs/testing.md: keeping the suite under ten minutes).
TEST_WORKERS ?= 4
test: setup
	@$(STACK) up infra; rc=0; \
	$(PYTEST) -n $(TEST_WORKERS) --dist loadscope --durations=15 \
	  tests/unit tests/integration tests/e2e tests/security || rc=$$?; \
	$(STACK) down; exit $$rc

test-unit: setup
	@$(PYTEST) tests/unit

demo: setup
	@deploy/demo.sh

eval: setup
	@deploy/eval.sh

bench: setup
	@deploy/bench.sh



lint: setup
	@$(VENV)/bin/ruff check services schemas tests deploy && $(VENV)/bin/ruff format --check services schemas tests deploy

# Numbered replays under faults (SIGKILLs of workers, Redis and the broker, rebalances), a
# fault-free reference run and the three-broker pipeline; the table goes to docs/reliability.md.
reliability: setup
	@$(STACK) up infra; rc=0; \
	$(VENV)/bin/python -m tests.reliability || rc=$$?; \
	(cd .run && PYTHONPATH=$(CURDIR) ../$(VENV)/bin/python -m tests.fuzz_adapters -max_total_time=120 -print_final_stats=1) || rc=$$?; \
	$(STACK) down; exit $$rc

# Known vulnerabilities in the installed dependencies. --strict: a package that cannot be
# audited (vulnerability service unreachable) is a failure, not a silent pass.
audit: setup
	@$(VENV)/bin/pip-audit --strict --progress-spinner off

# Matcher RSS and state on disk as tracked pairs grow (MEMORY_PAIRS, default 10M: long).
bench-memory: setup
	@$(STACK) up infra; rc=0; \
	.venv/bin/python -m bench.memory --pairs "$${MEMORY_PAIRS:-10000000}" --every "$${MEMORY_EVERY:-1000000}" || rc=$$?; \
	$(STACK) down; exit $$rc

# How long a matcher takes to get 1 M and 10 M pairs back: a cold restore, and failover with
# and without a warm standby (docs/reliability.md).
bench-recovery: setup
	@$(STACK) up infra; rc=0; \
	.venv/bin/python -m bench.recovery $${RECOVERY_PAIRS:---pairs 1000000 --pairs 10000000} || rc=$$?; \
	$(STACK) down; exit $$rc

# Coverage-guided fuzzing of every source adapter and the scoring code (atheris/libFuzzer).
fuzz: setup
	@mkdir -p .run && cd .run && PYTHONPATH=$(CURDIR) ../$(VENV)/bin/python -m tests.fuzz_adapters -max_total_time=$${FUZZ_SECONDS:-300}

# Person-facing messages: extract them from the code and the page's templates into
# services/locale/messages.pot, and merge new or changed ones into each language's .po (then
# translate what is new: tests/unit/test_catalogues.py fails while a message is missing).
# make setup compiles the .po files (.mo, not committed).
messages:
	@$(VENV)/bin/pybabel extract -F services/locale/babel.cfg -k N_ --sort-output --no-location \
	  --project realconnect --version 0.1.0 -c "Translators:" -w 100 -o services/locale/messages.pot . >/dev/null
	@$(VENV)/bin/pybabel update -i services/locale/messages.pot -d services/locale -D messages \
	  --no-fuzzy-matching -w 100 --ignore-obsolete
