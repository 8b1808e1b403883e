"""Reddit and RSSHub-bridged X feeds go through the RSS source; a bridged post and the API's copy are one item."""

from __future__ import annotations

from datetime import UTC, datetime

from sources.item import item_id_for_post
from sources.rss import FeedSpec, parse_feed
from sources.samples import sample_posts
from sources.tickers import Watchlist
from tapewatch.settings import DEFAULT_WATCHLIST
from tests.conftest import FEEDS

WATCH = Watchlist(DEFAULT_WATCHLIST)
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def test_subreddit_rss_parses_as_forum_posts() -> None:
    spec = FeedSpec("r-cryptomarkets", "https://www.reddit.com/r/CryptoMarkets/.rss", "forum")
    parsed = parse_feed((FEEDS / "reddit_atom.xml").read_bytes(), spec, WATCH, fetched_at=NOW,
                        content_type="application/atom+xml; charset=UTF-8")
    first, second = parsed.items
    assert parsed.warnings == ()
    assert first.kind == "forum" and first.author == "/u/ledger_lurker"
    assert first.url == "https://www.reddit.com/r/CryptoMarkets/comments/1h2x9kq/halcyon_client_fewer_failed_txs/"
    assert first.text.startswith("Halcyon client is on half the stake") and "SC_OFF" not in first.text
    assert first.tickers == ("SOL",) and second.tickers == ("BTC",)
    assert first.published_at == datetime(2026, 11, 25, 18, 31, 9, tzinfo=UTC)


def test_rsshub_x_feed_shares_item_ids_with_the_x_api_source() -> None:
    spec = FeedSpec("x-mira-rsshub", "http://localhost:1200/twitter/user/mira_onchain", "forum")
    parsed = parse_feed((FEEDS / "rsshub_x_user.xml").read_bytes(), spec, WATCH, fetched_at=NOW)
    bridged, reply = parsed.items
    assert bridged.id == item_id_for_post("x", "1861000000841323757")
    assert reply.id == item_id_for_post("x", "1861000001100000001")  # twitter.com link with ?s=20
    # The same post read through the X API (the bundled sample is that post) is the same item.
    api = {i.id: i for i in sample_posts(WATCH, NOW)}
    assert bridged.id in api and api[bridged.id].author == "@mira_onchain"
    assert bridged.tickers == ("ETH",) and bridged.author == "Mira Tal | onchain"
