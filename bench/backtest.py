"""Benchmark: `tapewatch backtest` over 60 days of SYNTHETIC history at 5,000 items a day, daily windows.

Target: the backtest (reading the history, replaying 60 windows of signals for both rankings, scoring 4
horizons, the statistics) finishes in <= 60 s. The fill (generating and storing the items and hourly
snapshots of tests/synthetic_history.py) is not timed. For scale, the same run times one live
``compute_signals`` pass over the state DB at the last window end (the baseline: what one window costs the
daemon) and prints the backtest's cost per window against it.

    .venv/bin/python bench/backtest.py [--days 60] [--per-day 5000] [--tickers 20] [--sentiment]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.scorecard import TrackOptions, backtest
from crew.signals import compute_signals
from crew.track import Benchmark
from memory.prices import PriceStore
from memory.state import StateDB
from tests.synthetic_history import generate, store

TARGET_S = 60.0


def main() -> None:
    """Fill, then time the backtest and the baseline; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--sentiment", action="store_true", help="also score sentiment (no ranking uses it)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    history = generate(seed=60, days=args.days, items_per_day=args.per_day, tickers=args.tickers)
    with tempfile.TemporaryDirectory() as tmp:
        state = StateDB(f"sqlite:///{Path(tmp) / 'state.db'}")
        store(state, history, fast=True)
        fill = time.perf_counter() - t0
        print(f"fill (not timed): {len(history.items):,} items, {len(history.snapshots):,} snapshots in {fill:.1f} s")

        prices = PriceStore(state)
        t1 = time.perf_counter()
        compute_signals(state, None, now=history.end, prices=prices, narratives=False, sentiment=args.sentiment)
        baseline = time.perf_counter() - t1

        horizons = (timedelta(days=1), timedelta(days=5), timedelta(days=10), timedelta(days=30))
        options = TrackOptions(horizons, Benchmark("basket", history.tickers), timedelta(hours=3))
        t2 = time.perf_counter()
        result = backtest(state, options, start=history.start, end=history.end, every=timedelta(days=1), top=5,
                          rankings=("breadth", "mentions"), now=datetime.now(UTC), sentiment=args.sentiment)
        elapsed = time.perf_counter() - t2
        state.close()

    windows = len(result.windows)
    verdict = "PASS" if elapsed <= TARGET_S else "FAIL"
    print(f"backtest: {windows} windows, {len(result.picks)} picks, {len(horizons)} horizons, "
          f"sentiment {'on' if args.sentiment else 'off'}: {elapsed:.1f} s -> {verdict} (<= {TARGET_S:.0f} s)")
    print(f"baseline: one live compute_signals pass over the state DB: {baseline:.2f} s; "
          f"backtest per window {elapsed / max(windows, 1):.2f} s = {elapsed / max(windows, 1) / baseline:.2f}x")
    one_day = result.stats["breadth"][0]
    if one_day.mean is not None and one_day.mean_ci is not None:
        print(f"sanity (planted +{history.effect_pct}% effect): breadth top-5 1d mean excess {one_day.mean:+.2f} pp, "
              f"95% interval {one_day.mean_ci.low:+.2f} … {one_day.mean_ci.high:+.2f}")


if __name__ == "__main__":
    main()
