# Every target does its own set-up: a .venv with torch installed first, then wmplan with its dev
# extras under constraints.txt (so nothing upgrades that torch). A second run with nothing changed
# skips the install. With a GPU build of torch: make test TORCH_SPEC='torch==2.6.0'.
PYTHON ?= python3
# make demo: eval cells planned at once, one thread each (our machines have 2 cores)
DEMO_WORKERS ?= 2
# make demo again: DEMO_FLAGS=--resume keeps what is finished, DEMO_FLAGS=--overwrite starts afresh
DEMO_FLAGS ?=
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.wmplan-installed
PYTEST_ARGS ?=
export MUJOCO_GL ?= egl

.PHONY: install lint test demo bench clean

install: $(STAMP)

# The stamp records the torch spec: asking for another torch reinstalls.
$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	sed 's/^torch==.*/$(TORCH_SPEC)/' constraints.txt > $(VENV)/constraints.txt
	$(BIN)/python -m pip install -q -c $(VENV)/constraints.txt -e ".[dev]"
	echo "$(TORCH_SPEC)" > $(STAMP)

ifneq ($(shell cat $(STAMP) 2>/dev/null),$(TORCH_SPEC))
.PHONY: $(STAMP)
endif

# The formatter, the linter and the type checker (settings in pyproject.toml) run before the tests.
lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/wmplan demo --workers $(DEMO_WORKERS) $(DEMO_FLAGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/collect.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
