"""Which words name a coin: a directory of symbols and names from CoinGecko's coin list.

Tickers written without ``$`` ("PEPE rose 40%", "the Bonk rally") are how a promoted coin slips past a
cashtag-only check. The directory comes from CoinGecko's ``/coins/list`` (fetched and cached by the
market source) or, offline, from a bundled snapshot of the largest assets. Matching is deliberately
narrow: a symbol counts only written in capitals and only if it is not also an everyday word, and a
name only if it is distinctive, so ordinary prose names no coin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sources.errors import FeedParseError, FetchError

BUNDLED = "coin_list.json"
COIN_LIST_PATH = "/coins/list"

# Symbols that are also words or common acronyms in capitalised headlines; they name a coin only as a cashtag.
_WORD_SYMBOLS = frozenset({
    "A", "AI", "AR", "ARE", "AT", "BE", "BOND", "CAKE", "CEO", "DASH", "ETF", "FOR", "GAS", "GT", "IN", "IP",
    "IS", "IT", "LEO", "ME", "MOVE", "NEAR", "NEW", "NOT", "NOW", "OF", "ON", "ONE", "OR", "REAL", "S", "SAND",
    "SEC", "SKY", "THE", "TO", "TRUMP", "UP", "US", "USA", "USD", "W", "WE", "WIN",
})
# Names that are also everyday words: matched only as part of a longer name or as a cashtag.
_WORD_NAMES = frozenset({
    "blast", "blur", "dash", "flow", "gala", "maker", "movement", "neo", "quant", "sky", "sonic", "story",
    "gate", "leo token", "sei", "dai", "official trump", "render", "immutable", "mantle", "optimism", "sui",
    "stellar", "aave", "compound", "cosmos hub", "frax", "graph", "helium", "brett", "jupiter", "stacks",
    "polygon", "internet computer", "the graph", "the sandbox", "trust wallet", "wormhole",
})
_NAME_CLEAN = re.compile(r"\s*\([^)]*\)")


@dataclass(frozen=True)
class Coin:
    """One asset: CoinGecko's id, its symbol (upper case) and its name."""

    id: str
    symbol: str
    name: str


def parse_coin_list(body: bytes) -> tuple[Coin, ...]:
    """CoinGecko's ``/coins/list`` JSON as coins; raise ``FeedParseError`` when it is not that shape."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FeedParseError(f"coin list is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise FeedParseError("coin list is not a JSON array")
    coins = []
    for entry in data:
        if not isinstance(entry, dict):
            continue
        cid, symbol, name = (str(entry.get(k) or "").strip() for k in ("id", "symbol", "name"))
        if cid and symbol and name and re.fullmatch(r"[A-Za-z0-9]{1,12}", symbol):
            coins.append(Coin(cid, symbol.upper(), name))
    if not coins:
        raise FeedParseError("coin list holds no usable coin")
    return tuple(coins)


def bundled_coins() -> tuple[Coin, ...]:
    """The bundled snapshot of the coin list (offline default)."""
    return parse_coin_list(resources.files("sources").joinpath("data", BUNDLED).read_bytes())


def load_coins(cache: Path | None) -> tuple[Coin, ...]:
    """The cached coin list when one was fetched and is readable, else the bundled snapshot."""
    if cache is not None and cache.is_file():
        try:
            return parse_coin_list(cache.read_bytes())
        except (OSError, FeedParseError):
            pass  # a damaged cache must not take grounding down: the snapshot still works
    return bundled_coins()


def fetch_coin_list(client: Any, cache: Path, max_bytes: int = 20_000_000) -> int:
    """Fetch CoinGecko's coin list with ``client`` (an ``httpx.Client`` on the API's base URL) into ``cache``.

    Returns the number of coins. A failed fetch or a body that is not a coin list leaves the cache as it was.
    """
    import httpx

    from sources.rss import read_capped

    try:
        with client.stream("GET", COIN_LIST_PATH.lstrip("/")) as response:
            if response.status_code != 200:
                raise FetchError(f"CoinGecko coin list: HTTP {response.status_code}")
            body = read_capped(response, max_bytes)
    except httpx.HTTPError as exc:
        raise FetchError(f"CoinGecko coin list: {type(exc).__name__}: {exc}") from exc
    coins = parse_coin_list(body)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_bytes(body)
    tmp.replace(cache)  # atomic: a reader never sees half a list
    return len(coins)


class CoinDirectory:
    """Symbols and distinctive names of known coins, for finding tickers written without ``$``."""

    def __init__(self, coins: Iterable[Coin], max_symbols: int = 5000) -> None:
        self.symbols: set[str] = set()
        names: dict[str, str] = {}
        for coin in list(coins)[:max_symbols * 4]:
            if len(coin.symbol) >= 2 and coin.symbol not in _WORD_SYMBOLS:
                self.symbols.add(coin.symbol)
            name = _NAME_CLEAN.sub("", coin.name).strip().lower()
            if len(name) >= 4 and name not in _WORD_NAMES:
                names.setdefault(name, coin.symbol)
        self.names = names
        self._name_pattern = (re.compile(r"(?<![\w$])(" + "|".join(re.escape(n) for n in sorted(names, key=len,
                                         reverse=True)) + r")(?![\w])", re.IGNORECASE) if names else None)
        self._symbol = re.compile(r"(?<![\w$/])([A-Z][A-Z0-9]{1,9})(?![\w/])")

    def mentions(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, symbol) for every coin named in ``text`` by its capitalised symbol or its name."""
        found = [(m.start(), m.end(), m.group(1)) for m in self._symbol.finditer(text) if m.group(1) in self.symbols]
        if self._name_pattern is not None:
            found += [(m.start(), m.end(), self.names[m.group(1).lower()]) for m in self._name_pattern.finditer(text)]
        return sorted(found)
