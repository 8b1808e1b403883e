"""Find the tickers an item talks about: ``$CASHTAGS`` and watchlist aliases."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# A cashtag starts with a letter so "$100" is a price, not a ticker.
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{1,9})(?![\w])")


class Watchlist:
    """Tickers we follow, each with the words people use for it."""

    def __init__(self, aliases: Mapping[str, Iterable[str]]) -> None:
        self.aliases: dict[str, tuple[str, ...]] = {
            ticker.upper(): tuple(sorted({a.strip().lower() for a in names if a.strip()}))
            for ticker, names in aliases.items()
        }
        self._patterns = {
            ticker: re.compile(
                r"(?<![\w$])(?:" + "|".join(re.escape(a) for a in names) + r")(?![\w])",
                re.IGNORECASE,
            )
            for ticker, names in self.aliases.items()
            if names
        }

    @property
    def tickers(self) -> tuple[str, ...]:
        """The watched tickers, sorted."""
        return tuple(sorted(self.aliases))

    def mentions(self, text: str) -> list[tuple[int, str]]:
        """Every (position, ticker) mention in ``text`` by cashtag or alias, in order of position."""
        found = [(m.start(), m.group(1).upper()) for m in _CASHTAG.finditer(text)]
        for ticker, pattern in self._patterns.items():
            found.extend((m.start(), ticker) for m in pattern.finditer(text))
        return sorted(found)

    def alias_spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, ticker) for every watchlist alias written in ``text`` (cashtags not included)."""
        return sorted((m.start(), m.end(), ticker) for ticker, pattern in self._patterns.items()
                      for m in pattern.finditer(text))

    def extract(self, text: str) -> tuple[str, ...]:
        """Sorted unique tickers mentioned in ``text`` by cashtag or by alias."""
        found = {match.upper() for match in _CASHTAG.findall(text)}
        found.update(ticker for ticker, pattern in self._patterns.items() if pattern.search(text))
        return tuple(sorted(found))
