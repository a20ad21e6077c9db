# Visualizr: `make serve` runs the whole stack on the embedded demo model; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

VENDOR_STAMP := frontend/studio/vendor/.stamp

.PHONY: setup repository serve test test-fast lint bench perf clean browser postgres

$(STAMP): pyproject.toml setup.py sdk/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e ./sdk -e '.[dev]'
	touch $(STAMP)

# The /schema docs' JavaScript and CSS: pinned npm tarballs, integrity-checked (frontend/studio/vendor.py).
$(VENDOR_STAMP): frontend/studio/vendor.py $(STAMP)
	$(PY) -m visualizr.frontend.studio.vendor
	touch $(VENDOR_STAMP)

setup: $(STAMP) $(VENDOR_STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; its own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		test "$$(id -u)" = 0 || { echo "make browser: install Debian's chromium (apt-get install chromium) as root" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's PostgreSQL for the scale-out tests (they start their own cluster on 127.0.0.1 in a temporary folder).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		test "$$(id -u)" = 0 || { echo "make postgres: install Debian's postgresql (apt-get install postgresql) as root" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# Builds the demo model repository (every family's tiny random demo -> ONNX -> Triton configs) unless up to date.
repository: setup
	$(PY) -m visualizr.export

serve: repository
	exec $(PY) -m visualizr.serve

# Two test processes at most (tests/conftest.py groups the tests so that each server starts once).
test: repository browser postgres
	$(PY) -m pytest -q -n auto --maxprocesses 2 --dist loadgroup

# The inner loop: no server process, nothing slow (pytest markers, pyproject.toml).
test-fast: repository
	$(PY) -m pytest -q -m "not integration and not slow"

lint: setup
	$(PY) -m ruff check .

bench: repository
	$(PY) -m benchmarks.pipeline_overhead
	$(PY) -m benchmarks.versus_diffusers

# perf_analyzer over every Triton model (fetches a working perf_analyzer into build/ first); PERF_ARGS="--url HOST:8001"
perf: repository
	$(PY) -m benchmarks.perf $(PERF_ARGS)

clean:
	rm -rf $(VENV) build data
