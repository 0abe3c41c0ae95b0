# Rapport — every target sets itself up on a fresh machine (Python 3.11, no Docker needed).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: install lint lock up down status test faults bench infra-start infra-stop openapi clean

install: $(VENV)/.installed

# requirements-dev.txt is the whole lock (runtime and development, every package pinned with
# its hashes, pip itself included), so a fresh machine gets exactly the tested versions.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

lint: install        ## ruff (lint and format) on the tree, mypy on the kernel (settings: pyproject.toml)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Re-resolve the locks from requirements.in / requirements-dev.in (after editing a pin there),
# against PyPI alone, so the hashes do not depend on this machine's pip settings.
lock: install
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(VENV)/bin/pip-compile --quiet \
	  --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  -o requirements.txt requirements.in
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(VENV)/bin/pip-compile --quiet \
	  --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  -o requirements-dev.txt requirements-dev.in

up: install          ## run Rapport: broker, store, every service, the portal, the demo practice
	$(PY) -m deploy.local.stack up

down:                ## stop everything `make up` started (by PID)
	$(PY) -m deploy.local.stack down

status:
	$(PY) -m deploy.local.stack status

test: install        ## the test suite against the real local broker and store (and Chromium)
	bash deploy/local/ensure-chromium.sh
	bash deploy/local/ensure-poppler.sh
	$(PY) -m pytest -m "not slow"

faults: install      ## the long fault-injection cases
	$(PY) -m pytest -m slow

bench: install       ## benchmarks, printed as ratios and saved under bench/results/
	$(PY) -m bench

infra-start: install
	$(PY) -m deploy.local.infra start

infra-stop:
	$(PY) -m deploy.local.infra stop

# flask-smorest's `openapi write` for every service that commits its document. Demo mode only
# lets the app start without secrets; the document does not depend on them.
openapi: install     ## write each service's committed openapi.json from its app
	for doc in services/*/openapi.json; do \
	  service=$$(basename $$(dirname $$doc)); \
	  RAPPORT_DEMO_MODE=1 $(PY) -m flask --app services.$$service.wsgi openapi write $$doc || exit 1; \
	done

clean: down
	rm -rf .run
