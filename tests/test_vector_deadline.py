"""Vector-store calls end within a deadline: a hung store is a StoreError against the batch, never a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from memory.chroma import ChromaVectors, VectorHit
from memory.deadline import Deadline
from memory.state import StateDB
from memory.store import Memory
from sources.errors import StoreError
from sources.rss import FeedSpec
from sources.tickers import Watchlist
from tapewatch.ingest import Ingestor
from tests.fakes.embedder import HashEmbedder
from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.stalling_proxy import StallingProxy
from tests.test_chroma_server import chroma_server  # noqa: F401  (a real `chroma run` on loopback)

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
WATCH = Watchlist({"BTC": ["bitcoin"], "ETH": ["ethereum", "ether"]})


class HangingVectors:
    """A real Chroma collection behind the public Protocol whose writes hang until released."""

    def __init__(self, inner: ChromaVectors) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = threading.Event()

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[dict[str, Any]]) -> None:
        self.entered.set()
        self.release.wait()  # like Chroma's upsert on a nearly full disk: no error, no return
        self.inner.upsert(ids, embeddings, documents, metadatas)

    def query(self, embeddings: np.ndarray, n: int, where: dict[str, Any] | None = None,
              ids: Sequence[str] | None = None, metadata: bool = True) -> list[list[VectorHit]]:
        return self.inner.query(embeddings, n, where=where, ids=ids, metadata=metadata)

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self.inner.embeddings(ids)

    def present(self, ids: Sequence[str]) -> set[str]:
        return self.inner.present(ids)

    def delete(self, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None) -> None:
        self.inner.delete(ids=ids, where=where)

    def count(self) -> int:
        return self.inner.count()


@pytest.fixture
def hanging(tmp_path: Path, hash_embedder: HashEmbedder, state_url: str) -> Iterator[tuple[Memory, HangingVectors]]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    store = HangingVectors(ChromaVectors(client, "items", hash_embedder.name, hash_embedder.dimension))
    state = StateDB(state_url)
    yield Memory(store, state, hash_embedder, deadline=Deadline(0.5)), store
    store.release.set()
    state.close()


def ingest_rss(memory: Memory, feed_server: FeedServer) -> Any:
    feed_server.routes["/wire"] = Route(body=(FEEDS / "rss2.xml").read_bytes())
    with httpx.Client(timeout=2.0) as client:
        ingestor = Ingestor(memory, client, WATCH, max_body_bytes=1_000_000, deadline_s=5)
        return ingestor.run([FeedSpec("wire", feed_server.url("/wire"))])[0]


def test_a_hung_vector_write_ends_in_an_error_recorded_against_the_feed(
        hanging: tuple[Memory, HangingVectors], feed_server: FeedServer) -> None:
    memory, store = hanging
    started = time.monotonic()
    outcome = ingest_rss(memory, feed_server)
    assert time.monotonic() - started < 10
    assert store.entered.is_set()  # the write really was stuck inside the store
    assert outcome.status == "error"
    assert "did not answer within 0.5s" in (outcome.error or "") and "upsert of 3 vectors" in (outcome.error or "")
    (health,) = memory.state.source_health()
    assert health.last_status == "error" and "did not answer" in (health.last_error or "")
    assert memory.state.stats().items == 0  # nothing half-stored in the state DB

    # The store comes back: the stuck write lands (vectors with no rows stay hidden) and the next run stores all.
    store.release.set()
    deadline = time.monotonic() + 10
    while memory.vectors.deadline.stuck() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert memory.vectors.deadline.stuck() == 0
    assert memory.search("bitcoin", 5) == []
    again = ingest_rss(memory, feed_server)
    assert (again.status, again.new) == ("ok", 3)
    assert memory.state.stats().items == 3 and memory.vectors.count() == 3


def test_reads_have_the_deadline_too_and_stuck_calls_are_capped() -> None:
    gate = threading.Event()
    deadline = Deadline(0.2, workers=2, max_stuck=2)
    try:
        for _ in range(2):
            with pytest.raises(StoreError, match=r"did not answer within 0.2s \(query\)"):
                deadline.call("query", gate.wait)
        assert deadline.stuck() == 2
        started = time.monotonic()
        with pytest.raises(StoreError, match="2 calls are stuck"):
            deadline.call("count", lambda: 1)
        assert time.monotonic() - started < 0.1  # refused at once, no third thread stranded
    finally:
        gate.set()
    end = time.monotonic() + 5
    while deadline.stuck() and time.monotonic() < end:
        time.sleep(0.02)
    assert deadline.call("count", lambda: 7) == 7


def test_a_failing_call_raises_its_own_error_through_the_deadline() -> None:
    def boom() -> None:
        raise StoreError("vector upsert failed: disk I/O error")

    with pytest.raises(StoreError, match="disk I/O error"):
        Deadline(5).call("upsert", boom)


@pytest.mark.slow
def test_a_chroma_server_that_stops_answering_ends_the_write_at_the_deadline(
        chroma_server: str, tmp_path: Path, hash_embedder: HashEmbedder) -> None:  # noqa: F811
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    with StallingProxy(int(chroma_server.rsplit(":", 1)[1])) as proxy:
        # A real HttpClient (which itself sends with no timeout) through a proxy that will go silent.
        client = chromadb.HttpClient(host="127.0.0.1", port=proxy.port,
                                     settings=ChromaSettings(anonymized_telemetry=False))
        state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
        memory = Memory(ChromaVectors(client, "items", hash_embedder.name, hash_embedder.dimension), state,
                        hash_embedder, deadline=Deadline(1.0))
        from tests.test_memory import make

        assert memory.add([make("a", "Bitcoin ETF inflows hit a record")]).new == 1
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(StoreError, match="did not answer within 1s"):
            memory.add([make("b", "Solana validators ship a new client")])
        assert time.monotonic() - started < 5
        assert proxy.requests_swallowed >= 1
        assert state.stats().items == 1  # the stalled batch wrote no rows
        with pytest.raises(StoreError, match="did not answer within 1s"):
            memory.search("bitcoin", 3)
        state.close()
