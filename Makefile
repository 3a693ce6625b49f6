# One command each: `make dev` runs the local control plane (and the service), `make test` runs
# the whole suite. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# what is installed follows the lock (and the projects' metadata): a change of either reinstalls
LOCKS := requirements/runtime.txt requirements/dev.txt
STAMP := $(VENV)/.installed-$(shell cat $(LOCKS) pyproject.toml client/pyproject.toml | sha256sum | cut -c1-12)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: dev test lint pytest unit deps lock etcd chromium binaries bench clean

deps: $(STAMP) etcd binaries

# Every dependency from the lock, each file checked against its hash; then the project and the
# crr command line (client/, a distribution of its own: .venv/bin/crr) without touching them,
# built with the locked setuptools (no build isolation: nothing unhashed is fetched).
$(STAMP): $(LOCKS) pyproject.toml client/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . -e ./client
	@rm -f $(VENV)/.installed-* && touch $@

# The lock files, resolved from pyproject.toml (and requirements/build.in) for Python 3.11 on
# Linux, as the image and this Makefile run it, with the hashes of every file the registry
# serves for each pin (any platform): requirements/runtime.txt for the image, and
# requirements/dev.txt, the same pins plus the tools and tests, for `make deps`. Pins already
# locked are kept while they still fit, so a refresh moves only what must move;
# `make lock UPGRADE=1` takes the newest versions that fit.
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform linux --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml requirements/build.in -o requirements/runtime.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra dev \
	  -c requirements/runtime.txt -o requirements/dev.txt

# Debian's etcd 3.4 serves kube-apiserver 1.32; the control plane starts its own on free ports.
etcd:
	@command -v etcd >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends etcd-server; }

# Debian's Chromium and its chromedriver for the browser tests (tests/integration/browser/):
# Selenium drives them as installed, nothing is downloaded when the tests run.
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver fonts-dejavu-core; }

# kube-apiserver and kruise-manager, built from the Go module proxy once per pinned version.
binaries: $(STAMP)
	$(PY) -m harness.build

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

pytest: deps chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The unit tests alone (tests/unit/): no control plane, nothing to build.
unit: $(STAMP)
	$(PY) -m pytest tests/unit -n auto $(PYTEST_ARGS)

test: deps lint pytest

dev: deps
	$(PY) -m harness.dev

# Side-by-side measurements on the local control plane; results in BENCHMARKS.md.
bench: deps
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache .ruff_cache
