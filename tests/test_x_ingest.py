"""XIngestor end to end: real tweepy Client → fake X API v2 → real Memory (Chroma + SQLite).

Timelines, search, pagination, missing includes, 429, 5xx, 401, the monthly budget and cursors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from memory import schema
from memory.quotas import Quotas, month_of
from memory.state import FetchRecord, Link, StateDB
from sources.errors import StoreError
from sources.item import Item, item_id_for_post
from sources.tickers import Watchlist
from sources.x import XReader, account_source, post_time, query_source
from tapewatch.clients import x_client
from tapewatch.ingest_x import XIngestor, XRunReport
from tapewatch.jobs import x_specs
from tapewatch.settings import DEFAULT_WATCHLIST, Settings, XSettings
from tests.fakes.x_api import FakeXAPI, serving_x

WATCH = Watchlist(DEFAULT_WATCHLIST)


@pytest.fixture
def x() -> Any:
    with serving_x() as server:
        yield server


def make(memory: Any, x: FakeXAPI, clock: Callable[[], datetime] | None = None, **xs: Any) -> XIngestor:
    """An XIngestor over the real tweepy client that tapewatch builds, pointed at the fake."""
    xs.setdefault("backoff", "0.01s")
    settings = Settings(x_bearer_token="t", x={"api_base_url": x.base_url, "timeout": "2s", **xs})
    reader = XReader(x_client(settings), attempts=settings.x.attempts, backoff_s=settings.x.backoff.total_seconds())
    return XIngestor(memory, reader, Quotas(memory.state), WATCH, settings.x, clock=clock)


def specs_of(settings: XSettings) -> list[Any]:
    return x_specs(Settings(x=settings.model_dump()))


def run(ing: XIngestor) -> XRunReport:
    return ing.run(specs_of(ing.settings))


def by_name(report: XRunReport) -> dict[str, Any]:
    return {o.name: o for o in report.outcomes}


def stored(memory: Any, source: str) -> list[Any]:
    with memory.state.engine.connect() as conn:
        return list(conn.execute(select(schema.items).where(schema.items.c.source == source)))


def test_timelines_and_search_are_stored_with_clusters_metrics_and_cursors(memory: Any, x: FakeXAPI) -> None:
    mira, ansel, rando = x.add_user("mira_onchain"), x.add_user("ansel_perps"), x.add_user("rando")
    x.post(mira, "ETH exchange reserves at a low $ETH", likes=400, reposts=90)
    last_mira = x.post(mira, "Staking inflows keep climbing, $ETH", likes=50)
    x.post(ansel, "$SOL funding negative, small long", likes=57, replies=11)
    x.post(rando, "$SOL to the moon")
    ing = make(memory, x, accounts=[{"handle": "mira_onchain", "cluster": "researcher"},
                                    {"handle": "@ansel_perps", "cluster": "trader"}], queries=["$SOL -is:retweet"])
    report = run(ing)
    outcomes = by_name(report)
    assert [o.status for o in report.outcomes] == ["ok", "ok", "ok"]
    assert outcomes["x:@mira_onchain"].new == 2 and outcomes["x:@ansel_perps"].new == 1
    # Search finds ansel's post again (a duplicate) and rando's post (unclustered).
    search = outcomes["x:search:$SOL -is:retweet"]
    assert (search.new, search.duplicate) == (1, 1)
    rows = {r.author: r for r in stored(memory, "x:@mira_onchain") + stored(memory, "x:search:$SOL -is:retweet")}
    assert rows["@mira_onchain"].cluster == "researcher" and rows["@rando"].cluster == ""
    assert rows["@rando"].url.startswith("https://x.com/rando/status/")
    top = max(stored(memory, "x:@mira_onchain"), key=lambda r: r.engagement)
    assert top.engagement == 400 + 2 * 90 and top.tickers == "ETH"
    assert memory.state.cursor("x:@mira_onchain") == last_mira.id
    assert report.posts_read == 5 and Quotas(memory.state).usage(month_of(datetime.now(UTC))).posts == 5
    # Handles are resolved once and cached; a second pass asks only for posts after the cursors.
    x.requests.clear()
    again = run(ing)
    assert not x.calls("/2/users/by") and again.posts_read == 0
    assert x.calls(f"/2/users/{mira.id}/tweets")[0].query["since_id"] == [last_mira.id]


def test_pagination_first_run_reads_only_the_newest_page(memory: Any, x: FakeXAPI) -> None:
    alice = x.add_user("alice")
    posts = [x.post(alice, f"note {n} on bitcoin") for n in range(25)]
    ing = make(memory, x, accounts=[{"handle": "alice"}], max_results=10, max_pages=3, first_run_pages=1)
    first = run(ing)
    assert first.outcomes[0].new == 10 and "page(s) of new posts" in first.outcomes[0].warnings[0]
    assert memory.state.cursor("x:@alice") == posts[-1].id
    for n in range(25, 50):
        posts.append(x.post(alice, f"note {n} on ether"))
    x.requests.clear()
    second = run(ing)
    # 25 new posts at 10 per page: three pages, each one asking only for posts after the cursor.
    calls = x.calls(f"/2/users/{alice.id}/tweets")
    assert len(calls) == 3 and all(c.query["since_id"] == [posts[24].id] for c in calls)
    assert [c.query.get("pagination_token") for c in calls] == [None, ["10"], ["20"]]
    assert second.outcomes[0].new == 25 and second.outcomes[0].warnings == ()
    assert memory.state.cursor("x:@alice") == posts[-1].id


def test_page_cap_stores_what_was_read_and_says_older_posts_were_skipped(memory: Any, x: FakeXAPI) -> None:
    alice = x.add_user("alice")
    x.post(alice, "first")
    ing = make(memory, x, accounts=[{"handle": "alice"}], max_results=10, max_pages=2)
    run(ing)
    newest = [x.post(alice, f"burst {n}") for n in range(35)][-1]
    report = run(ing)
    assert report.outcomes[0].new == 20 and report.posts_read == 20 and report.used == 21
    assert "older ones were skipped (x.max_pages)" in report.outcomes[0].warnings[0]
    assert memory.state.cursor("x:@alice") == newest.id


def test_responses_without_includes(memory: Any, x: FakeXAPI) -> None:
    alice, stranger = x.add_user("alice"), x.add_user("stranger")
    x.post(alice, "alice on $SUI")
    x.post(stranger, "stranger on $SUI")
    x.omit_includes = True
    report = run(make(memory, x, accounts=[{"handle": "alice", "cluster": "dev"}], queries=["$SUI"]))
    assert [o.status for o in report.outcomes] == ["ok", "ok"]
    timeline = stored(memory, "x:@alice")[0]
    assert timeline.author == "@alice" and timeline.cluster == "dev" and "/alice/status/" in timeline.url
    # The timeline already stored alice's post; the stranger is known only by id.
    unknown = stored(memory, "x:search:$SUI")[0]
    assert unknown.author == "" and unknown.url.startswith("https://x.com/i/web/status/")


def test_429_pauses_the_endpoint_until_the_reset_time(memory: Any, x: FakeXAPI) -> None:
    alice, bob = x.add_user("alice"), x.add_user("bob")
    x.post(alice, "a")
    x.post(bob, "b")
    reset = int(time.time()) + 900
    x.fail_next("/2/users/", 429, headers={"x-rate-limit-reset": str(reset)}, method="GET")
    now = [datetime.now(UTC)]
    ing = make(memory, x, clock=lambda: now[0], accounts=[{"handle": "alice"}, {"handle": "bob"}], queries=["b"])
    # The 429 lands on the handle lookup: timelines wait for it, search (no lookup needed) goes on.
    report = run(ing)
    assert [o.status for o in report.outcomes] == ["skipped", "skipped", "ok"] and "429" in report.notes[0]
    x.requests.clear()
    report = run(ing)
    assert not x.calls("/2/users/") and len(x.calls("/2/tweets/search/recent")) == 1
    assert "paused until" in (report.outcomes[0].error or "")
    now[0] = datetime.fromtimestamp(reset + 1, tz=UTC)
    report = run(ing)
    assert [o.status for o in report.outcomes] == ["ok", "ok", "ok"]
    # A 429 on one timeline skips the other timelines but not search (separate limits).
    x.post(alice, "a2")
    x.post(bob, "b2")
    x.fail_next(f"/2/users/{alice.id}/tweets", 429, headers={"x-rate-limit-reset": str(reset + 900)})
    report = run(ing)
    assert [o.status for o in report.outcomes] == ["skipped", "skipped", "ok"]
    assert "429" in report.outcomes[0].error and "paused until" in report.outcomes[1].error
    assert len(x.calls(f"/2/users/{bob.id}/tweets")) == 1  # only the earlier successful pass
    health = {h.name: h for h in memory.state.source_health()}
    assert health["x:@alice"].consecutive_errors == 0  # a rate limit is not the source's fault


def test_search_cursor_older_than_seven_days_is_not_sent(memory: Any, x: FakeXAPI) -> None:
    x.post(x.add_user("alice"), "quiet $TON niche")
    now = [datetime.now(UTC)]
    ing = make(memory, x, clock=lambda: now[0], queries=["$TON niche"])
    run(ing)
    cursor = memory.state.cursor("x:search:$TON niche")
    assert post_time(cursor) is not None and abs(post_time(cursor) - now[0]) < timedelta(minutes=1)  # type: ignore[operator]
    x.requests.clear()
    now[0] += timedelta(days=8)  # a week with no new match: X would refuse this since_id
    report = run(ing)
    assert "since_id" not in x.calls("/2/tweets/search/recent")[0].query
    assert "older than recent search's 7 days" in report.outcomes[0].warnings[0]


def test_500_then_success_stores_normally(memory: Any, x: FakeXAPI) -> None:
    alice = x.add_user("alice")
    x.post(alice, "after a hiccup")
    ing = make(memory, x, accounts=[{"handle": "alice"}])
    run(ing)  # resolves the handle
    x.post(alice, "second")
    x.fail_next(f"/2/users/{alice.id}/tweets", 500)
    report = run(ing)
    assert report.outcomes[0].status == "ok" and report.outcomes[0].new == 1
    assert len(x.calls(f"/2/users/{alice.id}/tweets")) == 3


def test_persistent_5xx_is_recorded_on_that_source_and_the_rest_go_on(memory: Any, x: FakeXAPI) -> None:
    alice, bob = x.add_user("alice"), x.add_user("bob")
    x.post(alice, "a")
    x.post(bob, "b")
    ing = make(memory, x, accounts=[{"handle": "alice"}, {"handle": "bob"}], attempts=2)
    run(ing)
    x.post(alice, "a2")
    x.fail_next(f"/2/users/{alice.id}/tweets", 502, times=2)
    report = run(ing)
    assert [o.status for o in report.outcomes] == ["error", "ok"]
    health = {h.name: h for h in memory.state.source_health()}
    assert health["x:@alice"].last_status == "error" and "502" in (health["x:@alice"].last_error or "")


def test_401_stops_the_pass_with_one_clear_error(memory: Any, x: FakeXAPI) -> None:
    for name in ("alice", "bob", "carol"):
        x.post(x.add_user(name), "hi")
    x.fail_next("/2/users/by", 401)
    report = run(make(memory, x, accounts=[{"handle": h} for h in ("alice", "bob", "carol")]))
    assert [o.status for o in report.outcomes] == ["error"] * 3
    assert all("TAPEWATCH_X_BEARER_TOKEN" in (o.error or "") for o in report.outcomes)
    assert len(x.requests) == 1


def test_unknown_handle_is_an_error_on_that_source(memory: Any, x: FakeXAPI) -> None:
    x.post(x.add_user("alice"), "hi")
    report = run(make(memory, x, accounts=[{"handle": "alice"}, {"handle": "ghost_account"}]))
    assert [o.status for o in report.outcomes] == ["ok", "error"]
    assert "no account @ghost_account" in (report.outcomes[1].error or "")


def test_budget_caps_the_request_size_then_stops_reading_until_next_month(memory: Any, x: FakeXAPI) -> None:
    users = [x.add_user(n) for n in ("alice", "bob", "carol")]
    for user in users:
        for n in range(20):
            x.post(user, f"{user.username} post {n}")
    now = [datetime(2026, 11, 20, 12, tzinfo=UTC)]
    ing = make(memory, x, clock=lambda: now[0], accounts=[{"handle": u.username} for u in users],
               monthly_read_budget=30, max_results=100)
    report = run(ing)
    sizes = [c.query["max_results"] for c in x.calls("/2/users/") if c.path.endswith("/tweets")]
    assert sizes == [["30"], ["10"]]  # never asks for more than the budget has left
    assert [o.status for o in report.outcomes] == ["ok", "ok", "skipped"]
    assert [o.new for o in report.outcomes] == [20, 10, 0]
    assert "monthly X read budget reached: 30 of 30" in report.notes[0] and "2026-12-01" in report.notes[0]
    assert (report.used, report.budget) == (30, 30)
    x.requests.clear()
    report = run(ing)
    assert not x.requests and {o.status for o in report.outcomes} == {"skipped"}
    now[0] = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)  # a new month: reading resumes
    report = run(ing)
    assert Quotas(memory.state).usage("2026-12").posts == report.posts_read > 0
    assert Quotas(memory.state).usage("2026-11").posts == 30


def test_cursors_survive_a_restart_and_nothing_is_read_twice(tmp_path: Path, x: FakeXAPI, hash_embedder: Any,
                                                              state_url: str) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.store import Memory

    def open_memory() -> Memory:
        client = chromadb.PersistentClient(path=str(tmp_path / "chroma"),
                                           settings=ChromaSettings(anonymized_telemetry=False))
        vectors = ChromaVectors(client, "x-items", hash_embedder.name, hash_embedder.dimension)
        return Memory(vectors, StateDB(state_url), hash_embedder)

    alice = x.add_user("alice")
    for n in range(4):
        x.post(alice, f"before restart {n}")
    first = open_memory()
    assert run(make(first, x, accounts=[{"handle": "alice"}], queries=["restart"])).posts_read == 8
    first.state.close()
    after = [x.post(alice, f"after restart {n}") for n in range(2)]
    x.requests.clear()
    second = open_memory()
    report = run(make(second, x, accounts=[{"handle": "alice"}], queries=["restart"]))
    # Only the two new posts are read, once by the timeline and once by the search (X bills both).
    assert report.posts_read == 4 and [o.new for o in report.outcomes] == [2, 0]
    assert not x.calls("/2/users/by")  # the user id came from the state DB
    assert second.state.cursor("x:@alice") == after[-1].id
    assert second.state.stats().items == 6


def test_cursor_moves_only_with_its_items(memory: Any) -> None:
    """The cursor is written in the items' transaction: a batch that fails to store leaves it where it was."""
    state = memory.state
    now = datetime.now(UTC)
    item = Item(id=item_id_for_post("x", "5"), kind="social", source="x:@a", url="https://x.com/a/status/5",
                title="t", text="t", published_at=now, fetched_at=now)
    record = FetchRecord(source="x:@a", kind="social", url="https://x.com/a", started_at=now, finished_at=now,
                         status="ok", cursor="5")
    state.commit_batch([item], [], record)
    assert state.cursor("x:@a") == "5"
    clash = Item(id=item_id_for_post("x", "9"), kind="social", source="x:@a", url="https://x.com/a/status/9",
                 title="t", text="t", published_at=now, fetched_at=now)
    with pytest.raises(StoreError):  # the same new id twice in one batch violates the primary key
        state.commit_batch([clash], [Link(clash, clash.id, 1.0)], FetchRecord(**{**record.__dict__, "cursor": "9"}))
    assert state.cursor("x:@a") == "5" and not state.existing_ids([clash.id])


def test_stop_request_ends_the_pass_between_sources(memory: Any, x: FakeXAPI) -> None:
    alice, bob = x.add_user("alice"), x.add_user("bob")
    x.post(alice, "a")
    x.post(bob, "b")
    ing = make(memory, x, accounts=[{"handle": "alice"}, {"handle": "bob"}])
    stopped = ing.stopping

    def after_first(outcome: Any) -> None:
        stopped.set()

    report = ing.run(specs_of(ing.settings), on_done=after_first)
    assert [o.status for o in report.outcomes] == ["ok", "skipped"]
    assert memory.state.cursor("x:@alice") and memory.state.cursor("x:@bob") is None


def test_specs_follow_the_settings() -> None:
    s = Settings(x={"accounts": [{"handle": "a", "cluster": "vc"}], "queries": ["$SOL lang:en"]})
    assert x_specs(s) == [account_source("a", "vc"), query_source("$SOL lang:en")]
    assert timedelta(minutes=30) == s.x.interval
