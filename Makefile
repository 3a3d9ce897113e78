# The two commands of the README: `make demo` and `make test`. Everything they need is installed here.
# The Python of the virtual environment: the newest of PYTHONS that runs here with `venv` and its
# headers (pysaliency compiles a C extension). Every pinned package installs on 3.11, 3.12 and 3.13
# (README; on 3.12.1 and 3.13.0 the whole requirements.txt installed and `manage.py demo --check`
# passed). Only names that really run count: a pyenv shim is on PATH for versions it does not have.
# `make demo PYTHON=python3.12` picks one; an existing .venv is kept, whatever its Python.
PYTHONS ?= python3.13 python3.12 python3.11
PYTHON  ?= $(shell for p in $(PYTHONS); do $$p -c 'import ensurepip, os, sys, sysconfig; \
	sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	>/dev/null 2>&1 && { echo $$p; break; }; done)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements.stamp

.PHONY: setup demo test lint services browser bench clean help

help:
	@echo "make demo   set up, then run the demo study (web + workers, embedded SQLite + filesystem broker)"
	@echo "make test   set up (venv, packages, chromium, PostgreSQL, Redis), then run the test suite"

$(STAMP): requirements.txt
	@test -x $(PY) || test -n "$(PYTHON)" || { echo "make: none of $(PYTHONS) runs here with venv and" \
	  "headers. Install one, e.g. 'apt install python3.12-venv python3.12-dev build-essential', or name" \
	  "one: make $(MAKECMDGOALS) PYTHON=/path/to/python3.x" >&2; exit 1; }
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
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) bench/explain.py

clean:
	rm -rf var/test-media var/broker tests/artifacts
