# The two commands of the README, on a machine with only python3 (3.10+) and make:
#   make run    train attention56 (fast recipe, 10 minutes) on CIFAR-10, evaluate it, draw its
#               curves and attention masks
#   make test   the test suite (both tiers; `make test-fast`: the fast tier, on synthetic data)
# Both create .venv when it is missing and install torch (pinned) and resattn into it.
# Variables: PYTHON (python3), VENV (.venv), TORCH (pip arguments for torch: the pinned version
# CI uses; add --index-url https://download.pytorch.org/whl/cpu for the CPU-only build on a
# machine without a GPU), BUDGET (training seconds, 600), OUT (runs), DATA_DIR (where CIFAR-10
# is or goes; else $RESATTN_DATA_DIR, else ~/.cache/resattn; downloaded, its MD5 checked, when
# missing).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BUDGET ?= 600
OUT ?= runs
BIN := $(VENV)/bin

.PHONY: run test test-fast

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/resattn train --model attention56 --recipe fast --time-budget $(BUDGET) --out $(OUT) \
		$(if $(DATA_DIR),--data-dir "$(DATA_DIR)")
	$(BIN)/python examples/after_training.py $(OUT)

# the fast tier on every core (pytest-xdist, one worker per core, torch's threads shared out among
# them), then the slow tier one test at a time: its tests train and spawn processes of their own
FAST := -m 'not slow' -n auto --dist worksteal

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(FAST)
	$(BIN)/python -m pytest -m slow

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(FAST)
