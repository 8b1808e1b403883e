"""The only place that builds real clients (HTTP, Chroma, embedder, state DB) from settings."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from memory.embeddings import Embedder, MiniLMEmbedder
from memory.state import StateDB
from memory.store import Memory, NearDuplicatePolicy
from sources.errors import ConfigError, StoreError
from sources.rss import FeedSpec
from sources.tickers import Watchlist
from tapewatch.settings import Settings

log = logging.getLogger(__name__)


def http_client(settings: Settings) -> httpx.Client:
    """An httpx client with tapewatch's timeouts, redirect limit and user agent."""
    fetch = settings.fetch
    return httpx.Client(
        timeout=httpx.Timeout(fetch.timeout.total_seconds(), connect=fetch.connect_timeout.total_seconds()),
        follow_redirects=True,
        max_redirects=fetch.max_redirects,
        headers={"User-Agent": fetch.user_agent},
    )


def chroma_client(settings: Settings) -> Any:
    """Embedded ``PersistentClient`` under the data dir, or ``HttpClient`` when a server URL is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # The bot never phones home.
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    url = settings.memory.chroma_url
    try:
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"memory.chroma_url {url!r} must look like http://host:8000")
            headers = {}
            if settings.chroma_token is not None:
                headers["Authorization"] = f"Bearer {settings.chroma_token.get_secret_value()}"
            return chromadb.HttpClient(
                host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https", headers=headers, settings=chroma_settings,
            )
        path = settings.data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except ConfigError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot open the vector store ({url or 'embedded'}): {exc}") from exc


def embedder(settings: Settings) -> Embedder:
    """The configured embedder (local MiniLM on CPU)."""
    return MiniLMEmbedder(threads=settings.memory.embed_threads)


def open_state(settings: Settings) -> StateDB:
    """The state database (migrated), creating the data dir for a SQLite file."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return StateDB(settings.state_url)


def open_memory(settings: Settings, embed: Embedder | None = None, client: Any = None,
                state: StateDB | None = None) -> Memory:
    """Memory wired to the configured vector store, state DB and embedder."""
    from memory.chroma import ChromaVectors

    embed = embed or embedder(settings)
    state = state or open_state(settings)
    vectors = ChromaVectors(client or chroma_client(settings), settings.memory.collection, embed.name, embed.dimension)
    policy = NearDuplicatePolicy(
        threshold=settings.memory.near_duplicate_threshold,
        window=settings.memory.near_duplicate_window,
        kinds=tuple(settings.memory.near_duplicate_kinds),
    )
    return Memory(vectors, state, embed, policy)


def watchlist(settings: Settings) -> Watchlist:
    """The watchlist from settings."""
    return Watchlist(settings.watchlist)


def feed_specs(settings: Settings, only: list[str] | None = None) -> list[FeedSpec]:
    """Enabled feeds, or just the named ones (an unknown name is a config error)."""
    feeds = [f for f in settings.feeds if f.enabled]
    if only:
        known = {f.name for f in settings.feeds}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise ConfigError(f"no feed named {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}")
        feeds = [f for f in settings.feeds if f.name in only]
    return [FeedSpec(name=f.name, url=f.url, kind=f.kind) for f in feeds]


def x_client(settings: Settings) -> Any:
    """A tweepy ``Client`` on the bearer token (raw JSON answers, bounded timeouts), or None without a token."""
    if settings.x_bearer_token is None:
        return None
    import tweepy

    from sources.x_transport import mount_transport

    # tweepy logs request headers (the bearer token) at DEBUG: keep its client logger above that.
    logging.getLogger("tweepy.client").setLevel(max(logging.INFO, logging.getLogger().level))
    client = tweepy.Client(bearer_token=settings.x_bearer_token.get_secret_value(), return_type=dict,
                           wait_on_rate_limit=False)
    # tweepy's own User-Agent names tweepy; X only needs some UA, ours says who we are too.
    client.user_agent = f"{settings.fetch.user_agent} {client.user_agent}"
    x = settings.x
    mount_transport(client.session, (x.connect_timeout.total_seconds(), x.timeout.total_seconds()), x.api_base_url)
    return client


def x_reader(settings: Settings, client: Any) -> Any:
    """An ``XReader`` over ``client`` with the configured retries."""
    from sources.x import XReader

    x = settings.x
    return XReader(client, attempts=x.attempts, backoff_s=x.backoff.total_seconds(), exclude=x.exclude)


def coingecko_client(settings: Settings) -> httpx.Client:
    """An httpx client for CoinGecko's API: base URL, timeouts, and the API key header when a key is set."""
    market = settings.market
    headers = {"User-Agent": settings.fetch.user_agent}
    if settings.coingecko_api_key is not None:
        headers[market.api_key_header] = settings.coingecko_api_key.get_secret_value()
    timeout = market.timeout.total_seconds()
    return httpx.Client(
        base_url=market.base_url + "/", headers=headers, follow_redirects=False,
        timeout=httpx.Timeout(timeout, connect=min(timeout, settings.fetch.connect_timeout.total_seconds())),
    )
