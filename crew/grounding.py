"""The grounding validator: checks any draft (crew-written, data brief or hand-edited) against what was stored.

Deterministic: the same draft and the same stored items, watchlist, price snapshots and settings give
the same report. Evidence has tiers (see the README's "Grounding"):

- sources: the draft cites at least one stored item; an item that reads as instructions to an AI
  (``suspect``) is counted but grounds nothing and is never linked;
- prices: a ticker's price, move, volume and market cap are checked against its price snapshots only,
  direction included, whatever any item says;
- other numbers: an item the claim cites states the same number about the same asset (entity–number
  binding on both sides, rounding and ranges allowed), in the same direction;
- tickers: a watchlist ticker backed by the window's signals, or one named by
  ``min_independent_sources`` independent groups (outlets, account clusters);
- time words: "today", "yesterday", "this week" agree with when the cited items say it happened;
- framing: a ticker framed positive (negative) is not one the brief reports only falling (rising) on
  bearish (bullish) sentiment (``crew.framing``);
- single source: a claim resting on one social/forum group is attributed or not publishable;
- links: only the trusted link of a cited item (``crew.trust``); no link from any item's text;
- format and platform: X's 280 weighted characters, post cap, @mentions, tag caps; Telegram's size and
  tags; no hidden characters; the disclaimer (``crew.compliance``) and, per channel the draft is meant for,
  that channel's compliance profiles (``crew.profiles``); a ``block`` rule refuses its channel only.

Claims are checked in every format (``crew.claimcheck``), so a hand edit cannot hide one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from crew.claimcheck import ClaimChecker
from crew.claims import (
    canonical_link,
    links_in_text,
    markdown_links,
    markdown_plain,
    telegram_links,
    telegram_plain,
)
from crew.compliance import check_compliance
from crew.entities import Entities
from crew.evidence import read_source
from crew.framing import problems as framing_problems
from crew.model import Problem, ValidationReport
from crew.profiles import check_profiles, resolve
from crew.render import MENTION, TELEGRAM_LIMIT, X_LIMIT, weighted_length
from crew.trust import SourcePolicy
from memory.drafts import Draft
from memory.prices import PriceHistory
from memory.public_ids import permalink, public_id
from sources.coins import CoinDirectory
from sources.plaintext import INVISIBLE
from sources.tickers import Watchlist

TELEGRAM_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                           "blockquote", "tg-spoiler", "span"})
# Characters a reader cannot see but a model (or X's search) reads: bidi controls, zero-width, tag characters.
_CASHTAG = re.compile(r"(?<![\w$])\$[A-Za-z][A-Za-z0-9]{1,9}(?![\w])")
_HASHTAG = re.compile(r"(?<![\w#&])#[^\s#.,;:!?()\[\]{}'\"]{1,100}")


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
    policy: SourcePolicy = field(default_factory=SourcePolicy)
    coins: CoinDirectory | None = None
    # Stored rows that name a ticker in a time range: corroboration beyond the cited items.
    ticker_items: Callable[[str, datetime, datetime], Iterable[Any]] | None = None
    single_source_policy: str = "attribute"  # or "block"
    min_independent_sources: int = 2
    volume_tolerance_pct: float = 5.0
    allowed_mentions: frozenset[str] = frozenset()  # X handles (lower case) a post may @mention
    max_cashtags: int = 4  # per X post
    max_hashtags: int = 2  # per X post
    archive_url: str | None = None  # the public archive: a draft may link to its own permalink there
    # Compliance profiles per channel ([compliance.channels]); a draft's meta["profiles"] (its schedule entry)
    # overrides a channel's list. Formats no channel of the draft reads (Markdown) get "global".
    channel_profiles: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"x": ("global",), "telegram": ("global",)})
    channels: tuple[str, ...] = ("x", "telegram")  # publish.channels: where a draft without meta["channels"] goes
    profiles_dir: Path | None = None


def validate_draft(draft: Draft, context: GroundingContext) -> ValidationReport:
    """Every reason ``draft`` may not be published, and per claim what grounded it."""
    rows = dict(context.lookup(draft.item_ids)) if draft.item_ids else {}
    entities = Entities(context.watchlist, context.coins)
    cashtags = {t for r in rows.values() for t in entities.cashtags(f"{r.title}\n{r.text or ''}")}
    entities = entities.with_symbols(cashtags)
    sources = [read_source(rows[i], entities, context.policy) for i in draft.item_ids if i in rows]
    texts = {"x": "\n".join(draft.x_thread), "telegram": telegram_plain(draft.telegram_html),
             "markdown": markdown_plain(draft.markdown)}
    links = {"x": links_in_text(texts["x"]), "telegram": telegram_links(draft.telegram_html),
             "markdown": markdown_links(draft.markdown)}
    problems: list[Problem] = []
    profiles = draft_profiles(draft, context)
    targets = list(profiles)
    problems += _sources(draft, rows, sources)
    problems += _format(draft, context)
    problems += _x_platform(draft, context)
    rendered = {"x": texts["x"], "telegram": draft.telegram_html, "markdown": draft.markdown}
    checker = ClaimChecker(draft, context, entities, sources)
    problems += checker.tickers(" ".join(f"${t}" for t in draft.tickers), "tickers")
    for where, text in texts.items():
        problems += checker.check_text(text, where)
        problems += _links(links[where], where, sources, context.policy, _own_permalink(draft, context))
        problems += _hidden(text, where)
        # As rendered: a disclaimer hidden in a link label or split by markup does not count.
        problems += check_compliance(rendered[where], where, disclaimer=context.disclaimer,
                                     require_disclaimer=context.require_disclaimer,
                                     banned_phrases=context.banned_phrases, rules=())
        problems += check_profiles(rendered[where], where, resolve(profiles.get(where, ("global",)),
                                                                   context.profiles_dir))
    problems += framing_problems(draft, texts, entities)
    problems += _all_blocked(problems, targets)
    return ValidationReport(problems=_merged(problems), checked_at=context.clock(), claims=checker.results())


def refusal(draft: Draft, channel: str, context: GroundingContext) -> str:
    """Why ``channel``'s profiles refuse the draft, by its stored report or checked now (delivery's gate), or ''."""
    text = "\n".join(draft.x_thread) if channel == "x" else draft.telegram_html
    names = draft_profiles(draft, replace(context, channels=(channel,))).get(channel) or tuple(
        context.channel_profiles.get(channel, ("global",)))
    found = [*ValidationReport.from_dict(draft.validation).blocked().get(channel, []),
             *(p for p in check_profiles(text, channel, resolve(names, context.profiles_dir)) if p.blocks)]
    seen = dict.fromkeys(f"{p.profile}/{p.rule}: {p.message} ({p.source})" for p in found)
    return ("compliance: " + "; ".join(seen))[:500] if seen else ""


def draft_targets(draft: Draft, channels: Iterable[str]) -> list[str]:
    """The enabled channels a draft is meant for: those its ``meta["channels"]`` names, else all enabled."""
    enabled = list(channels)
    wanted = draft.meta.get("channels")
    if not isinstance(wanted, list) or not wanted:
        return enabled
    return [c for c in enabled if c in wanted]


def draft_profiles(draft: Draft, context: GroundingContext) -> dict[str, tuple[str, ...]]:
    """Channel → the profiles its text is checked against: the draft's schedule entry's, else the settings'."""
    own = draft.meta.get("profiles")
    own = own if isinstance(own, dict) else {}
    out: dict[str, tuple[str, ...]] = {}
    for channel in draft_targets(draft, context.channels):
        names = own.get(channel)
        out[channel] = tuple(names) if isinstance(names, list) and names else tuple(
            context.channel_profiles.get(channel, ("global",)))
    return out


def _all_blocked(problems: list[Problem], targets: list[str]) -> list[Problem]:
    """A draft every channel of which is refused cannot go anywhere: that holds up the draft itself."""
    blocked = {c for p in problems if p.blocks for c in p.channels}
    if targets and all(t in blocked for t in targets):
        return [Problem("blocked_everywhere", "a compliance profile blocks every channel this draft is meant for "
                        f"({', '.join(targets)})", "")]
    return []


def _merged(problems: list[Problem]) -> tuple[Problem, ...]:
    """One problem per (code, message, rule), naming every format it was found in."""
    places: dict[tuple[str, ...], list[str]] = {}
    for p in problems:
        spots = places.setdefault((p.code, p.message, p.profile, p.rule, p.source, p.action), [])
        if p.where and p.where not in spots:
            spots.append(p.where)
    return tuple(Problem(code, message, ", ".join(where), profile, rule, source, action)
                 for (code, message, profile, rule, source, action), where in places.items())


def _sources(draft: Draft, rows: Mapping[str, Any], sources: list[Any]) -> list[Problem]:
    if not draft.item_ids:
        return [Problem("no_sources", "the draft cites no stored item", "sources")]
    problems = [Problem("unknown_source", f"cited item {item_id} is not in memory", "sources")
                for item_id in draft.item_ids if item_id not in rows]
    if sources and all(s.suspect for s in sources):
        problems.append(Problem("suspect_source", "every cited item reads as instructions to an AI", "sources"))
    return problems


def _own_permalink(draft: Draft, context: GroundingContext) -> str:
    """The one link of our own a draft may carry: its brief's page on the configured archive (nothing else there).

    The public id is the brief's own (``meta["public_id"]``, which an edit carries over)."""
    return permalink(context.archive_url, public_id(draft)) or ""


def _links(found: list[str], where: str, sources: list[Any], policy: SourcePolicy, own: str = "") -> list[Problem]:
    trusted = {canonical_link(link) for s in sources if not s.suspect and (link := policy.link(s.row))}
    if own:
        trusted.add(canonical_link(own))
    problems = []
    for link in dict.fromkeys(found):
        if re.search(r"\[\.\]|\(\.\)|\{\.\}|\bdot\b|\[dot\]|\(dot\)", link, re.IGNORECASE):
            problems.append(Problem("obfuscated_link", "the text spells out a link for readers to type in", where))
        elif canonical_link(link) not in trusted:
            host = re.sub(r"^[a-z]+://", "", link, flags=re.IGNORECASE).split("/")[0][:80]
            problems.append(Problem("foreign_link", f"{host}: not the trusted link of any cited item", where))
    return problems


def _hidden(text: str, where: str) -> list[Problem]:
    found = INVISIBLE.findall(text)
    if not found:
        return []
    names = sorted({f"U+{ord(c):04X}" for c in found})[:5]
    return [Problem("hidden_characters", f"{len(found)} invisible character(s) ({', '.join(names)})", where)]


def _x_platform(draft: Draft, context: GroundingContext) -> list[Problem]:
    """X's rules for automated accounts: no unsolicited @mentions, few cashtags and hashtags per post."""
    problems = []
    for n, post in enumerate(draft.x_thread, 1):
        bare = post
        for link in links_in_text(post):
            bare = bare.replace(link, " ")
        mentions = sorted({m.lower() for m in MENTION.findall(bare)} - context.allowed_mentions)
        if mentions:
            problems.append(Problem("mention", f"X post {n} @mentions {len(mentions)} account(s) not on the "
                                    "allow-list (X forbids unsolicited mentions)", "x"))
        if len(_CASHTAG.findall(bare)) > context.max_cashtags:
            problems.append(Problem("too_many_cashtags", f"X post {n} has more than {context.max_cashtags} "
                                    "cashtags", "x"))
        if len(_HASHTAG.findall(bare)) > context.max_hashtags:
            problems.append(Problem("too_many_hashtags", f"X post {n} has more than {context.max_hashtags} "
                                    "hashtags", "x"))
    return problems


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
