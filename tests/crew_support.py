"""Shared pieces of the crew tests: memory filled with the bundled samples, settings aimed at the fake LLM
server, an in-test price history, and one call that runs a crew brief through the shell's wiring."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crew.crewbrief import CrewOutcome, run_crew_brief
from memory.costs import CostLedger
from memory.drafts import DraftStore
from memory.prices import PriceSnapshot
from sources.item import Item, item_id_for_post
from sources.tickers import Watchlist
from tapewatch import clients
from tapewatch.ingest import Ingestor
from tapewatch.settings import Settings, load_settings
from tests.fakes.llm_server import LLMServer, serving_llm


@dataclass
class Prices:
    """A small ``PriceHistory``: snapshots per ticker, oldest first."""

    snapshots: dict[str, list[PriceSnapshot]] = field(default_factory=dict)

    def add(self, ticker: str, price: float, at: datetime, change_24h_pct: float | None = None) -> None:
        self.snapshots.setdefault(ticker, []).append(
            PriceSnapshot(ticker=ticker, observed_at=at, price_usd=price, change_24h_pct=change_24h_pct))
        self.snapshots[ticker].sort(key=lambda s: s.observed_at)

    def latest(self, ticker: str, at: datetime | None = None) -> PriceSnapshot | None:
        found = [s for s in self.snapshots.get(ticker, []) if at is None or s.observed_at <= at]
        return found[-1] if found else None

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        first, last = self.latest(ticker, start), self.latest(ticker, end)
        if first is None or last is None or first is last:
            return None
        return (last.price_usd - first.price_usd) / first.price_usd * 100


def fill_with_samples(memory: Any) -> Watchlist:
    """Ingest the bundled sample day (dated to end now) into ``memory``."""
    watch = Watchlist(load_settings(None).watchlist)
    with httpx.Client() as client:
        Ingestor(memory, client, watch, max_body_bytes=1_000_000, deadline_s=5, concurrency=2).run_samples()
    return watch


def add_post(memory: Any, n: int, text: str, *, tickers: tuple[str, ...], hours_ago: float = 1.0,
             likes: int = 5000, cluster: str = "trader") -> Item:
    """Store one social post."""
    now = datetime.now(UTC)
    url = f"https://x.com/acct{n}/status/{9_000_000 + n}"
    item = Item(id=item_id_for_post("x", str(9_000_000 + n)), kind="social", source="x", url=url,
                title=text[:120], text=text, published_at=now - timedelta(hours=hours_ago), fetched_at=now,
                author=f"@acct{n}", tickers=tickers, cluster=cluster, metrics={"likes": likes})
    memory.add([item])
    return item


def crew_settings(monkeypatch: pytest.MonkeyPatch, server: LLMServer, **llm: str) -> Settings:
    """Settings whose crew talks to ``server``; extra ``[llm]`` keys as strings (as env vars carry them)."""
    values = {"model": "openai/fake-model", "base_url": server.base_url, "timeout": "5s", "max_retries": "1",
              "daily_budget_usd": "10", "monthly_budget_usd": "100", **llm}
    for key, value in values.items():
        monkeypatch.setenv(f"TAPEWATCH_LLM__{key.upper()}", value)
    monkeypatch.setenv("TAPEWATCH_LLM__PRICES", '{"openai/fake-model": {"prompt": 1.0, "completion": 2.0}}')
    settings = load_settings(None)
    # ``crewai_environment`` sets these for the process; recording them here restores them after the test.
    for key, value in (("CREWAI_DISABLE_TELEMETRY", "true"), ("CREWAI_DISABLE_TRACKING", "true"),
                       ("OTEL_SDK_DISABLED", "true"), ("CREWAI_TRACING_ENABLED", "false"),
                       ("CREWAI_STORAGE_DIR", str(settings.data_dir / "crewai"))):
        monkeypatch.setenv(key, value)
    return settings


def run_brief(settings: Settings, memory: Any, prices: Prices | None = None, **kwargs: Any) -> CrewOutcome:
    """One crew brief through the shell's wiring: real crewAI LLM clients, setup, grounding context."""
    state = memory.state
    setup = clients.crew_setup(settings, clients.crew_llms(settings, state), state)
    return run_crew_brief(memory, DraftStore(state), CostLedger(state), setup,
                          clients.grounding_context(settings, state, prices), now=datetime.now(UTC),
                          prices=prices, **kwargs)


# A test module registers these fixtures (as "llm_server" and "sample_memory") by importing the functions.
@pytest.fixture(name="llm_server")
def llm_server_fixture() -> Iterator[LLMServer]:
    """A loopback OpenAI-compatible server."""
    with serving_llm() as server:
        yield server


@pytest.fixture(name="sample_memory")
def sample_memory_fixture(memory: Any) -> Any:
    """Memory holding the bundled sample day."""
    fill_with_samples(memory)
    return memory
