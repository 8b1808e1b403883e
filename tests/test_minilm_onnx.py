"""The ONNX Runtime embedder: made from the verified weights, reproduces the torch vectors, never imports torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from memory.embeddings import MINILM_NAME, MiniLMEmbedder, minilm_model_dir
from memory.minilm_onnx import (
    PROBE_BOUND,
    OnnxMiniLMEmbedder,
    embedder_name,
    manifest_file,
    model_file,
    reference_probes,
)
from sources.errors import StoreError
from tests.conftest import torch_or_skip
from tests.fakes.feed_server import FeedServer, Route

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(minilm_models: Path) -> Path:
    return minilm_models


@pytest.fixture(scope="module")
def torch_path() -> MiniLMEmbedder:
    torch_or_skip()
    return MiniLMEmbedder()


def sample_texts() -> list[str]:
    """What ingest embeds (the bundled sample feeds' items, and their titles alone), plus odd cases: 64 texts."""
    from sources.rss import parse_feed
    from sources.samples import SAMPLE_FEEDS, sample_body
    from sources.tickers import Watchlist
    from tapewatch.settings import DEFAULT_WATCHLIST

    texts: list[str] = []
    for feed, filename in SAMPLE_FEEDS:
        parsed = parse_feed(sample_body(filename), feed, Watchlist(DEFAULT_WATCHLIST), fetched_at=datetime.now(UTC))
        texts += [item.embedding_text() for item in parsed.items] + [item.title for item in parsed.items]
    texts += ["", "$BTC", "Ünïcödé — 比特币 🚀 " * 3, "bitcoin " * 400]  # empty, tiny, non-Latin, past 256 tokens
    return texts[:60] + texts[-4:]


def test_onnx_reproduces_the_torch_vectors(models: Path, torch_path: MiniLMEmbedder) -> None:
    texts = sample_texts()
    assert len(texts) == 64
    reference = torch_path.embed(texts)
    fp32 = OnnxMiniLMEmbedder(models, "fp32").embed(texts)
    assert fp32.shape == (64, 384) and fp32.dtype == np.float32
    assert np.allclose(np.linalg.norm(fp32, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(fp32 * reference, axis=1))) >= 0.9999
    # Batching by length changes nothing but speed: tiny batches give the same vectors, in the callers' order.
    small = OnnxMiniLMEmbedder(models, "fp32", batch_size=3).embed(texts)
    assert float(np.min(np.sum(small * fp32, axis=1))) >= 0.99999
    int8 = OnnxMiniLMEmbedder(models, "int8").embed(texts)
    cosines = np.sum(int8 * reference, axis=1)
    assert float(np.min(cosines)) >= PROBE_BOUND["int8"] and float(np.min(cosines)) < 0.9999  # it does drift
    assert OnnxMiniLMEmbedder(models, "fp32").embed([]).shape == (0, 384)


def test_the_stored_probe_vectors_are_the_torch_paths(torch_path: MiniLMEmbedder) -> None:
    texts, reference = reference_probes()
    assert reference.shape == (len(texts), 384)
    assert float(np.min(np.sum(torch_path.embed(texts) * reference, axis=1))) >= 0.99999


def test_embed_threads_become_onnxruntime_intra_op_threads(models: Path) -> None:
    from tapewatch.clients import embedder
    from tapewatch.settings import load_settings

    settings = load_settings(None).model_copy(deep=True)
    settings.memory.embed_threads, settings.memory.model_dir = 1, models
    chosen = embedder(settings)
    assert isinstance(chosen, OnnxMiniLMEmbedder) and chosen.intra_op_threads() == 1
    assert OnnxMiniLMEmbedder(models, "fp32", threads=2).intra_op_threads() == 2


def test_a_single_query_takes_the_fast_path_and_matches_the_batched_vector(models: Path) -> None:
    # A search embeds one text: no batch planning or padding, but the same vector as inside a batch, where the
    # same text sits beside a longer one and is padded to it.
    embedder = OnnxMiniLMEmbedder(models, "fp32", threads=1)
    query = "bitcoin ETF inflows"
    batched = embedder.embed([query, "Ether staking withdrawals climbed after the upgrade, on-chain data show"])
    alone = embedder.embed([query])
    assert alone.shape == (1, 384) and alone.dtype == np.float32
    assert abs(float(np.linalg.norm(alone[0])) - 1.0) < 1e-5
    assert float(alone[0] @ batched[0]) > 0.99999


def test_each_variant_has_its_own_name_and_a_memory_built_with_another_is_refused(tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from tapewatch.clients import embedder
    from tapewatch.settings import load_settings

    names = set()
    for choice in ("minilm", "minilm-int8", "minilm-torch"):
        settings = load_settings(None).model_copy(deep=True)
        settings.memory.embedder = choice  # type: ignore[assignment]
        names.add(embedder(settings).name)
    assert names == {embedder_name("fp32"), embedder_name("int8"), MINILM_NAME} and len(names) == 3
    client = chromadb.PersistentClient(str(tmp_path / "c"), settings=ChromaSettings(anonymized_telemetry=False))
    ChromaVectors(client, "items", MINILM_NAME, 384)
    with pytest.raises(StoreError) as refused:
        ChromaVectors(client, "items", embedder_name("fp32"), 384)
    assert MINILM_NAME in str(refused.value) and embedder_name("fp32") in str(refused.value)


def write_config(tmp_path: Path, models: Path, samples: str = "always") -> Path:
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nsamples = "{samples}"\n[memory]\nmodel_dir = "{models}"\n')
    return config


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {"COLUMNS": "200"}


@pytest.mark.timeout(900)  # nine CLI commands in one child process: past the default 300 s on a loaded machine
def test_ingest_search_briefs_and_the_daemons_jobs_never_import_torch(tmp_path: Path, models: Path,
                                                                       feed_server: FeedServer) -> None:
    from sources.samples import SAMPLE_FEEDS, sample_body
    from tests.fakes.coingecko import serving_coingecko

    _, filename = SAMPLE_FEEDS[0]
    feed_server.routes["/wire.xml"] = Route(body=sample_body(filename))
    script = (
        "import json, sys\n"
        "from tapewatch.cli import app\n"
        "config = sys.argv[1]\n"
        "for args in (['ingest'], ['search', 'solana validators new client'], ['brief', '--format', 'all'],\n"
        "             ['brief', '--ticker', 'SOL'], ['signals'], ['narratives'], ['memory'],\n"
        "             ['run', '--once'], ['publish', '--dry-run']):\n"
        "    try:\n"
        "        app(['--config', config, *args], standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (args, exc.code)\n"
        "print('MODULES=' + json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'transformers')"
        " if m in sys.modules)))\n"
    )
    with serving_coingecko() as cg:
        cg.set("bitcoin", 97950.0, change=0.8)
        cg.set("solana", 213.2, change=3.6)
        config = write_config(tmp_path, models, samples="always")
        # The daemon's jobs (`run --once`: feeds, prices, retention) fetch from the loopback fakes.
        config.write_text(config.read_text() + f'[market]\nbase_url = "{cg.base_url}"\n[[feeds]]\nname = "wire"\n'
                          f'url = "{feed_server.url("/wire.xml")}"\n')
        done = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True,
                              timeout=900, env=clean_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Halcyon" in done.stdout and "data brief built from signals alone" in done.stdout
    assert "ingest feeds" in done.stdout and "prices: 1 source(s)" in done.stdout
    assert any(hit.path == "/wire.xml" for hit in feed_server.hits)
    assert done.stdout.rsplit("MODULES=", 1)[1].strip() == "[]"


# Any import of these fails in the child, as on an install without the torch extra.
NO_TORCH = (
    "import sys\n"
    "for name in ('torch', 'transformers', 'sentence_transformers'):\n"
    "    sys.modules[name] = None\n"
    "from memory.minilm_export import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_prepare_builds_both_graphs_from_the_weights_without_torch(tmp_path: Path, models: Path) -> None:
    where = tmp_path / "m"
    done = subprocess.run([sys.executable, "-c", NO_TORCH, str(where), "--variant", "int8"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    fp32, int8 = (json.loads(manifest_file(where, v).read_text()) for v in ("fp32", "int8"))
    # The hand-built graph reproduces the torch reference vectors stored with the project.
    assert fp32["probe_min_cosine"] >= 0.9999 and fp32["built_by"] == "memory.minilm_graph"
    assert PROBE_BOUND["int8"] <= int8["probe_min_cosine"] < 0.9999
    # The build is deterministic: the same weights give the same graph, byte for byte.
    assert fp32["sha256"] == json.loads(manifest_file(models, "fp32").read_text())["sha256"]
    vectors = OnnxMiniLMEmbedder(where, "fp32", prepare=False).embed(["Spot bitcoin ETFs log record inflows"])
    assert vectors.shape == (1, 384)


def test_a_config_the_graph_builder_does_not_implement_is_refused(tmp_path: Path) -> None:
    from memory.minilm_graph import build_encoder

    copy = tmp_path / "weights"
    shutil.copytree(minilm_model_dir(), copy)
    config = json.loads((copy / "config.json").read_text()) | {"hidden_act": "relu"}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(StoreError, match=r"hidden_act='relu'.*not supported"):
        build_encoder(copy, tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_tampered_weights_are_refused_before_any_export(tmp_path: Path) -> None:
    copy = tmp_path / "weights"
    shutil.copytree(minilm_model_dir(), copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[len(data) // 3] ^= 0x01
    (copy / "model.safetensors").write_bytes(bytes(data))
    done = subprocess.run([sys.executable, "-m", "memory.minilm_export", str(tmp_path / "m"), "--weights", str(copy)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to load them" in lines[0] and "sha256" in lines[0], done.stderr
    assert not model_file(tmp_path / "m", "fp32").exists()
    with pytest.raises(StoreError, match="refusing to load them"):
        OnnxMiniLMEmbedder(tmp_path / "m2", "fp32", weights_dir=copy).embed(["bitcoin"])


def test_a_tampered_graph_is_refused_with_one_line(tmp_path: Path, models: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    graph = model_file(copy, "fp32")
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x01
    graph.write_bytes(bytes(data))
    tapewatch = [sys.executable, "-m", "tapewatch", "--config", str(write_config(tmp_path, copy))]
    done = subprocess.run([*tapewatch, "search", "bitcoin"], capture_output=True, text=True, timeout=300,
                          env=clean_env())
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "refusing to load it" in lines[0] and str(graph) in lines[0] and "tapewatch model prepare" in lines[0]


def test_a_graph_that_drifts_from_the_reference_is_refused(tmp_path: Path, models: Path) -> None:
    # The int8 graph passed off as fp32, with a manifest that records its true sha256: only the probes catch it.
    copy = tmp_path / "models"
    copy.mkdir()
    shutil.copy(model_file(models, "int8"), model_file(copy, "fp32"))
    record = json.loads(manifest_file(models, "int8").read_text()) | {"variant": "fp32"}
    manifest_file(copy, "fp32").write_text(json.dumps(record))
    with pytest.raises(StoreError, match=r"drifts from the reference vectors \(min cosine 0\.9"):
        OnnxMiniLMEmbedder(copy, "fp32").embed(["bitcoin"])


def test_without_a_prepared_graph_the_error_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no fp32 ONNX model in .*; run `tapewatch model prepare`"):
        OnnxMiniLMEmbedder(tmp_path, "fp32", prepare=False).embed(["bitcoin"])
