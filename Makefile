# condgen — every entry point bootstraps what it needs, idempotently:
# a project-local .venv with the pinned torch (the libtorch tch 0.26 links
# against), then the cargo build. A second run installs nothing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

TORCH_VERSION := 2.13.0
# VENV and CARGO_TARGET_DIR may point elsewhere (CI keeps both in a cache
# folder that is rebuilt from nothing when absent).
VENV          ?= $(CURDIR)/.venv
PYTHON        ?= python3
TORCH_STAMP   := $(VENV)/.torch-$(TORCH_VERSION)
CONDGEN       := $(or $(CARGO_TARGET_DIR),target)/debug/condgen

# torch-sys links the libtorch inside the venv's torch package (LIBTORCH; the
# PyPI wheels use the C++11 ABI); build.rs then bakes an rpath into our
# binaries, so nobody needs LD_LIBRARY_PATH.
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export VIRTUAL_ENV        := $(VENV)
export PATH               := $(VENV)/bin:$(PATH)
export LIBTORCH           := $(VENV)/lib/python$(PYVER)/site-packages/torch
export LIBTORCH_CXX11_ABI := 1

.PHONY: help setup build test report data-summary bench clean

help:
	@echo "make report   - build, then regenerate report/ (data summary, training, figures; PROFILE=quick|default|paper)"
	@echo "make test     - build, then run every test"
	@echo "make setup    - only the bootstrap: .venv with torch==$(TORCH_VERSION)"
	@echo "make bench    - condgen vs PyTorch, same models, one run: report/benchmarks.md"
	@echo "make clean    - remove target/ (keeps .venv and runs/)"

setup: $(TORCH_STAMP)

$(TORCH_STAMP):
	@echo "== bootstrap: .venv with torch==$(TORCH_VERSION) (about 1-2 minutes, once)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION)
	@$(VENV)/bin/python -c "import torch; print('torch', torch.__version__, 'at', torch.__path__[0])"
	touch $@

build: $(TORCH_STAMP)
	cargo build --all-targets

test: build
	cargo test --no-fail-fast

data-summary: build
	$(CONDGEN) data summary

# The main job: data summary, then train/reuse, evaluate and draw everything (default profile).
PROFILE ?= default
report: data-summary
	$(CONDGEN) report --profile $(PROFILE)

# condgen vs PyTorch on the same models, side by side; writes report/benchmarks.md.
bench: build
	$(CONDGEN) bench --out report/benchmarks.md

clean:
	cargo clean
