# Two commands do everything on a fresh machine with Python 3.11:
#   make repro   set up .venv and run the whole DVC pipeline on the embedded sample
#   make test    set up .venv and run the default test suite (what CI runs on every change)
#   make test-fast  the quick loop while editing: the same minus the tests marked slow (under 3 minutes)
#   make test-full  everything, the nightly run: adds slow_full (a second pipeline run), mirror_full, chromium
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The stamp changes whenever pyproject.toml does, so `make` reinstalls only when the dependencies change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test test-fast test-full lint bench mirror mirror-results metrics-diff clean-venv

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
	python -m pytest -m "not slow and not slow_full and not mirror_full and not chromium"

# an empty -m lifts the default filter: every test runs (those whose machine lacks the mirror, Chromium or a GPU
# skip cleanly)
test-full: setup
	python -m pytest -m ""

lint: setup
	ruff check .

bench: setup
	for b in benchmarks/bench_*.py; do python $$b || exit 1; done

# The whole pipeline on the offline mirror, as an experiment (see results/README.md)
mirror: setup
	dvc exp run -S data.profile=mirror

# After `make mirror`: copy its headline metrics and text reports to results/mirror/default (committed, so the README's
# figures can be checked against files); pictures stay in the DVC cache
mirror-results:
	rm -rf results/mirror/.default.tmp && mkdir -p results/mirror/.default.tmp
	cp -r metrics params.yaml results/mirror/.default.tmp/
	cd reports && find . -type f \( -name '*.json' -o -name '*.md' -o -name '*.csv' \) \
	  -exec install -D -m 644 {} ../results/mirror/.default.tmp/reports/{} \;
	rm -rf results/mirror/default && mv results/mirror/.default.tmp results/mirror/default

# `dvc metrics diff` prints its rows in Python set order, which changes from run to run: the same table sorted by
# file and metric. make metrics-diff A=HEAD B=<exp or rev>   (defaults: HEAD against the workspace)
A ?= HEAD
B ?=
metrics-diff:
	@dvc metrics diff $(A) $(B) --md | { IFS= read -r head; IFS= read -r rule; printf '%s\n%s\n' "$$head" "$$rule"; grep . | sort; }

clean-venv:
	rm -rf $(VENV)
