# Two set-up commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench dev doctor clean

$(BIN)/.installed: pyproject.toml dev/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./dev
	touch $@

demo: $(BIN)/.installed
	$(BIN)/aperture demo

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

dev: $(BIN)/.installed
	$(BIN)/aperture dev

doctor: $(BIN)/.installed
	$(BIN)/aperture doctor

clean:
	-$(BIN)/aperture db stop
	rm -rf .aperture .tmp_dagster_home_* .pytest_cache
