"""Numbers in a sentence, each with its unit, its role and the asset it is said about (entity–number binding).

A number is a dollar amount (``usd``), a percentage (``pct``) or a count (``count``). Its *role* says
what it measures: a ticker's ``price``, its price ``move``, its ``volume`` or ``mcap``, a ``flow`` (ETF
inflows, outflows, raises), or a generic ``amount`` / ``share`` / ``count`` that only a source can state.
Binding follows how people write: "SOL and ETH rose 3.6% and 1.2% respectively" pairs the lists in
order, "BTC $97.9K (+0.8%), ETH $3,452 (+1.2%)" binds within each comma clause, and otherwise a number
belongs to the nearest asset before it in its clause. A number is about a ticker's *price* only when
nothing but price words stands between the two ("BTC held near $95K", "SOL is up 3.6%"); "Solana's failed
transactions fell to 12%" is a share stated by the source, not a price move.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from crew.entities import Mention

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SUFFIX = r"k|m|mn|mm|b|bn|t|tn|thousand|million|billion|trillion"
_MONEY = re.compile(rf"(?<![\w.])(?P<sign>[+\-−])?\s?(?:US)?\$\s?(?P<num>{_NUM})\s?(?P<suffix>{_SUFFIX})?(?![\w])",
                    re.IGNORECASE)
_MONEY_WORD = re.compile(rf"(?<![\w.,$])(?P<num>{_NUM})\s?(?P<suffix>{_SUFFIX})?\s?(?:USD|US dollars|dollars)\b",
                         re.IGNORECASE)
_PERCENT = re.compile(rf"(?<![\w.,])(?P<sign>[+\-−])?(?P<num>{_NUM})\s?(?:%|percent\b|per cent\b|pct\b)",
                      re.IGNORECASE)
_COUNT = re.compile(rf"(?<![\w.,$+\-−/#])(?P<num>{_NUM})(?P<suffix>\s?(?:k|m|bn|b|thousand|million|billion))?"
                    r"(?:\s+of\s+\d+)?\s+(?P<noun>[a-z][a-z\-]{2,})\b", re.IGNORECASE)
_MULTIPLIER = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9,
               "bn": 1e9, "billion": 1e9, "t": 1e12, "tn": 1e12, "trillion": 1e12}
# Nouns after a number that make it a time, a date or a rank, not a count of anything.
_NOT_COUNTED = frozenset(
    ["hrs", "am", "pm", "utc", "gmt", "et", "est", "pt", "times", "x", "percent", "pct", "per",
    "usd", "dollars", "dollar", "cents", "th", "st", "nd", "rd", "jan", "feb", "mar", "apr", "may",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "january", "february", "march", "april", "june",
    "july", "august", "september", "october", "november", "december"])
# Words after a number that are not what it counts ("at 97,900 after the Fed").
_FUNCTION_WORDS = frozenset(["after", "while", "before", "on", "in", "at", "as", "for", "to", "from", "with", "and",
                             "or", "but", "the", "by", "of", "this", "that", "since", "until", "then", "than", "amid",
                             "despite", "into", "onto", "over", "under", "above", "below", "near", "around", "per",
                             "vs", "versus", "again", "today", "yesterday", "overnight", "now", "level", "mark"])
# Durations: a streak of "7 days" is a quantity a source states; "24 hours" as a time frame is not.
DURATION_NOUNS = frozenset(["hours", "hour", "minutes", "minute", "mins", "seconds", "days", "day", "weeks", "week",
                            "months", "month", "years", "year", "sessions", "session"])
TIME_FRAMES = frozenset([1, 2, 3, 4, 6, 7, 12, 14, 24, 30, 48, 60, 72, 90, 180, 365])
# Counts tapewatch computes itself (signals), checked against the draft's stored signals.
SIGNAL_NOUNS = frozenset([
    "stories", "story", "reports", "report", "groups", "group", "sources", "source", "outlets", "outlet",
    "accounts", "account", "posts", "post", "mentions", "mention", "items", "item", "clusters", "cluster"])
# What may stand between an asset and its price or move: price words, verbs of movement, hedges, punctuation.
_PRICE_GAP = frozenset(
    ["'s", "s", "is", "was", "are", "were", "has", "had", "have", "been", "be", "at", "near", "around", "about",
    "above", "below", "under", "over", "trading", "traded", "trades", "trade", "changing", "hands", "held", "holds",
    "hold", "hit", "hits", "reached", "reaches", "touched", "touches", "topped", "tops", "dipped", "dips",
    "slipped", "slips", "climbed", "climbs", "rose", "rises", "risen", "fell", "falls", "fallen", "dropped",
    "drops", "jumped", "jumps", "gained", "gains", "lost", "loses", "added", "adds", "shed", "sheds", "slid",
    "slides", "rallied", "rallies", "surged", "surges", "sank", "sinks", "tumbled", "tumbles", "soared", "soars",
    "plunged", "plunges", "spiked", "spikes", "rebounded", "rebounds", "recovered", "recovers", "moved", "moves",
    "moving", "edged", "edges", "ticked", "ticks", "up", "down", "higher", "lower", "to", "from", "by", "roughly",
    "nearly", "almost", "some", "just", "back", "again", "still", "now", "currently", "price", "prices", "priced",
    "token", "coin", "sits", "sat", "stood", "stands", "closed", "closes", "opened", "opens", "broke", "breaks",
    "through", "past", "the", "a", "day", "daily", "on", "of", "its", "intraday", "session", "spot", "last", "more",
    "than", "less", "~", "and", "while"])
_ROLE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("mcap", re.compile(r"\b(?:market cap(?:italisation|italization)?|mcap|valuation|market value|fdv)\b", re.I)),
    ("volume", re.compile(r"\b(?:volume|turnover|traded value)\b", re.I)),
    ("flow", re.compile(r"\b(?:in|out)?flows?\b|\b(?:took in|pulled in|drew|attracted|raised|redemptions?|"
                        r"inflows?|outflows?|net (?:buying|selling)|bought|sold|deposits?|withdrawals?|left|exited|"
                        r"fled|poured|"
                        r"came in|pulled|added to|holdings?|reserves?|treasury|liquidat\w*|stolen|drained|exploit\w*|"
                        r"hack\w*|funding|fees?|revenue|tvl|total value locked|locked|staked|open interest|burn\w*)\b",
                        re.I)),
)
_UP = re.compile(r"\b(?:rose|rise|rises|risen|rising|up|gain(?:ed|s|ing)?|jump(?:ed|s)?|climb(?:ed|s)?|"
                 r"rall(?:ied|y|ies)|"
                 r"surge[ds]?|soar(?:ed|s)?|spike[ds]?|rebound(?:ed|s)?|higher|added|adds|advance[ds]?|inflows?|"
                 r"took in|pulled in|increase[ds]?|grew|grows|up from|more|extended gains|creations?|subscriptions?|"
                 r"net buy(?:ing|ers)?|drew|attracted)\b", re.I)
_DOWN = re.compile(r"\b(?:fell|fall|falls|fallen|falling|down|drop(?:ped|s)?|lost|lose|loses|slid|slide[s]?|"
                   r"slip(?:ped|s)?|"
                   r"sank|sink[s]?|tumble[ds]?|plunge[ds]?|decline[ds]?|lower|shed|sheds|dip(?:ped|s)?|outflows?|"
                   r"decrease[ds]?|shrank|off|retreat(?:ed|s)?|slump(?:ed|s)?|crash(?:ed|es)?|pulled out|bled|"
                   r"redemptions?|redeemed|withdrawals?|withdrew|sold off|net sell(?:ing|ers)?)\b", re.I)
_CLAUSE = re.compile(r"[;,(]|\)|\s[—–-]\s|\b(?:while|whereas|but|as|after|with)\b", re.I)
_LIST_GLUE = re.compile(r"^\s*(?:,|and|&|,\s*and|plus)\s*$", re.I)
_WORDS = re.compile(r"[a-z']+|~", re.I)
_Raw = list[tuple[int, int, str, re.Match[str]]]
_BARE = re.compile(r"(?<![\w.$,+\-−/#:×~^])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{2,}(?:\.\d+)?|\d+\.\d+)"
                   r"\s?(?P<suffix>k|K)?(?![\w%,:/-]|\.\d|\s?(?:%|percent|per cent|pct))")
_LEVEL = re.compile(r"\b(?:at|near|around|above|below|under|over|to|hit|hits|reached|topped|trading|trades|"
                    r"traded|touched|sits|sat|stands|stood|closed|opened|priced)\b", re.IGNORECASE)
# An asset after one of these is not the subject of its clause ("fees on Ethereum"), unless it is "price of".
_NOT_SUBJECT = re.compile(r"(?<!price )(?<!prices )\b(?:on|of|in|for|across|from|by|with|via|into|onto)\s*\$?$",
                          re.IGNORECASE)


@dataclass(frozen=True)
class Number:
    """A number as written, with the rounding its digits imply, what it measures and what it is about."""

    kind: str  # usd | pct | count
    value: float
    slack: float  # half a unit of the last digit written (×1000 for "$64.3K"): "$64.3K" covers 64,250
    text: str
    start: int
    role: str  # price | move | volume | mcap | flow | amount | share | count | signal_count
    entity: str | None  # the ticker (or pair, "ETH/BTC") it is said about
    direction: int  # +1 up / in, -1 down / out, 0 not said
    noun: str = ""  # for counts: what is counted

    @property
    def ticker(self) -> str | None:
        """The single ticker the number is about (None for a pair or nothing)."""
        return self.entity if self.entity and "/" not in self.entity else None

    def matches(self, other: float, tolerance: float = 0.0, other_slack: float = 0.0) -> bool:
        """Whether ``other`` could be written as this number, given both roundings and ``tolerance``."""
        value = abs(self.value) if self.direction else self.value
        target = abs(other) if self.direction else other
        candidates = (value,) if self.kind != "pct" or self.direction or self.value < 0 else (value, -value)
        return any(abs(c - target) <= max(self.slack, other_slack) + tolerance + 1e-9 for c in candidates)


def _value(num: str, suffix: str | None) -> tuple[float, float]:
    digits = num.replace(",", "")
    decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
    multiplier = _MULTIPLIER.get((suffix or "").strip().lower(), 1.0)
    return float(digits) * multiplier, 0.5 * 10 ** -decimals * multiplier


def _raw(text: str) -> _Raw:
    found = [(m.start(), m.end(), "usd", m) for m in _MONEY.finditer(text)]
    taken = [(s, e) for s, e, _, _ in found]
    found += [(m.start(), m.end(), "usd", m) for m in _MONEY_WORD.finditer(text)
              if not any(s <= m.start() < e for s, e in taken)]
    found += [(m.start(), m.end(), "pct", m) for m in _PERCENT.finditer(text)]
    spans = [(s, e) for s, e, _, _ in found]
    for m in _COUNT.finditer(text):
        noun = m.group("noun").lower()
        value = _value(m.group("num"), m.group("suffix"))[0]
        if noun in _NOT_COUNTED or noun in _FUNCTION_WORDS or any(s <= m.start() < e for s, e in spans):
            continue
        if (1900 <= value <= 2100 and "," not in m.group("num")) or value < 2:
            continue  # a year, or "1 fund": nothing to check
        found.append((m.start(), m.end("num") + len(m.group("suffix") or ""), "count", m))
    return sorted(found, key=lambda f: f[0])


def _clauses(text: str) -> list[int]:
    """Start offsets of the clauses of a sentence."""
    return [0, *(m.end() for m in _CLAUSE.finditer(text)), len(text) + 1]


def _clause_of(bounds: list[int], position: int) -> tuple[int, int]:
    start = max(b for b in bounds if b <= position)
    return start, min(b for b in bounds if b > position)


def _gap_is(text: str, allowed: frozenset[str]) -> bool:
    cleaned = re.sub(rf"(?:US)?\$?\s?(?:{_NUM})\s?(?:{_SUFFIX}|%)?", " ", text, flags=re.I)
    return all(w.lower() in allowed for w in _WORDS.findall(cleaned))


def _direction(sign: str | None, before: str, after: str) -> int:
    if sign in ("+",):
        return 1
    if sign in ("-", "−"):
        return -1
    near = f"{before[-60:]} {after[:25]}"
    up, down = bool(_UP.search(near)), bool(_DOWN.search(near))
    return 1 if up and not down else -1 if down and not up else 0


def _role(kind: str, clause: str, at: int, gap: str | None, noun: str, allowed: frozenset[str] = _PRICE_GAP,
          after: str = "") -> str:
    """What a number measures; ``at`` is its offset in ``clause`` (the nearest role word wins)."""
    if kind == "count":
        return "signal_count" if noun in SIGNAL_NOUNS else "count"
    if kind == "pct" and re.match(r"\s+of\b", after):
        return "share"  # "5% of stake": a share of something, not a price move
    # A role word before the number ("volume hit $3.2B") or right after it ("$3.2B in volume").
    hits = [(at - m.end() if m.end() <= at else m.start() - at + 1, role) for role, pattern in _ROLE_WORDS
            for m in pattern.finditer(clause)
            if m.end() <= at or (m.start() - at < 25 and len(re.findall(r"\d[\d,.]*", clause[at:m.start()])) <= 1)]
    if hits:
        return min(hits)[1]
    if gap is not None and _gap_is(gap, allowed) and not re.search(r"\bto\s*$", gap, re.I):
        return "price" if kind == "usd" else "move"
    if gap is not None and kind == "usd" and _gap_is(gap, allowed):
        return "price"  # "fell to $90K": a price level
    if gap is None and re.search(r"\bprice\b", clause, re.I):
        return "price" if kind == "usd" else "move"
    return "amount" if kind == "usd" else "share"


def _list_pairs(text: str, mentions: Sequence[Mention], raw: _Raw) -> dict[int, str]:
    """Numbers bound by list order ("A and B rose x and y", "respectively"): raw index → entity."""
    bound: dict[int, str] = {}
    for i in range(len(mentions)):
        run = [mentions[i]]
        while (len(run) < len(mentions) - i and _LIST_GLUE.match(text[run[-1].end:mentions[i + len(run)].start])):
            run.append(mentions[i + len(run)])
        if len(run) < 2:
            continue
        for kind in ("pct", "usd"):
            nums = [j for j, r in enumerate(raw) if r[2] == kind and r[0] >= run[-1].end]
            for start in range(len(nums) - len(run) + 1):
                group = nums[start:start + len(run)]
                glued = all(_LIST_GLUE.match(text[raw[a][1]:raw[b][0]]) for a, b in pairwise(group))
                between = [m for m in mentions if run[-1].end <= m.start < raw[group[-1]][0]]
                if glued and not between:
                    bound.update({j: m.ticker for j, m in zip(group, run, strict=True)})
                    break
    return bound


def _bare_numbers(text: str, mentions: Sequence[Mention], raw: _Raw) -> _Raw:
    """Numbers with no unit. Right after an asset and price words with a preposition of level ("BTC is at
    97,900", "ETH near 3.3k") they are prices; otherwise quantities a source must state ("rose to 14,200")."""
    spans = [(s, e) for s, e, _, _ in raw]
    found: _Raw = []
    for m in _BARE.finditer(text):
        if any(s <= m.start() < e for s, e in spans):
            continue
        value = _value(m.group("num"), m.group("suffix"))[0]
        if (1900 <= value <= 2100 and "," not in m.group("num")) or value < 2:
            continue  # a year, or a "1" that counts nothing checkable
        before = [x for x in mentions if x.end <= m.start()]
        gap = text[before[-1].end:m.start()] if before else ""
        price = bool(before) and _gap_is(gap, _PRICE_GAP) and bool(_LEVEL.search(gap)) and not re.search(r"\d", gap)
        found.append((m.start(), m.end(), "usd" if price else "count", m))
    return found


def numbers_in_sentence(text: str, mentions: Sequence[Mention]) -> list[Number]:
    """The numbers of one sentence, each bound to the asset it is about (see the module docstring)."""
    raw = _raw(text)
    raw = sorted([*raw, *_bare_numbers(text, mentions, raw)], key=lambda f: f[0])
    listed = _list_pairs(text, mentions, raw)
    bounds = _clauses(text)
    out = []
    for index, (start, end, kind, match) in enumerate(raw):
        groups = match.groupdict()
        value, slack = _value(match.group("num"), groups.get("suffix"))
        c_start, c_end = _clause_of(bounds, start)
        clause = text[c_start:c_end]
        before = [m for m in mentions if m.end <= start]
        in_clause = [m for m in before if m.start >= c_start]
        entity, gap, allowed = None, None, _PRICE_GAP
        if index in listed:
            entity = listed[index]
            anchor = next((m for m in mentions if m.ticker == entity), None)
            gap = text[anchor.end:start] if anchor else None
            allowed = _PRICE_GAP | _list_words(text, mentions)
            c_start = anchor.start if anchor else c_start
            clause = text[c_start:c_end]
        elif in_clause:
            entity, gap = in_clause[-1].ticker, text[in_clause[-1].end:start]
            if _NOT_SUBJECT.search(text[c_start:in_clause[-1].start]):
                gap = None  # "Blob transactions on Ethereum climbed 25%": the asset is not what moved
        else:
            after = [m for m in mentions if c_start <= m.start < c_end and m.start >= end]
            if after:
                entity = after[0].ticker
            elif before:
                entity = before[-1].ticker
                # "BTC $97.9K (+0.8%)": nothing but price words and numbers back to the asset.
                if _gap_is(text[before[-1].end:start], _PRICE_GAP):
                    gap = text[before[-1].end:start]
        noun = (groups.get("noun") or "").lower()
        sign = groups.get("sign")
        direction = _direction(sign, text[c_start:start], text[end:c_end])
        if sign in ("-", "−"):
            value = -value
        out.append(Number(kind=kind, value=value, slack=slack, text=match.group()[: end - start].strip(), start=start,
                          role=_role(kind, clause, start - c_start, gap, noun, allowed, text[end:end + 8]),
                          entity=entity,
                          direction=direction, noun=noun))
    return out


def _list_words(text: str, mentions: Sequence[Mention]) -> frozenset[str]:
    # In "SOL and ETH rose 3.6% and 1.2%", the other listed assets stand between an asset and its number.
    return frozenset(w.lower() for m in mentions for w in _WORDS.findall(text[m.start:m.end])) | {"respectively"}
