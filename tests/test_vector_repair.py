"""A lost vector store is detected (`memory`, `sources`, `search`) and `memory repair` restores search."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fakes.embedder import HashEmbedder
from tests.fakes.feed_server import FeedServer, Route
from tests.test_memory import make

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
runner = CliRunner()


def forget_chroma_clients() -> None:
    """What a new process sees: chromadb caches one client per path inside a process."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("tapewatch.clients.embedder", lambda _settings: HashEmbedder())
    for name in ("rss2.xml", "atom.xml", "rdf.xml"):
        feed_server.routes[f"/{name}"] = Route(body=(FEEDS / name).read_bytes())
    path = tmp_path / "tapewatch.toml"
    feeds = "".join(f'[[feeds]]\nname = "{n.split(".")[0]}"\nurl = "{feed_server.url("/" + n)}"\n'
                    for n in ("rss2.xml", "atom.xml", "rdf.xml"))
    path.write_text(f'data_dir = "{tmp_path / "data"}"\nsamples = "never"\n{feeds}')
    return path


def cli(config: Path, *args: str) -> Any:
    forget_chroma_clients()
    result = runner.invoke(__import__("tapewatch.cli", fromlist=["app"]).app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result


def test_a_deleted_chroma_directory_is_reported_and_repair_brings_search_back(config: Path, tmp_path: Path) -> None:
    ingested = cli(config, "ingest").output
    items = int(ingested.split(" new,")[0].split()[-1])
    assert items >= 5
    assert "Chainlink" in cli(config, "search", "chainlink price feeds tokenised gold").output
    assert "no vector" not in cli(config, "memory").output

    shutil.rmtree(tmp_path / "data" / "chroma")

    shown = cli(config, "memory").output
    assert f"{items} items, 0 vectors: {items} items have no vector" in shown
    assert "tapewatch memory repair" in shown
    assert f"{items} items, 0 vectors" in cli(config, "sources").output
    searched = cli(config, "search", "chainlink price feeds tokenised gold").output
    assert "Chainlink" not in searched and "tapewatch memory repair" in searched

    repaired = cli(config, "memory", "repair").output
    assert f"Re-embedded {items} of {items} items" in repaired
    assert "Chainlink" in cli(config, "search", "chainlink price feeds tokenised gold").output
    assert "no vector" not in cli(config, "memory").output
    assert "nothing to repair" in cli(config, "memory", "repair").output


def test_another_vector_store_counts_as_lost_and_reingest_restores_what_it_sees(
        config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingested = cli(config, "ingest").output
    items = int(ingested.split(" new,")[0].split()[-1])
    # Pointed at a different store (here another collection; a different server looks the same).
    monkeypatch.setenv("TAPEWATCH_MEMORY__COLLECTION", "elsewhere")
    assert f"{items} items, 0 vectors" in cli(config, "memory").output
    again = cli(config, "ingest").output
    assert f"0 new, {items} duplicate" in again
    assert "no vector" not in cli(config, "memory").output
    assert "Chainlink" in cli(config, "search", "chainlink price feeds tokenised gold").output


def test_repair_keeps_each_report_in_its_story(memory: Any) -> None:
    first = make("eth-1", "Ethereum developers set the date for the Pectra upgrade on mainnet", source="alpha",
                 hours_ago=5)
    second = make("eth-2", "Ethereum developers set date for Pectra upgrade on mainnet", source="beta", hours_ago=3)
    other = make("doge", "Dogecoin jumps as meme traders return", source="gamma", hours_ago=2)
    assert memory.add([first, second, other]).near_duplicate == 1
    memory.vectors.delete(ids=[second.id, other.id])
    health = memory.vector_health()
    assert (health.items, health.vectors, health.missing) == (3, 1, 2)
    assert "2 items have no vector" in health.summary()
    seen: list[tuple[int, int]] = []
    result = memory.repair(lambda done, total: seen.append((done, total)))
    assert (result.checked, result.missing, result.restored) == (3, 2, 2)
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    assert memory.vector_health().ok
    (hit,) = [h for h in memory.search("Pectra upgrade date", 3) if "Pectra" in h.title]
    assert hit.sources == 2  # both reports, one story
    restored = memory.vectors.query(memory.embedder.embed([second.embedding_text()]), n=1)[0][0]
    assert restored.id == second.id and restored.metadata["story_id"] == first.id
