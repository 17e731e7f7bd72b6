# Two commands on a fresh machine: `make rehearse` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REGISTRY_STAMP := registry/node_modules/.installed
# Node tools the tests need, and the one only `make bench` needs (see their rule below).
NODE_TOOLS := oracle/npm contracts/graphql contracts/rest tests/sarif
BENCH_TOOLS := bench/tools/secretlint

.PHONY: setup oracle chromium rehearse test lint typecheck pytest bench clean

setup: $(STAMP) $(REGISTRY_STAMP) $(NODE_TOOLS:%=%/node_modules/.installed)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# Verdaccio, the local registry for rehearsals and tests: pinned by registry/package-lock.json.
$(REGISTRY_STAMP): registry/package.json registry/package-lock.json
	cd registry && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Node tools beside the local registry, each pinned by the lockfile in its own folder, installed
# by one rule with no install scripts run: the npm CLI itself (oracle/npm, the differential tests'
# and the containment bench's oracle, run only against the local registry), GitHub's GraphQL schema
# and REST description (contracts/graphql, contracts/rest: the world's contract tests), the SARIF
# 2.1.0 schema (tests/sarif) and secretlint (bench/tools/secretlint: only `make bench` needs it).
%/node_modules/.installed: %/package.json %/package-lock.json
	cd $* && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

oracle: oracle/npm/node_modules/.installed

# Headless Chromium renders the HTML report in a test (Debian's package; needs root to install).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the HTML report screenshot test will say why it skips"; }

rehearse: setup
	$(BIN)/respond rehearse

test: setup chromium lint typecheck pytest

lint:
	$(BIN)/ruff format --check playbook tests bench
	$(BIN)/ruff check playbook tests bench

typecheck:
	$(BIN)/mypy playbook

pytest:
	$(BIN)/python -m pytest

bench: setup $(BENCH_TOOLS:%=%/node_modules/.installed)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) registry/node_modules $(NODE_TOOLS:%=%/node_modules) $(BENCH_TOOLS:%=%/node_modules) \
	  .mypy_cache .pytest_cache .ruff_cache
