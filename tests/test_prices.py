"""Market data: CoinGecko parsing and fetching (fake CoinGecko over HTTP), PriceStore, signals, `tapewatch prices`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crew.signals import compute_signals
from memory.prices import PriceSnapshot, PriceStore
from memory.quotas import Quotas
from memory.state import StateDB
from sources.coingecko import parse_simple_price
from sources.errors import FeedParseError
from sources.item import Item, item_id_for_url
from sources.samples import sample_quotes
from tapewatch.cli import app
from tapewatch.jobs import Runtime
from tapewatch.settings import Settings
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko

T0 = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture
def cg() -> Iterator[FakeCoinGecko]:
    with serving_coingecko() as server:
        yield server


@pytest.fixture
def store(state_url: str) -> Iterator[PriceStore]:
    state = StateDB(state_url)
    yield PriceStore(state)
    state.close()


def snap(ticker: str, hours: float, price: float, change: float | None = None) -> PriceSnapshot:
    return PriceSnapshot(ticker=ticker, observed_at=T0 + timedelta(hours=hours), price_usd=price,
                         change_24h_pct=change, source_id=ticker.lower())


def runtime(cg: FakeCoinGecko, **market: Any) -> Runtime:
    env: dict[str, Any] = {"market": {"base_url": cg.base_url, "timeout": "1s", **market},
                           "watchlist": {"BTC": ["bitcoin"], "SOL": ["solana"], "PEPE": ["pepe"]}}
    if "key" in market:
        env["coingecko_api_key"] = market.pop("key")
        env["market"].pop("key")
    return Runtime(Settings(**env))


# --- parsing -----------------------------------------------------------------------------------------


def test_parse_simple_price_reads_every_field_and_names_what_is_missing() -> None:
    payload = {
        "bitcoin": {"usd": 97950.0, "usd_market_cap": 1.94e12, "usd_24h_vol": 2.85e10, "usd_24h_change": 0.77,
                    "last_updated_at": int(T0.timestamp())},
        "solana": {"usd": "213"},  # a string is not a price
        "dogecoin": {"usd": 0.38, "usd_24h_change": float("nan")},
    }
    quotes, warnings = parse_simple_price(payload, {"BTC": "bitcoin", "SOL": "solana", "DOGE": "dogecoin",
                                                    "TON": "the-open-network"}, fetched_at=T0 + timedelta(minutes=1))
    by = {q.ticker: q for q in quotes}
    assert set(by) == {"BTC", "DOGE"}
    assert by["BTC"].observed_at == T0 and by["BTC"].market_cap_usd == 1.94e12 and by["BTC"].change_24h_pct == 0.77
    assert by["DOGE"].change_24h_pct is None and by["DOGE"].observed_at == T0 + timedelta(minutes=1)
    assert any("SOL" in w for w in warnings) and any("the-open-network" in w for w in warnings)
    with pytest.raises(FeedParseError):
        parse_simple_price(["not", "an", "object"], {"BTC": "bitcoin"}, fetched_at=T0)


def test_sample_prices_are_rebased_to_end_now() -> None:
    now = datetime.now(UTC)
    quotes = sample_quotes(now)
    assert len({q.ticker for q in quotes}) == 14 and len(quotes) == 14 * 25
    assert max(q.observed_at for q in quotes) <= now and min(q.observed_at for q in quotes) >= now - timedelta(
        hours=24, minutes=1)


# --- PriceStore ----------------------------------------------------------------------------------------


def test_store_dedupes_and_answers_latest(store: PriceStore) -> None:
    batch = [snap("BTC", h, 97000 + 100 * h) for h in range(5)] + [snap("SOL", 0, 205.8)]
    assert store.add(batch, T0) == 6
    assert store.add(batch, T0) == 0
    assert store.latest("btc").price_usd == 97400  # type: ignore[union-attr]
    assert store.latest("BTC", at=T0 + timedelta(hours=2, minutes=30)).price_usd == 97200  # type: ignore[union-attr]
    assert store.latest("BTC", at=T0 - timedelta(hours=1)) is None and store.latest("ETH") is None
    assert {t: s.price_usd for t, s in store.latest_all().items()} == {"BTC": 97400, "SOL": 205.8}
    assert set(store.latest_all(["sol", "eth"])) == {"SOL"}


def test_change_pct_uses_the_snapshots_nearest_to_start_and_end(store: PriceStore) -> None:
    store.add([snap("SOL", h, p) for h, p in [(0, 200.0), (1, 202.0), (23.9, 209.0), (30, 250.0)]], T0)
    # 24h window: nearest to 00:00 is 200, nearest to 24:00 is the 23:54 snapshot (209).
    assert store.change_pct("SOL", T0, T0 + timedelta(hours=24)) == pytest.approx(4.5)
    assert store.change_pct("SOL", T0 + timedelta(minutes=40), T0 + timedelta(hours=24)) == pytest.approx(
        (209 / 202 - 1) * 100, abs=1e-3)
    # Nothing within tolerance of the end (a tenth of the window, 10 min to 2 h): unknown, not a guess.
    assert store.change_pct("SOL", T0 + timedelta(hours=2), T0 + timedelta(hours=12)) is None
    assert store.change_pct("SOL", T0, T0) is None and store.change_pct("ETH", T0, T0 + timedelta(hours=1)) is None


def test_24h_window_without_a_start_snapshot_uses_the_sources_24h_change(store: PriceStore) -> None:
    store.add([snap("BTC", 23.95, 97950.0, change=0.77)], T0)
    assert store.change_pct("BTC", T0, T0 + timedelta(hours=24)) == 0.77
    assert store.change_pct("BTC", T0 + timedelta(hours=18), T0 + timedelta(hours=24)) is None


def test_prune(store: PriceStore) -> None:
    store.add([snap("BTC", h, 97000.0) for h in range(10)], T0)
    assert store.prune(timedelta(hours=5), T0 + timedelta(hours=10)) == 5
    assert store.latest("BTC").observed_at == T0 + timedelta(hours=9)  # type: ignore[union-attr]


def test_signals_carry_the_price_move(store: PriceStore) -> None:
    now = T0 + timedelta(hours=24)
    store.add([snap("SOL", 0, 205.8), snap("SOL", 24, 213.0)], T0)
    url = "https://news.example/sol"
    item = Item(id=item_id_for_url(url), kind="news", source="wire", url=url, title="Solana client ships",
                text="SOL", published_at=now - timedelta(hours=2), fetched_at=now, tickers=("SOL",))
    state = StateDB(str(store.engine.url))
    state.commit_batch([item], [], None)
    signals = compute_signals(state, None, now=now, prices=store, narratives=False)
    assert signals.tickers[0].price_change_pct == pytest.approx(3.4985, abs=1e-3)


# --- CoinGecko over HTTP (the daemon's prices job) --------------------------------------------------------


def test_prices_job_stores_snapshots_and_sends_the_key_header(cg: FakeCoinGecko) -> None:
    cg.set("bitcoin", 97950.0, change=0.77, volume=2.85e10, cap=1.94e12)
    cg.set("solana", 213.2, change=3.6)
    rt = runtime(cg, key="cg-demo-secret")
    outcome = rt.ingest_prices()
    assert (outcome.status, outcome.new) == ("ok", 2)
    assert any("PEPE" in w for w in outcome.warnings)  # watched but no CoinGecko id
    req = cg.requests[0]
    assert req.path == "/api/v3/simple/price" and req.query["ids"] == ["bitcoin,solana"]
    assert req.headers["x-cg-demo-api-key"] == "cg-demo-secret"
    assert rt.prices.latest("SOL").price_usd == 213.2  # type: ignore[union-attr]
    health = {h.name: h for h in rt.state.source_health()}
    assert health["coingecko"].last_status == "ok" and health["coingecko"].kind == "market"
    # The same observation twice is one snapshot.
    assert rt.ingest_prices().duplicate == 2
    rt.close()


def test_no_key_no_header_and_pro_header_when_configured(cg: FakeCoinGecko) -> None:
    cg.set("bitcoin", 1.0)
    rt = runtime(cg)
    rt.ingest_prices()
    assert not any(k.startswith("x-cg-") for k in cg.requests[0].headers)
    rt.close()
    rt = runtime(cg, key="pro", api_key_header="x-cg-pro-api-key")
    rt.ingest_prices()
    assert cg.requests[1].headers["x-cg-pro-api-key"] == "pro"
    rt.close()


@pytest.mark.parametrize("retry_after", ["120", "http-date"])
def test_429_honours_retry_after_by_skipping_until_then(cg: FakeCoinGecko, retry_after: str) -> None:
    cg.set("bitcoin", 97000.0)
    now = datetime.now(UTC)
    header = format_datetime(now + timedelta(seconds=120), usegmt=True) if retry_after == "http-date" else "120"
    cg.fail_next(429, headers={"Retry-After": header})
    rt = runtime(cg)
    first = rt.ingest_prices()
    assert first.status == "skipped" and "429" in (first.error or "")
    pause = Quotas(rt.state).paused_until("coingecko", now)
    assert pause is not None and timedelta(seconds=100) < pause.until - now <= timedelta(seconds=125)
    second = rt.ingest_prices()
    assert second.status == "skipped" and "paused until" in (second.error or "") and len(cg.requests) == 1
    rt.clock = lambda: now + timedelta(seconds=130)
    assert rt.ingest_prices().status == "ok" and len(cg.requests) == 2
    rt.close()


@pytest.mark.parametrize(("failure", "fragment"), [
    ({"status": 500}, "HTTP 500"),
    ({"status": 200, "body": b"<html>Just a moment...</html>"}, "not JSON"),
    ({"status": 401}, "TAPEWATCH_COINGECKO_API_KEY"),
    ({"status": 200, "delay_s": 1.5}, "timed out"),
])
def test_failures_are_recorded_against_coingecko(cg: FakeCoinGecko, failure: dict[str, Any], fragment: str) -> None:
    cg.set("bitcoin", 97000.0)
    cg.fail_next(**failure)
    rt = runtime(cg)
    outcome = rt.ingest_prices()
    assert outcome.status == "error" and fragment in (outcome.error or "")
    health = {h.name: h for h in rt.state.source_health()}
    assert health["coingecko"].consecutive_errors == 1 and fragment in (health["coingecko"].last_error or "")
    assert rt.prices.latest("BTC") is None
    rt.close()


def test_prices_command_refreshes_and_shows_age(cg: FakeCoinGecko, tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["prices"])
    assert empty.exit_code == 0 and "No price snapshots yet" in empty.output
    cg.set("bitcoin", 97950.0, change=0.77, volume=2.85e10, cap=1.94e12, at=datetime.now(UTC) - timedelta(minutes=7))
    cg.set("solana", 0.0123, change=-1.5)
    config = tmp_path / "c.toml"
    config.write_text(f'[market]\nbase_url = "{cg.base_url}"\n'
                      '[watchlist]\nBTC = ["bitcoin"]\nSOL = ["solana"]\nETH = ["ether"]\n')
    result = runner.invoke(app, ["--config", str(config), "prices", "--refresh"])
    assert result.exit_code == 0, result.output
    assert "$97,950" in result.output and "+0.77%" in result.output and "7m ago" in result.output
    assert "$0.0123" in result.output and "$1.94T" in result.output and "no snapshot" in result.output
    only = runner.invoke(app, ["--config", str(config), "prices", "$sol"])
    assert "SOL" in only.output and "BTC" not in only.output
