"""What the daemon's jobs do, over clients built once per process and shared by every run (``Runtime``).

Each job body is blocking (HTTP, embedding, SQL) and runs in a worker thread; it catches its own
sources' errors, so a run always ends with a one-line summary.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from memory.embeddings import Embedder
from memory.prices import PriceStore, snapshot_of
from memory.quotas import Quotas
from memory.state import FetchRecord, StateDB
from memory.store import Memory
from sources.coingecko import SOURCE as COINGECKO
from sources.coingecko import RateLimited, fetch_simple_price, parse_simple_price
from sources.errors import IngestError, StoreError
from sources.x import XSourceSpec, account_source, query_source
from tapewatch.ingest import Ingestor, SourceOutcome
from tapewatch.ingest_x import XIngestor, XRunReport
from tapewatch.settings import Settings

if TYPE_CHECKING:
    from tapewatch.x_deletions import DeletionReport

log = logging.getLogger(__name__)


def x_specs(settings: Settings) -> list[XSourceSpec]:
    """The configured X accounts, then the configured queries."""
    return ([account_source(a.handle, a.cluster) for a in settings.x.accounts]
            + [query_source(q) for q in settings.x.queries])


def market_coins(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """Watched tickers with a CoinGecko id (ticker → id), and the watched tickers without one."""
    coins = {t: settings.market.coins[t] for t in settings.watchlist if t in settings.market.coins}
    return coins, sorted(t for t in settings.watchlist if t not in settings.market.coins)


class Runtime:
    """Settings plus the clients built from them, opened lazily and shared by every job of a process."""

    def __init__(self, settings: Settings, *, embed: Embedder | None = None, chroma: Any = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        from tapewatch.clients import open_state

        self.settings = settings
        self.state: StateDB = open_state(settings)
        self.quotas = Quotas(self.state)
        self.prices = PriceStore(self.state)
        self.clock = clock or (lambda: datetime.now(UTC))
        # Set when the daemon stops: batch loops check it between sources and pages.
        self.stopping = threading.Event()
        self._embed = embed
        self._chroma = chroma
        self._memory: Memory | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def memory(self) -> Memory:
        """Vector memory (Chroma + embedder), opened on first use: a prices-only daemon never loads a model."""
        with self._lock:
            if self._memory is None:
                from tapewatch.clients import open_memory

                self._memory = open_memory(self.settings, self._embed, self._chroma, state=self.state)
            return self._memory

    def client(self, name: str) -> Any:
        """A shared HTTP client: "http" (feeds), "x" (tweepy, None without a token) or "coingecko"."""
        with self._lock:
            if name not in self._clients:
                from tapewatch import clients

                builders = {"http": clients.http_client, "x": clients.x_client, "coingecko": clients.coingecko_client}
                self._clients[name] = builders[name](self.settings)
            return self._clients[name]

    def close(self) -> None:
        """Close HTTP clients and release database connections."""
        for client in self._clients.values():
            close = getattr(client, "close", None) or getattr(getattr(client, "session", None), "close", None)
            if close is not None:
                close()
        self._clients.clear()
        self.state.close()

    # -- job bodies ------------------------------------------------------------------------------
    def ingest_feeds(self) -> list[SourceOutcome]:
        """Fetch every enabled feed once (never the bundled samples)."""
        from tapewatch.clients import feed_specs, watchlist

        s = self.settings
        ingestor = Ingestor(self.memory(), self.client("http"), watchlist(s), max_body_bytes=s.fetch.max_body_bytes,
                            deadline_s=s.fetch.deadline.total_seconds(), concurrency=s.fetch.concurrency,
                            clock=self.clock, retention=s.memory.retention)
        return ingestor.run(feed_specs(s))

    def ingest_x(self) -> XRunReport:
        """Read the X accounts and queries once, within the monthly read budget."""
        from tapewatch.clients import watchlist, x_reader

        client = self.client("x")
        if client is None:
            return XRunReport(notes=["no X bearer token (set TAPEWATCH_X_BEARER_TOKEN)"])
        ingestor = XIngestor(self.memory(), x_reader(self.settings, client), self.quotas, watchlist(self.settings),
                             self.settings.x, clock=self.clock, stopping=self.stopping,
                             retention=self.settings.memory.retention, on_reads=self._x_reads_cost())
        return ingestor.run(x_specs(self.settings))

    def _x_reads_cost(self) -> Callable[[datetime, int], None]:
        """Each page of posts read, as an X read charge in the cost ledger."""
        from memory.costs import CostLedger

        ledger, price = CostLedger(self.state), self.settings.publish.x_price_read_usd
        return lambda at, posts: ledger.record_x(at, "read", posts, posts * price)
    def x_deletions(self) -> DeletionReport:
        """Forget stored X posts that X no longer returns (x.compliance_every), within the read budget."""
        from tapewatch.clients import x_reader
        from tapewatch.x_deletions import DeletionReport, XDeletions

        client = self.client("x")
        if client is None:
            return DeletionReport(stopped="no X bearer token (set TAPEWATCH_X_BEARER_TOKEN)")
        return XDeletions(self.memory(), x_reader(self.settings, client), self.quotas, self.settings.x,
                          clock=self.clock, stopping=self.stopping).run()

    def ingest_prices(self) -> SourceOutcome:
        """Fetch the watchlist's prices from CoinGecko once and store them as snapshots."""
        market = self.settings.market
        started = self.clock()
        url = f"{market.base_url}/simple/price"
        coins, unmapped = market_coins(self.settings)
        pause = self.quotas.paused_until(COINGECKO, started)
        if pause is not None:
            return SourceOutcome(COINGECKO, "market", "skipped", error=f"paused until {pause.until:%H:%M:%S} UTC "
                                                                         f"({pause.reason})")
        if not coins:
            return SourceOutcome(COINGECKO, "market", "skipped", error="no watched ticker has a CoinGecko id")
        try:
            payload = fetch_simple_price(self.client("coingecko"), list(coins.values()), now=started)
            quotes, warnings = parse_simple_price(payload, coins, fetched_at=started)
            warnings += tuple(f"no CoinGecko id for {t}; set market.coins.{t}" for t in unmapped)
            new = self.prices.add([snapshot_of(q) for q in quotes], started)
            self.state.record_fetch(FetchRecord(
                source=COINGECKO, kind="market", url=url, started_at=started, finished_at=self.clock(), status="ok",
                http_status=200, new=new, duplicate=len(quotes) - new, warnings=warnings))
        except RateLimited as exc:
            self.quotas.pause(COINGECKO, exc.retry_at, str(exc))
            log.warning("%s", exc)
            return SourceOutcome(COINGECKO, "market", "skipped", error=str(exc))
        except (IngestError, StoreError) as exc:
            log.warning("coingecko: %s", exc)
            try:
                self.state.record_fetch(FetchRecord(source=COINGECKO, kind="market", url=url, started_at=started,
                                                    finished_at=self.clock(), status="error", error=str(exc)))
            except StoreError as store_exc:  # e.g. a full disk: one line, not a traceback every run
                log.warning("coingecko: could not record the error either: %s", store_exc)
            return SourceOutcome(COINGECKO, "market", "error", error=str(exc))
        return SourceOutcome(COINGECKO, "market", "ok", new=new, duplicate=len(quotes) - new, warnings=warnings)

    def retention(self) -> tuple[int, int]:
        """Delete items older than ``memory.retention`` and price snapshots older than ``track.price_retention``
        (scoring calls needs prices long after their items); calls are never deleted. Returns (items, snapshots)."""
        now = self.clock()
        return (self.memory().prune(self.settings.memory.retention, now),
                self.prices.prune(self.settings.track.price_retention, now))


def summarise(outcomes: list[SourceOutcome]) -> str:
    """One line for a log: new items and errors per pass."""
    new = sum(o.new for o in outcomes)
    errors = [o for o in outcomes if o.status == "error"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    parts = [f"{len(outcomes)} source(s)", f"{new} new"]
    if errors:
        parts.append(f"{len(errors)} error(s): " + "; ".join(f"{o.name}: {o.error}" for o in errors[:3]))
    if skipped:
        parts.append(f"{len(skipped)} skipped: {skipped[0].error}")
    return ", ".join(parts)
