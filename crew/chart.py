"""A brief's chart: one ticker's stories and breadth per hour (or per 4 h) with its stored price line.

Drawn with matplotlib's Agg canvas (no pyplot, no display, no global state), so it is safe off the event loop
and deterministic: the same data gives the same PNG bytes (no timestamp or version in the file's metadata).
Sized for a phone: 1200×675 px (X's 16:9), large type, well under 300 KB. The alt text is written from the same
data, within X's 1,000 characters.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

ALT_LIMIT = 1000  # X's limit for an image's alt text
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 150
_BAR, _BREADTH, _PRICE, _MARK = "#4c78a8", "#f58518", "#222222", "#b23b3b"


@dataclass(frozen=True)
class ChartData:
    """What one chart shows, all from stored items and price snapshots."""

    ticker: str
    start: datetime
    end: datetime
    bucket: timedelta
    times: tuple[datetime, ...]  # bucket starts
    stories: tuple[int, ...]  # distinct stories naming the ticker, per bucket
    breadth: tuple[int, ...]  # distinct account groups among them, per bucket
    prices: tuple[tuple[datetime, float], ...]  # stored snapshots in the window, oldest first
    marker: datetime | None = None  # when the top narrative's first report landed
    marker_label: str = ""
    distinct: int = 0  # distinct stories in the whole window (one told in two buckets counts in both above)


def bucket_for(window: timedelta) -> timedelta:
    """Per hour up to two days, per 4 h beyond."""
    return timedelta(hours=1) if window <= timedelta(days=2) else timedelta(hours=4)


def chart_data(rows: Iterable[Any], ticker: str, start: datetime, end: datetime,
               prices: Sequence[tuple[datetime, float]] = (), *, marker: datetime | None = None,
               marker_label: str = "", cluster_of: Any = None) -> ChartData:
    """Bucket the item rows naming ``ticker`` in [start, end): stories and account groups per bucket."""
    from crew.narratives import cluster_of as default_cluster

    group = cluster_of or default_cluster
    ticker = ticker.upper().lstrip("$")
    step = bucket_for(end - start)
    # Buckets start on whole hours (4 h: 00, 04, 08 … UTC), so the bars read as clock times.
    first = start.replace(minute=0, second=0, microsecond=0)
    first -= timedelta(hours=first.hour % int(step.total_seconds() // 3600))
    count = max(1, -(-int((end - first).total_seconds()) // int(step.total_seconds())))
    stories: list[set[str]] = [set() for _ in range(count)]
    groups: list[set[str]] = [set() for _ in range(count)]
    for row in rows:
        if ticker not in row.tickers.split() or not start <= row.published_at < end:
            continue
        index = min(int((row.published_at - first) / step), count - 1)
        stories[index].add(row.story_id)
        groups[index].add(group(row))
    shown = tuple(sorted((t, p) for t, p in prices if start <= t <= end and p > 0))
    return ChartData(ticker=ticker, start=start, end=end, bucket=step,
                     times=tuple(first + step * i for i in range(count)),
                     stories=tuple(len(s) for s in stories), breadth=tuple(len(g) for g in groups),
                     prices=shown, marker=marker if marker is not None and start <= marker <= end else None,
                     marker_label=marker_label, distinct=len(set().union(*stories)))


def render_png(data: ChartData) -> bytes:
    """The chart as PNG bytes (Agg; deterministic for the same data)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, date2num
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"font.size": 13, "axes.titlesize": 16, "svg.hashsalt": "tapewatch",
                                "path.simplify": True, "axes.spines.top": False}):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        # matplotlib's date converter takes datetimes where its stubs say float: convert once, here.
        lo, hi = float(date2num(data.times[0])), float(date2num(data.end))
        mark = float(date2num(data.marker)) if data.marker is not None else None
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        days = data.bucket.total_seconds() / 86400  # matplotlib's date unit
        starts = [float(date2num(t)) for t in data.times]
        ax.bar(starts, data.stories, width=days * 0.85, align="edge", color=_BAR, label="stories")
        centres = [x + days / 2 for x in starts]
        ax.step(centres, data.breadth, where="mid", color=_BREADTH, linewidth=2.5, label="account groups")
        ax.set_ylabel("stories · groups")
        ax.set_ylim(0, max([*data.stories, *data.breadth, 1]) * 1.25)
        ax.set_xlim(lo, hi)
        if mark is not None:
            ax.axvline(mark, color=_MARK, linestyle="--", linewidth=2)
            late = mark - lo > (hi - lo) * 0.6  # label on the roomier side
            ax.annotate(data.marker_label or "first report", (mark, ax.get_ylim()[1] * 0.97),
                        xytext=(-4 if late else 4, 0), textcoords="offset points", color=_MARK, fontsize=11,
                        va="top", ha="right" if late else "left")
        if data.prices:
            px = ax.twinx()
            px.spines["top"].set_visible(False)
            px.plot([float(date2num(t)) for t, _ in data.prices], [p for _, p in data.prices], color=_PRICE,
                    linewidth=2,
                    label="price (USD)")
            px.set_ylabel("price, USD")
            px.set_xlim(lo, hi)
        span = data.end - data.start
        ax.xaxis.set_major_formatter(DateFormatter("%H:%M" if span <= timedelta(days=2) else "%d %b"))
        ax.set_title(f"${data.ticker}: stories and account groups per {_unit(data.bucket)}, last {_span(span)}",
                     loc="left")
        handles = [h for axis in fig.axes for h in axis.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, loc="upper left", frameon=False, fontsize=11)
        fig.text(0.99, 0.01, "tapewatch · stored sources and price snapshots · UTC", ha="right", fontsize=9,
                 color="#666666")
        fig.tight_layout()
        out = io.BytesIO()
        # No Software or creation-time metadata: the same data must give the same bytes.
        fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def alt_text(data: ChartData) -> str:
    """A description of the chart from its data, at most ``ALT_LIMIT`` characters."""
    unit = _unit(data.bucket)
    parts = [f"Bar chart of ${data.ticker} over the last {_span(data.end - data.start)}, per {unit}, UTC."]
    if any(data.stories):
        peak = max(range(len(data.stories)), key=lambda i: (data.stories[i], -i))
        parts.append(f"Stories naming ${data.ticker}: {data.distinct} in all, most in the {unit} "
                     f"from {data.times[peak]:%H:%M} on {data.times[peak]:%d %b} ({data.stories[peak]}).")
        widest = max(range(len(data.breadth)), key=lambda i: (data.breadth[i], -i))
        parts.append(f"Account groups reporting it: up to {data.breadth[widest]} in one {unit} "
                     f"(from {data.times[widest]:%H:%M}).")
    else:
        parts.append(f"No stored story names ${data.ticker} in this window.")
    if data.prices:
        first, last = data.prices[0][1], data.prices[-1][1]
        low, high = min(p for _, p in data.prices), max(p for _, p in data.prices)
        change = (last - first) / first * 100
        parts.append(f"Price line from stored snapshots: {_usd(first)} to {_usd(last)} ({change:+.1f}%), "
                     f"range {_usd(low)} to {_usd(high)}.")
    else:
        parts.append("No stored price snapshots in this window.")
    if data.marker is not None:
        parts.append(f"A dashed line marks the {data.marker_label or 'first report'} at {data.marker:%H:%M} on "
                     f"{data.marker:%d %b}.")
    text = " ".join(parts)
    return text if len(text) <= ALT_LIMIT else text[: ALT_LIMIT - 1].rsplit(" ", 1)[0] + "…"


def _unit(bucket: timedelta) -> str:
    hours = int(bucket.total_seconds() // 3600)
    return "hour" if hours == 1 else f"{hours} h"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 86400}d" if seconds % 86400 == 0 and seconds >= 2 * 86400 else f"{seconds // 3600}h"


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def draw(state: Any, prices: Any, ticker: str, *, now: datetime, window: timedelta,
         narratives: Sequence[Any] = ()) -> tuple[ChartData, bytes, str]:
    """The chart of ``ticker`` over the window ending ``now``, from the state DB (items) and price snapshots;
    marked where the top narrative naming it was first reported. Returns the data, the PNG and its alt text."""
    start = now - window
    ticker = ticker.upper().lstrip("$")
    series = prices.series(ticker, start, now) if prices is not None and hasattr(prices, "series") else []
    top = next((n for n in narratives if ticker in n.tickers), None)
    data = chart_data(state.window_items(start, now), ticker, start, now, series,
                      marker=top.first_seen if top is not None else None,
                      marker_label="first report of the top story" if top is not None else "")
    return data, render_png(data), alt_text(data)
