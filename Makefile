# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Deltares' FEWS client library (npm), pinned by its package-lock.json, for tests/clients.
FEWS_CLIENT := tests/clients/fews-client
FEWS_CLIENT_INSTALLED := $(FEWS_CLIENT)/node_modules/.installed
# The viewer's browser libraries (npm, pinned by its package-lock.json), copied into the
# git-ignored fewsmap/app/viewer/vendor/ by its `npm run vendor` (vendor.mjs, which wheel and sdist
# builds run too: setup.py); the viewer's browser tests drive Debian's Chromium with
# playwright-core (npm, tests/viewer).
VIEWER := fewsmap/app/viewer
VIEWER_VENDOR := $(VIEWER)/vendor/.package-lock.sha256
VIEWER_TEST := tests/viewer
VIEWER_TEST_INSTALLED := $(VIEWER_TEST)/node_modules/.installed
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# `make serve PORT=8081 HOST=0.0.0.0` serves elsewhere; unset, the configuration decides
# (FEWSMAP_PORT, [service] port; default 127.0.0.1:8080).
HOST ?=
PORT ?=

.PHONY: serve test lint pytest lock clean vendor browser docs docs-serve

# Every package comes from requirements/lock.txt, checked against its sha256 hashes; fewsmap
# itself is then installed without dependencies or build isolation (setuptools is locked too).
$(INSTALLED): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Without npm the suite still runs, and tests/clients/test_fews_client.py fails saying why.
$(FEWS_CLIENT_INSTALLED): $(FEWS_CLIENT)/package.json $(FEWS_CLIENT)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(FEWS_CLIENT) --no-audit --no-fund && touch $@; \
	else echo "npm not found: the FEWS client test (tests/clients) will fail" >&2; fi

vendor: $(VIEWER_VENDOR)  ## Copy the viewer's browser libraries from npm into fewsmap/app/viewer/vendor

$(VIEWER_VENDOR): $(VIEWER)/package.json $(VIEWER)/package-lock.json $(VIEWER)/vendor.mjs
	npm ci --prefix $(VIEWER) --no-audit --no-fund
	npm run --prefix $(VIEWER) --silent vendor

$(VIEWER_TEST_INSTALLED): $(VIEWER_TEST)/package.json $(VIEWER_TEST)/package-lock.json
	npm ci --prefix $(VIEWER_TEST) --no-audit --no-fund
	touch $@

browser:  ## Debian's Chromium for tests/viewer, installed with apt-get when missing
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && \
	  $(SUDO) apt-get install -y --no-install-recommends chromium; }

serve: $(INSTALLED) $(VIEWER_VENDOR)  ## Build the demo stores on first start and serve them (127.0.0.1:8080)
	$(BIN)/fewsmap serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

test: lint pytest  ## Lint, type-check and run the whole test suite

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Most tests run on every core; those that measure time or memory, or print figures, then
# run alone (marked serial in tests/conftest.py). PYTEST_ARGS reach both runs.
pytest: $(INSTALLED) $(FEWS_CLIENT_INSTALLED) $(VIEWER_VENDOR) $(VIEWER_TEST_INSTALLED) browser
	$(BIN)/pytest -n auto --dist loadfile -m "not serial" $(PYTEST_ARGS)
	$(BIN)/pytest -m serial $(PYTEST_ARGS)

# The documentation site (mkdocs.yml) into site/; tests/test_docs.py builds it with --strict.
docs: $(INSTALLED)  ## Build the documentation site into site/
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(INSTALLED)  ## Serve the documentation site on 127.0.0.1:8000 while editing it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

lock: $(INSTALLED)  ## Re-pin constraints.txt to what is installed, then lock.txt with hashes (uv)
	{ echo "# Pinned versions the tests last passed with; 'make lock' refreshes them."; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > requirements/constraints.txt
	$(BIN)/uv pip compile --quiet --generate-hashes --python $(BIN)/python --extra dev \
	  -c requirements/constraints.txt -o requirements/lock.txt pyproject.toml requirements/build.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(FEWS_CLIENT)/node_modules site
	rm -rf $(VIEWER)/node_modules $(VIEWER)/vendor $(VIEWER_TEST)/node_modules
