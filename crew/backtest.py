"""Backtest: replay the signals at each window end over stored history and score each ranking's top N.

At a window end T the signals see only items published before T and price snapshots observed by T (the
history is read once and sliced per window, so nothing dated after T can reach a window's ranking). Each
ranking's top N at T is then scored like a published call: forward returns from the snapshots nearest T and
T + horizon, against the benchmark, with the statistics of ``crew.track``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from crew.model import TickerSignal
from crew.sentiment import score_many
from crew.signals import compute_signals, item_text, mean_tones
from crew.track import Benchmark, HorizonStats, PriceIndex, Scored, label, score, summarise

RANKINGS = ("breadth", "mentions")


class HistoryReader:
    """Stored item rows held in memory, oldest first; serves ``WindowReader.window_items`` by bisection."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = sorted(rows, key=lambda r: (r.published_at, r.id))
        self._times = [r.published_at for r in self.rows]

    def window_items(self, start: datetime, end: datetime) -> list[Any]:
        """Rows published in [start, end), oldest first."""
        return self.rows[bisect.bisect_left(self._times, start):bisect.bisect_left(self._times, end)]


@dataclass(frozen=True)
class Pick:
    """One ticker in one ranking's top N at one window end."""

    window_end: datetime
    ranking: str
    rank: int
    signal: TickerSignal
    scores: tuple[Scored, ...]  # one per horizon


@dataclass
class BacktestResult:
    """Every pick, and per ranking and horizon the statistics."""

    windows: list[datetime] = field(default_factory=list)
    picks: list[Pick] = field(default_factory=list)
    stats: dict[str, list[HorizonStats]] = field(default_factory=dict)
    empty_windows: int = 0


def rank(signals: Sequence[TickerSignal], ranking: str, exclude: frozenset[str] = frozenset()) -> list[TickerSignal]:
    """Tickers in ``ranking`` order: breadth (the signals' own score) or mentions (stories counted)."""
    pool = [s for s in signals if s.ticker not in exclude]
    if ranking == "breadth":
        return pool  # compute_signals already sorts by score: breadth first
    if ranking == "mentions":
        return sorted(pool, key=lambda s: (-s.mentions, -s.reports, s.ticker))
    raise ValueError(f"unknown ranking {ranking!r}; use breadth, mentions or both")


def window_ends(start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """Window ends start + every, start + 2·every, … up to ``end``."""
    if every <= timedelta(0) or end <= start:
        raise ValueError("--every must be positive and --to later than --from")
    count = int((end - start) / every)
    return [start + every * (i + 1) for i in range(count)]


def replay(history: HistoryReader, prices: PriceIndex, *, start: datetime, end: datetime, every: timedelta,
           top: int, rankings: Sequence[str], horizons: Sequence[timedelta], benchmark: Benchmark,
           tolerance: timedelta, now: datetime, min_calls: int = 10, resamples: int = 2000, seed: int = 15,
           baseline_windows: int = 7, sentiment: bool = False,
           progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> BacktestResult:
    """Replay the signals at each window end in (start, end] and score each ranking's top ``top``."""
    for r in rankings:
        rank((), r)  # an unknown ranking fails before any work
    result = BacktestResult(windows=window_ends(start, end, every))
    # A single-ticker benchmark scores 0 against itself: leave it out of the picks.
    exclude = frozenset(benchmark.tickers) if benchmark.name != "basket" else frozenset()
    toned: dict[datetime, tuple[list[Any], set[str]]] = {}  # window end → its rows naming a pick, the picks
    for i, at in enumerate(result.windows):
        # No ranking uses sentiment: it is scored afterwards, for the picked tickers' items only.
        signals = compute_signals(history, None, now=at, window=every, baseline_windows=baseline_windows,
                                  prices=_AsOf(prices, at), narratives=False, sentiment=False)
        if not signals.tickers:
            result.empty_windows += 1
        tops = {ranking: rank(signals.tickers, ranking, exclude)[:top] for ranking in rankings}
        if sentiment:
            picked = {s.ticker for p in tops.values() for s in p}
            toned[at] = ([r for r in history.window_items(at - every, at) if picked.intersection(r.tickers.split())],
                         picked)
        for ranking in rankings:
            for position, signal in enumerate(tops[ranking], start=1):
                scores = tuple(score(signal.ticker, at, h, f"{at.isoformat()}", prices=prices, benchmark=benchmark,
                                     tolerance=tolerance, now=now) for h in horizons)
                result.picks.append(Pick(at, ranking, position, signal, scores))
        if progress is not None:
            progress(i + 1, len(result.windows))
    if sentiment:
        result.picks = _with_tones(result.picks, toned, workers)
    for ranking in rankings:
        rows = [s for p in result.picks if p.ranking == ranking for s in p.scores]
        # Picks of windows closer together than the horizon share part of their span: resample them together.
        result.stats[ranking] = [
            summarise(rows, h, min_calls=min_calls, resamples=resamples, seed=seed,
                      block=max(1, math.ceil(h / every)))
            for h in horizons
        ]
    return result


def _with_tones(picks: list[Pick], toned: dict[datetime, tuple[list[Any], set[str]]],
                workers: int | None = None) -> list[Pick]:
    """The picks with the sentiment compute_signals would give them, scored for all windows at once."""
    rows = [r for window_rows, _ in toned.values() for r in window_rows]
    tones = iter(score_many([item_text(r) for r in rows], workers))
    means = {at: mean_tones(window_rows, [next(tones) for _ in window_rows], picked)
             for at, (window_rows, picked) in toned.items()}
    return [replace(p, signal=replace(p.signal, sentiment=means[p.window_end][p.signal.ticker])) for p in picks]


class _AsOf:
    """Prices as known at one moment: a span ending later than it is unknown."""

    def __init__(self, prices: PriceIndex, moment: datetime) -> None:
        self.prices = prices
        self.moment = moment

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        """The change over [start, end], never reading past the moment."""
        return None if end > self.moment else self.prices.change_pct(ticker, start, end)


CSV_COLUMNS = ("window_end", "ranking", "rank", "ticker", "mentions", "reports", "breadth", "growth", "zscore",
               "sentiment", "price_change_pct", "score")


def csv_rows(result: BacktestResult, horizons: Sequence[timedelta],
             with_sentiment: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and one row per (window, ranking, ticker) for ``--out``."""
    header = list(CSV_COLUMNS)
    for h in horizons:
        name = label(h)
        header += [f"return_{name}_pct", f"benchmark_{name}_pct", f"excess_{name}_pct", f"status_{name}"]
    rows = []
    for p in result.picks:
        s = p.signal
        row = [p.window_end.isoformat(), p.ranking, str(p.rank), s.ticker, str(s.mentions), str(s.reports),
               str(s.clusters), f"{s.growth:.4f}", f"{s.zscore:.4f}",
               f"{s.sentiment:.4f}" if with_sentiment else "", _fmt(s.price_change_pct), f"{s.score:.4f}"]
        for sc in p.scores:
            row += [_fmt(sc.ret), _fmt(sc.bench), _fmt(sc.excess), sc.status]
        rows.append(row)
    return header, rows


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
