# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Deltares' FEWS client library (npm), pinned by its package-lock.json, for tests/clients.
FEWS_CLIENT := tests/clients/fews-client
FEWS_CLIENT_INSTALLED := $(FEWS_CLIENT)/node_modules/.installed

.PHONY: serve test lint pytest lock clean

$(INSTALLED): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $@

# Without npm the suite still runs, and tests/clients/test_fews_client.py fails saying why.
$(FEWS_CLIENT_INSTALLED): $(FEWS_CLIENT)/package.json $(FEWS_CLIENT)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(FEWS_CLIENT) --no-audit --no-fund && touch $@; \
	else echo "npm not found: the FEWS client test (tests/clients) will fail" >&2; fi

serve: $(INSTALLED)  ## Build the demo store on first start and serve it on 127.0.0.1:8080
	$(BIN)/fewsmap serve

test: lint pytest  ## Lint, type-check and run the whole test suite

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

pytest: $(INSTALLED) $(FEWS_CLIENT_INSTALLED)
	$(BIN)/pytest

lock: $(INSTALLED)  ## Re-pin requirements/constraints.txt to what is installed
	{ echo "# Pinned versions the tests last passed with; 'make lock' refreshes them."; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > requirements/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(FEWS_CLIENT)/node_modules
