# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: serve test lint pytest lock clean

$(INSTALLED): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $@

serve: $(INSTALLED)  ## Build the demo store on first start and serve it on 127.0.0.1:8080
	$(BIN)/fewsmap serve

test: lint pytest  ## Lint, type-check and run the whole test suite

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

pytest: $(INSTALLED)
	$(BIN)/pytest

lock: $(INSTALLED)  ## Re-pin requirements/constraints.txt to what is installed
	{ echo "# Pinned versions the tests last passed with; 'make lock' refreshes them."; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > requirements/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
