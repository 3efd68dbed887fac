# One-command set-up on a fresh machine with only Python 3.11:
#   make demo   - create .venv, install torch's CPU build, the package, run the demo
#   make test   - same set-up, then the test suite (with doctests)
#   make docs   - build the documentation with warnings as errors
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# On a machine whose pip does not already resolve torch to a CPU build, point this at
# PyTorch's CPU wheel index (e.g. https://download.pytorch.org/whl/cpu).
TORCH_INDEX_URL ?=
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: install demo test docs bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION) $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PY) -m pip install --quiet -e ".[test,doc]"
	touch $@

install: $(VENV)/.installed

demo: install
	MPLBACKEND=Agg $(PY) doc/examples/plot_reduced_rank_demo.py

test: install
	$(PY) -m pytest -q

docs: install
	$(PY) -m sphinx -W --keep-going -b html doc doc/_build/html

bench: install
	$(PY) benchmarks/reduced_rank.py
	$(PY) benchmarks/bench_bumps.py
	$(PY) benchmarks/latent_regression.py
	$(PY) benchmarks/rnn.py
	$(PY) benchmarks/analysis.py
	$(PY) benchmarks/tasks.py

lint: install
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check skneuro tests benchmarks doc
	$(VENV)/bin/ruff format --check skneuro tests benchmarks doc

clean:
	rm -rf doc/_build doc/auto_examples doc/generated doc/sg_execution_times.rst
