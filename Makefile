# crm-sync: `make demo` runs the agent on its embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean

# The install is redone only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/crm-sync demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Style, types, and a ceiling on how dense one function may be (cyclomatic complexity 20).
lint: $(STAMP)
	$(BIN)/ruff check agent connectors storage config tests bench
	$(BIN)/ruff format --check agent connectors storage config tests bench
	$(BIN)/mypy
	$(BIN)/xenon --max-absolute C agent connectors storage config

# Every benchmark runs even when one fails (a missing tool, say); the status reports it.
bench: $(STAMP)
	@failed=""; for script in bench/*.py; do echo "== $$script"; \
		$(BIN)/python $$script || failed="$$failed $$script"; done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) demo.db demo.toml demo.key .pytest_cache .mypy_cache .ruff_cache
