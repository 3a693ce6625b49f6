# One command each: `make dev` runs the local control plane (and the service), `make test` runs
# the whole suite. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: dev test lint pytest unit deps etcd binaries bench clean

deps: $(STAMP) etcd binaries

# The crr command line (client/, a distribution of its own) goes in too: .venv/bin/crr.
$(STAMP): pyproject.toml client/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -e ./client
	@rm -f $(VENV)/.installed-* && touch $@

# Debian's etcd 3.4 serves kube-apiserver 1.32; the control plane starts its own on free ports.
etcd:
	@command -v etcd >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends etcd-server; }

# kube-apiserver and kruise-manager, built from the Go module proxy once per pinned version.
binaries: $(STAMP)
	$(PY) -m harness.build

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

pytest: deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The unit tests alone (tests/unit/): no control plane, nothing to build.
unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test: deps lint pytest

dev: deps
	$(PY) -m harness.dev

# Side-by-side measurements on the local control plane; results in BENCHMARKS.md.
bench: deps
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache .ruff_cache
