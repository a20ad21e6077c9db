# Visualizr: `make serve` runs the whole stack on the embedded demo model; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup repository serve test lint bench clean

$(STAMP): pyproject.toml setup.py sdk/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./sdk -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Builds the demo model repository (tiny random AnimateDiff -> ONNX -> Triton configs) unless it is up to date.
repository: setup
	$(PY) -m visualizr.export

serve: repository
	exec $(PY) -m visualizr.serve

test: repository
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .

bench: repository
	$(PY) -m benchmarks.pipeline_overhead

clean:
	rm -rf $(VENV) build data
