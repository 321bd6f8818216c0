# hyperlab — the two commands on a fresh machine are `make run` and `make test`.
#
# Set-up is idempotent and stamped: a second `make test` installs nothing.
#   .system-packages.stamp   <- Makefile (SYSTEM_PACKAGES)                        (apt-get what is missing)
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

# Debian packages the tools and tests need, as package:probe. The probe is a command on PATH, or a path
# (a glob is fine) that exists once the package is installed: only what the machine lacks is installed.
# ONE list for everyone: add your package here (`SYSTEM_PACKAGES += pkg:probe` next to its use is fine).
# `make SYSTEM_PACKAGES= run` skips the check on a machine whose tools come from elsewhere.
SYSTEM_PACKAGES := \
	make:make gcc:gcc binutils:ld binutils:objcopy \
	python3-venv:/usr/lib/python3*/ensurepip/__init__.py \
	nodejs:node npm:npm \
	chromium:/usr/bin/chromium \
	qemu-utils:qemu-img mtools:mtype dosfstools:fsck.fat \
	postgresql:/usr/lib/postgresql/*/bin/initdb \
	docker.io:/usr/sbin/dockerd debootstrap:/usr/sbin/debootstrap \
	haproxy:/usr/sbin/haproxy
APT_GET ?= apt-get
SYSTEM_STAMP ?= .system-packages.stamp

DEPS_STAMP   := $(VENV)/.deps.stamp
NPM_STAMP    := node_modules/.package-lock.json
VENDOR_STAMP := static/vendor/.stamp
BENCHES      := $(filter-out bench/__init__.py bench/_%,$(sort $(wildcard bench/*.py)))

.DEFAULT_GOAL := help
.PHONY: help setup system system-missing run test pytest docker-test docker-image lint guests bench vendor clean distclean

help:
	@echo "make run        set up (.venv, npm ci, static/vendor) and serve on http://$(HOST):$(PORT)"
	@echo "make test       set up, then pytest + replay the lessons + ruff check"
	@echo "make docker-test  build the Docker image and prove it (tests/test_docker.py; also part of make test)"
	@echo "make docker-image build the Docker image as hyperlab (base from Debian's archive if no registry)"
	@echo "make lint       ruff check"
	@echo "make guests     rebuild the guest images (guests/Makefile -> core/images/)"
	@echo "make bench      run every bench/*.py (each prints JSON)"
	@echo "make clean      remove build output, static/vendor/, caches (distclean: also .venv, node_modules)"

setup: $(SYSTEM_STAMP) $(DEPS_STAMP) $(VENDOR_STAMP)

# The packages of SYSTEM_PACKAGES whose probe fails, one line, space-separated (nothing: all there).
define missing_packages
missing=""; for entry in $(SYSTEM_PACKAGES); do \
	pkg=$${entry%%:*}; probe=$${entry#*:}; \
	case $$probe in */*) set -- $$probe; test -e "$$1" ;; *) command -v "$$probe" >/dev/null 2>&1 ;; esac \
		|| case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg" ;; esac; \
done
endef

system: $(SYSTEM_STAMP)

system-missing:
	@$(missing_packages); echo $$missing

# apt-get as root, or through `sudo -n` (never a password prompt); otherwise one message naming the packages.
$(SYSTEM_STAMP): Makefile
	@$(missing_packages); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
		else \
			echo "make: this machine lacks the Debian packages:$$missing" >&2; \
			echo "make: install them as root (sudo apt-get install$$missing), then run make again" >&2; \
			exit 1; \
		fi; \
		echo "make: installing$$missing" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo $(APT_GET) -q -o DPkg::Lock::Timeout=600 update </dev/null && \
		$$sudo $(APT_GET) -q -y -o DPkg::Lock::Timeout=600 install $$missing </dev/null || exit 1; \
		$(missing_packages); \
		if [ -n "$$missing" ]; then echo "make: still missing after apt-get:$$missing" >&2; exit 1; fi; \
	fi
	@touch $@

$(BIN)/python: | $(SYSTEM_STAMP)
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): $(BIN)/python requirements-dev.txt pyproject.toml setup.py
	$(BIN)/python -m pip install -q $$(grep -E '^(pip|setuptools|wheel)==' requirements-dev.txt)
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	HYPERLAB_SKIP_VENDOR=1 $(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	cd / && $(abspath $(BIN))/python -c "import hyperlab.core, hyperlab.web"
	@touch $@

$(NPM_STAMP): package.json package-lock.json | $(SYSTEM_STAMP)
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

# The Docker test alone: builds the image (debootstrapped base and layers cached between runs), runs it,
# types into a lab over the console WebSocket, restarts it on the same volume. Starts dockerd if needed.
docker-test: setup
	$(BIN)/python -m pytest tests/test_docker.py $(PYTEST_ARGS)

docker-image: $(SYSTEM_STAMP)
	$(PYTHON) tools/docker_image.py --tag hyperlab

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
	rm -rf $(VENV) node_modules $(SYSTEM_STAMP)
