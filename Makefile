# The README's commands. `make demo` and `make test` each set up a virtual environment first.
PYTHON ?= python3
VENV ?= .venv
# Torch is installed only when the venv has none. A torch that the outer Python already has
# (a CUDA build, a DGL-compatible 2.2) is kept: the venv then sees the system site-packages.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench gpu-check clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		echo "keeping the torch that $(PYTHON) already has"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: setup
	$(VENV)/bin/gnnsys train

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Two steps: the suite without the slow end-to-end tests, then those (marked `slow`). Each runs
# in JOBS processes (pytest-xdist; one per core, at most 4: a process holds ~3 GB at its peak);
# the fast step keeps a file's tests in one process (their module fixtures are built once).
# Each step lists its 20 slowest tests (on a cold numba cache, most of a first test's time in a
# file is compiling kernels: benchmarks/suite_compiles.py measures that).
JOBS ?= $(shell $(PYTHON) -c "import os; print(max(1, min(4, os.cpu_count() or 1)))")
test: lint
	$(PY) -m pytest -q -p no:cacheprovider -n $(JOBS) --dist loadfile -m "not slow" --durations=20 tests
	$(PY) -m pytest -q -p no:cacheprovider -n $(JOBS) --dist load -m slow --durations=20 tests

bench: setup
	$(VENV)/bin/gnnsys bench loader

gpu-check: setup
	bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info
