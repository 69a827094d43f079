# The two commands: `make demo` and `make test`. Both set themselves up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup java demo test bench bench-lake lint clean

setup: java $(STAMP)

java:
	@scripts/ensure-java

# Reinstalled only when the dependencies change: a second run with nothing changed takes seconds.
$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "error: citybrain needs Python 3.11+ (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing citybrain and its dependencies into $(VENV)"
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/citybrain demo

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/ingest.py --records 200000 --invalid-fraction 0.01 --rounds 5

# About 25 minutes on 2 cores: 7 days of city-sized bronze (2.4 GB), fused as one day and as seven.
bench-lake: setup
	$(BIN)/python benchmarks/lake.py --days 7

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
