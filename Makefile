# The two commands a newcomer needs: `make demo` and `make test`.
# Both create a virtual environment in .venv and install chunkwise into it first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test system-deps lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "chunkwise needs Python >= 3.11; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e '.[moto]' "botocore==$$($(BIN)/python -c 'import botocore; print(botocore.__version__)')"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m chunkwise.demo

test: system-deps lint typecheck unit

# The tests start a real S3-compatible server (Ceph radosgw) and render the HTML report in
# headless Chromium: both come from Debian packages, installed here when missing.
system-deps:
	@sh scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_advise.py --write-results
	$(BIN)/python benchmarks/bench_layouts.py --write-results
	$(BIN)/python benchmarks/bench_rechunk.py --write-results
	$(BIN)/python benchmarks/bench_rechunk_memory.py --write-results
	$(BIN)/python benchmarks/bench_rechunk_internals.py --write-results
	$(BIN)/python benchmarks/bench_regret.py --write-results

clean:
	rm -rf $(VENV) chunkwise-demo build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
