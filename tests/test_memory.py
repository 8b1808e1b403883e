"""Memory: idempotent upserts, story grouping, filtered search (fast path and fallback), pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from memory.store import vector_metadata
from sources.item import Item, item_id_for_url

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make(slug: str, title: str, text: str = "", *, hours_ago: float = 1, kind: str = "news",
         source: str = "wire", tickers: tuple[str, ...] = ()) -> Item:
    url = f"https://{source}.example/{slug}"
    when = NOW - timedelta(hours=hours_ago)
    return Item(id=item_id_for_url(url), kind=kind, source=source, url=url, title=title, text=text or title,
                published_at=when, fetched_at=NOW, tickers=tickers)


def test_same_ids_twice_store_nothing_new(memory) -> None:
    items = [make("a", "Bitcoin ETF inflows hit record"), make("b", "Dogecoin meme rally fades")]
    first = memory.add(items)
    second = memory.add(items)
    assert (first.new, first.duplicate) == (2, 0)
    assert (second.new, second.duplicate, second.near_duplicate) == (0, 2, 0)
    assert memory.state.stats().items == 2
    assert memory.vectors.count() == 2


def test_repeated_id_within_one_batch_counts_as_duplicate(memory) -> None:
    item = make("a", "Solana fees fall")
    result = memory.add([item, item])
    assert (result.new, result.duplicate) == (1, 1)


def test_near_duplicates_join_the_first_report(memory) -> None:
    story = "Ethereum developers set the date for the Pectra upgrade on mainnet in March"
    first = make("eth-1", story, hours_ago=5, source="alpha")
    second = make("eth-2", "Ethereum developers set date for Pectra upgrade on mainnet", hours_ago=3, source="beta")
    other = make("doge", "Dogecoin jumps as meme traders return to the market", hours_ago=4, source="gamma")
    memory.add([first])
    result = memory.add([second, other])
    assert (result.new, result.near_duplicate) == (1, 1)
    members = memory.state.story_items(first.id)
    assert [r.id for r in members] == [first.id, second.id]
    assert members[1].similarity >= 0.6
    assert memory.state.stats().stories == 2


def test_near_duplicates_within_one_batch_link_to_the_earliest(memory) -> None:
    later = make("x-2", "Spot bitcoin ETFs record biggest inflow day ever as bitcoin climbs", hours_ago=1, source="b")
    earlier = make("x-1", "Spot bitcoin ETFs record biggest inflow day ever", hours_ago=2, source="a")
    result = memory.add([later, earlier])
    assert (result.new, result.near_duplicate) == (1, 1)
    assert [r.id for r in memory.state.story_items(earlier.id)] == [earlier.id, later.id]


def test_similar_items_outside_the_window_stay_separate(memory) -> None:
    title = "Spot bitcoin ETFs record biggest inflow day ever"
    memory.add([make("old", title, hours_ago=24 * 5)])
    result = memory.add([make("new", title + " again", hours_ago=1)])
    assert result.near_duplicate == 0 and result.new == 1


def test_social_posts_are_never_merged_by_default(memory) -> None:
    a = make("p1", "SOL looks strong here", kind="social", source="x")
    b = make("p2", "SOL looks strong here", kind="social", source="x2")
    assert memory.add([a, b]).new == 2


def test_search_returns_one_hit_per_story_with_its_source_count(memory) -> None:
    memory.add([
        make("s1", "Solana validators adopt new client release after congestion", source="a", hours_ago=3),
        make("s2", "Solana validators adopt the new client release after network congestion", source="b"),
        make("d1", "Dogecoin rallies on meme hype", source="c"),
    ])
    hits = memory.search("solana validators client release", 5)
    assert hits[0].title.startswith("Solana validators")
    assert hits[0].sources == 2
    assert sum(h.title.startswith("Solana") for h in hits) == 1


def test_search_filters_by_ticker_kind_and_time(memory) -> None:
    memory.add([
        make("btc-news", "Bitcoin miners expand capacity", tickers=("BTC",), hours_ago=2),
        make("btc-old", "Bitcoin miners sell reserves", tickers=("BTC",), hours_ago=24 * 10),
        make("eth-forum", "Ether miners are gone, stakers remain", tickers=("ETH",), kind="forum", source="reddit"),
        make("sol-news", "Solana miners? No, validators", tickers=("SOL",), hours_ago=3),
    ])
    ids = lambda hits: {h.url.rsplit("/", 1)[1] for h in hits}  # noqa: E731
    assert ids(memory.search("miners", 10, tickers=["btc"])) == {"btc-news", "btc-old"}
    assert ids(memory.search("miners", 10, kinds=["forum"])) == {"eth-forum"}
    recent = memory.search("miners", 10, since=NOW - timedelta(days=1))
    assert "btc-old" not in ids(recent) and "btc-news" in ids(recent)
    assert ids(memory.search("miners", 10, tickers=["BTC", "SOL"], since=NOW - timedelta(days=1))) == {
        "btc-news", "sol-news"}
    assert memory.search("miners", 10, tickers=["XRP"]) == []


def test_rare_filter_falls_back_to_the_store_filter(memory) -> None:
    # 150 items about one thing, two forum posts about something else: the unfiltered
    # over-fetch (100) misses the forum posts, so the metadata filter must find them.
    bulk = [make(f"n{i}", f"Bitcoin price update number {i}", tickers=("BTC",)) for i in range(150)]
    rare = [make("f1", "Gardening tips for winter", kind="forum", source="r"),
            make("f2", "Knitting patterns for scarves", kind="forum", source="r2")]
    memory.policy = type(memory.policy)(threshold=0.99, window=memory.policy.window, kinds=())
    memory.add(bulk + rare)
    hits = memory.search("bitcoin price update", 5, kinds=["forum"])
    assert {h.source for h in hits} == {"r", "r2"}


def test_vectors_without_rows_are_hidden_from_search(memory, hash_embedder) -> None:
    # As if a batch was killed after the vector upsert and before the rows were committed.
    ghost = make("ghost", "Bitcoin ghost story")
    memory.vectors.upsert([ghost.id], hash_embedder.embed([ghost.embedding_text()]), [ghost.embedding_text()],
                          [vector_metadata(ghost)])
    assert memory.search("bitcoin ghost story", 5) == []
    assert memory.add([ghost]).new == 1  # the next ingest heals it
    assert [h.id for h in memory.search("bitcoin ghost story", 5)] == [ghost.id]


def test_prune_removes_old_rows_and_vectors(memory, hash_embedder) -> None:
    old = make("old", "Old news about ether", hours_ago=24 * 100)
    new = make("new", "New news about ether", hours_ago=1)
    memory.add([old, new])
    orphan = make("orphan", "Orphan vector about ether", hours_ago=24 * 120)
    memory.vectors.upsert([orphan.id], hash_embedder.embed(["orphan"]), ["orphan"], [vector_metadata(orphan)])
    removed = memory.prune(timedelta(days=90), now=NOW)
    assert removed == 1
    assert memory.state.stats().items == 1
    assert memory.vectors.count() == 1
    assert [h.id for h in memory.search("news about ether", 5)] == [new.id]


def test_empty_memory_search_is_empty(memory) -> None:
    assert memory.search("anything", 5) == []
    assert memory.search("anything", 5, tickers=["BTC"]) == []


def test_hash_embedder_is_normalised(hash_embedder) -> None:
    vectors = hash_embedder.embed(["a b c", "bitcoin"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_rare_filter_with_many_candidates_uses_the_store_filter(memory, monkeypatch) -> None:
    import memory.store as store_module

    # With the candidate cap at 1 the id-restricted path is skipped for the metadata filter.
    monkeypatch.setattr(store_module, "_CANDIDATE_CAP", 1)
    bulk = [make(f"n{i}", f"Bitcoin price update number {i}", tickers=("BTC",)) for i in range(150)]
    rare = [make("f1", "Gardening tips for winter", kind="forum", source="r"),
            make("f2", "Knitting patterns for scarves", kind="forum", source="r2")]
    memory.policy = type(memory.policy)(threshold=0.99, window=memory.policy.window, kinds=())
    memory.add(bulk + rare)
    assert memory.state.candidate_ids(None, None, set(), ["forum"], cap=1) is None
    assert sorted(memory.state.candidate_ids(None, None, set(), ["forum"], cap=5)) == sorted(i.id for i in rare)
    hits = memory.search("bitcoin price update", 5, kinds=["forum"])
    # Chroma's HNSW search under a metadata filter is approximate and may miss one of two matches (about one
    # run in twelve); what this path must guarantee is that the filter holds and something is found.
    assert hits and {h.source for h in hits} <= {"r", "r2"}


def test_candidate_ids_combine_ticker_time_and_kind(memory) -> None:
    a = make("a", "Solana news", tickers=("SOL",), hours_ago=2)
    b = make("b", "Solana forum", tickers=("SOL",), kind="forum", source="r", hours_ago=2)
    c = make("c", "Old solana", tickers=("SOL",), hours_ago=24 * 9)
    d = make("d", "Bitcoin", tickers=("BTC",), hours_ago=2)
    memory.policy = type(memory.policy)(threshold=0.99, window=memory.policy.window, kinds=())
    memory.add([a, b, c, d])
    week = NOW - timedelta(days=7)
    assert set(memory.state.candidate_ids(week, None, {"SOL"}, [], cap=10)) == {a.id, b.id}
    assert set(memory.state.candidate_ids(week, None, {"SOL"}, ["news"], cap=10)) == {a.id}
    assert set(memory.state.candidate_ids(None, week, set(), [], cap=10)) == {c.id}


def test_vectors_embedded_ahead_are_stored_as_given_and_only_the_rest_embedded(memory) -> None:
    known = make("k", "Kraken lists a new stablecoin")
    memory.add([known])
    fresh = [make("a", "Bitcoin ETF inflows hit record"), make("b", "Dogecoin meme rally fades"),
             make("c", "Arbitrum DAO passes its grant vote")]
    ahead = memory.embed_new([known, *fresh[:2]])
    assert set(ahead) == {fresh[0].id, fresh[1].id}  # the stored item is not embedded again
    # Distinct marker vectors, so what was stored shows which side embedded it.
    marker = np.zeros(memory.embedder.dimension, dtype=np.float32)
    marker[7] = 1.0
    ahead[fresh[0].id] = marker
    calls = memory.embedder.calls
    result = memory.add([known, *fresh], embedded=ahead)

    assert (result.new + result.near_duplicate, result.duplicate) == (3, 1)
    assert memory.embedder.calls == calls + 1  # one call, for the item that was not embedded ahead
    stored = memory.vectors.embeddings([i.id for i in fresh])
    assert np.allclose(stored[fresh[0].id], marker, atol=1e-6)
    assert np.allclose(stored[fresh[1].id], ahead[fresh[1].id], atol=1e-6)
    assert np.allclose(stored[fresh[2].id], memory.embedder.embed([fresh[2].embedding_text()])[0], atol=1e-6)
