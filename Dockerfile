# syntax=docker/dockerfile:1
#
# tapewatch on CPU. Build and run:
#   docker build -t tapewatch .
#   docker run --rm -v tapewatch-data:/data tapewatch ingest     # CMD default
#   docker run -d -v tapewatch-data:/data tapewatch run           # the daemon (as compose.yaml does)
#   docker run --rm -v tapewatch-data:/data tapewatch search "bitcoin ETF inflows"
# With a Chroma server next to it, use compose.yaml instead.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
# builder: a venv at /opt/venv with CPU torch, then the project (non-editable).
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

# The venv lives at the same path in both stages: its scripts (bin/tapewatch) carry an
# absolute shebang to /opt/venv/bin/python.
RUN python -m venv /opt/venv && pip install --upgrade pip

# CPU torch first, from PyTorch's CPU index. Otherwise sentence-transformers pulls torch from
# PyPI, which on Linux x86_64 is the CUDA build plus several GB of nvidia-* wheels.
# Its own layer, so source changes do not re-download it.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /src
# Only what the wheel needs. pyproject's [tool.setuptools] lists exactly these packages
# (sources/samples/*.xml and prompts/*.yaml|*.md ride along as package-data).
COPY pyproject.toml README.md ./
COPY sources ./sources
COPY memory ./memory
COPY crew ./crew
COPY publish ./publish
COPY tapewatch ./tapewatch
COPY prompts ./prompts

# The constraint stops pip from swapping the CPU torch for a PyPI one while resolving
# sentence-transformers ("torch==2.13.0" matches the installed "2.13.0+cpu").
RUN echo "torch==${TORCH_VERSION}" > /tmp/torch-constraint.txt \
 && pip install --constraint /tmp/torch-constraint.txt . \
 && tapewatch --help > /dev/null

# Fail the build, not the first ingest, if the bundled MiniLM weights are missing or their
# sha256 does not match (MiniLMEmbedder verifies them before loading). Runs from / so the
# installed packages are imported, not /src.
RUN cd / && HF_HUB_OFFLINE=1 python -c "from memory.embeddings import MiniLMEmbedder; MiniLMEmbedder().embed(['ok'])"

# ---------------------------------------------------------------------------------------
# runtime: python + the venv, running as an unprivileged user.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="tapewatch" \
      org.opencontainers.image.description="Self-hosted crypto market-research bot (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"

# Everything stays on this machine: the model is bundled (no hub lookups) and Chroma,
# CrewAI and OpenTelemetry are told not to send telemetry.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    CREWAI_DISABLE_TELEMETRY=true \
    CREWAI_TRACING_ENABLED=false \
    OTEL_SDK_DISABLED=true \
    TAPEWATCH_DATA_DIR=/data

# /data is created and chowned before VOLUME so a fresh named volume starts out owned by
# tapewatch (Docker copies the image directory's ownership into an empty named volume).
RUN groupadd --system --gid 10001 tapewatch \
 && useradd --system --uid 10001 --gid tapewatch --create-home --home-dir /home/tapewatch \
      --shell /usr/sbin/nologin tapewatch \
 && mkdir -p /data /app \
 && chown tapewatch:tapewatch /data /app

COPY --from=builder /opt/venv /opt/venv

USER tapewatch
# The CLI also picks up ./tapewatch.toml from the working directory when TAPEWATCH_CONFIG
# is not set; compose.yaml sets TAPEWATCH_CONFIG explicitly instead.
WORKDIR /app
VOLUME /data

ENTRYPOINT ["tapewatch"]
CMD ["ingest"]
