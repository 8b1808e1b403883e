"""`tapewatch memory reembed`: killed mid-run it resumes, and only a finished run switches the collection's embedder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from memory.minilm_onnx import OnnxMiniLMEmbedder, embedder_name
from sources.item import Item
from tests.fakes.embedder import HashEmbedder

pytestmark = pytest.mark.slow

ITEMS = 1200
TICKERS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA")
TOPICS = ("exchange reserves fall", "ETF inflows climb", "validators upgrade", "funding turns negative",
          "treasury buys more", "stablecoin supply grows", "hack drains a bridge", "options expiry looms")


def items(now: datetime) -> list[Item]:
    out = []
    for n in range(ITEMS):
        ticker, topic = TICKERS[n % len(TICKERS)], TOPICS[(n // len(TICKERS)) % len(TOPICS)]
        published = now - timedelta(minutes=7 * n)
        out.append(Item(
            id=f"item{n:05d}", kind="news", source=f"outlet{n % 5}", url=f"https://outlet{n % 5}.example/{n}",
            title=f"{ticker} {topic} as desk note {n} lands", text=f"Report {n}: {ticker} {topic}; figure {n * 37}.",
            published_at=published, fetched_at=published, tickers=(ticker,),
        ))
    return out


def configure(tmp_path: Path, models: Path) -> tuple[Path, object]:
    from tapewatch.settings import load_settings

    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nsamples = "never"\n[memory]\nembedder = "minilm-int8"\n'
                      f'model_dir = "{models}"\n')
    return config, load_settings(config)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {"COLUMNS": "200"}


def progress_row(settings: object) -> object:
    from memory.reembed import pending
    from tapewatch.clients import open_state

    state = open_state(settings)  # type: ignore[arg-type]
    try:
        return pending(state, "tapewatch-items")
    finally:
        state.close()


def collection(settings: object, name: str = "tapewatch-items") -> object:
    from tapewatch.clients import chroma_client

    return chroma_client(settings).get_collection(name)  # type: ignore[arg-type]


@pytest.mark.timeout(900)  # five CLI runs and 1,200 items embedded: past the default 300 s on a loaded machine
def test_a_killed_reembed_resumes_and_switches_the_embedder_only_when_done(tmp_path: Path,
                                                                            minilm_models: Path) -> None:
    from memory.chroma import collection_names
    from tapewatch.clients import chroma_client, open_memory

    config, settings = configure(tmp_path, minilm_models)
    stored = items(datetime.now(UTC))
    memory = open_memory(settings, embed=HashEmbedder())  # type: ignore[arg-type]
    memory.add(stored)
    memory.state.close()
    new = embedder_name("int8")
    tapewatch = [sys.executable, "-m", "tapewatch", "--config", str(config)]

    # Built with another embedder: refused, naming both and the way out.
    refused = subprocess.run([*tapewatch, "search", "bitcoin"], capture_output=True, text=True, timeout=300, env=env())
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "test-hash" in lines[0] and new in lines[0] and "tapewatch memory reembed" in lines[0]

    # Killed mid-run.
    run = subprocess.Popen([*tapewatch, "memory", "reembed", "--batch", "8"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env())
    deadline = time.monotonic() + 240
    row = None
    while time.monotonic() < deadline and run.poll() is None:
        row = progress_row(settings)
        if row is not None and row.done >= 160:  # type: ignore[attr-defined]
            break
        time.sleep(0.05)
    assert run.poll() is None, f"reembed ended before it could be killed: {run.communicate()}"
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    row = progress_row(settings)
    assert row is not None and 0 < row.done < ITEMS and row.embedder == new  # type: ignore[attr-defined]
    killed_at = row.done  # type: ignore[attr-defined]
    main = collection(settings)
    assert main.metadata["embedder"] == "test-hash" and main.count() == ITEMS  # type: ignore[attr-defined]
    assert "tapewatch-items.reembed" in collection_names(chroma_client(settings))  # type: ignore[arg-type]
    still = subprocess.run([*tapewatch, "search", "bitcoin"], capture_output=True, text=True, timeout=300, env=env())
    assert still.returncode == 2 and "tapewatch memory reembed" in still.stderr

    # Resumed: it starts where the killed run's last recorded batch ended, and finishes.
    done = subprocess.run([*tapewatch, "memory", "reembed", "--batch", "64"], capture_output=True, text=True,
                          timeout=600, env=env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"Resuming the reembed of 'tapewatch-items' with {new}: {killed_at} of {ITEMS}" in done.stdout
    assert f"Re-embedded {ITEMS} items with {new} (was test-hash)" in done.stdout
    embedded = int(done.stdout.split(" embedded by this run")[0].rsplit("; ", 1)[1])
    assert ITEMS - killed_at <= embedded < ITEMS

    # Every item has exactly one vector, of the new embedder; the staging collection and the progress are gone.
    assert progress_row(settings) is None
    names = collection_names(chroma_client(settings))  # type: ignore[arg-type]
    assert "tapewatch-items.reembed" not in names and "tapewatch-items" in names
    main = collection(settings)
    assert main.metadata["embedder"] == new and main.count() == ITEMS  # type: ignore[attr-defined]
    got = main.get(include=["embeddings", "documents", "metadatas"])  # type: ignore[attr-defined]
    assert sorted(got["ids"]) == sorted(i.id for i in stored)
    assert all(m["story_id"] and m["published_ts"] for m in got["metadatas"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    sample = range(0, ITEMS, 40)
    expected = OnnxMiniLMEmbedder(minilm_models, "int8").embed([got["documents"][k] for k in sample])
    # int8 is dynamic quantisation: activation scales are taken per batch, so a text's vector moves a little with
    # the batch it was embedded in (measured: cosine >= 0.988 here); the hash vectors it replaced are near 0.
    assert float(np.min(np.sum(vectors[list(sample)] * expected, axis=1))) > 0.97
    old = HashEmbedder().embed([got["documents"][k] for k in sample])
    assert float(np.max(np.abs(np.sum(vectors[list(sample)] * old, axis=1)))) < 0.5

    found = subprocess.run([*tapewatch, "search", "ETH ETF inflows climb"], capture_output=True, text=True,
                           timeout=300, env=env())
    assert found.returncode == 0 and "ETH ETF inflows climb" in found.stdout, found.stderr
    again = subprocess.run([*tapewatch, "memory", "reembed"], capture_output=True, text=True, timeout=300, env=env())
    assert again.returncode == 0 and f"already embedded with {new}; nothing to do" in again.stdout


def test_a_run_killed_after_the_switch_finishes_cleanly(tmp_path: Path, minilm_models: Path) -> None:
    from memory.reembed import pending, reembed
    from tapewatch.clients import chroma_client, open_memory, open_state

    _, settings = configure(tmp_path, minilm_models)
    memory = open_memory(settings, embed=HashEmbedder())  # type: ignore[arg-type]
    memory.add(items(datetime.now(UTC))[:40])
    int8 = OnnxMiniLMEmbedder(minilm_models, "int8")
    client = chroma_client(settings)  # type: ignore[arg-type]
    state = open_state(settings)  # type: ignore[arg-type]
    seen: list[tuple[int, int]] = []
    reembed(client, state, "tapewatch-items", int8, batch=16, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 40) and seen[-1] == (40, 40) and pending(state, "tapewatch-items") is None
    # The progress row of a run killed between the switch and forgetting its progress: nothing is lost.
    from sqlalchemy import insert

    from memory import schema

    with state.engine.begin() as conn:
        conn.execute(insert(schema.reembed_progress).values(
            collection="tapewatch-items", embedder=int8.name, previous="test-hash", cursor="item00039", done=40,
            total=40, phase="switching", started_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
    result = reembed(client, state, "tapewatch-items", int8)
    assert result.items == 40 and pending(state, "tapewatch-items") is None
    assert client.get_collection("tapewatch-items").count() == 40
    assert client.get_collection("tapewatch-items").metadata["embedder"] == int8.name
    state.close()
