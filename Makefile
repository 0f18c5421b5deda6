# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast lint typecheck pytest system-deps timescaledb lock clean help assets

help:
	@echo "make demo   - run the whole platform locally with embedded defaults"
	@echo "make test   - lint, type-check and run the test suite (installs system packages on Debian as root)"
	@echo "make test-fast - the fast test tier alone, in parallel (no fault, browser or soak tests; PostgreSQL)"
	@echo "make lock   - re-pin requirements/*.lock from pyproject.toml"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One stamp per lock file, so the demo and the test set install what they need, reproducibly.
$(VENV)/.demo-installed: requirements/demo.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements/demo.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

$(VENV)/.dev-installed: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements/dev.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $@ $(VENV)/.demo-installed

# The web UI's front-end packages, from the npm lock file, with the npm the venv carries.
ASSETS := api/static/node_modules/.package-lock.json
$(ASSETS): api/static/package-lock.json | $(BIN)/python
	$(BIN)/npm ci --prefix api/static --no-audit --no-fund --loglevel=error

assets: $(ASSETS)

demo: $(VENV)/.demo-installed $(ASSETS)
	$(BIN)/oxy demo

system-deps:
	@bash scripts/system-deps.sh

lint: $(VENV)/.dev-installed
	@$(TIMED) lint sh -c '$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports'

typecheck: $(VENV)/.dev-installed
	@$(TIMED) typecheck $(BIN)/mypy

# TimescaleDB built once from the vendored source into a private PostgreSQL copy (cached by
# version and checksum; the machine's PostgreSQL stays plain). Outside CI, a machine that cannot
# build it runs the plain pass only, after saying what is missing.
timescaledb:
	@bash scripts/timescaledb.sh >/dev/null || { [ "$$CI" != true ] && echo "TimescaleDB not built: the TimescaleDB test pass will be skipped" >&2; }

# The suite in tiers, each timed by scripts/timed.sh (the summary closes `make test`); every
# test is in exactly one tier:
#   fast    - neither `slow` nor `browser`, in parallel over pytest-xdist workers (XDIST: two
#             per core by default, `XDIST=auto` for one per core). A worker spends much of its
#             time waiting on brokers, processes it started and PostgreSQL: with one per core
#             on this 2-core machine the run's own processes used 0.76 of a core on average
#             (PostgreSQL apart). Two per core fill those waits: 130 s instead of ~170 quiet;
#             on a machine busy with another job as fast as one per core, for ~25 % more CPU
#             (docs/architecture.md, Tiers). The SUBACK that went missing with two per core was
#             a port race, fixed in tests/fix_mqtt.py (`free_port`); none in 2 runs since. Each
#             worker has its own template database and private ports, and takes whole modules
#             (--dist loadscope), the longest first (tests/conftest.py), so a module's seeded
#             database is built once and no long module runs alone at the end.
#   browser - the Playwright/Chromium tests (tests/web), in parallel the same way, one worker
#             per core (BROWSER_XDIST=auto: Chromium keeps its core busy).
#   slow    - `@pytest.mark.slow`: broker and database outages, chaos, SIGKILLs of spawned
#             processes, the demo, sweeps and fuzzing; one test at a time, since their timings
#             assume an unshared machine.
# All three run against plain PostgreSQL (OXY_TEST_DATABASE_URL), then against a private
# TimescaleDB cluster the fixtures start (tests/fix_db.py).
# Two per core, at most 8: tests/fix_mqtt.py gives 8 xdist workers port blocks of their own.
XDIST   ?= $(shell n=$$((2 * $$(nproc 2>/dev/null || echo 1))); echo $$((n > 8 ? 8 : n)))
TIMED   := bash scripts/timed.sh
TIERS   := .venv/tiers.log
BROWSER_XDIST ?= auto
FAST    := $(BIN)/pytest -n $(XDIST) --dist loadscope -m "not slow and not browser" $(PYTEST_ARGS)
BROWSER := $(BIN)/pytest -n $(BROWSER_XDIST) --dist loadscope -m "browser and not slow" $(PYTEST_ARGS)
SLOW    := $(BIN)/pytest -n 0 -m slow $(PYTEST_ARGS)

# pytest rewrites the asserts of every test module when it imports it, ~7 CPU-s per process for
# this suite (4,000 asserts), in every xdist worker; it caches the result as bytecode unless
# PYTHONDONTWRITEBYTECODE is set, as it is in some shells. The tests keep their bytecode under
# .venv (not beside the sources): a worker's collection takes ~3.3 CPU-s instead of ~10.
pytest test-fast: export PYTHONDONTWRITEBYTECODE :=
pytest test-fast: export PYTHONPYCACHEPREFIX := $(CURDIR)/$(VENV)/pycache

pytest: $(VENV)/.dev-installed $(ASSETS) system-deps timescaledb
	@$(TIMED) "fast (PostgreSQL)" $(FAST) && $(TIMED) "browser (PostgreSQL)" $(BROWSER) && \
	$(TIMED) "slow (PostgreSQL)" $(SLOW) && \
	if bash scripts/timescaledb.sh --check >/dev/null 2>&1; then \
		export OXY_TEST_BACKEND=timescaledb; \
		$(TIMED) "fast (TimescaleDB)" $(FAST) && $(TIMED) "browser (TimescaleDB)" $(BROWSER) && \
		$(TIMED) "slow (TimescaleDB)" $(SLOW); \
	fi

# The fast tier alone, on plain PostgreSQL: what to run while working (target: 2 minutes).
test-fast: $(VENV)/.dev-installed $(ASSETS)
	@$(TIMED) "fast (PostgreSQL)" $(FAST)

test:
	@rm -f $(TIERS)
	@export OXY_TIERS_LOG=$(TIERS); $(MAKE) --no-print-directory lint typecheck pytest; rc=$$?; \
	echo "== wall time of each tier =="; cat $(TIERS) 2>/dev/null; exit $$rc

lock: | $(BIN)/python
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --all-extras -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --extra centre --extra embedded --extra gateway --extra assets -o requirements/demo.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --extra gateway -o requirements/gateway.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --extra centre -o requirements/centre.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --extra bridge -o requirements/bridge.lock
	$(BIN)/uv pip compile requirements/spb-edge.in --python-version 3.11 --generate-hashes -q -o requirements/spb-edge.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
