# Stuudium ID — `make run` starts everything on loopback, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install system-packages bench-packages run test lint unit bench clean messages browser-tools

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(STAMP) ## Create the virtualenv and install the project with its dev tools

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	$(MAKE) --no-print-directory compile-messages
	touch $(STAMP)

run: install ## Start the IdP, the demo schools and the dev services on loopback
	$(PY) -m deploy.dev.run

# Estonian is the source language (msgid); ru and en are complete translations. The compiled
# .mo files are committed too, and a test proves they match the .po files.
APPS := idp school_instance
messages: install ## Extract every text (Python, templates, mail), update et/ru/en catalogues, compile
	@for app in $(APPS); do \
	  $(VENV)/bin/pybabel -q extract -F babel.cfg --no-location --sort-output --omit-header \
	    -o $$app/translations/messages.pot $$app shared && \
	  $(VENV)/bin/pybabel -q update -i $$app/translations/messages.pot -d $$app/translations \
	    --no-fuzzy-matching --ignore-obsolete || exit 1; \
	done
	@$(MAKE) --no-print-directory compile-messages

compile-messages:
	@for app in $(APPS); do $(VENV)/bin/pybabel -q compile -d $$app/translations || exit 1; done

lint: install ## ruff (lint and format), mypy and the import layers (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy idp shared school_instance deploy tests
	$(VENV)/bin/lint-imports

system-packages: ## Install the Debian packages the tests need (chromium, nginx, npm) when missing
	@sh deploy/dev/system-packages.sh

bench-packages: ## Install the Debian packages make bench needs (wrk, chromium, nginx, npm) when missing
	@sh deploy/dev/system-packages.sh bench

# The browser tests' own npm packages (axe-core, pinned in tests/e2e/package-lock.json), installed
# once: npm ci runs only while tests/e2e/node_modules/axe-core is missing.
E2E_TOOLS := tests/e2e/node_modules/axe-core
browser-tools: $(E2E_TOOLS) ## Install the browser tests' npm packages (axe-core) when missing

$(E2E_TOOLS): tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund
	touch $(E2E_TOOLS)

test: install system-packages browser-tools lint ## Every test (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
	$(PY) -m pytest -q -p no:cacheprovider

bench: install bench-packages ## Benchmarks against gunicorn on PostgreSQL + Redis (figures in artifacts/bench)
	$(PY) -m tests.bench.compare
	$(PY) -m tests.bench.run
	$(PY) -m tests.bench.jump
	$(PY) -m tests.bench.fallback
	$(PY) -m tests.bench.logout
	$(PY) -m tests.bench.sync
	$(PY) -m tests.bench.capacity

clean: ## Remove local state (var/) and caches
	rm -rf var .pytest_cache .mypy_cache .ruff_cache tests/e2e/node_modules
