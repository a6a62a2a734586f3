# The two commands: `make run` serves the site, `make test` checks everything.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# A Python of at least 3.12: python3.13, python3.12, or python3 when new enough.
PYTHON := $(shell for p in python3.13 python3.12 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	command -v $$p; break; fi; done)

.PHONY: run test js-test install lint format cluster cluster-check bench soak clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON)" ]; then echo "error: Python 3.12 or newer is needed (python3.13, python3.12 or python3); install one and retry." >&2; exit 1; fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py demo_data
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py serve --bind $(HOST) --port $(PORT)

# Style, and the architecture: the gateway never imports the chat site, no import cycles.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

js-test: node_modules/.installed
	node --test tests/js/

test: lint js-test
	$(VENV)/bin/pytest

# Two daphne processes behind nginx, on PostgreSQL and Redis (deploy/cluster.py).
cluster: install
	$(PY) deploy/cluster.py --processes $${PROCESSES:-2} --port $${CLUSTER_PORT:-8080}

cluster-check: install
	$(PY) deploy/cluster.py --processes 2 --port $${CLUSTER_PORT:-8080} --check

# The fan-out benchmark (docs/performance.md); SCENARIO=quick for a short run,
# SCENARIO=issue12 for publish throughput, handshake rate and the reconnect
# storm (bench/issue12.py); BENCH_ARGS for sizes (`python -m bench --help`).
bench: install
	$(PY) -m bench --scenario $${SCENARIO:-all} $${BENCH_ARGS:-}

# The soak test (docs/operations.md): delivery under churn and faults, for
# SOAK_SECONDS (600 here; `make test` runs its 60 s form). Needs PostgreSQL
# (DATABASE_URL) and redis-server.
soak: install
	SOAK_SECONDS=$${SOAK_SECONDS:-600} $(VENV)/bin/pytest tests/test_soak.py -s -p no:cacheprovider

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
