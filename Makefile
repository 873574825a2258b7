# The two commands a newcomer needs: `make demo` and `make test`.
#
# chunkwise supports two zarr-python lines: 3.1 (the last for Python 3.11) and 3.4 (Python
# >= 3.12). scripts/pythons.sh finds a Python for each: python3.1N on PATH and pyenv's
# versions, or only the ones named in PYTHONS="...". Each gets a virtual environment
# with chunkwise and its dev extras installed (scripts/venv.sh):
#   .venv        Python 3.11 and zarr-python 3.1 (or the only Python found)
#   .venv-3.N    the newest Python >= 3.12 and zarr-python 3.4
# `make test` runs lint and mypy once, in .venv, and the whole test suite in each venv;
# `make demo` runs in the newest.

# Found once, when first used: "<3.11 python> <version> <newest python> <version>", "-" for none.
FOUND = $(eval FOUND := $(shell PYTHONS='$(PYTHONS)' sh scripts/pythons.sh))$(FOUND)
PY311 = $(filter-out -,$(word 1,$(FOUND)))
PYNEW = $(filter-out -,$(word 3,$(FOUND)))
NEW_MINOR = $(subst $() ,.,$(wordlist 1,2,$(subst ., ,$(word 4,$(FOUND)))))

VENV := .venv
BIN  := $(VENV)/bin
# .venv's Python: the 3.11 line's, else the only one found.
MAIN_PY = $(or $(PY311),$(PYNEW))
# The newest line's venv, when both lines were found.
NEW_VENV = $(if $(and $(PY311),$(PYNEW)),.venv-$(NEW_MINOR))

.PHONY: demo test pythons venv venvs system-deps lint typecheck unit bench clean

pythons:
	@echo "Pythons for chunkwise's two zarr-python lines:"
	@PYTHONS='$(PYTHONS)' sh scripts/pythons.sh report

venv:
	@sh scripts/venv.sh "$(MAIN_PY)" $(VENV)

venvs: pythons venv
	@$(if $(NEW_VENV),sh scripts/venv.sh "$(PYNEW)" $(NEW_VENV),:)

demo: pythons
	@sh scripts/venv.sh "$(or $(PYNEW),$(MAIN_PY))" $(or $(NEW_VENV),$(VENV))
	$(or $(NEW_VENV),$(VENV))/bin/python -m chunkwise.demo

test: system-deps venvs lint typecheck unit

# The tests start a real S3-compatible server (Ceph radosgw) and render the HTML report in
# headless Chromium: both come from Debian packages, installed here when missing.
system-deps:
	@sh scripts/system-deps.sh

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Once, in .venv: the 3.11 line, the oldest Python chunkwise supports. mypy checks the
# code as the Python it runs on, against the zarr-python installed there.
typecheck: venv
	$(BIN)/mypy

# The whole suite in each venv, one after the other, then a summary of what ran on which
# Python and zarr-python. PYTEST_ARGS="..." goes to every pytest.
unit: venvs
	@sh scripts/test-lines.sh $(VENV) $(NEW_VENV)

bench: venv
	$(BIN)/python benchmarks/bench_advise.py --write-results
	$(BIN)/python benchmarks/bench_layouts.py --write-results
	$(BIN)/python benchmarks/bench_rechunk.py --write-results
	$(BIN)/python benchmarks/bench_rechunk_memory.py --write-results
	$(BIN)/python benchmarks/bench_rechunk_internals.py --write-results
	$(BIN)/python benchmarks/bench_regret.py --write-results
	$(BIN)/python benchmarks/bench_reader_model.py --write-results

clean:
	rm -rf $(VENV) .venv-3.* chunkwise-demo build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
