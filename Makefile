# Fresh machine → `make run` (set up + main job) or `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch goes in first so sentence-transformers doesn't pull a CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=

.PHONY: install run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(BIN)/tapewatch ingest
	$(BIN)/tapewatch brief --format all

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/signals.py
	$(BIN)/python bench/daemon.py
	$(BIN)/python bench/brief.py
	$(BIN)/python bench/publish.py
	$(BIN)/python bench/bot.py
	$(BIN)/python bench/compliance.py
	$(BIN)/python bench/grounding.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
