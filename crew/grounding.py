"""The grounding validator: checks any draft (crew-written, data brief or hand-edited) against what was stored.

Deterministic: the same draft and the same stored items, watchlist, price snapshots and settings give
the same problems. Rules (see the README's "Grounding" section):

- sources: the draft cites at least one item, and every cited id is a stored item;
- tickers: every ticker named (cashtag or watchlist name) appears in a cited item; a watchlist ticker no
  cited item mentions needs other stored evidence, a signal in the draft's window or a price snapshot,
  and a ticker that is neither cited nor watched is never accepted;
- numbers: every dollar amount or percentage matches a stored price snapshot of the ticker it is said
  about (within the tolerances) or appears in a cited item;
- links: every link is the canonical URL of a cited item;
- format: X posts within 280 weighted characters and the post cap, Telegram within 4096 characters and
  using only Telegram's tags;
- compliance: the required disclaimer is in every format and no banned phrase is anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from crew.claims import (
    Number,
    canonical_link,
    links_in_text,
    markdown_links,
    markdown_plain,
    numbers_in,
    telegram_links,
    telegram_plain,
    tickers_in,
)
from crew.model import Problem, ValidationReport
from crew.render import TELEGRAM_LIMIT, X_LIMIT, weighted_length
from memory.drafts import Draft
from memory.prices import PriceHistory
from sources.tickers import Watchlist

TELEGRAM_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                           "blockquote", "tg-spoiler", "span"})


@dataclass(frozen=True)
class GroundingContext:
    """What a draft is checked against; ``tapewatch.clients.draft_validator`` builds it from the state DB."""

    lookup: Callable[[Iterable[str]], Mapping[str, Any]]  # stored item rows by id
    watchlist: Watchlist
    prices: PriceHistory | None = None
    disclaimer: str = "Not financial advice."
    require_disclaimer: bool = True
    banned_phrases: tuple[str, ...] = ()
    price_tolerance_pct: float = 2.0
    percent_tolerance_pp: float = 0.5
    max_x_posts: int = 12
    telegram_limit: int = TELEGRAM_LIMIT
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def validate_draft(draft: Draft, context: GroundingContext) -> ValidationReport:
    """Every reason ``draft`` may not be published; an empty report means it is grounded and compliant."""
    rows = dict(context.lookup(draft.item_ids)) if draft.item_ids else {}
    texts = {"x": "\n".join(draft.x_thread), "telegram": telegram_plain(draft.telegram_html),
             "markdown": markdown_plain(draft.markdown)}
    links = {"x": links_in_text(texts["x"]), "telegram": telegram_links(draft.telegram_html),
             "markdown": markdown_links(draft.markdown)}
    problems: list[Problem] = []
    problems += _sources(draft, rows)
    problems += _format(draft, context)
    evidence = _Evidence(draft, rows, context)
    # The draft's ticker list is metadata readers don't see, but review and publishing key on it.
    problems += evidence.tickers(" ".join(f"${t}" for t in draft.tickers), "tickers")
    for where, text in texts.items():
        problems += evidence.tickers(text, where)
        problems += evidence.numbers(text, where)
        problems += evidence.links(links[where], where)
        problems += _compliance(text, where, context)
    return ValidationReport(problems=_merged(problems), checked_at=context.clock())


def _merged(problems: list[Problem]) -> tuple[Problem, ...]:
    """One problem per (code, message), naming every format it was found in."""
    places: dict[tuple[str, str], list[str]] = {}
    for p in problems:
        spots = places.setdefault((p.code, p.message), [])
        if p.where and p.where not in spots:
            spots.append(p.where)
    return tuple(Problem(code, message, ", ".join(where)) for (code, message), where in places.items())


def _sources(draft: Draft, rows: Mapping[str, Any]) -> list[Problem]:
    if not draft.item_ids:
        return [Problem("no_sources", "the draft cites no stored item", "sources")]
    return [Problem("unknown_source", f"cited item {item_id} is not in memory", "sources")
            for item_id in draft.item_ids if item_id not in rows]


class _Evidence:
    """What the cited items, the watchlist, the draft's signals and the price snapshots support."""

    def __init__(self, draft: Draft, rows: Mapping[str, Any], context: GroundingContext) -> None:
        self.draft = draft
        self.context = context
        watch = context.watchlist
        cited_text = "\n".join(f"{r.title}\n{r.text}" for r in rows.values())
        self.cited_tickers = {t for r in rows.values() for t in r.tickers.split()} | tickers_in(cited_text, watch)
        self.cited_numbers = numbers_in(cited_text)
        self.cited_links = {canonical_link(r.url) for r in rows.values()}
        signals = draft.signals.get("tickers", []) if isinstance(draft.signals, dict) else []
        self.signal_tickers = {str(t.get("ticker")) for t in signals if isinstance(t, dict)}
        self._snapshots: dict[str, Any] = {}

    def snapshot(self, ticker: str) -> Any:
        """The newest price snapshot of ``ticker`` at the draft's window end, cached."""
        if ticker not in self._snapshots:
            prices = self.context.prices
            self._snapshots[ticker] = prices.latest(ticker, self.draft.window_end) if prices is not None else None
        return self._snapshots[ticker]

    def tickers(self, text: str, where: str) -> list[Problem]:
        problems = []
        for ticker in sorted(tickers_in(text, self.context.watchlist)):
            if ticker in self.cited_tickers:
                continue
            if ticker not in self.context.watchlist.aliases:
                problems.append(Problem("unknown_ticker", f"${ticker} is in no cited item and not on the watchlist",
                                        where))
            elif ticker not in self.signal_tickers and self.snapshot(ticker) is None:
                problems.append(Problem("uncited_ticker", f"${ticker} is on the watchlist but no cited item, "
                                        "signal or price snapshot mentions it", where))
        return problems

    def numbers(self, text: str, where: str) -> list[Problem]:
        problems = []
        for number in numbers_in(text, self.context.watchlist):
            if any(n.kind == number.kind and number.matches(n.value) for n in self.cited_numbers):
                continue
            stored = self._stored(number)
            if stored is None:
                about = f" about ${number.ticker}" if number.ticker else ""
                problems.append(Problem("unverified_number", f"{number.text}{about} is in no cited item and no "
                                        "stored price snapshot", where))
            elif stored:
                problems.append(Problem("price_mismatch", stored, where))
        return problems

    def _stored(self, number: Number) -> str | None:
        """"" when a snapshot backs ``number``, a mismatch message when snapshots disagree, None when none exist."""
        if number.ticker is None:
            return None
        snap = self.snapshot(number.ticker)
        ctx = self.context
        if number.kind == "usd":
            if snap is None:
                return None
            if number.matches(snap.price_usd, abs(snap.price_usd) * ctx.price_tolerance_pct / 100):
                return ""
            return (f"${number.ticker} quoted at {number.text} but the stored price is ${snap.price_usd:,.2f} "
                    f"({snap.observed_at:%Y-%m-%d %H:%M} UTC, ±{ctx.price_tolerance_pct:g}%)")
        stored = [snap.change_24h_pct] if snap is not None and snap.change_24h_pct is not None else []
        if ctx.prices is not None:
            change = ctx.prices.change_pct(number.ticker, self.draft.window_start, self.draft.window_end)
            if change is not None:
                stored.append(change)
        if not stored:
            return None
        if any(number.matches(s, ctx.percent_tolerance_pp) for s in stored):
            return ""
        shown = " or ".join(f"{s:+.2f}%" for s in stored)
        return (f"${number.ticker} move given as {number.text} but stored changes are {shown} "
                f"(±{ctx.percent_tolerance_pp:g} pp)")

    def links(self, links: list[str], where: str) -> list[Problem]:
        return [Problem("foreign_link", f"link {link} belongs to no cited item", where)
                for link in dict.fromkeys(links) if canonical_link(link) not in self.cited_links]


def _format(draft: Draft, context: GroundingContext) -> list[Problem]:
    problems = []
    if not draft.x_thread or not any(p.strip() for p in draft.x_thread):
        problems.append(Problem("empty", "the X thread has no posts", "x"))
    if len(draft.x_thread) > context.max_x_posts:
        problems.append(Problem("too_many_posts", f"the X thread has {len(draft.x_thread)} posts "
                                f"(at most {context.max_x_posts})", "x"))
    for n, post in enumerate(draft.x_thread, 1):
        length = weighted_length(post)
        if length > X_LIMIT:
            problems.append(Problem("too_long", f"X post {n} is {length} weighted characters (at most {X_LIMIT})",
                                    "x"))
    units = len(draft.telegram_html.encode("utf-16-le")) // 2
    if units > context.telegram_limit:
        problems.append(Problem("too_long", f"the Telegram message is {units} characters "
                                f"(at most {context.telegram_limit})", "telegram"))
    if not draft.telegram_html.strip():
        problems.append(Problem("empty", "the Telegram message is empty", "telegram"))
    problems += [Problem("bad_html", message, "telegram") for message in _html_problems(draft.telegram_html)]
    if not draft.markdown.strip():
        problems.append(Problem("empty", "the Markdown brief is empty", "markdown"))
    return problems


class _TagCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"<{tag}> is not a Telegram tag")
        else:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in TELEGRAM_TAGS:
            if not self.open or self.open[-1] != tag:
                self.problems.append(f"</{tag}> does not close the open tag")
            else:
                self.open.pop()


def _html_problems(message: str) -> list[str]:
    check = _TagCheck()
    check.feed(message)
    check.close()
    return check.problems + [f"<{tag}> is never closed" for tag in check.open]


def _compliance(text: str, where: str, context: GroundingContext) -> list[Problem]:
    flat = " ".join(text.replace("\u2019", "'").split()).lower()
    problems = []
    for phrase in context.banned_phrases:
        wanted = " ".join(phrase.replace("\u2019", "'").split()).lower()
        if wanted and re.search(rf"(?<![\w]){re.escape(wanted)}(?![\w])", flat):
            problems.append(Problem("banned_phrase", f"banned phrase {phrase!r}", where))
    disclaimer = " ".join(context.disclaimer.split()).lower()
    if context.require_disclaimer and disclaimer and disclaimer not in flat:
        problems.append(Problem("missing_disclaimer", f"the required disclaimer {context.disclaimer!r} is missing",
                                where))
    return problems
