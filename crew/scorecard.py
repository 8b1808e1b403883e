"""The track record of published calls and the backtest over stored history, read from the state DB."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from crew.backtest import BacktestResult, HistoryReader, replay
from crew.track import Benchmark, HorizonStats, PriceIndex, Scored, label, score, summarise
from memory import schema
from memory.calls import Call, CallStore
from memory.prices import PriceStore
from memory.state import StateDB


@dataclass(frozen=True)
class TrackOptions:
    """How calls are scored (from ``[track]`` settings and the command's flags)."""

    horizons: tuple[timedelta, ...]
    benchmark: Benchmark
    tolerance: timedelta
    min_calls: int = 10
    resamples: int = 2000
    seed: int = 15


@dataclass(frozen=True)
class TrackRecord:
    """Every call with its score per horizon, and the statistics per horizon."""

    calls: list[Call]
    scored: list[tuple[Call, Scored]]
    stats: list[HorizonStats]
    benchmark: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and the web page."""
        return {
            "benchmark": self.benchmark, "calls": len(self.calls),
            "horizons": [s.as_dict() for s in self.stats],
            "scored": [{"draft_id": c.draft_id, "ticker": c.ticker, "rank": c.rank,
                        "published_at": c.published_at.isoformat(), "framing": c.framing,
                        "breadth": c.breadth, "mentions": c.mentions, "horizon": label(s.horizon),
                        "status": s.status, "return_pct": _r(s.ret), "benchmark_pct": _r(s.bench),
                        "excess_pct": _r(s.excess)} for c, s in self.scored],
        }


def track_record(state: StateDB, options: TrackOptions, now: datetime) -> TrackRecord:
    """Score every published call at every horizon against the benchmark, from stored snapshots."""
    calls = CallStore(state.engine).all()
    if not calls:
        return TrackRecord([], [], [summarise([], h, min_calls=options.min_calls) for h in options.horizons],
                           options.benchmark.name)
    tickers = {c.ticker for c in calls} | set(options.benchmark.tickers)
    first = min(c.published_at for c in calls) - options.tolerance
    last = max(c.published_at for c in calls) + max(options.horizons) + options.tolerance
    prices = PriceIndex(PriceStore(state).series_of(tickers, first, min(last, now)))
    scored = [(c, score(c.ticker, c.published_at, h, c.draft_id, prices=prices, benchmark=options.benchmark,
                        tolerance=options.tolerance, now=now, framing=c.framing))
              for c in calls for h in options.horizons]
    rows = [s for _, s in scored]
    gap = _typical_gap([c.published_at for c in calls])
    # Briefs closer together than a horizon share part of its span: resample them in blocks of that many.
    stats = [summarise(rows, h, min_calls=options.min_calls, resamples=options.resamples, seed=options.seed,
                       block=max(1, math.ceil(h / gap)) if gap else 1)
             for h in options.horizons]
    return TrackRecord(calls, scored, stats, options.benchmark.name)


def backtest(state: StateDB, options: TrackOptions, *, start: datetime, end: datetime, every: timedelta, top: int,
             rankings: Sequence[str], now: datetime, baseline_windows: int = 7, sentiment: bool = False,
             progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> BacktestResult:
    """Replay the signals over [start, end] from stored items and snapshots and score each ranking's top N
    (``workers``: processes scoring sentiment, default the CPUs available)."""
    history = HistoryReader(_history(state, start - every * baseline_windows, end, with_text=sentiment))
    store = PriceStore(state)
    tickers = set(store.tickers())
    horizon = max(options.horizons)
    prices = PriceIndex(store.series_of(tickers, start - every * (baseline_windows + 1),
                                     min(end + horizon + options.tolerance, now)))
    return replay(history, prices, start=start, end=end, every=every, top=top, rankings=rankings,
                  horizons=options.horizons, benchmark=options.benchmark, tolerance=options.tolerance, now=now,
                  min_calls=options.min_calls, resamples=options.resamples, seed=options.seed,
                  baseline_windows=baseline_windows, sentiment=sentiment, progress=progress, workers=workers)


def _history(state: StateDB, start: datetime, end: datetime, *, with_text: bool) -> list[Any]:
    """Item rows published in [start, end) with the columns signals read (text only to score sentiment)."""
    it = schema.items
    columns = [it.c.id, it.c.story_id, it.c.kind, it.c.source, it.c.author, it.c.title, it.c.tickers,
               it.c.published_at, it.c.cluster, it.c.engagement] + ([it.c.text] if with_text else [])
    q = (select(*columns).where(it.c.published_at >= start, it.c.published_at < end)
         .order_by(it.c.published_at, it.c.id))
    with state.engine.connect() as conn:
        return list(conn.execute(q))


def _typical_gap(times: Sequence[datetime]) -> timedelta | None:
    """The median time between consecutive briefs (None with fewer than two)."""
    moments = sorted(set(times))
    gaps = sorted(b - a for a, b in itertools.pairwise(moments))
    return gaps[len(gaps) // 2] if gaps else None


def _r(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None
