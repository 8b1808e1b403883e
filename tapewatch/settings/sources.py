"""Settings of the sources: feeds, fetching, X and market data."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from tapewatch.settings.durations import Duration, _positive

DEFAULT_WATCHLIST: dict[str, list[str]] = {
    "BTC": ["bitcoin", "btc"],
    "ETH": ["ethereum", "ether", "eth"],
    "SOL": ["solana", "sol"],
    "XRP": ["xrp", "ripple"],
    "DOGE": ["dogecoin", "doge"],
    "LINK": ["chainlink"],
    "AVAX": ["avalanche", "avax"],
    "ARB": ["arbitrum"],
    "TON": ["toncoin", "the open network"],
    "SUI": ["sui"],
    "ADA": ["cardano"],
    "BNB": ["bnb", "binance coin"],
    "USDT": ["tether", "usdt"],
    "USDC": ["usdc"],
}

DEFAULT_FEEDS: list[dict[str, str]] = [
    {"name": "coindesk", "url": "https://www.coindesk.com/arc/outboundfeeds/rss/", "kind": "news"},
    {"name": "cointelegraph", "url": "https://cointelegraph.com/rss", "kind": "news"},
    {"name": "decrypt", "url": "https://decrypt.co/feed", "kind": "news"},
    {"name": "theblock", "url": "https://www.theblock.co/rss.xml", "kind": "news"},
    {"name": "bitcoinmagazine", "url": "https://bitcoinmagazine.com/.rss/full/", "kind": "news"},
    {"name": "r-cryptocurrency", "url": "https://www.reddit.com/r/CryptoCurrency/.rss", "kind": "forum"},
]

# CoinGecko's ids for the default watchlist (https://api.coingecko.com/api/v3/coins/list).
DEFAULT_COINS: dict[str, str] = {
    "BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "XRP": "ripple", "DOGE": "dogecoin",
    "LINK": "chainlink", "AVAX": "avalanche-2", "ARB": "arbitrum", "TON": "the-open-network", "SUI": "sui",
    "ADA": "cardano", "BNB": "binancecoin", "USDT": "tether", "USDC": "usd-coin",
}



class FeedSettings(BaseModel):
    """One RSS/Atom feed to ingest."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    url: str
    kind: Literal["news", "forum"] = "news"
    enabled: bool = True
    # What its items can ground (see the README's "Grounding"): "official" is a project's own feed; unset,
    # a news feed is "media" and a forum feed is "forum".
    tier: Literal["official", "media", "forum"] | None = None
    # Hosts whose links we publish for this feed's items (and their subdomains); empty: the feed's own
    # registrable domain. An entry linking anywhere else is cited without a link.
    link_domains: list[str] = []

    @property
    def source_tier(self) -> str:
        """The tier of this feed's items."""
        return self.tier or ("media" if self.kind == "news" else "forum")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("feed url must start with http:// or https://")
        return value


class FetchSettings(BaseModel):
    """How feeds are fetched."""

    timeout: Duration = timedelta(seconds=20)
    connect_timeout: Duration = timedelta(seconds=5)
    deadline: Duration = timedelta(seconds=60)
    max_body_bytes: int = Field(default=5_000_000, ge=1_000, le=200_000_000)
    max_redirects: int = Field(default=5, ge=0, le=20)
    concurrency: int = Field(default=4, ge=1, le=32)
    user_agent: str = "tapewatch/0.1 (+self-hosted market research bot)"
    # Follow a feed to loopback, private, link-local or metadata addresses even when its own URL is public.
    allow_private: bool = False
    # How often the daemon (`tapewatch run`) fetches the feeds.
    interval: Duration = timedelta(minutes=15)

    _check_interval = field_validator("interval")(_positive)



class XAccountSettings(BaseModel):
    """One X account to follow, with the group of accounts (cluster) it belongs to."""

    handle: str = Field(pattern=r"^@?[A-Za-z0-9_]{1,15}$")
    cluster: str = Field(default="", max_length=50, pattern=r"^[a-z0-9_\-]*$")
    # "official": a project's own account; "media": a news outlet's account; everyone else is "social".
    tier: Literal["official", "media", "social"] = "social"

    @field_validator("handle")
    @classmethod
    def _bare(cls, value: str) -> str:
        return value.lstrip("@")


class XSettings(BaseModel):
    """The X API v2 source (bearer token): account timelines, recent searches, the monthly read budget."""

    accounts: list[XAccountSettings] = []
    queries: list[Annotated[str, Field(min_length=1, max_length=512)]] = []
    interval: Duration = timedelta(minutes=30)
    max_results: int = Field(default=100, ge=5, le=100)  # posts per request (X allows 5-100; search 10-100)
    max_pages: int = Field(default=3, ge=1, le=50)  # per account or query per run
    first_run_pages: int = Field(default=1, ge=1, le=50)  # with no cursor yet: newest posts only, no history
    monthly_read_budget: int = Field(default=10_000, ge=0)  # posts read per UTC month; X bills reads per post
    exclude: list[Literal["retweets", "replies"]] = ["retweets"]
    api_base_url: str | None = None  # a proxy or compatible server instead of https://api.twitter.com
    timeout: Duration = timedelta(seconds=20)
    connect_timeout: Duration = timedelta(seconds=5)
    attempts: int = Field(default=3, ge=1, le=10)  # per request, on 5xx and timeouts
    backoff: Duration = timedelta(seconds=2)  # first retry delay, doubling
    # X's rules: content deleted on X is deleted here too. Every compliance_every, stored posts younger than
    # compliance_window are looked up (100 a request, counted against the read budget); gone ones are removed.
    compliance_every: Duration = timedelta(hours=12)
    compliance_window: Duration = timedelta(days=30)

    _check_interval = field_validator("interval", "compliance_every", "compliance_window")(_positive)

    @field_validator("accounts")
    @classmethod
    def _unique_handles(cls, value: list[XAccountSettings]) -> list[XAccountSettings]:
        names = [a.handle.lower() for a in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"X handles must be unique; repeated: {', '.join(dupes)}")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("api_base_url must start with http:// or https://")
        return value


class MarketSettings(BaseModel):
    """Market data (price, 24h change, volume, market cap) from CoinGecko's public HTTP API."""

    enabled: bool = True
    base_url: str = "https://api.coingecko.com/api/v3"
    # Demo keys go in x-cg-demo-api-key; paid keys use https://pro-api.coingecko.com/api/v3 and x-cg-pro-api-key.
    api_key_header: Literal["x-cg-demo-api-key", "x-cg-pro-api-key"] = "x-cg-demo-api-key"
    interval: Duration = timedelta(minutes=5)
    timeout: Duration = timedelta(seconds=15)
    coins: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_COINS))

    _check_interval = field_validator("interval")(_positive)

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("coins")
    @classmethod
    def _coin_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for ticker, coin in value.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9\-.]{0,99}", coin):
                raise ValueError(f"CoinGecko id {coin!r} for {ticker} must be lowercase letters, digits and dashes")
        return {t.upper(): c for t, c in value.items()}
