"""What a draft's text claims, read back from its rendered formats: tickers, dollar amounts, percentages, links.

Pure functions over text, shared by the grounding validator. Each format is reduced to plain text
first (Telegram tags stripped and entities decoded, Markdown escapes and link targets removed), so
the same claim is found the same way in every format, whoever wrote or edited it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import unquote

from sources.item import canonical_url
from sources.tickers import Watchlist

_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_BARE_DOMAIN = re.compile(r"(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                          r"(?:com|org|net|io|xyz|co|app|finance|exchange|gg|me|info|biz|ly|to|link|site)"
                          r"(?:/[^\s<>\"'()\[\]{}]*)?(?![\w])", re.IGNORECASE)
_TRAILING = ".,;:!?…'\")]"
_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_MD_TARGET = re.compile(r"\]\(([^)\s]*)\)")
_MD_ESCAPE = re.compile(r"\\(.)")
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SUFFIX = r"k|m|mn|mm|b|bn|t|tn|thousand|million|billion|trillion"
_MONEY = re.compile(rf"(?<![\w.])(?:US)?\$\s?(?P<num>{_NUM})\s?(?P<suffix>{_SUFFIX})?(?![\w])", re.IGNORECASE)
_MONEY_WORD = re.compile(rf"(?<![\w.,$])(?P<num>{_NUM})\s?(?P<suffix>{_SUFFIX})?\s?(?:USD|US dollars|dollars)\b",
                         re.IGNORECASE)
_PERCENT = re.compile(rf"(?<![\w.,])(?P<sign>[+\-−])?(?P<num>{_NUM})\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)
# Semicolons do not end a claim: data-brief lines use them between the fields about one ticker.
_SENTENCE_END = re.compile(r"(?<!\d)[.!?](?!\d)|\n")
_MULTIPLIER = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9,
               "bn": 1e9, "billion": 1e9, "t": 1e12, "tn": 1e12, "trillion": 1e12}


@dataclass(frozen=True)
class Number:
    """A dollar amount or a percentage as written, with the rounding its digits imply."""

    kind: str  # "usd" or "pct"
    value: float
    slack: float  # half a unit of the last digit written (×1000 for "$64.3K"): "$64.3K" covers 64,250
    text: str
    ticker: str | None  # the ticker it is said about: the nearest one in the same sentence
    signed: bool  # written with an explicit + or - sign

    def matches(self, other: float, tolerance: float = 0.0) -> bool:
        """Whether ``other`` could be written as this number, within ``tolerance`` on top of the rounding."""
        candidates = (self.value,) if self.signed or self.kind == "usd" else (self.value, -self.value)
        return any(abs(c - other) <= self.slack + tolerance + 1e-9 for c in candidates)


def telegram_plain(message: str) -> str:
    """A Telegram HTML message as the reader sees it."""
    return html.unescape(_TAG.sub("", message))


def markdown_plain(document: str) -> str:
    """A Markdown document as the reader sees it (link targets dropped, escapes undone)."""
    return _MD_ESCAPE.sub(r"\1", _MD_TARGET.sub("]", document))


def without_urls(text: str) -> str:
    """``text`` with links blanked out, so a path like /solana-news names no ticker and no number."""
    return _BARE_DOMAIN.sub(" ", _URL.sub(" ", text))


def links_in_text(text: str) -> list[str]:
    """Links written out in plain text, with or without a scheme."""
    found = [m.group().rstrip(_TRAILING) for m in _URL.finditer(text)]
    found += [m.group().rstrip(_TRAILING) for m in _BARE_DOMAIN.finditer(_URL.sub(" ", text))]
    return found


def telegram_links(message: str) -> list[str]:
    """Link targets of a Telegram HTML message, plus links written in its text."""
    return [html.unescape(m.group(2)).strip() for m in _HREF.finditer(message)] + links_in_text(
        telegram_plain(message))


def markdown_links(document: str) -> list[str]:
    """Link targets of a Markdown document, plus links written in its text."""
    return [unquote(m.group(1)) for m in _MD_TARGET.finditer(document)] + links_in_text(markdown_plain(document))


def canonical_link(link: str) -> str:
    """The form links are compared in (a scheme-less domain is taken as https)."""
    link = unquote(link.strip())
    if not re.match(r"^[a-z][a-z0-9+.-]*:", link, re.IGNORECASE):
        link = f"https://{link}"
    try:
        return canonical_url(link)
    except ValueError:
        return link


def tickers_in(text: str, watchlist: Watchlist) -> set[str]:
    """Tickers named in ``text``: cashtags and watchlist names (links ignored)."""
    return set(watchlist.extract(without_urls(text)))


def _value(num: str, suffix: str | None) -> tuple[float, float]:
    digits = num.replace(",", "")
    decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
    multiplier = _MULTIPLIER.get((suffix or "").lower(), 1.0)
    return float(digits) * multiplier, 0.5 * 10 ** -decimals * multiplier


def numbers_in(text: str, watchlist: Watchlist | None = None) -> list[Number]:
    """Dollar amounts and percentages in ``text`` (links ignored), each tied to its sentence's nearest ticker."""
    text = without_urls(text)
    mentions = watchlist.mentions(text) if watchlist is not None else []
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(text)), len(text) + 1]
    found: list[tuple[int, str, re.Match[str]]] = [(m.start(), "usd", m) for m in _MONEY.finditer(text)]
    taken = {m.start("num") for _, _, m in found}
    found += [(m.start(), "usd", m) for m in _MONEY_WORD.finditer(text) if m.start("num") not in taken]
    found += [(m.start(), "pct", m) for m in _PERCENT.finditer(text)]
    out = []
    for position, kind, match in sorted(found, key=lambda f: f[0]):
        suffix = match.groupdict().get("suffix")
        value, slack = _value(match.group("num"), suffix)
        sign = match.groupdict().get("sign")
        if sign in ("-", "−"):
            value = -value
        start = max(b for b in bounds if b <= position)
        end = min(b for b in bounds if b > position)
        near = [(position - p if p <= position else p - position + 0.5, t) for p, t in mentions if start <= p < end]
        out.append(Number(kind=kind, value=value, slack=slack, text=match.group().strip(),
                          ticker=min(near)[1] if near else None, signed=bool(sign)))
    return out
