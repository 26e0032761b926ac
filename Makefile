# Everyday verbs. `make demo` runs the product end to end; `make test` runs the test suite.
# Both install what they need into .venv first, idempotently (a second run only checks a stamp).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := requirements/constraints.txt
DUCKDB_CLI_VERSION := 1.5.6
DUCKDB_CLI := $(VENV)/duckdb-cli/bin/duckdb
export TURRET_HOME ?= $(CURDIR)/.turret
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# No tool calls home (the full list of switches is turret.telemetry, applied wherever Turret starts a tool).
export DO_NOT_TRACK := 1
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: install system-deps redis-server demo test lint bench lock up down clean help

help:
	@echo "make install  create .venv with everything (torch CPU first)"
	@echo "make demo     run Turret end to end on embedded defaults"
	@echo "make test     run the test suite"
	@echo "make bench    run the benchmarks in bench/"

install: $(STAMP)

# torch goes first and alone: a CPU wheel of it lies on disk, and any looser requirement pulls a CUDA build.
$(STAMP): pyproject.toml $(CONSTRAINTS) clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing torch (CPU), then Turret's pinned dependencies, into $(VENV) (minutes on a clean machine):"
	$(BIN)/pip install --progress-bar on torch==2.13.0
	$(BIN)/pip install --progress-bar on -c $(CONSTRAINTS) -e '.[test]' -e clients/python
	@echo "Compiling the topic engine's UMAP once (numba caches it in $(VENV)) ..."
	$(BIN)/python -c "from turret.topics.reduce import warm_up; warm_up()"
	touch $(STAMP)

demo: install
	$(BIN)/python -m turret.demo

test: install system-deps $(DUCKDB_CLI)
	$(BIN)/python -m pytest

# The newest DuckDB CLI on PyPI (a 1.x release), in a virtualenv of its own: the tests open the published
# snapshot with it as a BI tool's DuckDB 1.x driver would (tests/fixtures/bi.py).
$(DUCKDB_CLI):
	$(PYTHON) -m venv $(VENV)/duckdb-cli
	$(VENV)/duckdb-cli/bin/pip install --quiet duckdb-cli==$(DUCKDB_CLI_VERSION)

# PostgreSQL for the control-plane tests against a real server, Debian's chromium with its driver for the
# dashboard's browser tests (browser builds cannot be downloaded here), and Debian's redis-server, the broker
# `make up` starts with TURRET_EXECUTOR=celery. Installed when missing and possible (root with apt);
# otherwise those tests are skipped and say why.
system-deps: redis-server
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    echo "Installing PostgreSQL (Debian package) for the control-plane tests ..." && \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	  echo "PostgreSQL is not installed and cannot be: its tests will be skipped"
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    echo "Installing chromium and chromium-driver (Debian packages) for the dashboard's browser tests ..." && \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium is not installed and cannot be: the dashboard's browser tests will be skipped"

redis-server:
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    echo "Installing redis-server (Debian package), the Celery broker of TURRET_EXECUTOR=celery ..." && \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } || \
	  echo "redis-server is not installed and cannot be: TURRET_EXECUTOR=celery and its test (pytest -m celery) need it"

# ruff is pinned in the test extra (make install); any finding fails.
lint: install
	$(BIN)/python -m ruff check .

bench: install
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test,bench]'
	$(BIN)/python -m bench

lock:
	{ echo "# Full lock of the environment that make install builds (pip constraints file)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^turret' | sort -f; } > $(CONSTRAINTS)

# The whole product on this machine, detached (logs in $(TURRET_HOME)/logs); see docs/operations.md.
# TURRET_EXECUTOR=celery make up: also a private redis-server and TURRET_CELERY_WORKERS Celery workers.
up: install
	@if [ "$$TURRET_EXECUTOR" = celery ] && [ -z "$$TURRET_BROKER_URL" ]; then \
	  $(MAKE) --no-print-directory redis-server; fi
	$(BIN)/turret up

down:
	$(BIN)/turret down

clean:
	rm -rf $(VENV) .pytest_cache .turret
