"""Narratives: paraphrased stories group, unrelated ones don't; labels, status, caps; real MiniLM on samples."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crew.narratives import find_narratives
from crew.signals import compute_signals
from memory.store import NearDuplicatePolicy
from sources.item import Item, item_id_for_url

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
_serial = itertools.count()

KORVEX = [
    ("Korvex exchange hack: hot wallet drained, withdrawals paused",
     "Korvex exchange paused withdrawals after its hot wallet was drained in a hack, the exchange said."),
    ("Korvex pauses withdrawals after hot wallet hack",
     "The Korvex exchange paused withdrawals after its hot wallet was drained in a hack on Monday."),
    ("Hack at Korvex exchange drains hot wallet",
     "Korvex exchange said its hot wallet was drained in a hack and withdrawals are paused."),
]
HALCYON = [
    ("Solana validators adopt the Halcyon client release",
     "Solana validators are adopting the Halcyon client release after the network congestion."),
    ("Halcyon client release reaches half of Solana validators",
     "Half of Solana validators are adopting the Halcyon client release after network congestion."),
    ("Why Solana validators rush to the Halcyon client release",
     "Solana validators rush to adopt the Halcyon client release after the congestion."),
]
SINGLETONS = [
    ("Dogecoin slides as meme traders rotate into newer tokens", "Meme coin traders rotate out of dogecoin."),
    ("Senate banking panel schedules December vote on market structure bill", "The vote is set for December 9."),
    ("Tokenised treasury fund on Ethereum passes one billion in assets", "The fund grew fast this quarter."),
    ("Lightning network capacity climbs to a record high", "Capacity rose to 6,100 BTC."),
]


def make_item(title: str, text: str, *, at: datetime, tickers: tuple[str, ...] = (), kind: str = "news",
              source: str = "outlet", engagement: int = 0) -> Item:
    """An item with a unique URL."""
    url = f"https://{source}.example/{next(_serial)}"
    return Item(id=item_id_for_url(url), kind=kind, source=source, url=url, title=title, text=text,
                published_at=at, fetched_at=at, tickers=tickers, metrics={"likes": engagement})


@pytest.fixture
def mem(memory: Any) -> Any:
    """Memory with near-duplicate linking off, so paraphrases stay separate stories."""
    memory.policy = NearDuplicatePolicy(threshold=0.6, kinds=())
    return memory


def window(memory: Any, now: datetime = NOW) -> tuple[list[Any], list[Any]]:
    rows = memory.state.window_items(now - 8 * DAY, now)
    return [r for r in rows if r.published_at >= now - DAY], [r for r in rows if r.published_at < now - DAY]


def narratives_of(memory: Any, **kwargs: Any) -> Any:
    current, baseline = window(memory)
    return find_narratives(current, baseline, memory.vectors, window_start=NOW - DAY, now=NOW, **kwargs)


def test_paraphrases_group_and_singletons_do_not(mem: Any) -> None:
    korvex = [make_item(t, x, at=NOW - timedelta(hours=20 - k), tickers=("BTC",), source=f"k{k}",
                        kind="forum" if k == 2 else "news")
              for k, (t, x) in enumerate(KORVEX)]
    halcyon = [make_item(t, x, at=NOW - timedelta(hours=10 - k), tickers=("SOL",), source=f"h{k}")
               for k, (t, x) in enumerate(HALCYON)]
    singles = [make_item(t, x, at=NOW - timedelta(hours=15 - k)) for k, (t, x) in enumerate(SINGLETONS)]
    mem.add([*korvex, *halcyon, *singles])
    found = narratives_of(mem)
    assert len(found) == 2
    by_ticker = {n.tickers: n for n in found}
    k, h = by_ticker["BTC",], by_ticker["SOL",]
    assert set(k.item_ids) == {i.id for i in korvex} and set(h.item_ids) == {i.id for i in halcyon}
    assert k.id == k.item_ids[0] and k.id in {i.id for i in korvex}
    # Korvex was told by media and forum, so it is broader and ranks first.
    assert found[0] is k and (k.clusters, h.clusters) == (2, 1)
    assert (k.size, k.reports, h.size, h.reports) == (3, 3, 3, 3)
    assert "korvex" in k.terms and "korvex" in k.label and k.label.startswith("BTC / ")
    assert "halcyon" in h.terms and "halcyon" in h.label
    assert not {"the", "after", "sol", "solana"} & set(h.terms)
    assert k.first_seen == korvex[0].published_at
    singles_ids = {i.id for i in singles}
    assert not any(singles_ids & set(n.item_ids) for n in found)


def test_near_duplicates_count_as_reports_not_stories(memory: Any) -> None:
    # With linking on, each paraphrase gets an outlet's near-copy: 3 stories, 6 reports.
    items = []
    for k, (t, x) in enumerate(HALCYON):
        items.append(make_item(t, x, at=NOW - timedelta(hours=10 - k), tickers=("SOL",), source=f"a{k}"))
        items.append(make_item(t + " (updated)", x, at=NOW - timedelta(hours=9 - k), tickers=("SOL",),
                               source=f"b{k}", kind="forum"))
    memory.policy = NearDuplicatePolicy(threshold=0.9)
    memory.add(items)
    (found,) = narratives_of(memory)
    assert (found.size, found.reports, found.clusters) == (3, 6, 2)
    assert set(found.item_ids) == {items[0].id, items[2].id, items[4].id}


def story_at(hours_ago: float, n: int, **kwargs: Any) -> Item:
    title, text = KORVEX[n % 3]
    return make_item(f"{title} update {n}", text, at=NOW - timedelta(hours=hours_ago), tickers=("BTC",), **kwargs)


@pytest.mark.parametrize(
    ("hours_ago", "status"),
    [
        ((5, 3, 1), "emerging"),  # first seen in the last 40% of the window
        ((20, 10, 8, 6), "hot"),  # 3 stories in the second half against 1 in the first
        ((22, 20, 18, 4), "cooling"),  # 1 against 3
        ((20, 18, 8, 6), "steady"),
    ],
)
def test_status_follows_timing(mem: Any, hours_ago: tuple[int, ...], status: str) -> None:
    mem.add([story_at(h, n) for n, h in enumerate(hours_ago)])
    (found,) = narratives_of(mem)
    assert found.size == len(hours_ago)
    assert found.status == status


def test_a_story_that_began_before_the_window_is_not_emerging(memory: Any) -> None:
    title, text = HALCYON[0]
    first = make_item(title, text, at=NOW - timedelta(hours=30), tickers=("SOL",), source="early")
    again = make_item(title, text + " Now confirmed.", at=NOW - timedelta(hours=3), tickers=("SOL",), source="late")
    other = make_item(*HALCYON[1], at=NOW - timedelta(hours=2), tickers=("SOL",), source="other")
    memory.policy = NearDuplicatePolicy(threshold=0.8, rule="cosine")  # 0.8: a cosine threshold for the hash embedder
    memory.add([first, again, other])
    (found,) = narratives_of(memory)
    assert found.first_seen == first.published_at
    assert found.status != "emerging"
    # The story is represented by its own first report, even though only its repeat is in the window.
    assert first.id in found.item_ids and again.id not in found.item_ids


class RecordingVectors:
    """Passes through to the real vector store and records what was fetched."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked: list[list[str]] = []

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        self.asked.append(list(ids))
        return self.inner.embeddings(ids)


def test_max_stories_caps_the_work_and_keeps_the_most_engaged(mem: Any) -> None:
    items = [story_at(20 - n, n, engagement=100 * n if n >= 6 else 0) for n in range(10)]
    mem.add(items)
    current, baseline = window(mem)
    vectors = RecordingVectors(mem.vectors)
    (found,) = find_narratives(current, baseline, vectors, window_start=NOW - DAY, now=NOW, max_stories=4)
    assert [len(ids) for ids in vectors.asked] == [4]
    assert found.size == 4
    assert set(found.item_ids) == {i.id for i in items[6:]}
    assert find_narratives(current, baseline, vectors, window_start=NOW - DAY, now=NOW, max_stories=1) == ()


def test_novelty_and_missing_vectors(mem: Any) -> None:
    items = [story_at(10 - n, n) for n in range(4)]
    mem.add(items)
    current, baseline = window(mem)
    (found,) = find_narratives(current, baseline, mem.vectors, window_start=NOW - DAY, now=NOW,
                               recent_item_ids=frozenset({items[0].id}))
    assert found.novelty == 0.75
    mem.vectors.delete(ids=[items[1].id, items[2].id])
    (smaller,) = find_narratives(current, baseline, mem.vectors, window_start=NOW - DAY, now=NOW)
    assert smaller.size == 2
    mem.vectors.delete(ids=[items[3].id])
    assert find_narratives(current, baseline, mem.vectors, window_start=NOW - DAY, now=NOW) == ()


def test_compute_signals_includes_narratives_when_asked(mem: Any) -> None:
    mem.add([make_item(t, x, at=NOW - timedelta(hours=9 - k), tickers=("SOL",), source=f"h{k}")
             for k, (t, x) in enumerate(HALCYON)])
    with_narratives = compute_signals(mem.state, mem.vectors, now=NOW)
    assert [n.size for n in with_narratives.narratives] == [3]
    assert compute_signals(mem.state, mem.vectors, now=NOW, narratives=False).narratives == ()
    assert compute_signals(mem.state, None, now=NOW).narratives == ()


@pytest.mark.slow
def test_real_minilm_surfaces_the_solana_client_story(tmp_path: Path, minilm_models: Path) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.minilm_onnx import OnnxMiniLMEmbedder
    from memory.state import StateDB
    from memory.store import Memory
    from sources.rss import parse_feed
    from sources.samples import SAMPLE_FEEDS, rebase, sample_body
    from sources.tickers import Watchlist
    from tapewatch.settings import DEFAULT_WATCHLIST

    embedder = OnnxMiniLMEmbedder(minilm_models)  # the default embedder
    client = chromadb.PersistentClient(str(tmp_path / "c"), settings=ChromaSettings(anonymized_telemetry=False))
    state = StateDB(f"sqlite:///{tmp_path / 's.db'}")
    memory = Memory(ChromaVectors(client, "items", embedder.name, embedder.dimension), state, embedder)
    ingested = datetime.now(UTC).replace(microsecond=0)
    for feed, filename in SAMPLE_FEEDS:
        parsed = parse_feed(sample_body(filename), feed, Watchlist(DEFAULT_WATCHLIST), fetched_at=ingested)
        memory.add(rebase(parsed.items, ingested))
    now = ingested + timedelta(minutes=1)

    started = time.perf_counter()
    signals = compute_signals(memory.state, memory.vectors, now=now)
    elapsed = time.perf_counter() - started
    print(f"compute_signals on the samples: {elapsed * 1000:.0f} ms")
    state.close()

    assert (signals.items, signals.stories) == (42, 33)
    sol = next(s for s in signals.tickers if s.ticker == "SOL")
    top = memory.state.story_items(sol.item_ids[0])
    titles = " ".join(r.title for r in top)
    in_narrative = any(
        "Halcyon" in " ".join(r.title for sid in n.item_ids for r in memory.state.story_items(sid))
        for n in signals.narratives if "SOL" in n.tickers
    )
    assert in_narrative or ("Halcyon" in titles and len(top) >= 5)
    # The story was told by news outlets and the forum: six reports, one story, two clusters.
    assert (sol.reports, sol.clusters) == (6, 2)
    assert sol.cluster_names == ("forum", "media")
    assert signals.tickers[0].score >= signals.tickers[-1].score
