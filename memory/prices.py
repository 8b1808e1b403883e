"""Market price snapshots: time-stamped observations per ticker, kept in the state database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from memory import schema
from memory.state import StateDB
from sources.coingecko import SOURCE as COINGECKO
from sources.coingecko import Quote
from sources.errors import StoreError


@dataclass(frozen=True)
class PriceSnapshot:
    """One observation of a ticker's market, as reported by a market data source."""

    ticker: str
    observed_at: datetime  # when the source says the price was current (UTC)
    price_usd: float
    change_24h_pct: float | None = None
    volume_24h_usd: float | None = None
    market_cap_usd: float | None = None
    source: str = "coingecko"
    source_id: str = ""  # the source's id for the asset, e.g. CoinGecko's "solana"


class PriceHistory(Protocol):
    """What analysis and grounding read from stored snapshots (``memory.prices.PriceStore`` implements it)."""

    def latest(self, ticker: str, at: datetime | None = None) -> PriceSnapshot | None:
        """The newest snapshot of ``ticker`` at or before ``at`` (default: now), or None."""
        ...

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        """Percent change of ``ticker`` between ``start`` and ``end``, or None when unknown."""
        ...


def snapshot_of(quote: Quote, source: str = COINGECKO) -> PriceSnapshot:
    """A market source's quote as a stored snapshot."""
    return PriceSnapshot(
        ticker=quote.ticker, observed_at=quote.observed_at, price_usd=quote.price_usd,
        change_24h_pct=quote.change_24h_pct, volume_24h_usd=quote.volume_24h_usd,
        market_cap_usd=quote.market_cap_usd, source=source, source_id=quote.coin_id,
    )


class PriceStore:
    """Price snapshots in the state database; implements ``PriceHistory``.

    ``change_pct`` compares the snapshot nearest to the window's start with the latest one at or before its
    end, each within a tolerance (a tenth of the window, between 10 minutes and 2 hours; the end is read as of
    the end, never from a later snapshot), so a gap in the data gives None, not a move
    over some other period. For a 24-hour window with no snapshot near its start, the source's own 24-hour
    change of the end snapshot stands in.
    """

    def __init__(self, state: StateDB) -> None:
        self.engine = state.engine

    def add(self, snapshots: Iterable[PriceSnapshot], fetched_at: datetime) -> int:
        """Store snapshots not stored yet (same ticker, source and observation time); return how many."""
        t = schema.price_snapshots
        fresh = {(s.ticker.upper(), s.source, s.observed_at): s for s in snapshots}
        if not fresh:
            return 0
        try:
            with self.engine.begin() as conn:
                tickers = sorted({k[0] for k in fresh})
                since = min(k[2] for k in fresh)
                known = {
                    (r.ticker, r.source, r.observed_at)
                    for r in conn.execute(select(t.c.ticker, t.c.source, t.c.observed_at).where(
                        t.c.ticker.in_(tickers), t.c.observed_at >= since))
                }
                rows = [_row(s, key[0], fetched_at) for key, s in fresh.items() if key not in known]
                if rows:
                    conn.execute(insert(t), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store price snapshots: {exc}") from exc
        return len(rows)

    def count(self, source: str | None = None) -> int:
        """How many snapshots are stored (from one source, if named)."""
        t = schema.price_snapshots
        q = select(func.count()).select_from(t)
        if source is not None:
            q = q.where(t.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def latest(self, ticker: str, at: datetime | None = None) -> PriceSnapshot | None:
        """The newest snapshot of ``ticker`` at or before ``at`` (default: now), or None."""
        t = schema.price_snapshots
        q = select(t).where(t.c.ticker == ticker.upper())
        if at is not None:
            q = q.where(t.c.observed_at <= at)
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(t.c.observed_at.desc()).limit(1)).first()
        return _snapshot(row) if row else None

    def latest_all(self, tickers: Iterable[str] = ()) -> dict[str, PriceSnapshot]:
        """The newest snapshot of each ticker (all stored tickers when none are named)."""
        t = schema.price_snapshots
        newest = select(t.c.ticker, func.max(t.c.observed_at).label("at")).group_by(t.c.ticker)
        wanted = sorted({x.upper() for x in tickers})
        if wanted:
            newest = newest.where(t.c.ticker.in_(wanted))
        sub = newest.subquery()
        q = select(t).join(sub, (t.c.ticker == sub.c.ticker) & (t.c.observed_at == sub.c.at)).order_by(t.c.ticker)
        with self.engine.connect() as conn:
            return {row.ticker: _snapshot(row) for row in conn.execute(q)}

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        """Percent change of ``ticker`` between ``start`` and ``end``, or None when unknown."""
        span = end - start
        if span <= timedelta(0):
            return None
        tolerance = min(max(span / 10, timedelta(minutes=10)), timedelta(hours=2))
        # The end is read as of ``end``: a snapshot observed later is not known then (replaying signals at a
        # past moment must see exactly what was stored by that moment).
        last = self._nearest(ticker, end, tolerance, before_only=True)
        if last is None:
            return None
        first = self._nearest(ticker, start, tolerance)
        if first is None or first.observed_at >= last.observed_at:
            if abs(span - timedelta(hours=24)) <= tolerance and last.change_24h_pct is not None:
                return round(last.change_24h_pct, 4)
            return None
        return round((last.price_usd / first.price_usd - 1.0) * 100.0, 4)

    def price_range(self, ticker: str, start: datetime, end: datetime) -> tuple[float, float] | None:
        """The lowest and highest stored price of ``ticker`` observed in [start, end], or None."""
        t = schema.price_snapshots
        q = select(func.min(t.c.price_usd), func.max(t.c.price_usd)).where(
            t.c.ticker == ticker.upper(), t.c.price_usd > 0, t.c.observed_at >= start, t.c.observed_at <= end)
        with self.engine.connect() as conn:
            low, high = conn.execute(q).one()
        return (float(low), float(high)) if low is not None else None

    def series(self, ticker: str, start: datetime, end: datetime, limit: int = 2000) -> list[tuple[datetime, float]]:
        """(observed_at, price) of ``ticker``'s snapshots in [start, end], oldest first (for charts)."""
        t = schema.price_snapshots
        q = (select(t.c.observed_at, t.c.price_usd)
             .where(t.c.ticker == ticker.upper(), t.c.price_usd > 0, t.c.observed_at >= start, t.c.observed_at <= end)
             .order_by(t.c.observed_at).limit(limit))
        with self.engine.connect() as conn:
            return [(r.observed_at, float(r.price_usd)) for r in conn.execute(q)]

    def prune(self, older_than: timedelta, now: datetime) -> int:
        """Delete snapshots observed before ``now - older_than``; return how many."""
        t = schema.price_snapshots
        with self.engine.begin() as conn:
            return conn.execute(delete(t).where(t.c.observed_at < now - older_than)).rowcount or 0

    def series_of(self, tickers: Iterable[str], start: datetime,
                  end: datetime) -> dict[str, list[tuple[datetime, float]]]:
        """Per ticker, its (observed_at, price) pairs in [start, end], oldest first (for scoring many spans)."""
        t = schema.price_snapshots
        wanted = sorted({x.upper() for x in tickers})
        out: dict[str, list[tuple[datetime, float]]] = {x: [] for x in wanted}
        q = (select(t.c.ticker, t.c.observed_at, t.c.price_usd)
             .where(t.c.ticker.in_(wanted), t.c.price_usd > 0, t.c.observed_at >= start, t.c.observed_at <= end)
             .order_by(t.c.ticker, t.c.observed_at))
        with self.engine.connect() as conn:
            for ticker, at, price in conn.execute(q):
                out[ticker].append((at, float(price)))
        return out

    def tickers(self) -> list[str]:
        """Every ticker with a stored snapshot."""
        t = schema.price_snapshots
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.c.ticker).distinct().order_by(t.c.ticker)).scalars())

    def _nearest(self, ticker: str, when: datetime, tolerance: timedelta,
                 before_only: bool = False) -> PriceSnapshot | None:
        t = schema.price_snapshots
        base = select(t).where(t.c.ticker == ticker.upper(), t.c.price_usd > 0)
        with self.engine.connect() as conn:
            before = conn.execute(base.where(t.c.observed_at <= when, t.c.observed_at >= when - tolerance)
                                  .order_by(t.c.observed_at.desc()).limit(1)).first()
            after = None if before_only else conn.execute(
                base.where(t.c.observed_at > when, t.c.observed_at <= when + tolerance)
                .order_by(t.c.observed_at).limit(1)).first()
        found = [_snapshot(r) for r in (before, after) if r is not None]
        return min(found, key=lambda s: abs(s.observed_at - when)) if found else None


def _row(s: PriceSnapshot, ticker: str, fetched_at: datetime) -> dict[str, Any]:
    return {
        "ticker": ticker, "observed_at": s.observed_at, "price_usd": s.price_usd, "change_24h_pct": s.change_24h_pct,
        "volume_24h_usd": s.volume_24h_usd, "market_cap_usd": s.market_cap_usd, "source": s.source,
        "source_id": s.source_id, "fetched_at": fetched_at,
    }


def _snapshot(row: Any) -> PriceSnapshot:
    return PriceSnapshot(
        ticker=row.ticker, observed_at=row.observed_at, price_usd=row.price_usd, change_24h_pct=row.change_24h_pct,
        volume_24h_usd=row.volume_24h_usd, market_cap_usd=row.market_cap_usd, source=row.source,
        source_id=row.source_id,
    )
