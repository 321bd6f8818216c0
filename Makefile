# hyperlab — the two commands on a fresh machine are `make run` and `make test`.
#
# Set-up is idempotent and stamped: a second `make test` installs nothing.
#   .venv/.deps.stamp        <- requirements-dev.txt, pyproject.toml, setup.py   (pip, editable install)
#   node_modules/.package-lock.json <- package.json, package-lock.json           (npm ci)
#   static/vendor/.stamp     <- node_modules, tools/vendor.py                     (copy assets)

PYTHON ?= python3
NPM    ?= npm
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

DEPS_STAMP   := $(VENV)/.deps.stamp
NPM_STAMP    := node_modules/.package-lock.json
VENDOR_STAMP := static/vendor/.stamp
BENCHES      := $(filter-out bench/__init__.py bench/_%,$(sort $(wildcard bench/*.py)))

.DEFAULT_GOAL := help
.PHONY: help setup run test pytest lint guests bench vendor clean distclean

help:
	@echo "make run        set up (.venv, npm ci, static/vendor) and serve on http://$(HOST):$(PORT)"
	@echo "make test       set up, then pytest + replay the lessons + ruff check"
	@echo "make lint       ruff check"
	@echo "make guests     rebuild the guest images (guests/Makefile -> core/images/)"
	@echo "make bench      run every bench/*.py (each prints JSON)"
	@echo "make clean      remove build output, static/vendor/, caches (distclean: also .venv, node_modules)"

setup: $(DEPS_STAMP) $(VENDOR_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): $(BIN)/python requirements-dev.txt pyproject.toml setup.py
	$(BIN)/python -m pip install -q $$(grep -E '^(pip|setuptools|wheel)==' requirements-dev.txt)
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	HYPERLAB_SKIP_VENDOR=1 $(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	cd / && $(abspath $(BIN))/python -c "import hyperlab.core, hyperlab.web"
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	$(NPM) ci --ignore-scripts --no-audit --no-fund
	@touch $@

$(VENDOR_STAMP): $(NPM_STAMP) tools/vendor.py
	$(PYTHON) tools/vendor.py --no-npm
	@touch $@

vendor: $(VENDOR_STAMP)

run: setup
	$(BIN)/hyperlab serve --host $(HOST) --port $(PORT)

# pytest first so its summary line is always printed; the lessons and ruff still run and fail the target.
test: setup
	@rc=0; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	$(BIN)/hyperlab lessons test || rc=$$((rc ? rc : 1)); \
	$(BIN)/ruff check . || rc=$$((rc ? rc : 1)); \
	exit $$rc

pytest: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEPS_STAMP)
	$(BIN)/ruff check .

guests:
	$(MAKE) -C guests

bench: setup
	@test -n "$(BENCHES)" || { echo "no bench/*.py yet" >&2; exit 0; }; \
	for f in $(BENCHES); do \
		mod=$$(basename $$f .py); \
		echo ">> bench.$$mod" >&2; \
		$(BIN)/python -m bench.$$mod || exit $$?; \
	done

clean:
	rm -rf build dist *.egg-info static/vendor .pytest_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules
