"""The Ingestor end to end: loopback feeds → parse → real Memory (Chroma + SQLite)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from memory import schema
from memory.prices import PriceStore
from sources.item import item_id_for_url
from sources.rss import FeedSpec, Validators
from sources.samples import SAMPLE_FEEDS, SAMPLE_POSTS_SOURCE, SAMPLE_PRICES_SOURCE
from sources.tickers import Watchlist
from tapewatch import ingest as ingest_module
from tapewatch.ingest import Ingestor, SourceOutcome, ingest
from tests.fakes.feed_server import FeedServer, Route

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
WATCH = Watchlist({"BTC": ["bitcoin"], "ETH": ["ethereum", "ether"], "SOL": ["solana"]})
ETAG = '"rss2-v1"'


@pytest.fixture
def ingestor(memory: Any) -> Iterator[Ingestor]:
    timeout = httpx.Timeout(1.0, connect=1.0)
    with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=3) as client:
        yield Ingestor(memory, client, WATCH, max_body_bytes=1_000_000, deadline_s=5, concurrency=8)


@pytest.fixture
def roomy_ingestor(memory: Any) -> Iterator[Ingestor]:
    """An ingestor with time to spare: for tests about where the work runs, not about slow servers (under a
    loaded CI machine the 1 s read timeout above cut a loopback fetch short)."""
    timeout = httpx.Timeout(15.0, connect=5.0)
    with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=3) as client:
        yield Ingestor(memory, client, WATCH, max_body_bytes=1_000_000, deadline_s=30, concurrency=8)


def fixture_route(name: str, **kwargs: Any) -> Route:
    return Route(body=(FEEDS / name).read_bytes(), **kwargs)


def serve(server: FeedServer, routes: dict[str, Route]) -> list[FeedSpec]:
    server.routes.update({f"/{name}": route for name, route in routes.items()})
    return [FeedSpec(name, server.url(f"/{name}")) for name in routes]


def by_name(outcomes: list[SourceOutcome]) -> dict[str, SourceOutcome]:
    return {o.name: o for o in outcomes}


def health(memory: Any) -> dict[str, Any]:
    return {h.name: h for h in memory.state.source_health()}


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- mixed success and failure -------------------------------------------------------------------


def test_good_feeds_are_stored_and_each_failure_is_recorded(
    feed_server: FeedServer, ingestor: Ingestor, memory: Any
) -> None:
    feeds = serve(feed_server, {
        "rss2": fixture_route("rss2.xml"),
        "atom": fixture_route("atom.xml", content_type="application/atom+xml"),
        "truncated": fixture_route("truncated.xml"),
        "boom": Route(status=500, body=b"oops", content_type="text/plain"),
        "slow": fixture_route("rss2.xml", delay_s=1.2),
        "homepage": fixture_route("not_a_feed.html", content_type="text/html; charset=utf-8"),
        "huge": Route(body=b"<rss>" + b"x" * 1_000_001),
    })
    outcomes = by_name(ingestor.run(feeds))

    assert {n for n, o in outcomes.items() if o.status == "ok"} == {"rss2", "atom", "truncated"}
    assert all(o.new + o.near_duplicate == 3 for o in outcomes.values() if o.status == "ok")
    expected_errors = {"boom": "500", "slow": "timed out", "homepage": "not a feed", "huge": "cap"}
    for name, fragment in expected_errors.items():
        assert outcomes[name].status == "error"
        assert fragment in (outcomes[name].error or "")
        assert outcomes[name].unreachable is False

    stats = memory.state.stats()
    assert stats.items == 9
    assert stats.by_source == {"rss2": 3, "atom": 3, "truncated": 3}

    sources = health(memory)
    assert set(sources) == set(outcomes)
    for name, fragment in expected_errors.items():
        h = sources[name]
        assert (h.last_status, h.consecutive_errors, h.last_ok_at, h.items) == ("error", 1, None, 0)
        assert fragment in (h.last_error or "")
    for name in ("rss2", "atom", "truncated"):
        h = sources[name]
        assert (h.last_status, h.last_error, h.consecutive_errors, h.items) == ("ok", None, 0, 3)

    # the truncated feed's warnings reach the outcome and the fetch log; its items were stored
    assert any("malformed" in w for w in outcomes["truncated"].warnings)
    with memory.state.engine.connect() as conn:
        logged = conn.execute(select(schema.fetch_log.c.status, schema.fetch_log.c.warnings)
                              .where(schema.fetch_log.c.source == "truncated")).one()
    assert logged.status == "ok"
    assert "malformed" in logged.warnings


def test_one_feed_with_a_malformed_link_does_not_abort_the_run(
    feed_server: FeedServer, ingestor: Ingestor, memory: Any
) -> None:
    bad = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Bad</title><item><title>Bad port</title>'
           b"<link>https://bad.example:99999/a</link></item></channel></rss>")
    feeds = serve(feed_server, {"rss2": fixture_route("rss2.xml"), "badlink": Route(body=bad)})
    outcomes = by_name(ingestor.run(feeds))
    assert outcomes["rss2"].status == "ok"
    assert "badlink" in outcomes
    assert memory.state.stats().by_source.get("rss2") == 3


def test_consecutive_errors_count_up_and_reset_after_success(
    feed_server: FeedServer, ingestor: Ingestor, memory: Any
) -> None:
    feeds = serve(feed_server, {"flaky": Route(status=500, body=b"down", content_type="text/plain")})
    ingestor.run(feeds)
    ingestor.run(feeds)
    assert health(memory)["flaky"].consecutive_errors == 2
    assert "HTTP 500" in (health(memory)["flaky"].last_error or "")

    feed_server.routes["/flaky"] = fixture_route("rss2.xml")
    (outcome,) = ingestor.run(feeds)
    assert outcome.status == "ok"
    after_ok = health(memory)["flaky"]
    assert (after_ok.consecutive_errors, after_ok.last_error, after_ok.last_status) == (0, None, "ok")
    assert after_ok.last_ok_at is not None

    feed_server.routes["/flaky"] = Route(status=503, body=b"down", content_type="text/plain")
    ingestor.run(feeds)
    again = health(memory)["flaky"]
    assert again.consecutive_errors == 1
    assert "503" in (again.last_error or "")
    assert again.last_ok_at == after_ok.last_ok_at
    assert again.items == 3  # stored items survive later failures


# --- idempotency and conditional GET -------------------------------------------------------------


def test_second_run_stores_nothing_new(feed_server: FeedServer, ingestor: Ingestor, memory: Any) -> None:
    feeds = serve(feed_server, {
        "rss2": fixture_route("rss2.xml"),
        "atom": fixture_route("atom.xml"),
        "rdf": fixture_route("rdf.xml"),
        "latin1": fixture_route("latin1.xml", content_type="application/rss+xml"),
        "dates": fixture_route("future_and_missing_dates.xml"),
        "truncated": fixture_route("truncated.xml"),
    })
    first = by_name(ingestor.run(feeds))
    stats_before = memory.state.stats()
    second = by_name(ingestor.run(feeds))

    assert sum(o.new for o in first.values()) > 0
    for name, outcome in second.items():
        assert outcome.status == "ok"
        assert outcome.new == 0
        assert outcome.near_duplicate == 0
        assert outcome.duplicate == first[name].new + first[name].near_duplicate
    stats_after = memory.state.stats()
    assert stats_after.items == stats_before.items == sum(o.new + o.near_duplicate for o in first.values())
    assert stats_after.stories == stats_before.stories


def test_304_keeps_validators_and_skips_parsing(
    feed_server: FeedServer, ingestor: Ingestor, memory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    remembered = Validators(etag=ETAG, last_modified="Tue, 17 Nov 2026 16:00:00 GMT")
    feeds = serve(feed_server, {"rss2": fixture_route("rss2.xml", etag=ETAG, last_modified=remembered.last_modified)})
    (first,) = ingestor.run(feeds)
    assert (first.status, first.new) == ("ok", 3)
    assert memory.state.validators("rss2") == remembered

    parses: list[str] = []
    real_parse = ingest_module.parse_feed
    monkeypatch.setattr(ingest_module, "parse_feed", lambda *a, **k: parses.append("x") or real_parse(*a, **k))
    for _ in range(2):
        (outcome,) = ingestor.run(feeds)
        assert outcome.status == "not_modified"
        assert (outcome.new, outcome.duplicate, outcome.near_duplicate) == (0, 0, 0)
    assert parses == []
    assert [h.headers.get("if-none-match") for h in feed_server.hits] == [None, ETAG, ETAG]
    assert [h.headers.get("if-modified-since") for h in feed_server.hits] == [None] + [remembered.last_modified] * 2
    assert memory.state.validators("rss2") == remembered
    status = health(memory)["rss2"]
    assert (status.last_status, status.consecutive_errors, status.items) == ("not_modified", 0, 3)
    assert memory.state.stats().items == 3


def test_failed_parse_does_not_store_validators(feed_server: FeedServer, ingestor: Ingestor, memory: Any) -> None:
    # otherwise the next run would get a 304 and never see the feed once it is fixed
    feeds = serve(feed_server, {"page": fixture_route("not_a_feed.html", etag='"html"', content_type="text/html")})
    ingestor.run(feeds)
    ingestor.run(feeds)
    assert feed_server.hits[1].headers.get("if-none-match") is None
    assert memory.state.validators("page").etag is None


# --- near-duplicates -----------------------------------------------------------------------------

# The fixture outlets paraphrase the shared story too freely for the hash embedder: their pairwise
# similarity is 0.36-0.46, under the 0.6 threshold. These feeds reuse most of the wording instead.
_REPORT = ("Ethereum core developers agreed to activate the Pectra-2 upgrade on mainnet on February 17. "
           "The hard fork raises the blob target and adds account abstraction features.")
SHARED = [
    ("Ethereum developers set February 17 date for Pectra-2 upgrade", _REPORT, "14:00"),
    ("Ethereum developers set February 17 for Pectra-2 hard fork", _REPORT.replace("agreed", "agreed today"), "15:10"),
    ("Ethereum core devs set February 17 date for Pectra-2 upgrade", _REPORT.replace("hard fork", "fork"), "16:45"),
]
UNRELATED = [
    ("DOGE rallies 14% as meme traders pile back in", "Dogecoin jumped 14% to $0.41 as a viral dog video spread."),
    ("TON launches standalone self-custody wallet app", "The TON ecosystem released a mobile wallet with staking."),
    ("Appeals court sides with XRP holders", "A federal appeals court upheld a ruling on secondary-market XRP sales."),
]


def outlet_feed(letter: str, shared: tuple[str, str, str], unrelated: tuple[str, str]) -> bytes:
    def item(slug: str, title: str, text: str, hhmm: str) -> str:
        return (f"<item><title>{title}</title><link>https://outlet-{letter}.example/{slug}?utm_source=rss</link>"
                f"<pubDate>Fri, 20 Nov 2026 {hhmm}:00 +0000</pubDate><description>{text}</description></item>")

    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Outlet {letter}</title>'
            + item("pectra", *shared) + item("other", *unrelated, "09:30") + "</channel></rss>").encode()


def story_id_of(memory: Any, link: str) -> str:
    return str(memory.state.items_by_ids([item_id_for_url(link)])[item_id_for_url(link)].story_id)


def test_same_story_from_three_outlets_becomes_one_story(
    feed_server: FeedServer, ingestor: Ingestor, memory: Any
) -> None:
    routes = {f"outlet_{c}": Route(body=outlet_feed(c, s, u)) for c, s, u in zip("abc", SHARED, UNRELATED, strict=True)}
    outcomes = ingestor.run(serve(feed_server, routes))
    assert sum(o.new for o in outcomes) == 4
    assert sum(o.near_duplicate for o in outcomes) == 2

    stats = memory.state.stats()
    assert (stats.items, stats.stories, stats.near_duplicates) == (6, 4, 2)
    pectra = [f"https://outlet-{c}.example/pectra" for c in "abc"]
    (story,) = {story_id_of(memory, url) for url in pectra}
    members = memory.state.story_items(story)
    assert sorted(r.url for r in members) == pectra
    assert sum(r.id == story for r in members) == 1  # the story's first report heads it
    assert all(r.similarity >= 0.6 for r in members if r.id != story)
    for url in (f"https://outlet-{c}.example/other" for c in "abc"):
        own = story_id_of(memory, url)
        assert own == item_id_for_url(url)
        assert [r.url for r in memory.state.story_items(own)] == [url]
    hit = memory.search("Pectra-2 upgrade date February 17", 1)[0]
    assert hit.url in pectra
    assert hit.sources == 3


def test_fixture_outlets_keep_unrelated_stories_apart(feed_server: FeedServer, ingestor: Ingestor, memory: Any) -> None:
    routes = {n: fixture_route(f"near_duplicates/{n}.xml") for n in ("outlet_a", "outlet_b", "outlet_c")}
    outcomes = ingestor.run(serve(feed_server, routes))
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert memory.state.stats().items == 6
    for url in ("https://outlet-a.example/news/2026/11/20/doge-meme-rally",
                "https://outlet-b.example/ton/standalone-wallet-launch",
                "https://outlet-c.example/2026/11/20/xrp-appeals-court-ruling"):
        assert story_id_of(memory, url) == item_id_for_url(url)
        assert len(memory.state.story_items(item_id_for_url(url))) == 1


# --- bundled samples as the offline fallback -----------------------------------------------------

SAMPLE_NAMES = {spec.name for spec, _ in SAMPLE_FEEDS} | {SAMPLE_POSTS_SOURCE}


def offline_feeds() -> list[FeedSpec]:
    return [FeedSpec(f"down-{n}", f"http://127.0.0.1:{closed_port()}/feed.xml") for n in range(2)]


def test_samples_stand_in_when_every_feed_is_unreachable(ingestor: Ingestor, memory: Any) -> None:
    report = ingest(ingestor, offline_feeds(), samples="auto")
    assert report.used_samples is True
    assert not report.failed
    errors = [o for o in report.outcomes if o.status == "error"]
    assert [o.unreachable for o in errors] == [True, True]
    # Sample prices are snapshots in the state DB, not items.
    assert {o.name for o in report.outcomes if o.status == "ok"} == SAMPLE_NAMES | {SAMPLE_PRICES_SOURCE}
    assert set(memory.state.stats().by_source) == SAMPLE_NAMES
    prices = PriceStore(memory.state)
    assert prices.change_pct("SOL", datetime.now(UTC) - timedelta(hours=24), datetime.now(UTC)) == pytest.approx(
        3.5957, abs=0.01)
    again = {o.name: o for o in ingest(ingestor, offline_feeds(), samples="auto").outcomes}
    assert (again[SAMPLE_PRICES_SOURCE].new, again[SAMPLE_PRICES_SOURCE].duplicate) == (0, 350)
    assert prices.count() == 350


def test_samples_never_means_never(ingestor: Ingestor, memory: Any) -> None:
    report = ingest(ingestor, offline_feeds(), samples="never")
    assert report.used_samples is False
    assert report.failed
    assert memory.state.stats().items == 0


@pytest.mark.parametrize("second", ["good", "http_error"])
def test_samples_not_used_when_any_feed_is_reachable(
    feed_server: FeedServer, ingestor: Ingestor, memory: Any, second: str
) -> None:
    route = fixture_route("rss2.xml") if second == "good" else Route(status=500, body=b"x", content_type="text/plain")
    feeds = offline_feeds()[:1] + serve(feed_server, {"reachable": route})
    report = ingest(ingestor, feeds, samples="auto")
    assert report.used_samples is False
    assert not (SAMPLE_NAMES | {SAMPLE_PRICES_SOURCE}) & {o.name for o in report.outcomes}
    assert not SAMPLE_NAMES & set(memory.state.stats().by_source)


# --- embedding ahead: each fetched feed is embedded in a worker while the one before is stored ------------------


class ThreadNoting:
    """The fast embedder, noting which thread each call runs on (and failing there if told to)."""

    def __init__(self, inner: Any, fail_in: str | None = None) -> None:
        self.inner, self.fail_in = inner, fail_in
        self.name, self.dimension = inner.name, inner.dimension
        self.threads: list[str] = []

    def embed(self, texts: list[str]) -> Any:
        import threading

        from sources.errors import StoreError

        where = threading.current_thread().name
        self.threads.append(where)
        if self.fail_in and where.startswith(self.fail_in):
            raise StoreError("the embedder is out of memory")
        return self.inner.embed(texts)


def test_fetched_feeds_are_embedded_in_the_worker_and_stored_in_the_callers_thread(
    feed_server: FeedServer, roomy_ingestor: Ingestor, memory: Any
) -> None:
    import threading

    noting = ThreadNoting(memory.embedder)
    memory.embedder = noting
    stored_in: list[str] = []
    add = memory.add
    memory.add = lambda *a, **k: (stored_in.append(threading.current_thread().name), add(*a, **k))[1]
    feeds = serve(feed_server, {"rss2": fixture_route("rss2.xml"), "atom": fixture_route(
        "atom.xml", content_type="application/atom+xml"), "rdf": fixture_route("rdf.xml")})
    outcomes = by_name(roomy_ingestor.run(feeds))

    assert all(o.status == "ok" and o.new + o.near_duplicate > 0 for o in outcomes.values()), outcomes
    assert noting.threads and all(t.startswith("embed") for t in noting.threads), noting.threads
    assert stored_in == [threading.current_thread().name] * 3
    assert memory.vector_health().ok and memory.state.stats().items == sum(
        o.new + o.near_duplicate for o in outcomes.values())


def test_one_story_in_two_feeds_of_a_pass_is_stored_once_though_both_were_embedded_ahead(
    feed_server: FeedServer, roomy_ingestor: Ingestor, memory: Any
) -> None:
    feeds = serve(feed_server, {"first": fixture_route("rss2.xml"), "mirror": fixture_route("rss2.xml")})
    outcomes = roomy_ingestor.run(feeds)

    assert sorted((o.new + o.near_duplicate, o.duplicate) for o in outcomes) == [(0, 3), (3, 0)]
    ids = memory.state.item_ids()
    assert len(ids) == len(set(ids)) == 3 and memory.vectors.count() == 3


def test_embedding_ahead_failing_leaves_the_embedding_to_the_store(
    feed_server: FeedServer, roomy_ingestor: Ingestor, memory: Any
) -> None:
    noting = ThreadNoting(memory.embedder, fail_in="embed")
    memory.embedder = noting
    outcomes = roomy_ingestor.run(serve(feed_server, {"rss2": fixture_route("rss2.xml")}))

    assert [(o.status, o.new + o.near_duplicate) for o in outcomes] == [("ok", 3)]
    assert [t.startswith("embed") for t in noting.threads] == [True, False]
    assert memory.vector_health().ok
