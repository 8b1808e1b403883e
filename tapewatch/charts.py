"""Charts of briefs on disk: drawn when a brief is written, read back as media when it is published."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapewatch.settings import Settings

if TYPE_CHECKING:
    from crew.model import Signals
    from memory.drafts import Draft
    from publish.channel import Media

log = logging.getLogger(__name__)


def chart_file(settings: Settings, draft_id: str) -> Path:
    """Where a draft's chart is kept: ``{data_dir}/charts/{draft id}.png``."""
    return settings.data_dir / "charts" / f"{draft_id}.png"


def lead_ticker(draft: Draft) -> str | None:
    """The ticker a draft's chart is drawn for: its take's, else its first."""
    lead = draft.meta.get("lead_ticker") if isinstance(draft.meta, dict) else None
    return str(lead) if lead else (draft.tickers[0] if draft.tickers else None)


def attach_chart(settings: Settings, state: Any, draft: Draft, signals: Signals, *, now: datetime,
                 window: timedelta) -> Draft:
    """Draw the chart of the draft's lead ticker, store it beside the state DB, and return the draft with the
    chart noted in its meta; called before the draft is saved, so no reviewer can publish it without its chart.

    A chart that cannot be drawn is logged and left out: the brief stands without it.
    """
    from dataclasses import replace

    from crew.chart import draw
    from tapewatch.clients import price_history

    ticker = lead_ticker(draft)
    if ticker is None or not settings.publish.x_attach_chart:
        return draft
    try:
        _, png, alt = draw(state, price_history(settings, state), ticker, now=now, window=window,
                           narratives=signals.narratives)
        path = chart_file(settings, draft.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(png)
        tmp.replace(path)  # whole or absent, never half a PNG
    except Exception as exc:  # a chart is an extra: never lose the brief over it
        log.warning("chart for draft %s not drawn: %s: %s", draft.id[:12], type(exc).__name__, exc)
        return draft
    chart = {"ticker": ticker, "file": path.name, "alt": alt, "bytes": len(png)}
    return replace(draft, meta={**draft.meta, "chart": chart})


def chart_media(settings: Settings, draft: Draft) -> Media | None:
    """The draft's chart as media to attach, or None (no chart, charts off, or the file is gone)."""
    from publish.channel import Media

    chart = draft.meta.get("chart") if isinstance(draft.meta, dict) else None
    if not settings.publish.x_attach_chart or not isinstance(chart, dict):
        return None
    path = chart_file(settings, draft.id)
    try:
        return Media(png=path.read_bytes(), alt=str(chart.get("alt", ""))[:1000], name=path.name)
    except OSError:
        log.warning("chart of draft %s is missing (%s); publishing without it", draft.id[:12], path)
        return None
