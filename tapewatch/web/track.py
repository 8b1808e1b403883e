"""The public track record page (``/track``): the table of ``tapewatch track`` with a chart of it."""

from __future__ import annotations

import html

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crew.scorecard import TrackOptions, track_record
from crew.track import Benchmark, HorizonStats, label
from tapewatch.web.app import Web


def routes(web: Web) -> list[Route]:
    """The ``/track`` route."""

    def track(request: Request) -> Response:
        t = web.settings.track
        bench = Benchmark("basket" if t.benchmark == "basket" else "BTC", basket=web.settings.watchlist)
        options = TrackOptions(tuple(t.horizons), bench, t.tolerance, t.min_calls, t.bootstrap, t.seed)
        record = track_record(web.reads, options, web.deps.clock())
        return web.page(request, "track.html", record=record, stats=record.stats, label=label,
                        briefs=len({c.draft_id for c in record.calls}), chart=excess_chart(record.stats))

    return [Route("/track", track)]


def excess_chart(stats: list[HorizonStats], *, width: int = 640, height: int = 200) -> Markup:
    """An inline SVG of the mean excess per horizon with its 95% interval; only horizons with enough calls."""
    shown = [s for s in stats if s.enough and s.mean is not None and s.mean_ci is not None]
    if not shown:
        return Markup('<p class="muted">No horizon has enough scored calls for a chart yet.</p>')
    values = [v for s in shown for v in (s.mean_ci.low, s.mean_ci.high, 0.0)]  # type: ignore[union-attr]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    pad, slot = 24, (width - 48) / len(shown)

    def y(value: float) -> float:
        return pad + (high - value) / span * (height - 2 * pad)

    parts = [f'<line x1="24" x2="{width - 24}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#57606a"/>']
    for i, s in enumerate(shown):
        x = 24 + slot * i + slot / 2
        mean, ci = s.mean or 0.0, s.mean_ci
        colour = "#1a7f37" if mean >= 0 else "#cf222e"
        top, bottom = sorted((y(mean), y(0)))
        parts.append(f'<rect x="{x - slot / 4:.1f}" y="{top:.1f}" width="{slot / 2:.1f}" '
                     f'height="{max(bottom - top, 1):.1f}" fill="{colour}"/>')
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(ci.high):.1f}" y2="{y(ci.low):.1f}" '  # type: ignore[union-attr]
                     'stroke="#24292f" stroke-width="2"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" font-size="11" text-anchor="middle" fill="#57606a">'
                     f'{label(s.horizon)} {mean:+.2f} pp</text>')
    title = html.escape("Mean excess return per horizon, in percentage points, with 95% intervals")
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'role="img" aria-label="{title}"><title>{title}</title>{"".join(parts)}</svg>')
