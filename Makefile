# Stuudium ID — `make run` starts everything on loopback, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint unit bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(STAMP) ## Create the virtualenv and install the project with its dev tools

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

run: install ## Start the IdP, the demo schools and the dev services on loopback
	$(PY) -m deploy.dev.run

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy idp shared school_instance deploy tests/bench

test: install lint ## Every test (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
	$(PY) -m pytest -q -p no:cacheprovider

bench: install ## Benchmarks against gunicorn on PostgreSQL + Redis (figures in artifacts/bench)
	$(PY) -m tests.bench.run
	$(PY) -m tests.bench.jump
	$(PY) -m tests.bench.logout
	$(PY) -m tests.bench.sync
	$(PY) -m tests.bench.capacity

clean: ## Remove local state (var/) and caches
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
