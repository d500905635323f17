# Two commands do everything on a fresh machine with Python 3.11:
#   make repro   set up .venv and run the whole DVC pipeline on the embedded sample
#   make test    set up .venv and run the tests (the full default suite, what CI runs)
#   make test-fast  the quick loop while editing: the same minus the tests marked slow (under 3 minutes)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The stamp changes whenever pyproject.toml does, so `make` reinstalls only when the dependencies change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test test-fast lint bench mirror clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned, so nothing later can swap it for another build
	$(BIN)/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

repro: setup
	dvc repro

test: setup
	python -m pytest

# -m replaces the default marker filter of pyproject.toml, so it repeats it
test-fast: setup
	python -m pytest -m "not slow and not mirror_full and not chromium"

lint: setup
	ruff check .

bench: setup
	for b in benchmarks/bench_*.py; do python $$b || exit 1; done

# The whole pipeline on the offline mirror, as an experiment (see README)
mirror: setup
	dvc exp run -S data.profile=mirror

clean-venv:
	rm -rf $(VENV)
