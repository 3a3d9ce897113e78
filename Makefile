# The two commands of the README: `make demo` and `make test`. Everything they need is installed here.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements.stamp

.PHONY: setup demo test lint services browser bench clean help

help:
	@echo "make demo   set up, then run the demo study (web + workers, embedded SQLite + filesystem broker)"
	@echo "make test   set up (venv, packages, chromium, PostgreSQL, Redis), then run the test suite"

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

services:
	.ci/services-up

browser:
	.ci/browser-install

demo: setup
	$(PY) manage.py demo $(DEMO_ARGS)

test: setup services browser
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/explain.py

clean:
	rm -rf var/test-media var/broker tests/artifacts
