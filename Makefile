# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest system-deps lock clean help assets

help:
	@echo "make demo   - run the whole platform locally with embedded defaults"
	@echo "make test   - lint, type-check and run the test suite (installs system packages on Debian as root)"
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
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed $(ASSETS) system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

lock: | $(BIN)/python
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --all-extras -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --extra centre --extra embedded --extra gateway --extra assets -o requirements/demo.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --extra gateway -o requirements/gateway.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q --extra centre -o requirements/centre.lock
	$(BIN)/uv pip compile requirements/spb-edge.in --python-version 3.11 --generate-hashes -q -o requirements/spb-edge.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
