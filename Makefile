# The two commands the README shows: `make run` and `make test`. Each sets itself up.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test setup lint format typecheck ci clean

setup:
	@bash scripts/bootstrap.sh

## run: set up, migrate the embedded database, serve the gateway on http://127.0.0.1:8000 with a
## simulated fleet of 8 nodes behind it (FLEET_NODES=N to change); Ctrl-C stops everything
run: setup
	@BIN=$(BIN) bash scripts/run_demo.sh

## test: set up and run the whole test suite
test: setup
	@$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

format: setup
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

typecheck: setup
	@$(BIN)/mypy

ci:
	@bash .ci/run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
