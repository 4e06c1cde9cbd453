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
# .cargo/config.toml builds for the host triple explicitly (as the notebooks'
# kernel does), so binaries live in target/<host>/debug/.
HOST_TRIPLE   := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
CONDGEN       := $(or $(CARGO_TARGET_DIR),target)/$(HOST_TRIPLE)/debug/condgen

# torch-sys links the libtorch inside the venv's torch package (LIBTORCH; the
# PyPI wheels use the C++11 ABI); build.rs then bakes an rpath into our
# binaries, so nobody needs LD_LIBRARY_PATH.
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export VIRTUAL_ENV        := $(VENV)
export PATH               := $(VENV)/bin:$(PATH)
export LIBTORCH           := $(VENV)/lib/python$(PYVER)/site-packages/torch
export LIBTORCH_CXX11_ABI := 1

# A relative data path is relative to the project root, here and in the
# notebooks' kernel (which runs in notebooks/); CONDGEN_K49 may also be a bare
# sub-folder name of the data directory, left as it is.
ifdef CONDGEN_DATA
export CONDGEN_DATA := $(abspath $(CONDGEN_DATA))
endif
ifneq ($(findstring /,$(CONDGEN_K49)),)
export CONDGEN_K49 := $(abspath $(CONDGEN_K49))
endif

# Notebooks: the evcxr Jupyter kernel, registered project-locally in the venv
# as "condgen (Rust)". Its crate lives in EVCXR_TMPDIR, pinned to our
# Cargo.lock, and builds into our own build folder: same profile, target and
# rustflags as `make build`, so the dependencies compile once for both.
EVCXR_VERSION := 0.22.0
EVCXR_JUPYTER ?= $(HOME)/.cargo/bin/evcxr_jupyter
BUILD_DIR     := $(abspath $(or $(CARGO_TARGET_DIR),target))
EVCXR_TMPDIR  ?= $(BUILD_DIR)/evcxr
KERNEL_DIR    := $(VENV)/share/jupyter/kernels/condgen-rust
NBCLIENT_STAMP := $(VENV)/.nbclient-stamp
LAB_STAMP     := $(VENV)/.jupyterlab-stamp
# quick in tests and CI; `make notebooks NOTEBOOK_PROFILE=default INPLACE=1`
# refreshes the committed outputs (reusing the runs of `make report`).
NOTEBOOK_PROFILE ?= quick
NOTEBOOKS     := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: help setup build test report docs check-docs data-summary bench clean kernel lab notebooks

help:
	@echo "make report   - build, then regenerate report/ (data summary, training, figures; PROFILE=quick|default|paper)"
	@echo "make test     - build, then run every test"
	@echo "make setup    - only the bootstrap: .venv with torch==$(TORCH_VERSION)"
	@echo "make bench    - condgen vs PyTorch, same models, one run: report/benchmarks.md"
	@echo "make lab      - install evcxr_jupyter + JupyterLab if missing, register the kernel, open notebooks/ (127.0.0.1)"
	@echo "make notebooks - execute every notebook headless (NOTEBOOK_PROFILE=quick; INPLACE=1 writes outputs into them)"
	@echo "make docs     - the report, then the notebooks' outputs on its runs, then check-docs (PROFILE=default)"
	@echo "make check-docs - every run the notebooks print carries REPORT.md's numbers for it"
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

# Formatting and lints are part of the tests (rustfmt.toml; clippy denies every warning).
test: build
	cargo fmt --check
	cargo clippy --all-targets --quiet -- -D warnings
	cargo test --no-fail-fast
	$(MAKE) --no-print-directory notebooks NOTEBOOK_PROFILE=quick INPLACE=
	$(MAKE) --no-print-directory check-docs

data-summary: build
	$(CONDGEN) data summary

# The main job: data summary, then train/reuse, evaluate and draw everything (default profile).
PROFILE ?= default
report: data-summary
	$(CONDGEN) report --profile $(PROFILE)

# The committed documents from one set of runs: the report, then every notebook
# on its runs (outputs written in place), then the check that they agree.
docs: report
	$(MAKE) --no-print-directory notebooks NOTEBOOK_PROFILE=$(PROFILE) INPLACE=1
	$(MAKE) --no-print-directory check-docs

# Every run a notebook prints must carry REPORT.md's numbers for that run.
check-docs: build
	$(CONDGEN) check-docs --report report/REPORT.md --notebooks notebooks

# condgen vs PyTorch on the same models, side by side; writes report/benchmarks.md.
bench: build
	$(CONDGEN)-bench --out report/benchmarks.md

$(EVCXR_JUPYTER):
	@echo "== installing evcxr_jupyter $(EVCXR_VERSION) (about 7 minutes, once)"
	cargo install evcxr_jupyter --version $(EVCXR_VERSION) --locked

$(NBCLIENT_STAMP): $(TORCH_STAMP)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "nbclient>=0.10" "nbformat>=5.10"
	touch $@

$(LAB_STAMP): $(NBCLIENT_STAMP)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "jupyterlab>=4"
	touch $@

# (Re)written every time: cheap, and it follows VENV / CARGO_TARGET_DIR.
kernel: $(NBCLIENT_STAMP) $(EVCXR_JUPYTER)
	@$(VENV)/bin/python notebooks/jupyter.py kernel --evcxr $(EVCXR_JUPYTER) --libtorch $(LIBTORCH) \
		--evcxr-tmpdir $(EVCXR_TMPDIR) --build-dir $(BUILD_DIR) --host $(HOST_TRIPLE) \
		--project $(CURDIR) --dest $(KERNEL_DIR)

lab: kernel $(LAB_STAMP)
	cd notebooks && $(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=. \
		$(if $(filter 0,$(shell id -u)),--allow-root)

notebooks: kernel
	CONDGEN_PROFILE=$(NOTEBOOK_PROFILE) $(VENV)/bin/python notebooks/jupyter.py execute \
		$(if $(INPLACE),--inplace,--out $(BUILD_DIR)/notebooks) $(NOTEBOOKS)

clean:
	cargo clean
