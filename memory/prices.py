"""Market price snapshots: time-stamped observations per ticker, kept in the state database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


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
