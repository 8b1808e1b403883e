"""Settings of the vector memory."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tapewatch.settings.durations import Duration


class MemorySettings(BaseModel):
    """Vector memory and near-duplicate policy."""

    chroma_url: str | None = None
    collection: str = Field(default="tapewatch-items", pattern=r"^[a-z0-9][a-z0-9._\-]{1,61}[a-z0-9]$")
    # "minilm": all-MiniLM-L6-v2 on ONNX Runtime (no torch at run time); "minilm-int8": its dynamic int8
    # quantisation (faster, vectors drift: min cosine ~0.95 to torch); "minilm-torch": sentence-transformers.
    embedder: Literal["minilm", "minilm-int8", "minilm-torch"] = "minilm"
    # CPU threads for embedding (onnxruntime's intra-op threads, or torch's); default: every core it sees.
    embed_threads: int | None = Field(default=None, ge=1, le=256)
    # Where `tapewatch model prepare` puts the ONNX graphs made from the verified weights (default: the venv's
    # share/tapewatch/models, so they belong to the install).
    model_dir: Path | None = None
    # Every vector-store call (upsert, query, …) ends within this, in a clear error if it must.
    store_timeout: Duration = timedelta(seconds=60)
    # Two reports are one story when their score reaches the threshold: with rule "evidence" their cosine
    # moved by names, numbers and days in common or in conflict, hours apart and same outlet (memory/stories.py);
    # with rule "cosine" their cosine alone (the rule before issue 17, at 0.7).
    near_duplicate_rule: Literal["evidence", "cosine"] = "evidence"
    # Unset: the threshold calibrated for the configured embedder (memory/stories.py: 0.62 fp32 and torch, 0.63 int8).
    near_duplicate_threshold: float | None = Field(default=None, gt=0.0, le=1.5)
    near_duplicate_window: Duration = timedelta(hours=36)
    near_duplicate_kinds: list[Literal["news", "forum", "social"]] = ["news", "forum"]
    retention: Duration = timedelta(days=90)
