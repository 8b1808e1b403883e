"""What a draft's text claims, read back from its rendered formats: sentences, tickers, links.

Pure functions over text, shared by the grounding validator. Each format is reduced to plain text
first (Telegram tags stripped and entities decoded, Markdown escapes and link targets removed), so
the same claim is found the same way in every format, whoever wrote or edited it. Links are found the
way readers' clients find them: X's own rules (twitter-text, which makes ``pump-claim.fun/sol``
clickable), any host on a public suffix, and the obfuscated forms ("claim[.]fun", "claim dot fun")
that ask a reader to type a link in.
"""

from __future__ import annotations

import html
import re
import unicodedata
import warnings
from functools import lru_cache
from urllib.parse import unquote

from sources.item import canonical_url
from sources.tickers import Watchlist

with warnings.catch_warnings():  # twitter-text imports pkg_resources, which warns; not ours to fix
    warnings.simplefilter("ignore", UserWarning)
    from twitter_text import extract_urls

_URL = re.compile(r"\b(?:https?|ftp|tg|javascript|data)://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_HOSTLIKE = re.compile(r"(?<![\w@./-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z][a-z0-9-]{1,62}))"
                       r"(?P<path>/[^\s<>\"'()\[\]{}]*)?(?![\w-])", re.IGNORECASE)
_OBFUSCATED = re.compile(r"(?<![\w-])[a-z0-9][a-z0-9-]*\s?(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\s+dot\s+)"
                         r"\s?(?P<tld>[a-z]{2,24})\b", re.IGNORECASE)
# Hosts that look like domains in prose but are not links anyone can open ("e.g", "U.S", "node.js" ...).
_NOT_HOSTS = frozenset({"js", "py", "md", "txt", "ts", "rs", "sol"})
_TRAILING = ".,;:!?…'\")]"
_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_MD_TARGET = re.compile(r"\]\(([^)\s]*)\)")
_MD_ESCAPE = re.compile(r"\\(.)")
# A sentence ends at . ! ? (not inside a number like 3.6 or an abbreviation like "U.S.") or a line break.
_SENTENCE_END = re.compile(r"(?<![\s.][A-Z])(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bNo)[.!?](?=\s|$)|\n")


@lru_cache(maxsize=1)
def _suffixes() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@lru_cache(maxsize=1)
def _top_level_domains() -> frozenset[str]:
    """Every top-level label the public suffix list names (its wildcard default would make any word one)."""
    from importlib.resources import files

    tlds = set()
    for line in files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text("utf-8").splitlines():
        rule = line.strip().lstrip("!*.")
        if rule and not rule.startswith("//"):
            label = rule.rsplit(".", 1)[-1]
            tlds.add(label if label.isascii() else label.encode("idna").decode("ascii"))
    return frozenset(tlds)


def registrable_domain(host: str) -> str:
    """The domain a host belongs to on the public suffix list ("www.coindesk.com" → "coindesk.com")."""
    host = host.lower().strip(".")
    found = _suffixes().privatesuffix(host)  # type: ignore[attr-defined]
    return str(found) if found else host


def _is_public_tld(tld: str) -> bool:
    return tld.lower() in _top_level_domains() and tld.lower() not in _NOT_HOSTS


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (each stripped; empty ones dropped)."""
    out, last = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[last:m.end()].strip())
        last = m.end()
    out.append(text[last:].strip())
    return [s for s in out if s]


def visible(text: str) -> str:
    """``text`` as a reader's client shows it for link detection: compatibility forms folded (full-width ...)."""
    return unicodedata.normalize("NFKC", text)


def telegram_plain(message: str) -> str:
    """A Telegram HTML message as the reader sees it."""
    return html.unescape(_TAG.sub("", message))


def markdown_plain(document: str) -> str:
    """A Markdown document as the reader sees it (link targets dropped, escapes undone)."""
    return _MD_ESCAPE.sub(r"\1", _MD_TARGET.sub("]", document))


def without_urls(text: str) -> str:
    """``text`` with links blanked out, so a path like /solana-news names no ticker and no number."""
    for link in sorted(set(links_in_text(text)), key=len, reverse=True):
        text = text.replace(link, " ")
    return text


def links_in_text(text: str) -> list[str]:
    """Links written out in plain text: with a scheme, bare hosts on any public suffix, and obfuscated ones."""
    text = visible(text)
    found = [m.group().rstrip(_TRAILING) for m in _URL.finditer(text)]
    rest = _URL.sub(" ", text)
    found += [u.rstrip(_TRAILING) for u in extract_urls(rest)]
    found += [m.group(0).rstrip(_TRAILING) for m in _HOSTLIKE.finditer(rest) if _is_public_tld(m.group("tld"))]
    found += [m.group(0) for m in _OBFUSCATED.finditer(rest) if _is_public_tld(m.group("tld"))]
    return list(dict.fromkeys(f for f in found if f))


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
