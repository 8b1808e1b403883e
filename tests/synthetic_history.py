"""SYNTHETIC history for testing the track record's statistics: generated, seeded, not market data.

Weeks of items (posts and reports about made-up tickers, from six groups of accounts) and hourly price
snapshots, in two versions:

- *planted*: on a day when a ticker is discussed by ``BROAD`` or more groups, its price outperforms the
  market by ``effect_pct`` over the next 24 hours (known exactly: ``SyntheticHistory.boosted``);
- *null*: ``effect_pct = 0``, so nothing the items say predicts any return.

How much a ticker is talked about (its volume) is drawn independently of how many groups talk about it,
and two tickers are loud every day from one group only: a ranking by mentions should not find the effect as
well as one by breadth. These data test the statistics; they claim nothing about markets.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from memory import schema
from memory.prices import PriceSnapshot, PriceStore
from memory.state import StateDB
from sources.item import Item

GROUPS = ("media", "forum", "traders", "vc", "devs", "researchers")
KIND_OF = {"media": "news", "forum": "forum"}
BROAD = 4  # groups talking about a ticker on one day for it to be "broad"
START = datetime(2026, 9, 1, tzinfo=UTC)
WORDS = ("upgrade", "listing", "flows", "validators", "treasury", "roadmap", "audit", "bridge", "staking",
         "governance", "liquidity", "unlock", "partnership", "testnet", "fees", "volume")


@dataclass
class SyntheticHistory:
    """Generated items and snapshots, and the truth the statistics should recover."""

    items: list[Item]
    snapshots: list[PriceSnapshot]
    start: datetime
    end: datetime
    tickers: tuple[str, ...]
    effect_pct: float
    boosted: set[tuple[str, datetime]] = field(default_factory=set)  # (ticker, window end) that outperform next day
    breadth: dict[tuple[str, datetime], int] = field(default_factory=dict)


def generate(*, seed: int, days: int = 40, items_per_day: int = 150, tickers: int = 12, effect_pct: float = 3.0,
             noise_pct: float = 2.0, start: datetime = START) -> SyntheticHistory:
    """A seeded synthetic history; ``effect_pct`` = 0 gives the null version."""
    rng = random.Random(seed)
    names = tuple(f"SY{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(tickers))
    loud = set(names[:2])  # every day, lots of posts from one group
    items: list[Item] = []
    history = SyntheticHistory(items, [], start, start + timedelta(days=days), names, effect_pct)
    weights = [rng.uniform(0.5, 1.5) for _ in names]
    for day in range(days):
        day_start = start + timedelta(days=day)
        day_end = day_start + timedelta(days=1)
        for ticker, count in zip(names, _volumes(rng, names, loud, weights, items_per_day), strict=True):
            groups = [rng.choice(GROUPS)] if ticker in loud else rng.sample(GROUPS, min(_breadth(rng), count))
            history.breadth[(ticker, day_end)] = len(groups)
            if len(groups) >= BROAD and effect_pct:
                history.boosted.add((ticker, day_end))
            for n in range(count):
                group = groups[n % len(groups)]
                items.append(_item(rng, ticker, group, day_start, f"{seed}-{day}-{ticker}-{n}"))
    history.snapshots = _prices(rng, history, noise_pct)
    return history


def _volumes(rng: random.Random, names: tuple[str, ...], loud: set[str], weights: list[float],
             per_day: int) -> list[int]:
    """Items per ticker on one day, ``per_day`` in all: the loud tickers 15% each, the rest drawn at random
    (independently of how many groups talk about them)."""
    fixed = int(per_day * 0.15)
    raw = [0.0 if t in loud else w * rng.uniform(0.4, 1.6) for t, w in zip(names, weights, strict=True)]
    rest = per_day - fixed * len(loud & set(names))
    counts = [fixed if t in loud else max(1, int(rest * r / sum(raw))) for t, r in zip(names, raw, strict=True)]
    counts[-1] += per_day - sum(counts)
    return counts


def _breadth(rng: random.Random) -> int:
    """How many groups discuss a ticker on a day: mostly one or two, sometimes many."""
    return rng.choices([1, 2, 3, 4, 5, 6], weights=[30, 25, 18, 12, 9, 6])[0]


def _item(rng: random.Random, ticker: str, group: str, day_start: datetime, key: str) -> Item:
    at = day_start + timedelta(seconds=rng.randrange(86400))
    kind = KIND_OF.get(group, "social")
    words = " ".join(rng.sample(WORDS, 3))
    author = f"{group}-{rng.randrange(8)}"
    return Item(
        id=f"syn-{key}", kind=kind, source=f"synthetic-{group}", url=f"https://synthetic.example/{key}",
        title=f"${ticker} {words}", text=f"${ticker} {words} ({group} notes)", published_at=at, fetched_at=at,
        author=author, tickers=(ticker,), cluster="" if kind != "social" else group,
    )


def _prices(rng: random.Random, history: SyntheticHistory, noise_pct: float) -> list[PriceSnapshot]:
    """Hourly snapshots: a market factor (BTC) plus, per ticker, noise and the planted next-day move."""
    days = (history.end - history.start).days + 31  # prices run on past the items, for 30-day horizons
    market = [rng.gauss(0.0, 1.0) / 100 for _ in range(days)]
    snaps: list[PriceSnapshot] = []
    for ticker in ("BTC", *history.tickers):
        level = math.log(100.0 if ticker != "BTC" else 90_000.0)
        anchors = [level]
        for day in range(days):
            day_end = history.start + timedelta(days=day)  # the window that just closed ends here
            move = market[day]
            if ticker != "BTC":
                move += rng.gauss(0.0, noise_pct / 100)
                if (ticker, day_end) in history.boosted:
                    move += math.log1p(history.effect_pct / 100)
            anchors.append(anchors[-1] + move)
        for hour in range(days * 24 + 1):
            day, frac = divmod(hour, 24)
            log_price = anchors[day] + (anchors[min(day + 1, days)] - anchors[day]) * frac / 24
            at = history.start + timedelta(hours=hour)
            snaps.append(PriceSnapshot(ticker, at, round(math.exp(log_price), 6), source="synthetic"))
    return snaps


def store(state: StateDB, history: SyntheticHistory, *, fast: bool = False) -> None:
    """Write the history into a state DB: through ``commit_batch`` (the real path), or, for benchmarks with
    hundreds of thousands of rows, straight into the tables (no injection check: the text is ours)."""
    prices = PriceStore(state)
    prices.add(history.snapshots, history.start)
    if not fast:
        for i in range(0, len(history.items), 2000):
            state.commit_batch(history.items[i:i + 2000], [], None)
        return
    rows: list[dict[str, Any]] = []
    tickers: list[dict[str, Any]] = []
    for item in history.items:
        rows.append({"id": item.id, "story_id": item.id, "similarity": None, "kind": item.kind,
                     "source": item.source, "url": item.url, "title": item.title, "author": item.author,
                     "tickers": " ".join(item.tickers), "published_at": item.published_at,
                     "fetched_at": item.fetched_at, "text": item.text, "cluster": item.cluster, "engagement": 0,
                     "suspect": 0})
        tickers += [{"item_id": item.id, "ticker": t, "published_at": item.published_at} for t in item.tickers]
    with state.engine.begin() as conn:
        for i in range(0, len(rows), 20_000):
            conn.execute(insert(schema.items), rows[i:i + 20_000])
            conn.execute(insert(schema.item_tickers), tickers[i:i + 20_000])
