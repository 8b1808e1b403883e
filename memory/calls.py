"""Calls: what each published brief featured (ticker, rank, signals, framing), recorded at publish time.

A call is written from the draft's own stored signals when its first part goes out, so it is never rescored
with hindsight; calls are kept forever (retention never deletes them). A published draft that has no calls
(the process died between publishing and recording) gets them from the same stored data on the next read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from memory import schema
from memory.drafts import Draft, _draft

FRAMINGS = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class Call:
    """One featured ticker of one published brief."""

    draft_id: str
    ticker: str
    rank: int
    published_at: datetime
    window_start: datetime
    window_end: datetime
    mentions: int = 0
    breadth: int = 0
    growth: float | None = None
    sentiment: float | None = None
    price_change_pct: float | None = None
    score: float | None = None
    framing: str | None = None


def framing_of(draft: Draft) -> dict[str, str]:
    """Ticker → framing where the writer gave one (``meta["framing"]``: a mapping, or a single word for all)."""
    raw = draft.meta.get("framing")
    if isinstance(raw, str):
        raw = {t: raw for t in draft.tickers}
    if not isinstance(raw, Mapping):
        return {}
    return {str(t).upper(): str(f).lower() for t, f in raw.items() if str(f).lower() in FRAMINGS}


def calls_of(draft: Draft, published_at: datetime) -> list[Call]:
    """The calls a draft makes: each featured ticker, in the brief's order, with the signals it was built from."""
    signals = {str(t.get("ticker", "")).upper(): t for t in draft.signals.get("tickers", []) if isinstance(t, dict)}
    framing = framing_of(draft)
    out = []
    for rank, ticker in enumerate(dict.fromkeys(t.upper() for t in draft.tickers), start=1):
        s = signals.get(ticker, {})
        out.append(Call(
            draft_id=draft.id, ticker=ticker, rank=rank, published_at=published_at,
            window_start=draft.window_start, window_end=draft.window_end, mentions=int(s.get("mentions") or 0),
            breadth=int(s.get("clusters") or 0), growth=_num(s.get("growth")), sentiment=_num(s.get("sentiment")),
            price_change_pct=_num(s.get("price_change_pct")), score=_num(s.get("score")),
            framing=framing.get(ticker),
        ))
    return out


def record_calls(conn: Connection, draft: Draft, published_at: datetime) -> int:
    """Store a published draft's calls inside the caller's transaction (once); return how many were new."""
    c = schema.calls
    have = set(conn.execute(select(c.c.ticker).where(c.c.draft_id == draft.id)).scalars())
    now = datetime.now(UTC)
    rows = [{**vars(call), "recorded_at": now} for call in calls_of(draft, published_at) if call.ticker not in have]
    if rows:
        conn.execute(insert(c), rows)
    return len(rows)


class CallStore:
    """Read calls; fill in those of published drafts that have none yet."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self, since: datetime | None = None) -> list[Call]:
        """Every call (published since ``since``), oldest first, after recording any that are missing."""
        self.backfill()
        c = schema.calls
        q = select(c).order_by(c.c.published_at, c.c.draft_id, c.c.rank)
        if since is not None:
            q = q.where(c.c.published_at >= since)
        with self.engine.connect() as conn:
            return [_call(r) for r in conn.execute(q)]

    def backfill(self) -> int:
        """Record the calls of published drafts that have none, published when their first part was sent."""
        d, c, o = schema.drafts, schema.calls, schema.outbox
        first_sent = (select(o.c.draft_id, func.min(o.c.sent_at).label("at"))
                      .where(o.c.state == "sent", o.c.dry_run == 0).group_by(o.c.draft_id).subquery())
        q = (select(d, first_sent.c.at).join(first_sent, first_sent.c.draft_id == d.c.id)
             .where(d.c.status == "published", ~select(c.c.id).where(c.c.draft_id == d.c.id).exists()))
        added = 0
        with self.engine.begin() as conn:
            for row in conn.execute(q).all():
                added += record_calls(conn, _draft(row), row.at)
        return added

    def count(self) -> int:
        """How many calls are stored."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.calls)).scalar() or 0)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _call(row: Any) -> Call:
    return Call(
        draft_id=row.draft_id, ticker=row.ticker, rank=row.rank, published_at=row.published_at,
        window_start=row.window_start, window_end=row.window_end, mentions=row.mentions, breadth=row.breadth,
        growth=row.growth, sentiment=row.sentiment, price_change_pct=row.price_change_pct, score=row.score,
        framing=row.framing,
    )


def tickers_of(calls: Iterable[Call]) -> list[str]:
    """The distinct tickers of some calls, sorted."""
    return sorted({c.ticker for c in calls})
