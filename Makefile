# Billing API: every target sets up what it needs. `make help` lists them.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
# Where `make worker` serves the worker's /metrics (empty: nowhere)
CELERY_METRICS_ADDRESS ?= 127.0.0.1:9808
LOG_BASE_DIR ?= /tmp
export LOG_BASE_DIR
TEST_ENV := SECRET_KEY=test-only-key-not-a-secret-0123456789abcdef DEBUG=0 LOG_CONSOLE=0
# The PostgreSQL server the database tests run on a second time (README, "Databases")
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.DEFAULT_GOAL := help
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
PROMETHEUS := /usr/bin/prometheus
ALERTMANAGER := /usr/bin/prometheus-alertmanager
REDIS_SERVER := /usr/bin/redis-server
RSYSLOGD := /usr/sbin/rsyslogd
# `make central` (README, "Several hosts"): its directory, the central's port, this host's name
CENTRAL_DIR ?= $(CURDIR)/.central
CENTRAL_PORT ?= 20514
CENTRAL_HOST ?= $(shell hostname -s 2>/dev/null | tr 'A-Z_' 'a-z-' | grep -E '^[a-z0-9-]+$$' || echo local)

.PHONY: help venv run serve-asgi worker test test-pg test-fast browser monitoring redis rsyslog central central-logs lint fmt bench demo migrate clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create/update .venv with the app and dev dependencies

.secret_key:
	@$(PY_SYS) -c 'import secrets; print(secrets.token_urlsafe(50))' > .secret_key
	@chmod 600 .secret_key

BASE_URL = http://$(HOST):$(PORT)

migrate: $(STAMP) .secret_key ## Apply migrations and load the demo data (idempotent)
	SECRET_KEY="$$(cat .secret_key)" $(PY) manage.py migrate --noinput
	SECRET_KEY="$$(cat .secret_key)" $(PY) manage.py createcachetable
	SECRET_KEY="$$(cat .secret_key)" $(PY) manage.py seed_demo --base-url $(BASE_URL)

# Metrics from several worker processes need one directory they all write to
# (PROMETHEUS_MULTIPROC_DIR): a new one per run, removed when the server stops.
run: migrate ## Set up, load demo data and serve on $(HOST):$(PORT) with gunicorn (metrics at /metrics)
	@echo "Serving $(BASE_URL) with gunicorn ($(WORKERS) workers): API $(BASE_URL)/api/v1/," \
	  "trace viewer $(BASE_URL)/ops/requests/, metrics $(BASE_URL)/metrics, admin $(BASE_URL)/admin/;" \
	  "logs in $(LOG_BASE_DIR) (a moment after each response)"
	metrics_dir="$$(mktemp -d -t billing-prometheus-XXXXXX)"; trap 'rm -rf "$$metrics_dir"' EXIT; \
	SECRET_KEY="$$(cat .secret_key)" PROMETHEUS_MULTIPROC_DIR="$$metrics_dir" \
	  $(VENV)/bin/gunicorn config.wsgi:application \
	  -c config/gunicorn.conf.py --bind $(HOST):$(PORT) --workers $(WORKERS)

serve-asgi: migrate ## Serve the ASGI app (config.asgi) with uvicorn instead
	metrics_dir="$$(mktemp -d -t billing-prometheus-XXXXXX)"; trap 'rm -rf "$$metrics_dir"' EXIT; \
	SECRET_KEY="$$(cat .secret_key)" PROMETHEUS_MULTIPROC_DIR="$$metrics_dir" \
	  $(VENV)/bin/uvicorn config.asgi:application \
	  --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log --no-proxy-headers

# Background work (README, "Background work"): with CELERY_BROKER_URL set, the web processes
# publish tasks to that broker and this worker runs them; beat runs the outbox sweep. The
# worker's main process serves its tasks' metrics on $(CELERY_METRICS_ADDRESS); its pool
# children count them into a directory of this run's own (never the web's), removed after.
worker: migrate ## Run a Celery worker (prefork, $(WORKERS) processes) and beat on CELERY_BROKER_URL; metrics on $(CELERY_METRICS_ADDRESS)
	@if [ -z "$${CELERY_BROKER_URL:-}" ]; then \
	  echo "make worker: set CELERY_BROKER_URL (redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//);"; \
	  echo "without it, make run runs the tasks in the web processes (the embedded default)"; exit 2; fi
	schedule_dir="$$(mktemp -d -t billing-beat-XXXXXX)"; \
	metrics_dir="$$(mktemp -d -t billing-worker-prometheus-XXXXXX)"; \
	trap 'rm -rf "$$schedule_dir" "$$metrics_dir"' EXIT; \
	SECRET_KEY="$$(cat .secret_key)" PROMETHEUS_MULTIPROC_DIR="$$metrics_dir" \
	  CELERY_METRICS_ADDRESS="$(CELERY_METRICS_ADDRESS)" $(VENV)/bin/celery -A config worker --beat \
	  --loglevel INFO --pool prefork --concurrency $(WORKERS) --schedule "$$schedule_dir/beat-schedule"

test: $(STAMP) browser monitoring redis rsyslog ## The whole suite on SQLite, then the database tests on PostgreSQL (what CI runs)
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) DATABASE_URL="sqlite:///$(CURDIR)/db.sqlite3" LOG_BASE_DIR="$$(mktemp -d)" $(PY) -m pytest --durations=25
	@$(MAKE) --no-print-directory test-pg

test-pg: $(STAMP) ## The database tests (-m db, races included) again on PostgreSQL at TEST_DATABASE_URL
	@if probe="$$($(PY) -m tests.e2e.postgres "$(TEST_DATABASE_URL)")"; then \
	  echo "PostgreSQL at $$probe: the database tests (-m db) again"; \
	  $(TEST_ENV) DATABASE_URL="$(TEST_DATABASE_URL)" LOG_BASE_DIR="$$(mktemp -d)" $(PY) -m pytest -m db; \
	elif [ "$${CI:-}" = true ]; then \
	  echo "PostgreSQL tests FAILED: $$probe (CI=true requires them)"; exit 1; \
	else \
	  echo "PostgreSQL tests skipped: $$probe; start one there or set TEST_DATABASE_URL=postgres://user@host:port/db"; \
	fi

# The trace viewer's browser test drives Debian's chromium through chromium-driver; nothing
# downloads a browser of its own. Missing and not installable: CI fails, elsewhere it is skipped.
browser: ## Install chromium + chromium-driver (Debian) for the browser test, when missing
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing chromium and chromium-driver with apt-get (the trace viewer's browser test)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "apt-get could not install chromium chromium-driver"; \
	fi; \
	if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then exit 0; fi; \
	if [ "$$CI" = true ]; then echo "CI: $(CHROMIUM) or $(CHROMEDRIVER) missing; the browser test cannot run" >&2; exit 1; fi; \
	echo "hint: apt-get install chromium chromium-driver (as root) to run the browser test; it will be skipped"

# The tests of deploy/ run Debian's prometheus, promtool, prometheus-alertmanager and amtool
# themselves (on free 127.0.0.1 ports, their own data directories): the packages' own
# services are never used. Missing and not installable: CI fails, elsewhere they are skipped.
# (On a host running systemd, the packages' postinst starts and enables their services on
# :9090 and :9093; disable them if you do not want them.)
monitoring: ## Install prometheus + prometheus-alertmanager (Debian) for the tests of deploy/, when missing
	@if [ -x $(PROMETHEUS) ] && [ -x $(ALERTMANAGER) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing prometheus and prometheus-alertmanager with apt-get (the tests of deploy/)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager >/dev/null) \
	    || echo "apt-get could not install prometheus prometheus-alertmanager"; \
	fi; \
	if [ -x $(PROMETHEUS) ] && [ -x $(ALERTMANAGER) ]; then exit 0; fi; \
	if [ "$$CI" = true ]; then echo "CI: $(PROMETHEUS) or $(ALERTMANAGER) missing; the tests of deploy/ cannot run" >&2; exit 1; fi; \
	echo "hint: apt-get install prometheus prometheus-alertmanager (as root) to run the tests of deploy/; they will be skipped"

# The tests of "Several hosts" run Debian's rsyslogd themselves (agents and a central on free
# 127.0.0.1 ports, their own work directories, a CA made by the test): the system's own
# rsyslog service is never used or changed. Missing and not installable: CI fails, elsewhere
# they are skipped.
rsyslog: ## Install rsyslog + rsyslog-relp + rsyslog-gnutls (Debian) for the tests of "Several hosts", when missing
	@if [ -x $(RSYSLOGD) ] && ls /usr/lib/*/rsyslog/imrelp.so >/dev/null 2>&1 && command -v openssl >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing rsyslog, rsyslog-relp, rsyslog-gnutls and openssl with apt-get (the tests of Several hosts)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    rsyslog rsyslog-relp rsyslog-gnutls openssl >/dev/null) \
	    || echo "apt-get could not install rsyslog rsyslog-relp rsyslog-gnutls openssl"; \
	fi; \
	if [ -x $(RSYSLOGD) ] && ls /usr/lib/*/rsyslog/imrelp.so >/dev/null 2>&1 && command -v openssl >/dev/null; then exit 0; fi; \
	if [ "$$CI" = true ]; then echo "CI: rsyslogd, its RELP module or openssl missing; the tests of Several hosts cannot run" >&2; exit 1; fi; \
	echo "hint: apt-get install rsyslog rsyslog-relp rsyslog-gnutls (as root) to run the tests of Several hosts; they will be skipped"

# One machine, two daemons in the foreground: a central rsyslogd on 127.0.0.1:$(CENTRAL_PORT)
# and this host's agent tailing $(LOG_BASE_DIR); a development CA made on the first run.
central: rsyslog ## Run a central rsyslogd and this host's agent (foreground, loopback, dev CA) into $(CENTRAL_DIR)/root
	$(PY_SYS) deploy/rsyslog/dev.py --logs "$(LOG_BASE_DIR)" --dir "$(CENTRAL_DIR)" \
	  --port $(CENTRAL_PORT) --host "$(CENTRAL_HOST)"

central-logs: $(STAMP) .secret_key ## logtrace over the central root `make central` writes (ARGS="--trace ..." to pass options)
	SECRET_KEY="$$(cat .secret_key)" $(PY) manage.py logtrace --root "$(CENTRAL_DIR)/root" $(ARGS)
# The background-work tests start redis-server themselves, on a free port with no persistence;
# the machine's own Redis is never used or stopped. Missing and not installable: CI fails.
redis: ## Install redis-server (Debian) for the background-work tests, when missing
	@if [ -x $(REDIS_SERVER) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing redis-server with apt-get (the background-work tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    redis-server >/dev/null) || echo "apt-get could not install redis-server"; \
	fi; \
	if [ -x $(REDIS_SERVER) ]; then exit 0; fi; \
	if [ "$$CI" = true ]; then echo "CI: $(REDIS_SERVER) missing; the background-work tests cannot run" >&2; exit 1; fi; \
	echo "hint: apt-get install redis-server (as root) to run the background-work tests; they will be skipped"

test-fast: $(STAMP) monitoring ## The suite without the real-server end-to-end tests, on SQLite
	$(TEST_ENV) DATABASE_URL="sqlite:///$(CURDIR)/db.sqlite3" LOG_BASE_DIR="$$(mktemp -d)" $(PY) -m pytest -m 'not e2e'

# mypy loads config.settings (django-stubs' plugin reads the models): it needs a SECRET_KEY.
lint: $(STAMP) ## ruff check, format check, and mypy (strict) on observability/ and billing/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TEST_ENV) $(VENV)/bin/mypy

fmt: $(STAMP) ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) ## Benchmarks: in-process overhead, per-record cost, real servers, logtrace, trace viewer
	$(PY) -m pip install --quiet -e '.[bench]'
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null) || echo "wrk not installable: server benchmarks skipped"
	$(PY) bench/bench.py
	$(PY) bench/viewer_bench.py
	$(PY) bench/overview_bench.py
	$(PY) bench/root_bench.py
	@if [ -x $(RSYSLOGD) ]; then $(PY) bench/central_bench.py; else echo "rsyslogd missing: the shipping benchmark is skipped (make rsyslog)"; fi

demo: migrate ## Demo data and requests worth exploring (a failure, a slow one, a decline, a refused refund, failed logins)
	@SECRET_KEY="$$(cat .secret_key)" LOG_CONSOLE=0 $(PY) manage.py seed_demo --traffic --base-url $(BASE_URL)

clean: ## Remove the venv, the SQLite file and caches
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache .hypothesis .secret_key
