"""What the Telegram bot's commands do, over the real memory, signals and brief pipeline (blocking calls)."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from memory.prices import PriceHistory
from memory.store import Memory
from publish.audit import record
from tapewatch.bot.telegram import BriefAnswer
from tapewatch.settings import format_duration

BriefWriter = Callable[[str | None, str | None, str], BriefAnswer]


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _link(title: str, url: str) -> str:
    """An HTML link whose text and target are escaped (both come from ingested, untrusted data)."""
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(title)}</a>'


class ShellBackend:
    """``BotBackend`` over one shared ``Memory``; ``write_brief`` makes and stores the brief."""

    def __init__(self, memory: Memory, write_brief: BriefWriter, *, prices: PriceHistory | None = None,
                 window: timedelta = timedelta(hours=24), set_paused: Callable[[bool, str], str] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.memory = memory
        self.write_brief = write_brief
        self.prices = prices
        self.window = window
        self._set_paused = set_paused
        self._clock = clock

    def brief(self, topic: str | None, ticker: str | None, requested_by: str) -> BriefAnswer:
        """Delegate to the brief writer (crew or data brief)."""
        return self.write_brief(topic, ticker, requested_by)

    def _signals(self, narratives: bool) -> Any:
        from crew.signals import compute_signals

        return compute_signals(self.memory.state, self.memory.vectors, now=self._clock(), window=self.window,
                               prices=self.prices, narratives=narratives)

    def top(self, limit: int = 10) -> str:
        """Tickers ranked by signals, one line each."""
        result = self._signals(narratives=False)
        if not result.tickers:
            return f"Nothing ranked: no ticker was mentioned in the last {format_duration(self.window)}."
        lines = [f"<b>Top tickers, last {format_duration(self.window)}</b> ({result.items} items, "
                 f"{result.stories} stories)"]
        for rank, t in enumerate(result.tickers[:limit], 1):
            price = f" · price {t.price_change_pct:+.1f}%" if t.price_change_pct is not None else ""
            lines.append(f"{rank}. <b>${html.escape(t.ticker)}</b> · {t.mentions} stories · "
                         f"{t.clusters} groups · ×{t.growth:.1f} · sentiment {t.sentiment:+.2f}{price}")
        return "\n".join(lines)

    def narratives(self, limit: int = 5) -> str:
        """Narrative clusters with their lead story."""
        result = self._signals(narratives=True)
        if not result.narratives:
            return f"No narrative (two or more related stories) in the last {format_duration(self.window)}."
        rows = self.memory.state.items_by_ids([n.id for n in result.narratives[:limit]])
        lines = [f"<b>Narratives, last {format_duration(self.window)}</b>"]
        for n in result.narratives[:limit]:
            lead = rows.get(n.id)
            story = f" — {_link(lead.title, lead.url)}" if lead is not None else ""
            lines.append(f"• <b>{html.escape(n.label)}</b> ({n.status}, {n.size} stories, {n.clusters} groups, "
                         f"×{n.growth:.1f}){story}")
        return "\n".join(lines)

    def price(self, ticker: str) -> str:
        """The latest stored snapshot and its age."""
        snapshot = self.prices.latest(ticker) if self.prices is not None else None
        if snapshot is None:
            return f"No price snapshot for ${html.escape(ticker)} yet (is it on the watchlist?)."
        now = self._clock()
        parts = [f"<b>${html.escape(snapshot.ticker)}</b> ${snapshot.price_usd:,.2f}"]
        if snapshot.change_24h_pct is not None:
            parts.append(f"24h {snapshot.change_24h_pct:+.2f}%")
        if snapshot.volume_24h_usd is not None:
            parts.append(f"vol ${snapshot.volume_24h_usd / 1e6:,.0f}M")
        if snapshot.market_cap_usd is not None:
            parts.append(f"mcap ${snapshot.market_cap_usd / 1e9:,.1f}B")
        return " · ".join(parts) + f"\n<i>{html.escape(snapshot.source)}, {_ago(snapshot.observed_at, now)}</i>"

    def sources(self) -> str:
        """One line per source: ok or failing, items, last success."""
        health = self.memory.state.source_health()
        if not health:
            return "No source has been fetched yet."
        now = self._clock()
        lines = ["<b>Sources</b>"]
        for h in health:
            mark = "✅" if h.consecutive_errors == 0 else "⚠️"
            error = f" · {h.consecutive_errors} errors: {html.escape(h.last_error or '')[:120]}" \
                if h.consecutive_errors else ""
            lines.append(f"{mark} {html.escape(h.name)} · {h.items} items · last ok {_ago(h.last_ok_at, now)}{error}")
        return "\n".join(lines)

    def refused(self, action: str, who: str, draft_id: str = "") -> None:
        """Write a refused privileged attempt to the audit log."""
        with self.memory.state.engine.begin() as conn:
            record(conn, at=self._clock(), draft_id=draft_id[:32], actor=who[:100], via="telegram", action="refused",
                   reason=f"not a reviewer: tried to {action}"[:200])

    def set_paused(self, paused: bool, by: str) -> str:
        """Pause or resume scheduled posting."""
        if self._set_paused is None:
            return "Scheduled posting is not configured in this process."
        return self._set_paused(paused, by)
