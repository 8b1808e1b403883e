"""Settings of the track record: how published calls and backtests are scored, and what history is kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from tapewatch.settings.durations import Duration, _positive


class TrackSettings(BaseModel):
    """Scoring of calls (``tapewatch track``, ``tapewatch backtest``) and the price history it needs."""

    # What a call's return is compared with: BTC, or the equal-weight basket of the watchlist's tickers.
    benchmark: Literal["BTC", "basket"] = "BTC"
    horizons: list[Duration] = [timedelta(days=1), timedelta(days=5), timedelta(days=10), timedelta(days=30)]
    # A snapshot counts for a moment when it was observed within this of it; else the call is unscorable.
    tolerance: Duration = timedelta(hours=3)
    # Below this many scored calls a horizon says "too few calls" instead of a rate and an interval.
    min_calls: int = Field(default=10, ge=2, le=10_000)
    bootstrap: int = Field(default=2000, ge=100, le=100_000)  # resamples for the 95% intervals
    seed: int = 15  # the bootstrap's seed: the same calls always give the same interval
    # Price snapshots are kept this long, apart from items (memory.retention): scoring a 30-day horizon and
    # backtesting need months of prices after the items are gone. Calls of published briefs are kept forever.
    price_retention: Duration = timedelta(days=400)

    _check = field_validator("tolerance", "price_retention")(_positive)

    @field_validator("horizons")
    @classmethod
    def _horizons(cls, value: list[timedelta]) -> list[timedelta]:
        if not value or any(h <= timedelta(0) for h in value):
            raise ValueError("horizons must be positive durations, at least one")
        return sorted(set(value))
