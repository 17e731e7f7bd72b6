# Two commands on a fresh machine: `make rehearse` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REGISTRY_STAMP := registry/node_modules/.installed
ORACLE_STAMP := oracle/npm/node_modules/.installed

GRAPHQL_STAMP := contracts/graphql/node_modules/.installed
SARIF_STAMP := tests/sarif/node_modules/.installed
CONTRACTS_REST_STAMP := contracts/rest/node_modules/.installed
SECRETLINT_STAMP := bench/tools/secretlint/node_modules/.installed

.PHONY: setup oracle contracts-graphql contracts-rest chromium rehearse test lint typecheck pytest bench clean

setup: $(STAMP) $(REGISTRY_STAMP) oracle contracts-graphql contracts-rest $(SARIF_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# Verdaccio, the local registry for rehearsals and tests: pinned by registry/package-lock.json.
$(REGISTRY_STAMP): registry/package.json registry/package-lock.json
	cd registry && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The npm CLI itself, the oracle the differential tests and the containment bench drive:
# pinned by oracle/npm/package-lock.json, run only against the local registry.
oracle: $(ORACLE_STAMP)

$(ORACLE_STAMP): oracle/npm/package.json oracle/npm/package-lock.json
	cd oracle/npm && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# GitHub's official GraphQL schema (@octokit/graphql-schema), pinned by its lockfile: the contract
# test validates every GraphQL query respond sends against it.
contracts-graphql: $(GRAPHQL_STAMP)

$(GRAPHQL_STAMP): contracts/graphql/package.json contracts/graphql/package-lock.json
	cd contracts/graphql && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# GitHub's official REST description (@octokit/openapi), pinned by contracts/rest/package-lock.json:
# tests/test_contracts_rest.py validates the local world's GitHub answers against it.
contracts-rest: $(CONTRACTS_REST_STAMP)

$(CONTRACTS_REST_STAMP): contracts/rest/package.json contracts/rest/package-lock.json
	cd contracts/rest && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The SARIF 2.1.0 schema `respond scan --format sarif` is validated against (pinned by its lock).
$(SARIF_STAMP): tests/sarif/package.json tests/sarif/package-lock.json
	cd tests/sarif && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# secretlint, the peer guard bench/bench_guard.py runs on the same files: pinned by its lockfile.
# Only `make bench` needs it.
$(SECRETLINT_STAMP): bench/tools/secretlint/package.json bench/tools/secretlint/package-lock.json
	cd bench/tools/secretlint && npm ci --no-audit --no-fund --loglevel=error
	touch $@

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

bench: setup $(SECRETLINT_STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) registry/node_modules oracle/npm/node_modules contracts/graphql/node_modules \
	  contracts/rest/node_modules tests/sarif/node_modules \
	  bench/tools/secretlint/node_modules .mypy_cache .pytest_cache .ruff_cache
