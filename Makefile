# Trendlab: `make run` starts the dashboard, `make test` checks everything. Both set up .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test test-fast lint format bench clean postgres recbole

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps re-run pip only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/trendlab serve --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The browser tests drive Debian's Chromium (a Playwright browser download does not work
# here); install it when it is missing, as root or through sudo.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests..."
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium

# The PostgreSQL tests start Debian's server binaries (initdb, pg_ctl) in a temporary folder on
# a free port (tests/postgres.py); install the package when no initdb is found, as root or
# through sudo. Debian keeps them in /usr/lib/postgresql/<version>/bin, off the PATH.
INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb) $(shell command -v initdb))
postgres:
ifeq ($(INITDB),)
	@echo "Installing Debian's postgresql for the PostgreSQL tests..."
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends postgresql
endif

# Two pytest-xdist workers, each taking whole files (a file's module fixtures and its server
# stay in one process): 14 min for the suite on the 2-core machine, against 28 min in one.
TEST_WORKERS ?= 2
test: lint $(CHROMIUM) postgres
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Skips the slow tests (the browser flow, Ray and sweeps among them) for local iteration.
test-fast: lint postgres
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

# RecBole 1.2.1 beside the project, never in it: its own environment for the side-by-side BPR
# bench (`python -m bench.recbole_bpr`). It predates numpy 2, pandas 2.3 and setuptools 81.
RECBOLE := .recbole
recbole: $(RECBOLE)/bin/python
$(RECBOLE)/bin/python:
	$(PYTHON) -m venv $(RECBOLE)
	$(RECBOLE)/bin/pip install torch==2.13.0 recbole==1.2.1 "numpy<2" "pandas<2.3" \
		"scipy<1.14" "setuptools<81"

clean:
	rm -rf $(VENV) $(RECBOLE) .pytest_cache .ruff_cache
