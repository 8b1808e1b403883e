"""Settings: one object built once from ``tapewatch.toml`` and ``TAPEWATCH_*`` environment variables.

Secrets come only from the environment or a secrets directory (one file per secret), never
from the TOML file, and are held as ``SecretStr`` so they never print.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sources.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(value: Any) -> timedelta:
    """'90s', '30m', '24h', '7d', '2w' (or a number of seconds, or a timedelta) → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration like 30m, 24h or 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_duration(seconds: float) -> str:
    """The inverse of ``parse_duration`` for display: '15m', '6h', '1d', '0.2s', '2m30s'."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:g}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

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

SECRET_FIELDS = ("chroma_token", "x_bearer_token", "telegram_bot_token", "llm_api_key", "coingecko_api_key",
                 "x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret")


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


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration")
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


class MemorySettings(BaseModel):
    """Vector memory and near-duplicate policy."""

    chroma_url: str | None = None
    collection: str = Field(default="tapewatch-items", pattern=r"^[a-z0-9][a-z0-9._\-]{1,61}[a-z0-9]$")
    # "minilm": all-MiniLM-L6-v2 on ONNX Runtime (no torch at run time); "minilm-int8": its dynamic int8
    # quantisation (faster, vectors drift: min cosine ~0.95 to torch); "minilm-torch": sentence-transformers.
    embedder: Literal["minilm", "minilm-int8", "minilm-torch"] = "minilm"
    # CPU threads for embedding (onnxruntime's intra-op threads, or torch's); default: every core it sees.
    embed_threads: int | None = Field(default=None, ge=1, le=256)
    # Where `tapewatch model prepare` puts the ONNX graphs made from the verified weights (default: the venv's
    # share/tapewatch/models, so they belong to the install).
    model_dir: Path | None = None
    # Every vector-store call (upsert, query, …) ends within this, in a clear error if it must.
    store_timeout: Duration = timedelta(seconds=60)
    # Two reports are one story when their score reaches the threshold: with rule "evidence" their cosine
    # moved by names, numbers and days in common or in conflict, hours apart and same outlet (memory/stories.py);
    # with rule "cosine" their cosine alone (the rule before issue 17, at 0.7).
    near_duplicate_rule: Literal["evidence", "cosine"] = "evidence"
    near_duplicate_threshold: float = Field(default=0.62, gt=0.0, le=1.5)
    near_duplicate_window: Duration = timedelta(hours=36)
    near_duplicate_kinds: list[Literal["news", "forum", "social"]] = ["news", "forum"]
    retention: Duration = timedelta(days=90)


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

    _check_interval = field_validator("interval")(_positive)

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


class DaemonSettings(BaseModel):
    """The scheduler daemon (`tapewatch run`); source intervals live with each source."""

    retention_interval: Duration = timedelta(hours=6)
    jitter: Duration = timedelta(seconds=30)  # random delay added to each run (at most 10% of its interval)
    misfire_grace: Duration = timedelta(minutes=10)  # a run late by more than this is skipped, not run
    shutdown_grace: Duration = timedelta(seconds=30)  # how long a stop waits for the running batch
    lease: Duration = timedelta(minutes=2)  # one daemon per state DB: a crashed one's lease lapses after this
    # A failed background task (lease renewer, scheduler watchdog, Telegram bot start) is retried after
    # restart_backoff, doubling up to restart_backoff_max; max_restarts failures in a row stop the daemon.
    restart_backoff: Duration = timedelta(seconds=1)
    restart_backoff_max: Duration = timedelta(minutes=5)
    max_restarts: int = Field(default=5, ge=1, le=100)
    store_retry: Duration = timedelta(seconds=10)  # after a failed job-store write (a full disk), look again

    _check_interval = field_validator("retention_interval", "lease", "restart_backoff", "restart_backoff_max",
                                      "store_retry")(_positive)


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


AGENTS = ("researcher", "analyst", "writer")
# Servers that run on your own machine cost nothing unless the price table says otherwise.
FREE_MODEL_PREFIXES = ("ollama/", "ollama_chat/", "hosted_vllm/")


class LLMSettings(BaseModel):
    """The language model behind the analyst crew, its limits and its budget (issue 5)."""

    model_config = ConfigDict(extra="forbid")

    # A crewAI model string: "openai/gpt-4o-mini", "ollama/llama3.1", or "openai/NAME" with base_url for
    # any OpenAI-compatible server. None: no LLM, `tapewatch brief` writes the deterministic data brief.
    model: str | None = None
    researcher_model: str | None = None  # per-agent overrides of `model`
    analyst_model: str | None = None
    writer_model: str | None = None
    base_url: str | None = None
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    timeout: Duration = timedelta(seconds=60)  # per HTTP request
    max_retries: int = Field(default=2, ge=0, le=10)  # per request, on 408/409/429/5xx/timeouts, with backoff
    max_tokens: int = Field(default=2000, ge=64, le=32000)  # completion tokens per call
    max_iter: int = Field(default=3, ge=1, le=10)  # reasoning/tool steps per agent and task
    agent_timeout: Duration = timedelta(seconds=300)  # wall time per agent and task
    guardrail_retries: int = Field(default=2, ge=0, le=5)  # writer revisions after failed grounding checks
    json_schema: bool = True  # send the output's JSON schema as response_format (structured outputs)
    context_items: int = Field(default=12, ge=1, le=50)  # stored items shown to the researcher
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # Unlisted models are charged at this (deliberately high) rate so budgets still bind.
    default_price: ModelPrice = ModelPrice(prompt=5.0, completion=15.0)
    daily_budget_usd: float | None = Field(default=1.0, ge=0.0)  # UTC days; None: no limit
    monthly_budget_usd: float | None = Field(default=20.0, ge=0.0)

    @field_validator("model", "researcher_model", "analyst_model", "writer_model")
    @classmethod
    def _model_string(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ValueError("a model is a string like openai/gpt-4o-mini or ollama/llama3.1")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    def model_for(self, agent: str) -> str | None:
        """The model one agent uses: its override, else the default."""
        override: str | None = getattr(self, f"{agent}_model")
        return override or self.model

    def price_of(self, model: str) -> ModelPrice:
        """The price table entry for a model (local servers are free unless listed)."""
        if model in self.prices:
            return self.prices[model]
        if model.startswith(FREE_MODEL_PREFIXES):
            return ModelPrice(prompt=0.0, completion=0.0)
        return self.default_price


class ComplianceSettings(BaseModel):
    """Rules every brief must follow before it can be published."""

    model_config = ConfigDict(extra="forbid")

    disclaimer: str = Field(default="Not financial advice.", max_length=300)
    require_disclaimer: bool = True
    # Literal phrases of your own, on top of the phrasing families in prompts/compliance/phrasing.yaml.
    banned_phrases: list[str] = Field(default_factory=list)


class GroundingSettings(BaseModel):
    """How close a number in a brief must be to what tapewatch stored."""

    model_config = ConfigDict(extra="forbid")

    price_tolerance_pct: float = Field(default=2.0, ge=0.0, le=50.0)  # relative, against a price snapshot
    percent_tolerance_pp: float = Field(default=0.5, ge=0.0, le=20.0)  # percentage points, against a change
    max_x_posts: int = Field(default=12, ge=2, le=25)
    # A claim resting only on one social or forum item: "attribute" (publishable only when worded as a
    # claim of its source, "a post by @x says ...") or "block" (never publishable without an override).
    single_source_policy: Literal["attribute", "block"] = "attribute"
    # A ticker off the watchlist (or without signals) needs this many sources from different outlets or
    # account groups before a draft may feature it.
    min_independent_sources: int = Field(default=2, ge=1, le=10)
    # With a model configured: a cheap model that labels each claim supported / unsupported / contradicted
    # by its cited excerpts in one batched call (a crewAI model string; unset: no verifier step).
    verifier_model: str | None = None


class ReviewSettings(BaseModel):
    """Who may review drafts and how long a draft waits before it expires."""

    # Names allowed to edit, approve, reject and schedule; approving needs one of them.
    reviewers: list[str] = []
    # The reviewer the CLI acts as when --as is not given (TAPEWATCH_REVIEW__REVIEWER).
    reviewer: str | None = None
    expire_after: Duration = timedelta(hours=48)

    @field_validator("reviewers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}", name):
                raise ValueError(f"reviewer name {name!r} must be 1-64 letters, digits, _ . @ -")
        return value


class PublishSettings(BaseModel):
    """When and where approved drafts go out."""

    # review: only drafts a reviewer approved; auto: also pending drafts that passed the grounding check.
    policy: Literal["review", "auto"] = "review"
    dry_run: bool = False
    channels: list[Literal["x", "telegram"]] = ["x", "telegram"]
    telegram_chat_id: str | None = None  # "@channelname" or a numeric id like -1001234567890
    # No posting in this local-time window, e.g. "23:00-07:00" (drafts wait until it ends).
    quiet_hours: str | None = None
    timezone: str = "UTC"
    max_posts_per_day: int = Field(default=12, ge=0, le=1000)  # briefs (a thread counts once) per 24h
    duplicate_window: Duration = timedelta(hours=72)
    duplicate_threshold: float = Field(default=0.9, gt=0.0, le=1.0)  # normalised text similarity, 0..1
    # X's automation rules: no unsolicited @mentions (only these handles may be mentioned), few tags per post.
    x_allowed_mentions: list[Annotated[str, Field(pattern=r"^@?[A-Za-z0-9_]{1,15}$")]] = []
    x_max_cashtags: int = Field(default=4, ge=0, le=10)
    x_max_hashtags: int = Field(default=2, ge=0, le=10)
    timeout: Duration = timedelta(seconds=15)
    connect_timeout: Duration = timedelta(seconds=5)
    max_attempts: int = Field(default=4, ge=1, le=10)  # per part, 429/5xx retries included
    max_wait: Duration = timedelta(seconds=90)  # a longer rate-limit wait ends the run, leaving the rest queued
    reconcile_settle: Duration = timedelta(seconds=10)  # let a timed-out post show in the timeline first
    reconcile_pages: int = Field(default=5, ge=1, le=32)  # pages of 100 own posts searched per reconciliation
    lease: Duration = timedelta(minutes=10)  # one publish run at a time; a dead run's lease expires
    x_base_url: str | None = None  # a proxy in front of the X API
    telegram_base_url: str | None = None  # a local Bot API server, e.g. http://localhost:8081/bot

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("quiet_hours must look like 23:00-07:00")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class ScheduledBrief(BaseModel):
    """A brief written at fixed times (cron, in publish.timezone) on a topic or ticker, for some channels."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
    cron: str  # five fields: minute hour day month weekday, e.g. "0 8,20 * * *"
    topic: str | None = Field(default=None, max_length=200)
    ticker: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9]{0,9}$")
    window: Duration = timedelta(hours=24)
    channels: list[Literal["x", "telegram"]] = []  # empty: every channel in publish.channels

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"cron {value!r} is not a 5-field crontab expression ({exc})") from exc
        return value


class ScheduleSettings(BaseModel):
    """The automated posting schedule run by `tapewatch run`."""

    model_config = ConfigDict(extra="forbid")
    briefs: list[ScheduledBrief] = []
    publish_every: Duration = timedelta(minutes=5)  # publish due drafts (approved, or validated under auto)
    review_every: Duration = timedelta(minutes=1)  # post new drafts to the Telegram review chat

    _check_every = field_validator("publish_every", "review_every")(_positive)

    @field_validator("briefs")
    @classmethod
    def _unique(cls, value: list[ScheduledBrief]) -> list[ScheduledBrief]:
        names = [b.name for b in value]
        if len(set(names)) != len(names):
            raise ValueError("scheduled brief names must be unique")
        return value


class ReviewerAccount(BaseModel):
    """A Telegram account allowed to review, and the reviewer name it acts as."""

    model_config = ConfigDict(extra="forbid")
    telegram_id: int
    name: str = Field(min_length=1, max_length=64)


class BotSettings(BaseModel):
    """The Telegram bot inside `tapewatch run` (runs when `TAPEWATCH_TELEGRAM_BOT_TOKEN` is set).

    It talks to the Bot API at ``publish.telegram_base_url`` like the Telegram publisher does.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    allowed_users: list[int] = []  # Telegram user ids that may use on-demand commands
    allowed_chats: list[int] = []  # chats (groups) whose members may use them
    reviewers: list[ReviewerAccount] = []
    review_chat_id: int | None = None  # where new drafts and failures are posted for review
    brief_limit: int = Field(default=3, ge=1, le=1000)  # /brief requests per user per brief_period
    brief_period: Duration = timedelta(minutes=10)
    brief_chat_limit: int = Field(default=5, ge=1, le=1000)  # /brief requests per chat (all its members) per period
    refusal_period: Duration = timedelta(hours=1)  # a refused user (or a limited chat) is told once per period
    max_refusals: int = Field(default=30, ge=0, le=10_000)  # refusal replies per refusal_period in all, then silence
    max_concurrent_briefs: int = Field(default=2, ge=1, le=16)
    max_queued_briefs: int = Field(default=20, ge=0, le=1000)
    poll_timeout: Duration = timedelta(seconds=30)
    connect_timeout: Duration = timedelta(seconds=5)
    read_timeout: Duration = timedelta(seconds=20)
    webhook_url: str | None = None  # public HTTPS URL; when set, a webhook replaces long polling
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https://[^/\s]+(/\S*)?", value):
            raise ValueError("webhook_url must be the public https:// address Telegram will call")
        return value


class Settings(BaseSettings):
    """Everything tapewatch can be told, after file, environment and secrets are merged."""

    model_config = SettingsConfigDict(
        env_prefix="TAPEWATCH_", env_nested_delimiter="__", extra="forbid", validate_default=True,
    )

    data_dir: Path = Path("~/.local/share/tapewatch")
    database_url: str | None = None
    samples: Literal["auto", "always", "never"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    log_json: bool = False
    watchlist: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_WATCHLIST))
    feeds: list[FeedSettings] = Field(
        default_factory=lambda: [FeedSettings.model_validate(f) for f in DEFAULT_FEEDS]
    )
    fetch: FetchSettings = FetchSettings()
    memory: MemorySettings = MemorySettings()
    x: XSettings = XSettings()
    market: MarketSettings = MarketSettings()
    daemon: DaemonSettings = DaemonSettings()
    llm: LLMSettings = LLMSettings()
    compliance: ComplianceSettings = ComplianceSettings()
    grounding: GroundingSettings = GroundingSettings()
    review: ReviewSettings = ReviewSettings()
    publish: PublishSettings = PublishSettings()
    bot: BotSettings = BotSettings()
    schedule: ScheduleSettings = ScheduleSettings()

    chroma_token: SecretStr | None = None
    x_bearer_token: SecretStr | None = None
    telegram_bot_token: SecretStr | None = None
    llm_api_key: SecretStr | None = None
    coingecko_api_key: SecretStr | None = None
    # X OAuth 1.0a user context (posting as the bot's account).
    x_consumer_key: SecretStr | None = None
    x_consumer_secret: SecretStr | None = None
    x_access_token: SecretStr | None = None
    x_access_token_secret: SecretStr | None = None

    @field_validator(*SECRET_FIELDS)
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty secrets file (compose needs every declared secret file to exist) or env var means "not set".
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("watchlist")
    @classmethod
    def _tickers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for ticker in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,9}", ticker):
                raise ValueError(f"ticker {ticker!r} must be 1-10 letters/digits starting with a letter")
        return {t.upper(): list(a) for t, a in value.items()}

    @field_validator("feeds")
    @classmethod
    def _unique_names(cls, value: list[FeedSettings]) -> list[FeedSettings]:
        names = [f.name for f in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feed names must be unique; repeated: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _bot_reviewers_are_reviewers(self) -> Settings:
        unknown = sorted({r.name for r in self.bot.reviewers} - set(self.review.reviewers))
        if unknown:
            raise ValueError(f"bot.reviewers name(s) {', '.join(unknown)} are not in review.reviewers")
        return self

    @property
    def state_url(self) -> str:
        """SQLAlchemy URL of the state database."""
        return self.database_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, file_secret_settings, _TomlSource(settings_cls)


_toml_data: ContextVar[dict[str, Any] | None] = ContextVar("tapewatch_toml", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    """The parsed TOML file, lowest priority after env and secrets."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_toml_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_data.get() or {})


@contextmanager
def _toml(data: dict[str, Any]) -> Iterator[None]:
    token = _toml_data.set(data)
    try:
        yield
    finally:
        _toml_data.reset(token)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a settings file, refusing secrets in it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    leaked = [k for k in SECRET_FIELDS if k in data]
    if leaked:
        names = ", ".join(f"TAPEWATCH_{k.upper()}" for k in leaked)
        raise ConfigError(
            f"{path} contains secrets ({', '.join(leaked)}); remove them and set {names} in the environment "
            "or a secrets directory instead"
        )
    return data


def load_settings(config: Path | None = None, secrets_dir: Path | None = None) -> Settings:
    """Build the settings from an optional TOML file, the environment and an optional secrets dir."""
    data = read_toml(config) if config is not None else {}
    try:
        with _toml(data):
            if secrets_dir is not None:
                return Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
            return Settings()
    except ValidationError as exc:
        where = f" in {config}" if config else ""
        raise ConfigError(f"invalid settings{where}:\n{_explain(exc)}") from exc


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets shown only as set / not set, URL credentials as ``***``."""
    data = settings.model_dump(mode="json")
    for name in SECRET_FIELDS:
        data[name] = "********" if getattr(settings, name) is not None else None
    for key in ("database_url",):
        if data.get(key):
            from sqlalchemy.engine import make_url

            data[key] = make_url(data[key]).render_as_string(hide_password=True)
    data["state_url"] = settings.state_url if not settings.database_url else data["database_url"]
    if settings.memory.chroma_url:
        from tapewatch.redaction import mask_url

        data["memory"]["chroma_url"] = mask_url(settings.memory.chroma_url)
    return data
