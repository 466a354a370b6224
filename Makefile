# sparkexport: `make run` serves the API with demo data; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

# The suite talks to a real PostgreSQL and Redis (databases 15, 14, ..., one per worker, emptied):
# TEST_DATABASE_URL and TEST_REDIS_URL when given, else the local defaults
# (127.0.0.1:5432 and :6379), else throwaway servers started for the run
# (scripts/test_services.py). TEST_WORKERS processes share the tests (pytest-xdist; 0: one).
TEST_WORKERS ?= auto

.PHONY: install run worker test test-fast check bench clean

# An existing environment (a worktree's .venv may be a link to a shared one) is reused.
$(VENV)/.installed: requirements.txt requirements-test.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed

run: install
	PORT=$(PORT) PYTHON=$(PY) ./scripts/run.sh

worker: install
	$(PY) manage.py rqworker exports imports webhooks --with-scheduler

test: install
	DJANGO_SECRET_KEY=test-only-secret-key DJANGO_DEBUG=0 DATABASE_CONN_MAX_AGE=0 \
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
	$(PY) scripts/test_services.py $(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The edit-run loop: everything but the browser, the fuzzing and the tests that start processes.
test-fast:
	$(MAKE) test PYTEST_ARGS='-m "not e2e and not browser and not fuzz" $(PYTEST_ARGS)'

# Migrations complete and the OpenAPI schema valid (CI runs both). They need no database: an
# empty in-memory one keeps Django from looking for data/ (absent in a fresh clone).
CHECK_ENV = DJANGO_SECRET_KEY=check DJANGO_DEBUG=0 REDIS_URL=redis://127.0.0.1:6379/15 DATABASE_URL=sqlite:///:memory:
check: install
	$(CHECK_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(CHECK_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# The performance benchmarks of docs/performance.md, each against its baseline in the
# same run (PostgreSQL and Redis on 127.0.0.1 as for the tests; wrk from Debian). Minutes.
bench: install
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) benchmarks/packaging.py
	$(PY) benchmarks/import_throughput.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/repeat.py
	$(PY) benchmarks/latency.py
	$(PY) benchmarks/api_throughput.py
	$(PY) benchmarks/scale.py

clean:
	rm -rf $(VENV) data .pytest_cache
