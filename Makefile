# Everyday commands. The first `make run` or `make test` creates .venv and installs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run test check format faults demo bench clean

help: ## list the everyday commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP) ## serve the bot (SQLite under storage/, sandbox WeChat without credentials)
	$(BIN)/bangfu-bot serve

test: $(STAMP) ## run the tests on SQLite, then on PostgreSQL if BANGFU_TEST_DATABASE_URL is set
	BANGFU_TEST_DATABASE_URL= $(BIN)/python -m pytest -q
	@if [ -n "$$BANGFU_TEST_DATABASE_URL" ]; then \
	  echo "--- again on PostgreSQL ($$BANGFU_TEST_DATABASE_URL)"; \
	  $(BIN)/python -m pytest -q; \
	fi

check: $(STAMP) ## ruff (lint and format), mypy on src/, and the import contracts
	$(BIN)/ruff check src tests bench faults
	$(BIN)/ruff format --check src tests bench faults
	$(BIN)/mypy src
	$(BIN)/lint-imports

format: $(STAMP) ## fix what ruff can: import order, formatting
	$(BIN)/ruff check --fix src tests bench faults
	$(BIN)/ruff format src tests bench faults

faults: $(STAMP) ## the fault suite: kill -9, outages, hostile pushes (SQLite; PostgreSQL too when BANGFU_TEST_DATABASE_URL is set; about 3 minutes)
	$(BIN)/python -m faults

demo: $(STAMP) ## play the whole mechanism through the webhook and the fake WeChat
	$(BIN)/bangfu-bot demo

bench: $(STAMP) ## benchmarks: ratios to baselines measured in the same run (about four minutes)
	$(BIN)/python -m bench

clean: ## remove the virtual environment
	rm -rf $(VENV)
