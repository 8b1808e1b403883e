"""What the researcher's tools read: memory search, a ticker's recent items, the latest stored price.

Read-only by construction: it holds a memory reader and a price reader, nothing that writes, posts or
fetches. Results are capped and come back as data blocks registered with the run's citations, so an
item found through a tool can be cited like one shown in the prompt.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Protocol

from crew.datablocks import Citations, item_blocks
from memory.prices import PriceHistory

_TICKER = re.compile(r"^\$?([A-Za-z][A-Za-z0-9]{0,9})$")


class MemoryReader(Protocol):
    """The reads the tools need (``memory.store.Memory`` implements them)."""

    state: Any

    def search(self, text: str, limit: int = 10, *, since: datetime | None = None, until: datetime | None = None,
               tickers: Any = (), kinds: Any = ()) -> list[Any]:
        """Stories most similar to ``text`` within the filters."""
        ...


class Lookup:
    """The researcher's read-only view of memory and prices for one run."""

    def __init__(self, memory: MemoryReader, cites: Citations, *, window_start: datetime, window_end: datetime,
                 prices: PriceHistory | None = None, limit: int = 5, lookback: timedelta = timedelta(days=7)) -> None:
        self.memory = memory
        self.cites = cites
        self.since = window_start - lookback  # context from the week before helps; nothing after the window
        self.until = window_end
        self.prices = prices
        self.limit = limit
        self.calls = 0

    def search(self, query: str) -> str:
        """Stored items about ``query``, as data blocks."""
        self.calls += 1
        query = " ".join(query.split())[:200]
        if len(query) < 2:
            return "Give a search query of at least two characters."
        hits = self.memory.search(query, self.limit, since=self.since, until=self.until)
        return self._blocks([h.id for h in hits], f"No stored item matches {query!r}.")

    def ticker_recent(self, ticker: str) -> str:
        """The most relevant recent stored items about one ticker, as data blocks."""
        self.calls += 1
        symbol = self._symbol(ticker)
        if symbol is None:
            return "Give a ticker like SOL or $SOL."
        hits = self.memory.search(f"${symbol}", self.limit, since=self.since, until=self.until, tickers=[symbol])
        return self._blocks([h.id for h in hits], f"No stored item mentions ${symbol} in the window.")

    def latest_price(self, ticker: str) -> str:
        """The newest stored price snapshot of one ticker at the window's end."""
        self.calls += 1
        symbol = self._symbol(ticker)
        if symbol is None:
            return "Give a ticker like SOL or $SOL."
        return self._price_line(symbol) or f"No stored price snapshot for ${symbol}: do not state its price."

    def prefetch(self, tickers: list[str]) -> str:
        """What the tools would have told a researcher that cannot call them: the tickers' latest stored prices."""
        lines = [self._price_line(t) for t in dict.fromkeys(tickers)]
        found = [line for line in lines if line is not None]
        if not found:
            return "tapewatch has no stored price for these tickers: state no current price."
        return ("Latest stored prices (tapewatch's own snapshots at the window's end, the only allowed source of a "
                "current price):\n" + "\n".join(f"- {line}" for line in found))

    def _price_line(self, ticker: str) -> str | None:
        symbol = self._symbol(ticker)
        snap = self.prices.latest(symbol, self.until) if symbol and self.prices is not None else None
        if snap is None:
            return None
        change = f", 24h change {snap.change_24h_pct:+.2f}%" if snap.change_24h_pct is not None else ""
        return (f"${symbol}: ${snap.price_usd:,.2f} at {snap.observed_at:%Y-%m-%d %H:%M} UTC{change} "
                f"(stored snapshot from {snap.source}).")

    @staticmethod
    def _symbol(ticker: str) -> str | None:
        match = _TICKER.match(ticker.strip())
        return match.group(1).upper() if match else None

    def _blocks(self, ids: list[str], empty: str) -> str:
        rows = self.memory.state.items_by_ids(ids)
        ordered = [rows[i] for i in ids if i in rows]
        return item_blocks(ordered, self.cites) if ordered else empty
