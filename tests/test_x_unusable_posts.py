"""X posts the parser cannot use are counted, shown and, where a field can be defaulted, kept.

Real tweepy client → loopback fake X API v2 → real Memory on the state DB the CLI opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from memory import schema
from memory.quotas import Quotas, month_of
from memory.store import Memory
from sources.item import item_id_for_post
from sources.tickers import Watchlist
from sources.x import XReader, parse_posts, post_time
from tapewatch.clients import x_client
from tapewatch.ingest_x import XIngestor
from tapewatch.jobs import x_specs
from tapewatch.settings import DEFAULT_WATCHLIST, Settings
from tests.fakes.x_api import FakeXAPI, serving_x
from tests.test_publish_cli import cli

WATCH = Watchlist(DEFAULT_WATCHLIST)
ACCOUNT = [{"handle": "mira_onchain", "cluster": "researcher"}]


@pytest.fixture
def x() -> Iterator[FakeXAPI]:
    with serving_x() as server:
        yield server


@pytest.fixture
def memory(cli_memory: Memory) -> Memory:
    """A real Memory on the state DB the CLI opens."""
    return cli_memory


def run(memory: Memory, x: FakeXAPI, *, retention: timedelta | None = None, **xs: Any) -> dict[str, Any]:
    settings = Settings(x_bearer_token="t", x={"api_base_url": x.base_url, "timeout": "2s", "backoff": "0.01s", **xs})
    reader = XReader(x_client(settings), attempts=1)
    ingestor = XIngestor(memory, reader, Quotas(memory.state), WATCH, settings.x, retention=retention)
    return {o.name: o for o in ingestor.run(x_specs(settings)).outcomes}


def rows(memory: Memory, source: str) -> dict[str, Any]:
    with memory.state.engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(schema.items).where(schema.items.c.source == source))}


@pytest.mark.parametrize("omit_includes", [True, False])
def test_a_timeline_post_without_author_id_keeps_its_accounts_handle_and_cluster(
        memory: Memory, x: FakeXAPI, omit_includes: bool) -> None:
    mira = x.add_user("mira_onchain")
    post = x.post(mira, "Exchange reserves of $ETH at a five-year low", omit=("author_id",))
    x.omit_includes = omit_includes
    outcome = run(memory, x, accounts=ACCOUNT)["x:@mira_onchain"]
    assert (outcome.status, outcome.new, outcome.skipped) == ("ok", 1, 0)
    row = rows(memory, "x:@mira_onchain")[item_id_for_post("x", post.id)]
    assert (row.author, row.cluster) == ("@mira_onchain", "researcher")
    assert row.url == f"https://x.com/mira_onchain/status/{post.id}"


def test_posts_missing_fields_are_defaulted_or_counted_as_skipped_and_shown(
        memory: Memory, x: FakeXAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    mira = x.add_user("mira_onchain")
    undated = x.post(mira, "Staking deposits keep climbing", omit=("created_at",))
    unmetered = x.post(mira, "Validator queue at 9 days", omit=("public_metrics",))
    x.post(mira, "", omit=("text",))  # nothing to keep: no text at all
    newest = x.post(mira, "Blob fees spiked during the mint", likes=12)
    outcome = run(memory, x, accounts=ACCOUNT)["x:@mira_onchain"]
    assert (outcome.new, outcome.skipped, outcome.shown_status) == (3, 1, "degraded")
    stored = rows(memory, "x:@mira_onchain")
    assert stored[item_id_for_post("x", undated.id)].published_at == post_time(undated.id)  # dated by its id
    assert stored[item_id_for_post("x", unmetered.id)].engagement == 0
    # X billed all four posts and the cursor is past them all: the skipped one is counted, not re-bought.
    assert Quotas(memory.state).usage(month_of(datetime.now(UTC))).posts == 4
    assert memory.state.cursor("x:@mira_onchain") == newest.id
    [health] = memory.state.source_health()
    assert (health.status, health.skipped) == ("degraded", 1)
    assert health.degraded == "1 post(s) X sent could not be used and were skipped"

    code, output = cli(["sources"], monkeypatch, capsys)
    assert code == 0, output
    [line] = [ln for ln in output.splitlines() if ln.startswith("│ x:@mira_onchain ")]
    cells = [c.strip() for c in line.split("│")]
    assert cells[4:7] == ["degraded", "3", "1"]  # status, items, skipped
    code, output = cli(["status"], monkeypatch, capsys)
    assert "source x:@mira_onchain: degraded: 1 post(s) X sent could not be used and were skipped; " \
           "1 entry(ies) or post(s) skipped so far" in output

    # A clean pass clears "degraded"; the count of skipped posts stays on the source.
    x.post(mira, "Blob fees back to normal")
    assert run(memory, x, accounts=ACCOUNT)["x:@mira_onchain"].shown_status == "ok"
    [health] = memory.state.source_health()
    assert (health.status, health.skipped) == ("ok", 1)


def test_posts_older_than_retention_are_not_stored(memory: Memory, x: FakeXAPI) -> None:
    mira = x.add_user("mira_onchain")
    x.post(mira, "An old thread from the spring", at=datetime.now(UTC) - timedelta(days=200))
    x.post(mira, "Fresh note on $SOL fees")
    outcome = run(memory, x, retention=timedelta(days=90), accounts=ACCOUNT)["x:@mira_onchain"]
    assert (outcome.new, outcome.too_old) == (1, 1)
    assert [r.title for r in rows(memory, "x:@mira_onchain").values()] == ["Fresh note on $SOL fees"]


def test_parse_defaults_what_it_can_and_counts_what_it_cannot() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    payload = {
        "data": [
            {"id": "1861000000000000001", "text": "no author id, on a timeline"},
            {"id": "1861000000000000002", "text": "metrics garbled", "author_id": "42", "created_at": "junk",
             "public_metrics": {"like_count": "many", "retweet_count": 3}},
            {"id": "not-a-number", "text": "bad id"},
            {"text": "no id at all"},
            "not an object",
            {"id": "1861000000000000003", "note_tweet": "not an object", "author_id": "42"},
        ],
        "includes": {"users": [{"id": "42", "username": "mira_onchain"}]},
        "meta": {"result_count": 6},
    }
    page = parse_posts(payload, source="x:@mira_onchain", watchlist=WATCH, fetched_at=now,
                       clusters={"mira_onchain": "researcher"}, account="mira_onchain")
    assert (page.count, len(page.items), page.skipped) == (6, 2, 4)
    first, second = page.items
    assert (first.author, first.cluster, first.published_at) == ("@mira_onchain", "researcher",
                                                                 post_time("1861000000000000001"))
    assert second.metrics == {"reposts": 3}
    assert page.newest_id == "1861000000000000003"  # past the skipped post too: it was read and billed
    assert sum("skipped" in w for w in page.warnings) == 4
