"""Scoring calls: forward returns from stored price snapshots, excess over a benchmark, and honest statistics.

A return over a span uses the snapshot nearest each end within a tolerance; a call without a snapshot near
both ends (or whose benchmark has none) is *unscorable* and counted as such, never dropped silently. Per
horizon: N, the mean and median excess with a seeded bootstrap 95% interval, the hit rate (excess > 0) and,
for calls the writer framed as positive or negative, how often the direction matched. With fewer than
``min_calls`` scored calls a horizon reports "too few calls" instead of rates.

The bootstrap resamples blocks of consecutive groups (a brief's calls, or a backtest window's picks): calls
of one brief move together, and a 5-day horizon taken daily overlaps its neighbours, so resampling single
calls would make the interval look tighter than the data allow.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

BASKET = "basket"
MIN_SPANS = 10  # independent spans (non-overlapping horizons, separate briefs) needed before any rate is stated


class PriceIndex:
    """Stored prices per ticker, in memory, for many lookups (``memory.prices.PriceStore.series_of`` fills it)."""

    def __init__(self, series: Mapping[str, Sequence[tuple[datetime, float]]]) -> None:
        self._times = {t.upper(): [at.timestamp() for at, _ in rows] for t, rows in series.items()}
        self._prices = {t.upper(): [p for _, p in rows] for t, rows in series.items()}

    @property
    def tickers(self) -> list[str]:
        """Tickers with at least one price."""
        return sorted(t for t, times in self._times.items() if times)

    def nearest(self, ticker: str, when: datetime, tolerance: timedelta, *, as_of: bool = False) -> float | None:
        """The price observed nearest ``when`` within ``tolerance`` (``as_of``: only at or before it)."""
        times = self._times.get(ticker.upper())
        if not times:
            return None
        at, tol = when.timestamp(), tolerance.total_seconds()
        i = bisect.bisect_right(times, at)
        best: int | None = None
        if i > 0 and at - times[i - 1] <= tol:
            best = i - 1
        if not as_of and i < len(times) and times[i] - at <= tol and (best is None or times[i] - at < at - times[best]):
            best = i
        return self._prices[ticker.upper()][best] if best is not None else None

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        """Percent change over [start, end] as known at ``end`` (the replay's ``PriceSource``; no lookahead)."""
        span = end - start
        if span <= timedelta(0):
            return None
        tolerance = min(max(span / 10, timedelta(minutes=10)), timedelta(hours=2))
        last = self.nearest(ticker, end, tolerance, as_of=True)
        first = self.nearest(ticker, start, tolerance)
        if last is None or first is None:
            return None
        return round((last / first - 1.0) * 100.0, 4)

    def forward_pct(self, ticker: str, start: datetime, horizon: timedelta, tolerance: timedelta) -> float | None:
        """Percent return from ``start`` to ``start + horizon``, or None without a price near both ends."""
        first = self.nearest(ticker, start, tolerance)
        last = self.nearest(ticker, start + horizon, tolerance)
        if first is None or last is None:
            return None
        return (last / first - 1.0) * 100.0


class Benchmark:
    """What a call is compared with: one ticker (BTC), or the equal-weight basket of some tickers."""

    def __init__(self, name: str, basket: Iterable[str] = ()) -> None:
        self.name = name.upper() if name != BASKET else BASKET
        self.basket = sorted({t.upper() for t in basket})
        if self.name == BASKET and not self.basket:
            raise ValueError("the basket benchmark needs at least one ticker")
        self._memo: dict[tuple[int, float, float, float], float | None] = {}

    @property
    def tickers(self) -> list[str]:
        """The tickers whose prices the benchmark reads."""
        return self.basket if self.name == BASKET else [self.name]

    def forward_pct(self, prices: PriceIndex, start: datetime, horizon: timedelta,
                    tolerance: timedelta) -> float | None:
        """The benchmark's return over the span; the basket averages the members priced at both ends."""
        if self.name != BASKET:
            return prices.forward_pct(self.name, start, horizon, tolerance)
        key = (id(prices), start.timestamp(), horizon.total_seconds(), tolerance.total_seconds())
        if key not in self._memo:  # every pick of one window shares its span
            moves = [m for t in self.basket if (m := prices.forward_pct(t, start, horizon, tolerance)) is not None]
            self._memo[key] = sum(moves) / len(moves) if moves else None
        return self._memo[key]


@dataclass(frozen=True)
class Scored:
    """One call (or backtest pick) at one horizon."""

    ticker: str
    start: datetime
    horizon: timedelta
    group: str  # the brief (or window) it belongs to
    status: str  # scored | unscorable | waiting (not old enough yet)
    ret: float | None = None
    bench: float | None = None
    excess: float | None = None
    framing: str | None = None


def score(ticker: str, start: datetime, horizon: timedelta, group: str, *, prices: PriceIndex,
          benchmark: Benchmark, tolerance: timedelta, now: datetime, framing: str | None = None) -> Scored:
    """Score one call at one horizon."""
    if start + horizon > now:
        return Scored(ticker, start, horizon, group, "waiting", framing=framing)
    ret = prices.forward_pct(ticker, start, horizon, tolerance)
    bench = benchmark.forward_pct(prices, start, horizon, tolerance)
    if ret is None or bench is None:
        return Scored(ticker, start, horizon, group, "unscorable", ret, bench, framing=framing)
    return Scored(ticker, start, horizon, group, "scored", ret, bench, ret - bench, framing)


@dataclass(frozen=True)
class Interval:
    """A bootstrap 95% interval."""

    low: float
    high: float

    def covers(self, value: float) -> bool:
        """True when ``value`` lies inside it."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class HorizonStats:
    """The statistics of one horizon."""

    horizon: timedelta
    n: int
    unscorable: int
    waiting: int
    enough: bool  # n >= min_calls: rates and intervals below are None otherwise
    mean: float | None = None
    median: float | None = None
    mean_ci: Interval | None = None
    median_ci: Interval | None = None
    hit_rate: float | None = None
    framed: int = 0  # scored calls framed positive or negative
    direction_matched: float | None = None
    min_calls: int = 0
    spans: float = 0.0  # independent spans the calls cover (groups / the block of overlapping ones)

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        def ci(i: Interval | None) -> list[float] | None:
            return [round(i.low, 4), round(i.high, 4)] if i else None

        return {
            "horizon": label(self.horizon), "n": self.n, "unscorable": self.unscorable, "waiting": self.waiting,
            "enough": self.enough, "min_calls": self.min_calls, "independent_spans": round(self.spans, 2),
            "mean_excess_pct": _round(self.mean), "median_excess_pct": _round(self.median),
            "mean_ci95": ci(self.mean_ci), "median_ci95": ci(self.median_ci), "hit_rate": _round(self.hit_rate),
            "framed": self.framed, "direction_matched": _round(self.direction_matched),
        }


def summarise(rows: Sequence[Scored], horizon: timedelta, *, min_calls: int = 10, resamples: int = 2000,
              seed: int = 15, block: int = 1) -> HorizonStats:
    """Statistics of the rows at ``horizon``; ``block``: consecutive groups resampled together."""
    mine = [r for r in rows if r.horizon == horizon]
    scored = [r for r in mine if r.status == "scored" and r.excess is not None]
    # Spans that overlap are not independent: 40 daily picks of a 30-day return hold about one 30-day period.
    spans = len({r.group for r in scored}) / max(1, block)
    enough = len(scored) >= min_calls and spans >= MIN_SPANS
    base = HorizonStats(horizon, len(scored), sum(r.status == "unscorable" for r in mine),
                        sum(r.status == "waiting" for r in mine), enough, min_calls=min_calls, spans=spans)
    if not base.enough:
        return base
    excess = np.array([r.excess for r in scored], dtype=float)
    framed = [r for r in scored if r.framing in ("positive", "negative")]
    matched = [(r.excess or 0.0) > 0 if r.framing == "positive" else (r.excess or 0.0) < 0 for r in framed]
    mean_ci, median_ci = bootstrap([r.group for r in scored], excess, resamples=resamples, seed=seed, block=block)
    return HorizonStats(
        horizon, base.n, base.unscorable, base.waiting, True, float(excess.mean()), float(np.median(excess)),
        mean_ci, median_ci, float((excess > 0).mean()), len(framed),
        (sum(matched) / len(framed)) if len(framed) >= min_calls else None, min_calls, spans,
    )


def bootstrap(groups: Sequence[str], values: np.ndarray, *, resamples: int, seed: int,
              block: int = 1) -> tuple[Interval, Interval]:
    """Percentile 95% intervals of the mean and the median, resampling blocks of consecutive groups."""
    order = list(dict.fromkeys(groups))  # groups in time order (rows come oldest first)
    index = {g: i for i, g in enumerate(order)}
    members: list[list[int]] = [[] for _ in order]
    for i, g in enumerate(groups):
        members[index[g]].append(i)
    n_groups = len(order)
    block = max(1, min(block, n_groups))
    blocks_per_sample = math.ceil(n_groups / block)
    rng = np.random.default_rng(seed)
    # Circular blocks: every group is equally likely to be drawn, so the resamples centre on the data's mean.
    starts = rng.integers(0, n_groups, size=(resamples, blocks_per_sample))
    chosen = ((starts[:, :, None] + np.arange(block)[None, None, :]) % n_groups).reshape(resamples, -1)[:, :n_groups]
    sums = np.array([values[m].sum() for m in members])
    counts = np.array([len(m) for m in members], dtype=float)
    means = sums[chosen].sum(axis=1) / counts[chosen].sum(axis=1)
    # Groups padded to one size with NaN, so every resample's median is one vectorised nanmedian.
    padded = np.full((n_groups, max(len(m) for m in members)), np.nan)
    for row, m in enumerate(members):
        padded[row, :len(m)] = values[m]
    medians = np.nanmedian(padded[chosen].reshape(resamples, -1), axis=1)
    return (Interval(*map(float, np.percentile(means, [2.5, 97.5]))),
            Interval(*map(float, np.percentile(medians, [2.5, 97.5]))))


def label(horizon: timedelta) -> str:
    """'1d', '12h', '90m' for a horizon."""
    seconds = int(horizon.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None
