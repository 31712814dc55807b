# The two commands (see README): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast install install-dev services lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: migrate, create the admin account, start web + worker in the foreground.
run: install
	exec $(BIN)/python manage.py runall

## make test: install, make sure PostgreSQL and Redis are up, lint, run the whole suite.
test: install-dev services lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: the same, without the tests marked slow (servers, processes, browsers,
## real-time waits); no browser needed. See docs/testing.md.
test-fast: install-dev lint
	scripts/test-services.sh --no-browser
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

services:
	scripts/test-services.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make bench: every benchmark of docs/budgets.md, printing figures (feed and downloads beside nginx).
bench: install-dev services
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/slow_clients.py
	$(BIN)/python bench/s3_latency.py
	$(BIN)/python bench/staging.py
	$(BIN)/python bench/webhook_intake.py

clean:
	rm -rf $(VENV) var/test .pytest_cache
