# Two commands: `make demo` and `make test`. Each creates or reuses .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp records that .venv holds what pyproject.toml asks for; it is rebuilt
# only when pyproject.toml changes, so a second `make test` starts testing at once.
STAMP  := $(VENV)/.svrecon-installed

.PHONY: demo test lint pytest venv clean bench-gpu

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
		|| { echo "svrecon needs Python >= 3.10 (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint pytest

# Reconstructs held-out procedural shapes with the shipped checkpoints (svrecon/checkpoints).
demo: $(STAMP)
	$(BIN)/python -m svrecon demo --out demo_output

# On a machine with CUDA: the CUDA tests and every benchmark, appended to RESULTS.md.
bench-gpu: $(STAMP)
	$(BIN)/python benchmarks/run_suite.py --device cuda

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
