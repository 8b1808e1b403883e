"""The tickers a piece of text names, however it names them: cashtags, watchlist aliases, coin names and
symbols, trading pairs, and words that spell a cashtag the cited sources use.

The last kind is what catches paraphrased promotion: a payload pushes ``$PWNED`` and the draft says
"PWNED", "Pwned token" or "the pwned coin". Any such spelling of a symbol that a cited item writes as
a cashtag counts as naming that ticker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from sources.coins import CoinDirectory
from sources.tickers import Watchlist

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{1,9})(?![\w])")
_PAIR = re.compile(r"(?<![\w$/])\$?([A-Za-z][A-Za-z0-9]{1,9})\s?/\s?\$?([A-Za-z][A-Za-z0-9]{1,9})(?![\w/])")
_WORD = re.compile(r"(?<![\w$])([A-Za-z][A-Za-z0-9]{1,9})(?![\w])")
_COIN_NOUN = re.compile(r"^\s+(?:token|coin|memecoin|meme coin|airdrop|presale)s?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    """One place ``text`` names an asset: a ticker (``SOL``) or a pair (``ETH/BTC``)."""

    start: int
    end: int
    ticker: str
    pair: bool = False


class Entities:
    """Finds tickers in text, from the watchlist, a coin directory and the cited sources' own cashtags."""

    def __init__(self, watchlist: Watchlist, directory: CoinDirectory | None = None,
                 extra_symbols: Iterable[str] = ()) -> None:
        self.watchlist = watchlist
        self.directory = directory
        self.extra = {s.upper() for s in extra_symbols if s}
        self.known = set(watchlist.aliases) | (directory.symbols if directory else set()) | self.extra

    def with_symbols(self, symbols: Iterable[str]) -> Entities:
        """A copy that also recognises ``symbols`` (cashtags of the cited items) in any spelling."""
        return Entities(self.watchlist, self.directory, self.extra | {s.upper() for s in symbols})

    def mentions(self, text: str) -> list[Mention]:
        """Every mention in order of position; overlapping finds are merged, a pair wins over its halves."""
        found: list[Mention] = []
        for m in _PAIR.finditer(text):
            base, quote = m.group(1).upper(), m.group(2).upper()
            if base in self.known and quote in self.known | {"USD", "USDT", "USDC"}:
                found.append(Mention(m.start(), m.end(), f"{base}/{quote}", pair=True))
        found += [Mention(m.start(), m.end(), m.group(1).upper()) for m in _CASHTAG.finditer(text)]
        found += [Mention(s, e, t) for s, e, t in self.watchlist.alias_spans(text)]
        if self.directory is not None:
            found += [Mention(s, e, t) for s, e, t in self.directory.mentions(text)]
        for m in _WORD.finditer(text):
            word = m.group(1)
            if word.upper() in self.extra and (word.isupper() or word[0].isupper()
                                               or _COIN_NOUN.match(text[m.end():m.end() + 20])):
                found.append(Mention(m.start(), m.end(), word.upper()))
        return _merged(found)

    def tickers(self, text: str) -> set[str]:
        """The tickers ``text`` names (a pair names both of its tickers)."""
        out: set[str] = set()
        for m in self.mentions(text):
            out.update(m.ticker.split("/") if m.pair else (m.ticker,))
        return out

    def cashtags(self, text: str) -> set[str]:
        """Symbols ``text`` writes as cashtags."""
        return {m.group(1).upper() for m in _CASHTAG.finditer(text)}


@lru_cache(maxsize=1)
def _organisations() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    data = yaml.safe_load(resources.files("sources").joinpath("data", "organisations.yaml").read_text("utf-8"))
    out = []
    for group in (data or {}).values():
        for aliases in group or []:
            names = tuple(str(a) for a in aliases)
            pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
            out.append((re.compile(rf"(?<![\w.$@#])(?:{pattern})(?![\w])"), names))
    return tuple(out)


def organisations_in(text: str) -> list[tuple[str, ...]]:
    """The organisations (exchanges, issuers, regulators ...) ``text`` names, each as its tuple of aliases."""
    return [names for pattern, names in _organisations() if pattern.search(text)]


def _merged(found: list[Mention]) -> list[Mention]:
    out: list[Mention] = []
    for m in sorted(found, key=lambda x: (x.start, -(x.end - x.start), not x.pair)):
        if out and m.start < out[-1].end:
            continue  # inside an earlier, longer mention ("ETH/BTC" holds "ETH"; "bitcoin cash" holds "bitcoin")
        out.append(m)
    return out
