# oct-twisted: `make demo` runs a local load test, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DURATION ?= 15
DEMO_HQ_DURATION ?= 20

.PHONY: test typecheck demo demo-hq docs bench clean conformance browser prometheus

$(PY):
	$(PYTHON) -m venv $(VENV)

# setup.py builds the one compiled module (octtwisted/_stats/requestcounts.c;
# optional: without a C compiler its Python twin runs, slower).
$(STAMP): $(PY) setup.cfg setup.py pyproject.toml octtwisted/_stats/requestcounts.c
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs,hq]'
	touch $(STAMP)

test: typecheck browser prometheus
	$(PY) .ci/trial-summary.py -j2 tests

# The report tests open HTML reports in headless Chromium: install Debian's
# chromium when it is missing and we may (root with apt-get); else those
# tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing chromium for the report tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "make: could not install chromium: the browser tests will skip"; \
	  else echo "make: chromium is missing (apt-get install chromium as root): the browser tests will skip"; fi; }

# The metrics tests scrape the turret with a real Prometheus: install
# Debian's prometheus when it is missing and we may; else they skip.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || \
	{ if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing prometheus for the metrics tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	      || echo "make: could not install prometheus: the metrics tests will skip"; \
	  else echo "make: prometheus is missing (apt-get install prometheus as root): the metrics tests will skip"; fi; }

demo: $(STAMP)
	$(PY) examples/demo.py --duration $(DEMO_DURATION)

# `make demo-hq`: the whole OCT system here, every part real: the real HQ
# (oct-hq, from the hq extra) with a project of two of our turrets, started
# from the packages pack-turrets wrote, against a local HTTP target.
demo-hq: $(STAMP)
	$(PY) examples/demo_hq.py --duration $(DEMO_HQ_DURATION)

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
	rm -rf $(VENV) docs/_build _trial_temp* *.egg-info twisted/plugins/dropin.cache demo-report.html demo-results.csv demo-hq build
	rm -f octtwisted/_stats/*.so

# `make typecheck` runs mypy (settings in setup.cfg); `make test` runs it first.
typecheck: $(STAMP)
	$(VENV)/bin/mypy
