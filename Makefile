# The two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# The browser tests drive Debian's chromium through the playwright package.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test check bench install install-dev browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[postgres,fast,ai]"
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/cadenza migrate
	$(BIN)/cadenza serve

browser:
	@[ -x $(CHROMIUM) ] || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

test: $(DEV_STAMP) browser
	$(BIN)/python -m pytest -W error

check: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(DEV_STAMP)
	$(BIN)/python bench/claim.py

clean:
	rm -rf $(VENV) build *.egg-info tests/mcp/ts/node_modules
