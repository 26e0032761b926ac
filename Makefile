# Everyday verbs. `make demo` runs the product end to end; `make test` runs the test suite.
# Both install what they need into .venv first, idempotently (a second run only checks a stamp).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := requirements/constraints.txt
export TURRET_HOME ?= $(CURDIR)/.turret
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: install demo test test-all lint bench lock up down clean help

help:
	@echo "make install  create .venv with everything (torch CPU first)"
	@echo "make demo     run Turret end to end on embedded defaults"
	@echo "make test     run the test suite"
	@echo "make bench    run the benchmarks in bench/"

install: $(STAMP)

# torch goes first and alone: a CPU wheel of it lies on disk, and any looser requirement pulls a CUDA build.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/python -m turret.demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/python -m ruff check . || true

bench: install
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test,bench]'
	$(BIN)/python -m bench

lock:
	{ echo "# Full lock of the environment that make install builds (pip constraints file)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^turret' | sort -f; } > $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache .turret
