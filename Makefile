# oct-twisted: `make demo` runs a local load test, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DURATION ?= 15

.PHONY: test typecheck demo docs bench clean conformance

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $(STAMP)

test: typecheck
	$(PY) .ci/trial-summary.py -j2 tests

demo: $(STAMP)
	$(PY) examples/demo.py --duration $(DEMO_DURATION)

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W -q -b html docs docs/_build/html

# `make conformance` runs the conformance kit against our turret and
# oct-turrets 0.2.8 and rewrites the tables of docs/conformance.rst.
conformance: $(STAMP)
	$(PY) docs/conformance/regenerate.py

# `make bench` runs every benchmark (see bench/run.py); options go in
# BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick" or BENCH_ARGS="--only http".
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) docs/_build _trial_temp* *.egg-info twisted/plugins/dropin.cache

# `make typecheck` runs mypy (settings in setup.cfg); `make test` runs it first.
typecheck: $(STAMP)
	$(VENV)/bin/mypy
