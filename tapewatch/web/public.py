"""The public side, no login: latest briefs, permalinks, the Atom feed, tickers, narratives, /healthz.

Only published drafts are ever shown, and only by their public id; anything else is the same 404.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crew.model import ValidationReport
from memory import schema
from memory.prices import PriceStore
from publish.amend import public_notes
from publish.archive import Entry
from tapewatch.web.app import PUBLIC_MAX_AGE_S, Web, not_found
from tapewatch.web.views import price_chart

TICKER = re.compile(r"[A-Za-z][A-Za-z0-9]{0,9}")


def routes(web: Web) -> list[Route]:
    """The public routes."""

    def index(request: Request) -> Response:
        return web.page(request, "index.html", entries=web.archive.latest(20))

    def brief(request: Request) -> Response:
        entry = web.archive.get(str(request.path_params["pid"]))
        if entry is None:
            raise not_found()
        return web.page(request, "brief.html", **brief_context(web, entry))

    def feed(request: Request) -> Response:
        entries = web.archive.latest(50)
        base = web.settings.publish.archive_url or str(request.base_url).rstrip("/")
        body = web.templates.get_template("feed.xml").render(entries=entries, base=base,
                                                             updated=entries[0].published_at if entries else None)
        return Response(body, media_type="application/atom+xml; charset=utf-8",
                        headers={"cache-control": f"public, max-age={PUBLIC_MAX_AGE_S}"})

    def ticker(request: Request) -> Response:
        name = str(request.path_params["ticker"])
        if not TICKER.fullmatch(name):
            raise not_found()
        name = name.upper()
        now = web.deps.clock()
        charts = {days: price_chart(web.archive.price_series(name, now - timedelta(days=days), now),
                                    label=f"${name} {days}d") for days in (7, 30)}
        return web.page(request, "ticker.html", ticker=name, charts=charts, stories=ticker_stories(web, name),
                        entries=web.archive.latest(10, ticker=name))

    cache = _Cached(lambda: narrative_context(web), web.settings.web.narratives_ttl, web.deps.clock)

    def narratives(request: Request) -> Response:
        return web.page(request, "narratives.html", **cache.get())

    def healthz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            with web.reads.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["state"] = "ok"
        except Exception as exc:
            checks["state"] = f"unreachable: {type(exc).__name__}"
        try:
            if web.deps.memory is None:
                raise RuntimeError("no vector store configured for the web process")
            web.deps.memory().vectors.count()
            checks["vectors"] = "ok"
        except Exception as exc:
            checks["vectors"] = f"unreachable: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"ok": ok, **checks}, status_code=200 if ok else 503)

    return [Route("/", index), Route("/b/{pid}", brief), Route("/feed.atom", feed), Route("/t/{ticker}", ticker),
            Route("/narratives", narratives), Route("/healthz", healthz)]


def brief_context(web: Web, entry: Entry) -> dict[str, Any]:
    """What a permalink page shows: text, chart, sources, prices, grounding summary, provenance."""
    draft = entry.draft
    cited = web.archive.sources(draft)
    sources = [r for r in cited if not r.suspect]  # suspect items are counted, never linked or quoted
    prices = PriceStore(web.reads)
    snapshots = [s for s in (prices.latest(t, at=draft.window_end) for t in draft.tickers) if s is not None]
    chart = None
    if draft.tickers:
        lead = draft.tickers[0]
        chart = price_chart(web.archive.price_series(lead, draft.window_start, draft.window_end), label=f"${lead}")
    report = ValidationReport.from_dict(draft.validation)
    standings = Counter(c.standing for c in report.claims)
    return {"entry": entry, "draft": draft, "sources": sources, "set_aside": len(cited) - len(sources),
            "snapshots": snapshots, "chart": chart, "report": report, "standings": sorted(standings.items()),
            "models": draft.meta.get("models") or {}, "prompt_version": draft.meta.get("prompt_version"),
            "corrections": public_notes(web.reads.engine, draft.id)}


class _Cached:
    """One value computed at most once per ``ttl`` (by the app's clock), however many requests ask at once."""

    def __init__(self, compute: Callable[[], dict[str, Any]], ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self.compute, self.ttl, self.clock = compute, ttl, clock
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._at: datetime | None = None

    def get(self) -> dict[str, Any]:
        with self._lock:  # the others wait for the one computing, then share its result
            now = self.clock()
            if self._value is None or self._at is None or now - self._at >= self.ttl or now < self._at:
                self._value, self._at = self.compute(), now
            return self._value


def ticker_stories(web: Web, ticker: str, limit: int = 10) -> list[Any]:
    """The ticker's latest stories (near-duplicates and suspect items left out)."""
    it, items = schema.item_tickers, schema.items
    with web.reads.engine.connect() as conn:
        return list(conn.execute(
            select(items).join(it, it.c.item_id == items.c.id).where(
                it.c.ticker == ticker, items.c.suspect == 0, items.c.story_id == items.c.id)
            .order_by(it.c.published_at.desc()).limit(limit)).all())


def narrative_context(web: Web) -> dict[str, Any]:
    """The current narratives with their lead stories (empty with a note when the vector store is out)."""
    if web.deps.memory is None:
        return {"narratives": [], "note": "Narratives need the vector store, which this process has not opened."}
    from crew.signals import compute_signals

    memory = web.deps.memory()
    window = timedelta(hours=24)
    result = compute_signals(memory.state, memory.vectors, now=web.deps.clock(), window=window,
                             prices=PriceStore(web.reads), narratives=True)
    leads = web.reads.items_by_ids([n.id for n in result.narratives[:20]])
    rows = [(n, leads.get(n.id)) for n in result.narratives[:20]]
    return {"narratives": [(n, lead if lead is not None and not lead.suspect else None) for n, lead in rows],
            "note": None if rows else "No narrative (two or more related stories) in the last 24 hours."}
