"""The bot's real backend over memory: ranked tickers, narratives, prices, source health — as safe HTML."""

from __future__ import annotations

from datetime import datetime, timedelta

from memory.prices import PriceSnapshot
from memory.state import FetchRecord
from tapewatch.bot.backend import ShellBackend
from tapewatch.bot.telegram import BriefAnswer
from tests.test_databrief import NOW, post


class Prices:
    def latest(self, ticker: str, at: datetime | None = None) -> PriceSnapshot | None:
        if ticker != "SOL":
            return None
        return PriceSnapshot("SOL", NOW - timedelta(minutes=7), 187.42, 4.31, 3.2e9, 9.1e10)

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        return 4.3 if ticker == "SOL" else None


def backend(memory, **kwargs) -> ShellBackend:  # type: ignore[no-untyped-def]
    def write(topic: str | None, ticker: str | None, by: str) -> BriefAnswer:
        return BriefAnswer(f"brief {topic} {ticker} {by}", None, "data")

    return ShellBackend(memory, write, clock=lambda: NOW, **kwargs)


def test_top_ranks_tickers_with_breadth_and_price(memory) -> None:  # type: ignore[no-untyped-def]
    memory.add([
        post(1, "Solana Halcyon client rollout $SOL", cluster="dev", hours_ago=5, tickers=("SOL",)),
        post(2, "Funds like the Solana upgrade $SOL", cluster="vc", hours_ago=4, tickers=("SOL",)),
        post(3, "$FROG <b>moon</b>", cluster="trader", hours_ago=2, tickers=("FROG",)),
    ])
    text = backend(memory, prices=Prices()).top()
    lines = text.splitlines()
    assert lines[1].startswith("1. <b>$SOL</b> · 2 stories · 2 groups") and lines[1].endswith("price +4.3%")
    assert lines[2].startswith("2. <b>$FROG</b> · 1 stories · 1 groups")


def test_price_shows_snapshot_and_age_or_says_none(memory) -> None:  # type: ignore[no-untyped-def]
    b = backend(memory, prices=Prices())
    assert b.price("SOL") == ("<b>$SOL</b> $187.42 · 24h +4.31% · vol $3,200M · mcap $91.0B\n"
                              "<i>coingecko, 7 min ago</i>")
    assert b.price("ETH").startswith("No price snapshot for $ETH yet")
    assert backend(memory).price("SOL").startswith("No price snapshot")


def test_sources_and_narratives_escape_ingested_text(memory) -> None:  # type: ignore[no-untyped-def]
    memory.state.record_fetch(FetchRecord(source="evil<b>", kind="news", url="https://e.example/rss",
                                          started_at=NOW, finished_at=NOW, status="error", http_status=500,
                                          error="HTTP 500 <script>"))
    text = backend(memory).sources()
    assert "evil&lt;b&gt;" in text and "&lt;script&gt;" in text and "<script>" not in text
    assert "⚠️" in text
    empty = backend(memory).narratives()
    assert empty.startswith("No narrative")


def test_brief_and_pause_delegate(memory) -> None:  # type: ignore[no-untyped-def]
    calls: list[tuple[bool, str]] = []
    b = backend(memory, set_paused=lambda p, by: calls.append((p, by)) or "ok")
    assert b.brief("restaking", None, "telegram:bob").html == "brief restaking None telegram:bob"
    assert b.set_paused(True, "telegram:alice") == "ok" and calls == [(True, "telegram:alice")]
    assert backend(memory).set_paused(True, "x").startswith("Scheduled posting is not configured")
