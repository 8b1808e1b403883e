"""Sample feeds we wrote ourselves, bundled so the main job works with no network.

They describe one day (2026-11-25 UTC). When ingested, their dates are moved forward so
that the day ends now, so time-window features see fresh data.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources

from sources.item import Item
from sources.rss import FeedSpec

SAMPLE_DAY_END = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)

SAMPLE_FEEDS: tuple[tuple[FeedSpec, str], ...] = (
    (FeedSpec("sample-chainwire", "https://chainwire.example/feed.xml", "news"), "chainwire.xml"),
    (FeedSpec("sample-ledgerpost", "https://ledgerpost.example/atom.xml", "news"), "ledgerpost.xml"),
    (FeedSpec("sample-blockbeat", "https://blockbeat.example/rss", "news"), "blockbeat.xml"),
    (FeedSpec("sample-onchain-digest", "https://onchaindigest.example/rdf", "news"), "coinmetrics_digest.xml"),
    (FeedSpec("sample-r-cryptomarkets", "https://forum.example/r/CryptoMarkets/.rss", "forum"), "r_cryptomarkets.xml"),
)


def sample_body(filename: str) -> bytes:
    """The bytes of one bundled sample feed."""
    return resources.files("sources").joinpath("samples", filename).read_bytes()


def rebase(items: tuple[Item, ...], now: datetime) -> tuple[Item, ...]:
    """Shift sample items so the sample day ends at ``now`` (whole minutes, never into the future)."""
    shift = now - SAMPLE_DAY_END
    shift -= timedelta(seconds=shift.total_seconds() % 60)
    return tuple(replace(i, published_at=min(i.published_at + shift, now)) for i in items)
