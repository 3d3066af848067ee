# Two commands: `make run` (the whole platform) and `make test` (the whole suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
APT_PACKAGES := nginx libnginx-mod-rtmp ffmpeg chromium
PYTEST_ARGS ?=

.PHONY: help setup system-deps python-deps run test test-fast asyncapi lint clean

help:
	@echo "make run     start the whole platform on this machine (Ctrl-C stops it)"
	@echo "make test    set everything up and run the whole test suite with coverage"
	@echo "make setup   only install what the two commands need"

setup: system-deps python-deps

# nginx with the RTMP module, ffmpeg and Chromium (browser tests, never a downloaded browser) come from
# the distribution; everything else from PyPI
system-deps:
	@missing=""; \
	{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || missing="$$missing nginx"; \
	[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing="$$missing libnginx-mod-rtmp"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
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

run: setup
	@$(VENV)/bin/python -m devstack run

test: setup
	@$(VENV)/bin/python -m pytest --cov --cov-config=.coveragerc --cov-report=term --cov-report=xml $(PYTEST_ARGS)
	@$(VENV)/bin/python tools/route_coverage.py

test-fast: python-deps
	@$(VENV)/bin/python -m pytest -x -q -m "not e2e" $(PYTEST_ARGS)

asyncapi: python-deps
	@$(VENV)/bin/python -m contracts.asyncapi --write

lint: python-deps
	@$(VENV)/bin/ruff check libs services tests tools

clean:
	rm -rf $(VENV) .pytest_cache .coverage coverage.xml
