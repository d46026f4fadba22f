# ringback — `make run` starts the service, `make test` runs the tests; both set up first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# Python keeps its bytecode (__pycache__, ignored by git) even where the environment says not
# to: without it every test process compiles src/ again and pytest rewrites every test module
# again (collection 15 s instead of 6 s of CPU), and so does every process the tests start
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup run test test-fast lint format bench bench-peers chaos clean

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  echo "Python's venv module is missing; installing python3-venv (Debian)…"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "run: sudo apt-get install python3-venv   (then make again)"; exit 1; fi; \
	fi
	@if ! ls /usr/lib/*/libspandsp.so.2 /lib/*/libspandsp.so.2 2>/dev/null | grep -q .; then \
	  echo "libspandsp (the fax engine of SendFax / ReceiveFax) is missing; installing libspandsp2 (Debian)…"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libspandsp2; \
	  else echo "warning: faxes fail until you run: sudo apt-get install libspandsp2"; fi; \
	fi
	@if ! test -x /usr/bin/chromium && [ "$$(id -u)" = 0 ]; then \
	  echo "chromium (the browser of the console's tests) is missing; installing it (Debian)…"; \
	  apt-get update -qq && apt-get install -y -qq chromium; \
	fi
	@echo "Setting up $(VENV) with $(PYTHON)…"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/ringback serve

# the tests run on PYTEST_WORKERS processes (pytest-xdist; 0: one process, in order): three per
# core by default (at most 12), as most of the slow tests wait on real time (fax and audio paced
# at 20 ms, processes starting) and the others fill the CPU in. The `serial` ones (tests/chaos,
# marked in tests/conftest.py: soaks whose time limits assume a machine not busy with the rest
# of the suite) run after the others, side by side on SERIAL_WORKERS processes (0: in one);
# `make test` fails if either part does
CORES := $(shell nproc 2>/dev/null || echo 2)
PYTEST_WORKERS ?= $(shell n=$$(( $(CORES) * 3 )); echo $$(( n > 12 ? 12 : n )))
SERIAL_WORKERS ?= 4
xdist = $(if $(filter 0,$(1)),-p no:xdist,-n $(1) --dist $(2))
XDIST := $(call xdist,$(PYTEST_WORKERS),worksteal)

test: setup
	@$(BIN)/pytest $(XDIST) -m "not serial" $(PYTEST_ARGS); parallel=$$?; \
	$(BIN)/pytest $(call xdist,$(SERIAL_WORKERS),loadgroup) -m serial $(PYTEST_ARGS); serial=$$?; \
	if [ $$parallel -ne 0 ]; then exit $$parallel; fi; exit $$serial

# the quick suite: every package on both stores, without the tests marked slow (servers and
# processes started for long, chaos, schemathesis, sipp/baresip/kamailio, big hypothesis runs)
test-fast: setup
	$(BIN)/pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench chaos examples
	$(BIN)/ruff format --check src tests bench chaos examples
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests bench chaos examples
	$(BIN)/ruff check --fix src tests bench chaos examples

bench: setup
	$(BIN)/python bench/engine.py
	$(BIN)/python -m bench.worker_rss
	$(BIN)/python bench/api.py
	$(BIN)/python bench/ivr.py
	$(BIN)/python -m bench.addjob
	$(BIN)/python -m bench.single_add
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/sip.py
	$(BIN)/python bench/sip_tls.py
	$(BIN)/python -m bench.fax $(BENCH_FAX_ARGS)

# ringback beside procrastinate, bullmq and arq (bench/peers): the peers come from the
# `peers` extra of pyproject.toml, installed once per version of that file
PEERS_STAMP := $(VENV)/.peers-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

$(PEERS_STAMP): $(STAMP)
	@echo "Installing the peer job queues (pip install -e '.[dev,peers]')…"
	@$(BIN)/python -m pip install -q -e '.[dev,peers]'
	@rm -f $(VENV)/.peers-* && touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	$(BIN)/python -m bench.peers $(BENCH_PEERS_ARGS)

# the chaos suite (chaos/): kill -9 soak and database outages on PostgreSQL, kills on SQLite,
# webhook receiver outages, workers on two hosts (network namespaces) with one cut off, checked
# against the simulator's truth log; about 20 minutes. Needs the PostgreSQL server of
# `make test` and, for the outages and the hosts, root, `ip netns` and the server binaries.
chaos: setup
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist src/*.egg-info
