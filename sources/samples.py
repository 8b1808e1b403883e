"""Sample feeds, posts and prices we wrote ourselves, bundled so the main job works with no network.

They describe one day (2026-11-25 UTC). When ingested, their dates are moved forward so
that the day ends now, so time-window features see fresh data.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from sources.coingecko import Quote, parse_simple_price
from sources.errors import FeedParseError
from sources.item import Item
from sources.rss import FeedSpec
from sources.tickers import Watchlist
from sources.x import parse_posts

SAMPLE_POSTS = "kol_posts.json"
SAMPLE_POSTS_SOURCE = "sample-x-kols"
SAMPLE_PRICES = "prices.json"
SAMPLE_PRICES_SOURCE = "sample-prices"

SAMPLE_DAY_END = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)

SAMPLE_FEEDS: tuple[tuple[FeedSpec, str], ...] = (
    (FeedSpec("sample-chainwire", "https://chainwire.example/feed.xml", "news"), "chainwire.xml"),
    (FeedSpec("sample-ledgerpost", "https://ledgerpost.example/atom.xml", "news"), "ledgerpost.xml"),
    (FeedSpec("sample-blockbeat", "https://blockbeat.example/rss", "news"), "blockbeat.xml"),
    (FeedSpec("sample-onchain-digest", "https://onchaindigest.example/rdf", "news"), "coinmetrics_digest.xml"),
    (FeedSpec("sample-r-cryptomarkets", "https://www.reddit.example/r/CryptoMarkets/.rss", "forum"),
     "r_cryptomarkets.xml"),
)


def sample_body(filename: str) -> bytes:
    """The bytes of one bundled sample feed."""
    return resources.files("sources").joinpath("samples", filename).read_bytes()


def rebase(items: tuple[Item, ...], now: datetime) -> tuple[Item, ...]:
    """Shift sample items so the sample day ends at ``now`` (whole minutes, never into the future)."""
    shift = _shift(now)
    return tuple(replace(i, published_at=min(i.published_at + shift, now)) for i in items)


def _shift(now: datetime) -> timedelta:
    shift = now - SAMPLE_DAY_END
    return shift - timedelta(seconds=shift.total_seconds() % 60)


def sample_accounts() -> dict[str, str]:
    """The sample day's accounts: handle → cluster (what ``x.accounts`` would hold)."""
    data = _sample_json(SAMPLE_POSTS)
    try:
        return {str(a["handle"]): str(a.get("cluster", "")) for a in data["accounts"]}
    except (KeyError, TypeError) as exc:
        raise FeedParseError(f"bundled {SAMPLE_POSTS} is malformed: {exc}") from exc


def sample_posts(watchlist: Watchlist, fetched_at: datetime) -> tuple[Item, ...]:
    """Key-opinion-leader posts of the sample day, parsed from X API v2 JSON like live posts."""
    page = parse_posts(_sample_json(SAMPLE_POSTS).get("response"), source=SAMPLE_POSTS_SOURCE,
                       watchlist=watchlist, fetched_at=fetched_at, clusters=sample_accounts())
    if page.warnings:
        raise FeedParseError(f"bundled {SAMPLE_POSTS} is malformed: {page.warnings[0]}")
    return page.items


def sample_quotes(now: datetime) -> tuple[Quote, ...]:
    """Hourly market snapshots of the sample day (CoinGecko answers), moved so the day ends at ``now``."""
    data = _sample_json(SAMPLE_PRICES)
    try:
        coins, responses = dict(data["coins"]), list(data["responses"])
    except (KeyError, TypeError) as exc:
        raise FeedParseError(f"bundled {SAMPLE_PRICES} is malformed: {exc}") from exc
    shift = _shift(now)
    quotes: list[Quote] = []
    for response in responses:
        parsed, warnings = parse_simple_price(response, coins, fetched_at=SAMPLE_DAY_END)
        if warnings:
            raise FeedParseError(f"bundled {SAMPLE_PRICES} is malformed: {warnings[0]}")
        quotes += [replace(q, observed_at=min(q.observed_at + shift, now)) for q in parsed]
    return tuple(quotes)


def _sample_json(filename: str) -> dict[str, Any]:
    try:
        data = json.loads(sample_body(filename))
    except ValueError as exc:
        raise FeedParseError(f"bundled {filename} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FeedParseError(f"bundled {filename} is malformed: not a JSON object")
    return data
