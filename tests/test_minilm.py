"""The real all-MiniLM-L6-v2 weights: verified before loading, and good enough to group stories (on every embedder)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from memory.embeddings import MINILM_SHA256, Embedder, MiniLMEmbedder, minilm_model_dir, verify_weights
from memory.minilm_onnx import OnnxMiniLMEmbedder
from sources.errors import StoreError
from tests.conftest import torch_or_skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm(minilm_models: Path) -> Embedder:
    """The default embedder: MiniLM on ONNX Runtime, fp32."""
    return OnnxMiniLMEmbedder(minilm_models, "fp32")


def test_packaged_weights_match_the_upstream_hash() -> None:
    verify_weights(minilm_model_dir() / "model.safetensors", MINILM_SHA256)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(minilm_model_dir(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="refusing to load"):
        MiniLMEmbedder(model_dir=copy).embed(["bitcoin"])
    with pytest.raises(StoreError, match="not found"):
        MiniLMEmbedder(model_dir=tmp_path / "nowhere").embed(["bitcoin"])


def test_real_embeddings_are_unit_vectors_that_rank_paraphrases_first(minilm: Embedder) -> None:
    texts = [
        "Spot bitcoin ETFs take in a record $1.4 billion in one day",
        "Bitcoin exchange-traded funds log their biggest inflow day ever",
        "Dogecoin slides as meme traders rotate into new tokens",
    ]
    vectors = minilm.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert minilm.embed([]).shape == (0, 384)


@pytest.mark.parametrize("choice", ["minilm", "minilm-int8", "minilm-torch"])
def test_samples_group_into_the_stories_we_wrote(tmp_path: Path, minilm_models: Path, choice: str) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.state import StateDB
    from memory.store import Memory, NearDuplicatePolicy
    from memory.stories import calibrated_threshold
    from sources.rss import parse_feed
    from sources.samples import SAMPLE_FEEDS, rebase, sample_body
    from sources.tickers import Watchlist
    from tapewatch.settings import DEFAULT_WATCHLIST

    if choice == "minilm-torch":
        torch_or_skip()
    minilm: Embedder = (MiniLMEmbedder() if choice == "minilm-torch"
                        else OnnxMiniLMEmbedder(minilm_models, "int8" if choice == "minilm-int8" else "fp32"))
    client = chromadb.PersistentClient(str(tmp_path / "c"), settings=ChromaSettings(anonymized_telemetry=False))
    # The shipped near-duplicate defaults, at the threshold calibrated for this embedder.
    memory = Memory(ChromaVectors(client, "items", minilm.name, 384), StateDB(f"sqlite:///{tmp_path / 's.db'}"),
                    minilm, NearDuplicatePolicy(threshold=calibrated_threshold(minilm.name)))
    now = datetime.now(UTC)
    for feed, filename in SAMPLE_FEEDS:
        parsed = parse_feed(sample_body(filename), feed, Watchlist(DEFAULT_WATCHLIST), fetched_at=now)
        memory.add(rebase(parsed.items, now))
    stats = memory.state.stats()
    assert stats.items == 42
    # Three stories were written to be covered by several outlets: 6 + 3 + 3 reports.
    hits = {h.title: h.sources for h in memory.search("Solana validators adopt a new client release", 3)}
    assert max(hits.values()) == 6
    fed = memory.search("Federal Reserve cuts interest rates by 25 basis points", 1)[0]
    etf = memory.search("record inflows into spot bitcoin ETFs", 1)[0]
    assert (fed.sources, etf.sources) == (3, 3)
    assert stats.stories == 42 - 5 - 2 - 2
