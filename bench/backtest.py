"""Benchmark: `tapewatch backtest` over 60 days of SYNTHETIC history at 5,000 items a day, daily windows.

Target: the backtest (reading the history, replaying 60 windows of signals for both rankings, scoring 4
horizons, the statistics) finishes in <= 60 s, with sentiment off (the default) and with ``--sentiment``.
The fill (generating and storing the items and hourly snapshots of tests/synthetic_history.py) is not
timed. One run times both over the same data, sentiment off first (the baseline), and prints the ratio;
for scale it also times one live ``compute_signals`` pass over the state DB at the last window end (what
one window costs the daemon) and prints the backtest's cost per window against it. Every figure carries
the load average when it was taken (2 shared cores: a figure taken at load > 3 is worth rerunning).

The generated items' texts are short (~55 characters); sentiment's cost grows faster than the text (VADER's
negation check rescans the words for every word it scores), so each text is lengthened to ``--text-chars``
with seeded filler sentences of market prose (default 340: the bundled sample day's median length as
scored), or left as generated with ``--text-chars 0``.

    .venv/bin/python bench/backtest.py [--days 60] [--per-day 5000] [--tickers 20] [--text-chars 340]
        [--no-sentiment-run]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.backtest import BacktestResult, HistoryReader, window_ends
from crew.scorecard import TrackOptions, _history, backtest
from crew.sentiment import Sentiment
from crew.signals import compute_signals, item_tone
from crew.track import Benchmark
from memory.prices import PriceStore
from memory.state import StateDB
from tests.synthetic_history import SyntheticHistory, generate, store

TARGET_S = 60.0
# Market prose of the kind posts and articles carry around their headline, some of it with tone.
FILLER = (
    "Traders watched funding rates and open interest through the session.",
    "Desks reported thin weekend order books and wider spreads than usual.",
    "Some analysts expect volatility to stay elevated into the weekly close.",
    "Holders cheered the upgrade while critics warned about centralisation risks.",
    "On-chain data showed exchange balances drifting lower again.",
    "A few accounts called the move overdone; others said it was not over yet.",
    "Liquidations were modest compared with last month's sell-off.",
    "Market makers said demand for options hedges picked up slightly.",
    "The team did not respond to a request for comment.",
    "Fees on the network rose, though they remain far below the spring peak.",
)


def lengthened(history: SyntheticHistory, chars: int, seed: int = 60) -> SyntheticHistory:
    """The history with each item's text grown to about ``chars`` characters by seeded filler sentences."""
    if chars <= 0:
        return history
    rng = random.Random(seed)
    items = []
    for item in history.items:
        text = item.text
        while len(text) < chars:
            text += " " + rng.choice(FILLER)
        items.append(replace(item, text=text[:chars]))
    return replace(history, items=items)


def main() -> None:
    """Fill, then time the backtest with sentiment off and on, and the live baseline; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--text-chars", type=int, default=340, help="grow each text to this length (0: as generated)")
    parser.add_argument("--no-sentiment-run", action="store_true", help="time the backtest with sentiment off only")
    args = parser.parse_args()

    t0 = time.perf_counter()
    history = lengthened(generate(seed=60, days=args.days, items_per_day=args.per_day, tickers=args.tickers),
                         args.text_chars)
    horizons = (timedelta(days=1), timedelta(days=5), timedelta(days=10), timedelta(days=30))
    options = TrackOptions(horizons, Benchmark("basket", history.tickers), timedelta(hours=3))
    runs: dict[bool, tuple[BacktestResult, float, str]] = {}
    cpus = len(os.sched_getaffinity(0))
    live: dict[bool, tuple[float, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        state = StateDB(f"sqlite:///{Path(tmp) / 'state.db'}")
        store(state, history, fast=True)
        fill = time.perf_counter() - t0
        chars = sorted(len(i.text) for i in history.items)[len(history.items) // 2]
        print(f"fill (not timed): {len(history.items):,} items (median text {chars} characters), "
              f"{len(history.snapshots):,} snapshots in {fill:.1f} s")

        prices = PriceStore(state)
        for with_sentiment in (False,) if args.no_sentiment_run else (False, True):
            before, t1 = load(), time.perf_counter()
            compute_signals(state, None, now=history.end, prices=prices, narratives=False, sentiment=with_sentiment)
            live[with_sentiment] = (time.perf_counter() - t1, f"{before} -> {load()}")
            before, t2 = load(), time.perf_counter()
            result = backtest(state, options, start=history.start, end=history.end, every=timedelta(days=1), top=5,
                              rankings=("breadth", "mentions"), now=datetime.now(UTC), sentiment=with_sentiment)
            runs[with_sentiment] = (result, time.perf_counter() - t2, f"{before} -> {load()}")
        if not args.no_sentiment_run and cpus > 1:
            before, t2 = load(), time.perf_counter()
            backtest(state, options, start=history.start, end=history.end, every=timedelta(days=1), top=5,
                     rankings=("breadth", "mentions"), now=datetime.now(UTC), sentiment=True, workers=1)
            one_process = (time.perf_counter() - t2, f"{before} -> {load()}")
        if not args.no_sentiment_run:
            # What --sentiment cost before it scored only the picks' items: every item of every window.
            rows = _history(state, history.start, history.end, with_text=True)
            reader = HistoryReader(rows)
            before, t3 = load(), time.perf_counter()
            sentiment = Sentiment()
            for at in window_ends(history.start, history.end, timedelta(days=1)):
                for row in reader.window_items(at - timedelta(days=1), at):
                    if row.tickers:
                        item_tone(row, sentiment)
            every_item = (time.perf_counter() - t3, f"{before} -> {load()}", len(rows))
        state.close()

    print(f"CPUs this process may use: {cpus} (sentiment is scored in that many processes)")
    for with_sentiment, (result, elapsed, at_load) in runs.items():
        windows = len(result.windows)
        baseline, base_load = live[with_sentiment]
        verdict = "PASS" if elapsed <= TARGET_S else "FAIL"
        print(f"backtest, sentiment {'on' if with_sentiment else 'off'}: {windows} windows, {len(result.picks)} picks, "
              f"{len(horizons)} horizons: {elapsed:.1f} s -> {verdict} (<= {TARGET_S:.0f} s) [load {at_load}]")
        print(f"  live: one compute_signals pass over the state DB: {baseline:.2f} s [load {base_load}]; "
              f"backtest per window {elapsed / max(windows, 1):.2f} s = {elapsed / max(windows, 1) / baseline:.2f}x")
    if True in runs:
        print(f"sentiment on / off: {runs[True][1]:.1f} s / {runs[False][1]:.1f} s = "
              f"{runs[True][1] / runs[False][1]:.2f}x")
        if cpus > 1:
            print(f"sentiment on in one process instead of {cpus}: {one_process[0]:.1f} s [load {one_process[1]}]")
        spent, at_load, n = every_item
        print(f"for comparison, the tone of every item of every window (what --sentiment scored before, in one "
              f"process): {spent:.1f} s for {n:,} items [load {at_load}]; sentiment off + that = "
              f"{runs[False][1] + spent:.1f} s")
    one_day = runs[False][0].stats["breadth"][0]
    if one_day.mean is not None and one_day.mean_ci is not None:
        print(f"sanity (planted +{history.effect_pct}% effect): breadth top-5 1d mean excess {one_day.mean:+.2f} pp, "
              f"95% interval {one_day.mean_ci.low:+.2f} … {one_day.mean_ci.high:+.2f}")
    if True in runs:
        on, off = (runs[s][0] for s in (True, False))
        same = [(p.signal.ticker, p.window_end, p.ranking) for p in on.picks] == [
            (p.signal.ticker, p.window_end, p.ranking) for p in off.picks]
        print(f"same picks with sentiment on and off (no ranking uses it): {same}")


def load() -> str:
    """The 1-minute load average (taken before and after each figure)."""
    return f"{os.getloadavg()[0]:.2f}"


if __name__ == "__main__":
    main()
