"""Market data from CoinGecko's public HTTP API: price, 24h change, volume and market cap per coin.

``fetch_simple_price`` asks ``/simple/price`` for every watched coin in one request (an injected
``httpx.Client`` carries the base URL, timeouts and the optional API key header); ``parse_simple_price``
is pure and turns the JSON into ``Quote``s. The bundled sample prices go through the same parser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from sources.errors import FeedParseError, FetchError
from sources.rss import read_capped

SOURCE = "coingecko"
MAX_BODY_BYTES = 2_000_000
DEFAULT_RETRY_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Quote:
    """One coin's market as CoinGecko last saw it."""

    ticker: str
    coin_id: str
    observed_at: datetime
    price_usd: float
    change_24h_pct: float | None = None
    volume_24h_usd: float | None = None
    market_cap_usd: float | None = None


class RateLimited(FetchError):
    """CoinGecko answered 429; ask again no sooner than ``retry_at``."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


def fetch_simple_price(client: httpx.Client, coin_ids: Sequence[str], *,
                       now: datetime | None = None) -> dict[str, Any]:
    """GET /simple/price for ``coin_ids`` in USD with market cap, 24h volume, 24h change and update time."""
    params = {
        "ids": ",".join(sorted(set(coin_ids))), "vs_currencies": "usd", "include_market_cap": "true",
        "include_24hr_vol": "true", "include_24hr_change": "true", "include_last_updated_at": "true",
    }
    try:
        with client.stream("GET", "simple/price", params=params, headers={"Accept": "application/json"}) as resp:
            if resp.status_code == 429:
                retry_at = _retry_at(resp.headers.get("retry-after"), now or datetime.now(UTC))
                raise RateLimited(f"CoinGecko rate limit (429); next request after {retry_at:%H:%M:%S} UTC",
                                  retry_at)
            if resp.status_code in (401, 403):
                raise FetchError(f"CoinGecko refused the request (HTTP {resp.status_code}): check "
                                 "TAPEWATCH_COINGECKO_API_KEY and market.api_key_header / market.base_url")
            if resp.status_code >= 400:
                raise FetchError(f"CoinGecko answered HTTP {resp.status_code} {resp.reason_phrase}")
            try:
                body = read_capped(resp, MAX_BODY_BYTES)
            except FetchError as exc:  # "body exceeds the N-byte cap", said of CoinGecko
                raise FetchError(f"CoinGecko {exc}") from exc
    except httpx.ConnectError as exc:
        raise FetchError(f"could not connect to CoinGecko: {exc}", unreachable=True) from exc
    except httpx.TimeoutException as exc:
        raise FetchError(f"CoinGecko timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"could not fetch prices from CoinGecko: {exc}") from exc
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise FeedParseError(f"CoinGecko sent a body that is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise FeedParseError("CoinGecko sent JSON that is not an object")
    return payload


def parse_simple_price(payload: Any, coins: Mapping[str, str], *,
                       fetched_at: datetime) -> tuple[tuple[Quote, ...], tuple[str, ...]]:
    """``/simple/price`` JSON → quotes for the tickers in ``coins`` (ticker → coin id), plus warnings."""
    if not isinstance(payload, Mapping):
        raise FeedParseError("malformed CoinGecko response: expected a JSON object")
    quotes: list[Quote] = []
    warnings: list[str] = []
    for ticker, coin in sorted(coins.items()):
        entry = payload.get(coin)
        if not isinstance(entry, Mapping) or not entry:
            warnings.append(f"no price for {ticker} (CoinGecko id {coin!r}); check market.coins")
            continue
        price = _number(entry.get("usd"))
        if price is None or price <= 0:
            warnings.append(f"{ticker}: unusable price {entry.get('usd')!r}")
            continue
        updated = _number(entry.get("last_updated_at"))
        observed = datetime.fromtimestamp(int(updated), tz=UTC) if updated else fetched_at
        quotes.append(Quote(
            ticker=ticker, coin_id=coin, observed_at=min(observed, fetched_at), price_usd=price,
            change_24h_pct=_number(entry.get("usd_24h_change")), volume_24h_usd=_number(entry.get("usd_24h_vol")),
            market_cap_usd=_number(entry.get("usd_market_cap")),
        ))
    return tuple(quotes), tuple(warnings)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _retry_at(header: str | None, now: datetime) -> datetime:
    """Retry-After as seconds or an HTTP date; a missing or odd value means a minute."""
    if header:
        value = header.strip()
        if value.isdigit():
            return now + timedelta(seconds=min(int(value), 86400))
        try:
            when = parsedate_to_datetime(value)
            if when.tzinfo is not None:
                return max(when.astimezone(UTC), now)
        except (TypeError, ValueError):
            pass
    return now + DEFAULT_RETRY_AFTER
