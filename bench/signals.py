"""Benchmark: signals + narratives + data brief (take, thread, full brief) and its chart, at 10k and 100k items.

Run: .venv/bin/python bench/signals.py [--sizes 10000 100000]

Items are spread over the window and its 7 baseline windows (8 days), so the 24 h window holds
1/8 of them. Rows go into a real SQLite state DB; vectors (synthetic, clustered around topic
centroids, unit length) into a real embedded Chroma for the window's items, which is all the
narrative step reads; hourly price snapshots per ticker go into the same DB for the chart. Prints seconds
per stage and the growth factor between sizes. Target: rendering the brief in every shape with its chart
(the lead ticker's, from the state DB) takes ≤ 1 s on top of the signals at 10k items; the chart's first draw
in a process also pays matplotlib's import, shown apart ("cold").
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.chart import draw
from crew.databrief import compose, to_draft
from crew.render import render_x
from crew.signals import compute_signals
from memory.chroma import ChromaVectors
from memory.prices import PriceSnapshot, PriceStore
from memory.state import StateDB
from memory.store import vector_metadata
from sources.item import Item, item_id_for_url

TICKERS = ["BTC", "ETH", "SOL", "XRP", "DOGE", "LINK", "AVAX", "ARB", "TON", "SUI", "ADA", "BNB"]
CLUSTERS = ["", "vc", "founder", "trader", "researcher", "dev", "media"]
WORDS = [
    "inflows", "outflows", "upgrade", "validators", "exchange", "hack", "staking", "airdrop", "rally",
    "selloff", "liquidations", "treasury", "governance", "bridge", "fees", "stablecoin", "supply", "whales",
    "miners", "etf", "approval", "lawsuit",
]


def generate(n: int, now: datetime, rng: np.random.Generator) -> tuple[list[Item], np.ndarray]:
    """n items over 8 days; 200 topics, each item near its topic's centroid; some reports share a story."""
    topics = rng.normal(size=(200, 384)).astype(np.float32)
    span = timedelta(days=8).total_seconds()
    items, vectors = [], []
    for i in range(n):
        topic = int(rng.integers(0, 200))
        kind = ("news", "forum", "social")[int(rng.integers(0, 3))]
        when = now - timedelta(seconds=float(rng.uniform(0, span)))
        ticks = tuple(sorted({TICKERS[topic % len(TICKERS)], TICKERS[int(rng.integers(0, len(TICKERS)))]}))
        words = " ".join(rng.choice(WORDS, size=6))
        url = f"https://bench{i % 50}.example/{topic}/{i}"
        items.append(Item(
            id=item_id_for_url(url), kind=kind, source=f"outlet{i % 50}", url=url,
            title=f"{ticks[0]} {words}", text=f"{words} {' '.join(ticks)} topic {topic}",
            published_at=when, fetched_at=now, author=f"author{int(rng.integers(0, 400))}",
            tickers=ticks, cluster=CLUSTERS[int(rng.integers(0, len(CLUSTERS)))] if kind == "social" else "",
            metrics={"likes": int(rng.integers(0, 500)), "reposts": int(rng.integers(0, 50))},
        ))
        vec = topics[topic] + rng.normal(scale=0.6, size=384).astype(np.float32)
        vectors.append(vec / np.linalg.norm(vec))
    return items, np.asarray(vectors, dtype=np.float32)


def run(n: int, workdir: Path) -> dict[str, float]:
    """Fill a store with n items and time one signals + narratives + brief pass."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    rng = np.random.default_rng(n)
    items, vectors = generate(n, now, rng)
    state = StateDB(f"sqlite:///{workdir / f's{n}.db'}")
    client = chromadb.PersistentClient(str(workdir / f"c{n}"), settings=ChromaSettings(anonymized_telemetry=False))
    store = ChromaVectors(client, "bench", "bench-synthetic", 384)
    started = time.perf_counter()
    for start in range(0, n, 5000):
        state.commit_batch(items[start:start + 5000], [], None)
    recent = [k for k, item in enumerate(items) if item.published_at >= now - timedelta(hours=24)]
    store.upsert([items[k].id for k in recent], vectors[recent], [items[k].title for k in recent],
                 [vector_metadata(items[k]) for k in recent])
    prices = PriceStore(state)
    prices.add([PriceSnapshot(ticker=t, observed_at=now - timedelta(hours=h), price_usd=100.0 + k + h * 0.1)
                for k, t in enumerate(TICKERS) for h in range(0, 24 * 8)], now)
    fill = time.perf_counter() - started

    timings: dict[str, float] = {"fill": fill, "window_items": float(len(recent))}
    t0 = time.perf_counter()
    signals = compute_signals(state, store, now=now, window=timedelta(hours=24), narratives=False)
    t1 = time.perf_counter()
    signals = compute_signals(state, store, now=now, window=timedelta(hours=24))
    t2 = time.perf_counter()
    rows = {r.id: r for r in state.window_items(signals.window_start, signals.window_end)}
    brief = compose(signals, rows, generated_at=now, permalink="https://briefs.example.com/b/bench")
    draft = to_draft(brief, signals, shape="thread")
    take = render_x(brief, "take")
    t3 = time.perf_counter()
    lead = draft.meta.get("lead_ticker") or draft.tickers[0]
    _, png, alt = draw(state, prices, lead, now=now, window=timedelta(hours=24), narratives=signals.narratives)
    t4 = time.perf_counter()
    warm = []
    for _ in range(3):
        w0 = time.perf_counter()
        rows = {r.id: r for r in state.window_items(signals.window_start, signals.window_end)}
        brief = compose(signals, rows, generated_at=now, permalink="https://briefs.example.com/b/bench")
        to_draft(brief, signals, shape="thread")
        render_x(brief, "take")
        draw(state, prices, lead, now=now, window=timedelta(hours=24), narratives=signals.narratives)
        warm.append(time.perf_counter() - w0)
    timings.update(signals=t1 - t0, signals_narratives=t2 - t1, brief=t3 - t2, total=(t2 - t1) + (t3 - t2),
                   tickers=float(len(signals.tickers)), narratives=float(len(signals.narratives)),
                   posts=float(len(draft.x_thread)), take=float(len(take)), chart_cold=t4 - t3,
                   brief_chart=min(warm), png_kb=len(png) / 1024, alt=float(len(alt)))
    state.close()
    return timings


def main() -> None:
    """Run the sizes and print figures and the growth factor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print(f"bench/signals.py  sizes={args.sizes}  cores={os.cpu_count()}  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    results = {}
    with tempfile.TemporaryDirectory(prefix="tapewatch-bench-signals-") as tmp:
        for n in args.sizes:
            results[n] = r = run(n, Path(tmp))
            print(f"{n:>7,} stored items ({int(r['window_items']):,} in the 24h window): "
                  f"signals {r['signals']:.2f}s, signals+narratives {r['signals_narratives']:.2f}s, "
                  f"brief render {r['brief']:.2f}s, total {r['total']:.2f}s "
                  f"[{int(r['tickers'])} tickers, {int(r['narratives'])} narratives, {int(r['posts'])} posts; "
                  f"fill {r['fill']:.0f}s, not timed]")
            print(f"{'':>7} brief in every shape + chart of the lead ticker: {r['brief_chart']:.2f}s warm "
                  f"(×{r['brief_chart'] / r['signals_narratives']:.2f} of signals+narratives; chart's first draw "
                  f"{r['chart_cold']:.2f}s cold), PNG {r['png_kb']:.0f} KB, alt text {int(r['alt'])} chars")
    sizes = sorted(results)
    if sizes:
        first = sizes[0]
        verdict = "PASS" if results[first]["total"] <= 2.0 else "FAIL"
        print(f"target ≤ 2 s at {first:,}: {verdict} ({results[first]['total']:.2f}s)")
        extra = results[first]["brief_chart"]
        print(f"target: brief + chart ≤ 1 s on top of the signals at {first:,}: "
              f"{'PASS' if extra <= 1.0 else 'FAIL'} ({extra:.2f}s)")
    for a, b in itertools.pairwise(sizes):
        growth = results[b]["total"] / results[a]["total"]
        ratio = b / a
        verdict = "PASS" if growth <= ratio else "FAIL"
        print(f"growth {a:,} → {b:,} items (×{ratio:.0f}): time ×{growth:.1f} → {verdict} (no worse than linear)")


if __name__ == "__main__":
    main()
