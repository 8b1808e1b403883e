"""The only place that builds real clients (HTTP, Chroma, embedder, state DB) from settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from memory.embeddings import Embedder, MiniLMEmbedder
from memory.state import StateDB
from memory.store import Memory, NearDuplicatePolicy
from sources.errors import ConfigError, StoreError
from sources.rss import FeedSpec
from sources.tickers import Watchlist
from tapewatch.settings import Settings

if TYPE_CHECKING:
    from crew.model import ValidationReport
    from memory.drafts import Draft
    from publish.channel import Channel
    from publish.delivery import Delivery
    from publish.review import ReviewQueue

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


def open_memory(settings: Settings, embed: Embedder | None = None, client: Any = None) -> Memory:
    """Memory wired to the configured vector store, state DB and embedder."""
    from memory.chroma import ChromaVectors

    embed = embed or embedder(settings)
    state = open_state(settings)
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


# --- review and publishing (issue 6) -----------------------------------------------------------------------

def _secret(settings: Settings, name: str) -> str | None:
    value = getattr(settings, name)
    return value.get_secret_value() if value is not None else None


def x_client(settings: Settings) -> Any:
    """A tweepy Client with OAuth 1.0a user context, bounded by the X transport (timeout, base URL)."""
    import tweepy

    from sources.x_transport import mount_transport

    names = ("x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret")
    values = {n: _secret(settings, n) for n in names}
    missing = [f"TAPEWATCH_{n.upper()}" for n, v in values.items() if not v]
    if missing:
        raise ConfigError(f"publishing to X needs {', '.join(missing)} (OAuth 1.0a user context of the bot's "
                          "account); set them, or remove \"x\" from publish.channels")
    client = tweepy.Client(consumer_key=values["x_consumer_key"], consumer_secret=values["x_consumer_secret"],
                           access_token=values["x_access_token"], access_token_secret=values["x_access_token_secret"])
    pub = settings.publish
    mount_transport(client.session, (pub.connect_timeout.total_seconds(), pub.timeout.total_seconds()),
                    pub.x_base_url)
    return client


def telegram_bot(settings: Settings) -> Any:
    """A python-telegram-bot ``Bot`` with tapewatch's timeouts (and a local Bot API server when configured)."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    token = _secret(settings, "telegram_bot_token")
    if not token:
        raise ConfigError("publishing to Telegram needs TAPEWATCH_TELEGRAM_BOT_TOKEN; set it, or remove "
                          "\"telegram\" from publish.channels")
    pub = settings.publish
    timeout = pub.timeout.total_seconds()
    request = HTTPXRequest(connection_pool_size=4, read_timeout=timeout, write_timeout=timeout,
                           connect_timeout=pub.connect_timeout.total_seconds(), pool_timeout=timeout)
    if pub.telegram_base_url:
        return Bot(token, base_url=pub.telegram_base_url, request=request)
    return Bot(token, request=request)


def publish_channels(settings: Settings) -> dict[str, Channel]:
    """The enabled publishing channels, built from their credentials."""
    from publish.telegram_publisher import TelegramPublisher
    from publish.x_publisher import XPublisher

    pub = settings.publish
    channels: dict[str, Channel] = {}
    if "x" in pub.channels:
        channels["x"] = XPublisher(x_client(settings), pages=pub.reconcile_pages)
    if "telegram" in pub.channels:
        if not pub.telegram_chat_id:
            raise ConfigError("publishing to Telegram needs publish.telegram_chat_id (\"@channel\" or -100…)")
        channels["telegram"] = TelegramPublisher(telegram_bot(settings), pub.telegram_chat_id)
    return channels


def draft_validator(settings: Settings, state: StateDB) -> Callable[[Draft], ValidationReport]:
    """A grounding validator for drafts (a limited one: format limits and cited items that exist).

    Issue 5's ``crew.grounding.validate_draft`` replaces this at merge; the signature stays.
    """
    from crew.model import Problem, ValidationReport
    from crew.render import X_LIMIT, weighted_length

    def validate(draft: Draft) -> ValidationReport:
        problems: list[Problem] = []
        if not [p for p in draft.x_thread if p.strip()]:
            problems.append(Problem("empty", "the X thread has no posts", "x"))
        for i, post in enumerate(draft.x_thread, 1):
            if weighted_length(post) > X_LIMIT:
                problems.append(Problem("too_long", f"post {i} is {weighted_length(post)} of {X_LIMIT} "
                                        "weighted characters", f"x:{i}"))
        if not draft.telegram_html.strip():
            problems.append(Problem("empty", "the Telegram message is empty", "telegram"))
        elif len(draft.telegram_html) > 4096:
            problems.append(Problem("too_long", f"the Telegram message is {len(draft.telegram_html)} of 4096 "
                                    "characters", "telegram"))
        known = state.items_by_ids(draft.item_ids)
        for item_id in draft.item_ids:
            if item_id not in known:
                problems.append(Problem("unknown_source", f"cited item {item_id} is not in memory", ""))
        return ValidationReport(tuple(problems), checked_at=datetime.now(UTC))

    return validate


def review_queue(settings: Settings, state: StateDB, via: str = "cli") -> ReviewQueue:
    """The review state machine with the configured reviewers and the grounding validator."""
    from publish.review import ReviewQueue

    return ReviewQueue(state, reviewers=settings.review.reviewers, validator=draft_validator(settings, state),
                       via=via)


def delivery(settings: Settings, state: StateDB, channels: dict[str, Channel], via: str = "cli") -> Delivery:
    """A publish run wired to the outbox, the policy, the lease and the given channels."""
    from publish.delivery import Delivery, Limits
    from publish.lease import Lease
    from publish.outbox import Outbox
    from publish.policy import PublishPolicy, parse_quiet_hours

    pub = settings.publish
    policy = PublishPolicy(
        mode=pub.policy, channels=tuple(pub.channels), quiet_hours=parse_quiet_hours(pub.quiet_hours),
        timezone=pub.timezone, max_posts_per_day=pub.max_posts_per_day, duplicate_window=pub.duplicate_window,
        duplicate_threshold=pub.duplicate_threshold, expire_after=settings.review.expire_after,
    )
    limits = Limits(max_attempts=pub.max_attempts, max_wait=pub.max_wait, reconcile_settle=pub.reconcile_settle)
    return Delivery(review_queue(settings, state, via), Outbox(state.engine, via=via), channels, policy,
                    limits=limits, lease=Lease(state.engine, pub.lease))
