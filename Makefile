# Two commands: `make run` (the whole platform) and `make test` (the whole suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
APT_PACKAGES := nginx libnginx-mod-rtmp libnginx-mod-stream ffmpeg libsrt1.5-gnutls chromium nodejs npm nftables
PYTEST_ARGS ?=

.PHONY: help setup system-deps python-deps web-deps oidc-deps run test test-fast cluster-test bench bench-chat asyncapi openapi lint clean

help:
	@echo "make run     start the whole platform on this machine (Ctrl-C stops it)"
	@echo "make test    set everything up and run the whole test suite with coverage"
	@echo "make setup   only install what the two commands need"
	@echo "make cluster-test  the multi-node rehearsal on loopback (also part of make test)"
	@echo "make bench  run the benchmarks in bench/ (results in bench/results/, see docs/benchmarks.md)"

setup: system-deps python-deps web-deps oidc-deps

# nginx with the RTMP and stream modules (stream: the L4 balancer over several ingest nodes), ffmpeg
# (with libsrt, ffmpeg's own dependency, which the SRT listener calls too) and Chromium (browser
# tests, never a downloaded browser) and nftables (bench/chat_path.py's L4 address: a DNAT rule as
# kube-proxy writes) come from the distribution; everything
# else from PyPI
system-deps:
	@missing=""; \
	{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || missing="$$missing nginx"; \
	[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing="$$missing libnginx-mod-rtmp"; \
	[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing="$$missing libnginx-mod-stream"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	ls /usr/lib/*/libsrt*.so.1.5 >/dev/null 2>&1 || missing="$$missing libsrt1.5-gnutls"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	{ [ -x /usr/sbin/nft ] || command -v nft >/dev/null 2>&1; } || missing="$$missing nftables"; \
	if [ -n "$$missing" ]; then \
	  echo ">> installing$$missing with apt-get"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "error: apt-get not found; install$$missing with your package manager, then run make again" >&2; exit 1; fi; \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing) \
	    || { echo "error: could not install$$missing (need root or sudo). Install them by hand: apt-get install $(APT_PACKAGES)" >&2; exit 1; }; \
	fi

$(UV):
	@echo ">> installing uv (Python package manager)"
	@$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --quiet uv

python-deps: | $(UV)
	@echo ">> syncing the Python workspace into $(VENV)"
	@$(UV) sync --frozen --all-packages --group dev --quiet 2>/dev/null || $(UV) sync --all-packages --group dev --quiet

# the web client's one npm package (hls.js), pinned by web/package-lock.json
web-deps: web/node_modules/.package-lock.json

web/node_modules/.package-lock.json: web/package-lock.json | system-deps
	@echo ">> installing the web client's npm packages (npm ci)"
	@cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the tests' OpenID Connect provider (panva's oidc-provider), pinned by tests/oidc/package-lock.json;
# test-only: nothing of it ships (tests/e2e/test_oidc_through_gateway.py)
oidc-deps: tests/oidc/node_modules/.package-lock.json

tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json | system-deps
	@echo ">> installing the test OpenID Connect provider's npm packages (npm ci)"
	@cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: setup
	@$(VENV)/bin/python -m devstack run

test: setup lint
	@$(VENV)/bin/python -m pytest --cov --cov-config=.coveragerc --cov-report=term --cov-report=xml $(PYTEST_ARGS)
	@$(VENV)/bin/python tools/route_coverage.py

test-fast: python-deps
	@$(VENV)/bin/python -m pytest -x -q -m "not e2e and not cluster" $(PYTEST_ARGS)

# the multi-node rehearsal alone (make test runs it too): 3 clustered NATS nodes, 2 copies of every
# service, 3 chat edges; kills a NATS node and an edge during a chat load
cluster-test: setup lint
	@$(VENV)/bin/python -m pytest -q -m cluster tests/cluster tests/hosts $(PYTEST_ARGS)

# every bench/<name>.py (files starting with _ are helpers) is a benchmark: `make bench` runs them one
# after another (each starts and stops what it measures), `make bench-<name>` runs one; BENCH_ARGS are
# passed on (e.g. BENCH_ARGS="--runs 10")
BENCHMARKS := $(sort $(basename $(notdir $(filter-out bench/_%,$(wildcard bench/*.py)))))

bench: setup
	@set -e; for name in $(BENCHMARKS); do echo ">> bench/$$name.py"; $(VENV)/bin/python bench/$$name.py $(BENCH_ARGS); done

bench-%: bench/%.py setup
	@$(VENV)/bin/python bench/$*.py $(BENCH_ARGS)

# the chat fan-out benchmark and its python-socketio baseline (which reads chat.json for the ratio)
bench-chat: setup
	@$(VENV)/bin/python bench/chat.py $(BENCH_ARGS)
	@$(VENV)/bin/python bench/socketio_baseline.py $(BENCH_ARGS)

asyncapi: python-deps
	@$(VENV)/bin/python -m contracts.asyncapi --write

# every service's OpenAPI document (services/<name>/openapi.json); refuses a change that breaks clients
openapi: python-deps
	@$(VENV)/bin/python tools/openapi.py --write

# ruff's rule set and mypy's files are in pyproject.toml
lint: python-deps
	@$(VENV)/bin/ruff check libs services tests tools bench
	@$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .coverage coverage.xml
