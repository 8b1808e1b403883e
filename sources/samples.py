"""Sample feeds we wrote ourselves, bundled so the main job works with no network.

They describe one day (2026-11-25 UTC). When ingested, their dates are moved forward so
that the day ends now, so time-window features see fresh data.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources

from sources.errors import FeedParseError
from sources.item import Item, item_id_for_post
from sources.plaintext import clean_text
from sources.rss import FeedSpec
from sources.tickers import Watchlist

SAMPLE_POSTS = "kol_posts.json"
SAMPLE_POSTS_SOURCE = "sample-x-kols"

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


def sample_posts(watchlist: Watchlist, fetched_at: datetime) -> tuple[Item, ...]:
    """Key-opinion-leader posts of the sample day, each with its account's cluster and metrics."""
    try:
        data = json.loads(sample_body(SAMPLE_POSTS))
        posts = data["posts"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FeedParseError(f"bundled {SAMPLE_POSTS} is malformed: {exc}") from exc
    items = []
    for post in posts:
        text = clean_text(str(post["text"]), 1000)
        handle = str(post["handle"])
        items.append(
            Item(
                id=item_id_for_post("x", str(post["id"])), kind="social", source=SAMPLE_POSTS_SOURCE,
                url=f"https://x.com/{handle}/status/{post['id']}", title=_headline(text), text=text,
                published_at=datetime.fromisoformat(str(post["created_at"]).replace("Z", "+00:00")),
                fetched_at=fetched_at, author=f"@{handle}", tickers=watchlist.extract(text),
                cluster=str(post.get("cluster", "")),
                metrics={k: int(v) for k, v in (post.get("metrics") or {}).items()},
            )
        )
    return tuple(items)


def _headline(text: str, limit: int = 120) -> str:
    """A post's first words as its title, cut at a word boundary."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
