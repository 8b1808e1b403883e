"""The only place that builds real clients (HTTP, Chroma, embedder, state DB) from settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit

import httpx

from memory.embeddings import Embedder, MiniLMEmbedder
from memory.state import StateDB
from memory.store import Memory, NearDuplicatePolicy
from sources.errors import ConfigError, StoreError
from sources.feed_transport import FeedTransport, Resolver
from sources.rss import FeedSpec
from sources.tickers import Watchlist
from tapewatch.redaction import mask_url
from tapewatch.settings import AGENTS, Settings

if TYPE_CHECKING:
    from crew.crewbrief import CrewSetup
    from crew.grounding import GroundingContext
    from crew.model import ValidationReport
    from crew.trust import SourcePolicy
    from memory.drafts import Draft
    from memory.prices import PriceHistory
    from publish.amend import Amender
    from publish.channel import Channel
    from publish.delivery import Delivery
    from publish.review import ReviewQueue
    from sources.coins import CoinDirectory

log = logging.getLogger(__name__)


def http_client(settings: Settings, resolver: Resolver | None = None) -> httpx.Client:
    """The feed client: tapewatch's timeouts, redirect limit and user agent over a ``FeedTransport``."""
    fetch = settings.fetch
    return httpx.Client(
        transport=FeedTransport(allow_private=fetch.allow_private, resolver=resolver),
        timeout=httpx.Timeout(fetch.timeout.total_seconds(), connect=fetch.connect_timeout.total_seconds()),
        follow_redirects=True,
        max_redirects=fetch.max_redirects,
        headers={"User-Agent": fetch.user_agent},
    )


def chroma_client(settings: Settings) -> Any:
    """Embedded ``PersistentClient`` under the data dir, or ``HttpClient`` when a server URL is set.

    A server that requires auth gets Chroma's token auth (``TAPEWATCH_CHROMA_TOKEN``, sent as a bearer token),
    or basic auth from ``user:password@`` in ``memory.chroma_url``.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from chromadb.errors import ChromaAuthError

    url = settings.memory.chroma_url
    shown = mask_url(url) if url else "embedded"
    try:
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"memory.chroma_url {shown!r} must look like http://host:8000")
            client = chromadb.HttpClient(
                host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https", settings=_chroma_auth(settings, parts, ChromaSettings),
            )
            # chromadb's HttpClient sends with no timeout at all; ours lets a call to a server that stopped
            # answering end (and free its thread) rather than only being abandoned at memory's deadline.
            session = getattr(getattr(client, "_server", None), "_session", None)
            if isinstance(session, httpx.Client):
                session.timeout = httpx.Timeout(settings.memory.store_timeout.total_seconds())
            return client
        path = private_dir(settings.data_dir) / "chroma"
        path.mkdir(exist_ok=True)
        # The bot never phones home.
        return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
    except ConfigError:
        raise
    except ChromaAuthError as exc:
        given = "the token in TAPEWATCH_CHROMA_TOKEN" if settings.chroma_token else "no token"
        raise StoreError(f"the Chroma server at {shown} refused {given} ({exc}); set TAPEWATCH_CHROMA_TOKEN to "
                         "the server's token (CHROMA_SERVER_AUTHN_CREDENTIALS)") from exc
    except Exception as exc:
        raise StoreError(f"cannot open the vector store ({shown}): {exc}") from exc


def _chroma_auth(settings: Settings, parts: SplitResult, chroma_settings: type[Any]) -> Any:
    """Chroma client settings: no telemetry, plus token or basic auth when configured."""
    auth: dict[str, str] = {}
    if settings.chroma_token is not None and parts.password is not None:
        raise ConfigError("set either TAPEWATCH_CHROMA_TOKEN or a user:password in memory.chroma_url, not both")
    if settings.chroma_token is not None:
        auth = {"chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
                "chroma_client_auth_credentials": settings.chroma_token.get_secret_value()}
    elif parts.password is not None:
        auth = {"chroma_client_auth_provider": "chromadb.auth.basic_authn.BasicAuthClientProvider",
                "chroma_client_auth_credentials": f"{unquote(parts.username or '')}:{unquote(parts.password)}"}
    try:
        return chroma_settings(anonymized_telemetry=False, **auth)
    except ValueError as exc:  # e.g. a token with characters Chroma refuses
        raise ConfigError(f"TAPEWATCH_CHROMA_TOKEN cannot be used with Chroma: {_first_line(exc)}") from exc


def model_dir(settings: Settings) -> Path:
    """Where the prepared ONNX graphs live: ``memory.model_dir``, default ``share/tapewatch/models`` in the venv.

    They belong to the install (made from its weights package by ``tapewatch model prepare``), not to one data dir.
    """
    import sys

    return settings.memory.model_dir or Path(sys.prefix) / "share" / "tapewatch" / "models"


def embedder(settings: Settings) -> Embedder:
    """The configured embedder: MiniLM on ONNX Runtime (fp32 or int8), or on torch; all local, on CPU."""
    from memory.minilm_onnx import OnnxMiniLMEmbedder, Variant

    memory = settings.memory
    if memory.embedder == "minilm-torch":
        return MiniLMEmbedder(threads=memory.embed_threads)
    variant: Variant = "int8" if memory.embedder == "minilm-int8" else "fp32"
    return OnnxMiniLMEmbedder(model_dir(settings), variant, threads=memory.embed_threads)


def private_dir(path: Path) -> Path:
    """``path`` as a directory, created owner-only (0700) when it does not exist yet: it holds the state DB."""
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is cut by the umask; this is exact
    return path


def open_state(settings: Settings) -> StateDB:
    """The state database (migrated), creating the data dir (0700) for a SQLite file (0600)."""
    private_dir(settings.data_dir)
    return StateDB(settings.state_url)


def open_memory(settings: Settings, embed: Embedder | None = None, client: Any = None,
                state: StateDB | None = None) -> Memory:
    """Memory wired to the configured vector store, state DB and embedder."""
    from memory.chroma import ChromaVectors
    from memory.deadline import Deadline

    embed = embed or embedder(settings)
    state = state or open_state(settings)
    deadline = Deadline(settings.memory.store_timeout.total_seconds())
    # Opening talks to the store too (a server, or files on a full disk): it gets the same deadline.
    vectors = deadline.call("open the collection", lambda: ChromaVectors(
        client or chroma_client(settings), settings.memory.collection, embed.name, embed.dimension))
    from memory.stories import calibrated_threshold

    threshold = settings.memory.near_duplicate_threshold
    policy = NearDuplicatePolicy(
        threshold=calibrated_threshold(embed.name) if threshold is None else threshold,
        rule=settings.memory.near_duplicate_rule,
        window=settings.memory.near_duplicate_window,
        kinds=tuple(settings.memory.near_duplicate_kinds),
    )
    return Memory(vectors, state, embed, policy, deadline=deadline)


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


# --- issue 5: the analyst crew ------------------------------------------------------------------

NO_MODEL = ("no language model is configured: set llm.model in tapewatch.toml (or TAPEWATCH_LLM__MODEL), e.g. "
            '"openai/gpt-4o-mini" with TAPEWATCH_LLM_API_KEY, "ollama/llama3.1" for a local Ollama, or '
            '"openai/NAME" with llm.base_url for any OpenAI-compatible server')


def crew_enabled(settings: Settings) -> bool:
    """Whether a model is configured for every agent of the crew."""
    return all(settings.llm.model_for(agent) for agent in AGENTS)


def crewai_environment(settings: Settings) -> None:
    """crewAI's environment, set in this one place before crewAI is imported: no telemetry, no tracing."""
    import os

    # crewAI reads these at run time; the bot never phones home.
    os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
    os.environ["CREWAI_DISABLE_TRACKING"] = "true"
    os.environ["OTEL_SDK_DISABLED"] = "true"
    os.environ["CREWAI_TRACING_ENABLED"] = "false"
    # crewAI keeps a SQLite log of task outputs under ~/.local/share/<cwd name>; an absolute path puts it here.
    storage = settings.data_dir / "crewai"
    storage.mkdir(parents=True, exist_ok=True)
    os.environ["CREWAI_STORAGE_DIR"] = str(storage)


def crew_llms(settings: Settings, state: StateDB | None = None) -> dict[str, Any]:
    """One fresh crewAI LLM client per agent (usage is counted per client), from ``[llm]`` settings.

    Each talks to the server through a ``crew.llmserver.ServerAdapter`` holding its agent's answer schema;
    what the server supports is remembered in ``state`` (opened from settings when not given).
    """
    if not crew_enabled(settings):
        raise ConfigError(NO_MODEL)
    crewai_environment(settings)
    from crew.outputs import Analysis, FactSheet, WrittenBrief

    schemas: dict[str, type[Any]] = {"researcher": FactSheet, "analyst": Analysis, "writer": WrittenBrief}
    servers = server_memory(settings, state)
    return {agent: _crew_llm(settings, str(settings.llm.model_for(agent)), schemas[agent], servers)
            for agent in AGENTS}


def server_memory(settings: Settings, state: StateDB | None = None) -> Any:
    """The state DB's record of what model servers support (``memory.llmservers.ServerMemory``)."""
    from memory.llmservers import ServerMemory

    return ServerMemory(state if state is not None else open_state(settings))


def server_key(settings: Settings, model: str) -> str:
    """Which server a model's capabilities are remembered under: its base_url, else its provider's default."""
    provider = model.split("/", 1)[0].lower() if "/" in model else "openai"
    return settings.llm.base_url or f"{provider}:default"


def request_timeout(settings: Settings, servers: Any, model: str) -> float:
    """Seconds per request: llm.timeout, else sized from the measured speed, else by where the server is."""
    from crew.llmserver import estimated_request_s

    caps = servers.get(server_key(settings, model), model) if servers is not None else None
    measured = estimated_request_s(caps, settings.llm.max_tokens) if caps is not None else None
    return settings.llm.request_timeout(measured).total_seconds()


def _crew_llm(settings: Settings, model: str, schema: type[Any] | None = None, servers: Any = None) -> Any:
    """One crewAI LLM client for ``model`` with the ``[llm]`` server, key, timeouts and limits."""
    from crewai import LLM

    from crew.llmserver import ServerAdapter

    llm = settings.llm
    provider = model.split("/", 1)[0].lower() if "/" in model else "openai"
    timeout = request_timeout(settings, servers, model)
    kwargs: dict[str, Any] = {
        "model": model, "temperature": llm.temperature, "timeout": timeout,
        "max_retries": llm.max_retries, "max_tokens": llm.max_tokens,
    }
    if llm.base_url:
        kwargs["base_url"] = llm.base_url
    elif provider == "openai":
        kwargs["base_url"] = "https://api.openai.com/v1"  # pinned: never redirected by OPENAI_BASE_URL
    if settings.llm_api_key is not None:
        kwargs["api_key"] = settings.llm_api_key.get_secret_value()
    elif provider == "openai":
        if not llm.base_url:
            raise ConfigError(f"model {model} needs an API key: set TAPEWATCH_LLM_API_KEY")
        kwargs["api_key"] = "no-key"  # the openai SDK insists on one; local servers ignore it
    try:
        client = LLM(**kwargs)
    except ImportError as exc:
        raise ConfigError(
            f"model {model!r} needs a crewAI provider that is not installed here ({_first_line(exc)}). "
            "Installed: openai/… (any OpenAI-compatible server with llm.base_url), ollama/…, hosted_vllm/…, "
            "openrouter/…, deepseek/…. For anthropic/… pip install 'crewai[anthropic]', for gemini/… "
            "'crewai[google-genai]', for other prefixes pip install litellm."
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"cannot use model {model!r}: {_first_line(exc)}") from exc
    if hasattr(client, "_get_client_params") and hasattr(client, "_client"):
        # An openai-SDK provider (openai/, ollama/, hosted_vllm/, …): its sync client talks through the adapter,
        # which constrains every answer in the mode this server takes (crew.llmserver). crewAI's client_params
        # would hand the same httpx client to its async SDK client too, which refuses a sync one.
        import openai

        adapter = ServerAdapter(httpx.HTTPTransport(), base_url=server_key(settings, model), model=model,
                                schema=schema, structured=llm.structured_output if llm.json_schema else "prompt",
                                store=servers, local=llm.is_local(model), tools=llm.tools)
        try:
            params = client._get_client_params()
        except ValueError as exc:  # no API key for a provider that needs one
            raise ConfigError(f"cannot use model {model!r}: {_first_line(exc)}") from exc
        client._client = openai.OpenAI(**params, http_client=httpx.Client(transport=adapter, timeout=timeout))
    elif schema is not None and llm.json_schema:
        client.response_format = schema
    return client


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def price_history(settings: Settings, state: StateDB) -> PriceHistory | None:
    """Stored price snapshots (CoinGecko, or the bundled samples) for signals, tools and grounding."""
    from memory.prices import PriceStore

    return PriceStore(state)


def source_policy(settings: Settings, state: StateDB) -> SourcePolicy:
    """Tiers, independence groups and publishable links of every configured (or once-fetched) source."""
    from crew.trust import policy_from

    feeds = [(f.name, f.url, f.source_tier, f.link_domains) for f in settings.feeds]
    accounts = {a.handle: a.tier for a in settings.x.accounts}
    return policy_from(feeds, accounts, stored_urls=_StoredSourceUrls(state))


class _StoredSourceUrls(Mapping[str, str]):
    """Source name → URL as the state DB has it now (a long-lived validator sees sources added later)."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def _all(self) -> dict[str, str]:
        return self.state.source_urls()

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def coin_directory(settings: Settings) -> CoinDirectory:
    """Known coins: the cached CoinGecko coin list when one was fetched, else the bundled snapshot."""
    from sources.coins import CoinDirectory, load_coins

    return CoinDirectory(load_coins(coin_list_path(settings)))


def coin_list_path(settings: Settings) -> Path:
    """Where the fetched CoinGecko coin list is cached."""
    return Path(settings.data_dir).expanduser() / "coin_list.json"


def grounding_context(settings: Settings, state: StateDB, prices: PriceHistory | None = None) -> GroundingContext:
    """What drafts are checked against: stored items, the watchlist, price snapshots, tiers, compliance rules."""
    from crew.grounding import GroundingContext

    def ticker_items(ticker: str, start: datetime, end: datetime) -> list[Any]:
        ids = state.candidate_ids(start, end, [ticker], (), cap=200) or []
        return list(state.items_by_ids(ids).values())

    g = settings.grounding
    return GroundingContext(
        lookup=state.items_by_ids, watchlist=watchlist(settings), prices=prices,
        disclaimer=settings.compliance.disclaimer, require_disclaimer=settings.compliance.require_disclaimer,
        banned_phrases=tuple(settings.compliance.banned_phrases),
        price_tolerance_pct=g.price_tolerance_pct, percent_tolerance_pp=g.percent_tolerance_pp,
        max_x_posts=g.max_x_posts, policy=source_policy(settings, state), coins=coin_directory(settings),
        ticker_items=ticker_items, single_source_policy=g.single_source_policy,
        min_independent_sources=g.min_independent_sources,
        allowed_mentions=frozenset(h.lower().lstrip("@") for h in settings.publish.x_allowed_mentions),
        max_cashtags=settings.publish.x_max_cashtags, max_hashtags=settings.publish.x_max_hashtags,
        archive_url=settings.publish.archive_url,
        channel_profiles={c: tuple(names) for c, names in settings.compliance.channels.items()},
        channels=tuple(settings.publish.channels), profiles_dir=settings.compliance.profiles_dir,
    )


def draft_validator(settings: Settings, state: StateDB) -> Callable[[Draft], ValidationReport]:
    """The grounding validator bound to this installation's state DB, prices and settings (for any draft)."""
    from crew.grounding import validate_draft

    context = grounding_context(settings, state, price_history(settings, state))
    return lambda draft: validate_draft(draft, context)


def crew_setup(settings: Settings, llms: dict[str, Any], state: StateDB | None = None) -> CrewSetup:
    """A crew run's models, prices, budget and limits from settings, around the LLM clients given."""
    from crew.costs import Budget, Price
    from crew.crewbrief import CrewSetup, Limits

    llm = settings.llm
    models = {agent: str(llm.model_for(agent)) for agent in AGENTS}
    verifier = None
    servers = server_memory(settings, state)
    if settings.grounding.verifier_model:
        models["verifier"] = settings.grounding.verifier_model
        verifier = _crew_llm(settings, models["verifier"], None, servers)
    researcher = models["researcher"]
    known = servers.get(server_key(settings, researcher), researcher)
    tools = llm.tools == "on" or (llm.tools == "auto" and known.tools is not False)
    prices = {agent: Price(p.prompt, p.completion) for agent, p in
              ((agent, llm.price_of(model)) for agent, model in models.items())}
    timeout = request_timeout(settings, servers, researcher)
    return CrewSetup(verifier=verifier,
        llms=llms, models=models, prices=prices, budget=Budget(llm.daily_budget_usd, llm.monthly_budget_usd),
        limits=Limits(max_iter=llm.max_iter, max_execution_time_s=max(1, int(llm.agent_time_limit(timeout))),
                      writer_retries=llm.guardrail_retries),
        context_items=llm.context_items, disclaimer=settings.compliance.disclaimer,
        where=llm.base_url or "", timeout_s=timeout, tools=tools,
    )
# --- review and publishing (issue 6) -----------------------------------------------------------------------

def _secret(settings: Settings, name: str) -> str | None:
    value = getattr(settings, name)
    return value.get_secret_value() if value is not None else None


def x_poster(settings: Settings) -> Any:
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
        from tapewatch.xcharges import x_media_api

        secrets = {n: _secret(settings, n) or "" for n in ("x_consumer_key", "x_consumer_secret", "x_access_token",
                                                            "x_access_token_secret")}
        channels["x"] = XPublisher(x_poster(settings), pages=pub.reconcile_pages,
                                   media_api=x_media_api(settings, secrets) if pub.x_attach_chart else None)
    if "telegram" in pub.channels:
        if not pub.telegram_chat_id:
            raise ConfigError("publishing to Telegram needs publish.telegram_chat_id (\"@channel\" or -100…)")
        channels["telegram"] = TelegramPublisher(telegram_bot(settings), pub.telegram_chat_id)
    return channels


def review_queue(settings: Settings, state: StateDB, via: str = "cli",
                 actor_label: Callable[[str], str] | None = None) -> ReviewQueue:
    """The review state machine with the configured reviewers and the grounding validator."""
    from publish.review import ReviewQueue

    return ReviewQueue(state, reviewers=settings.review.reviewers, validator=draft_validator(settings, state),
                       via=via, actor_label=actor_label)


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
    from tapewatch.xcharges import delivery_hooks

    queue = review_queue(settings, state, via)
    return Delivery(queue, Outbox(state.engine, via=via), channels, policy, limits=limits,
                    lease=Lease(state.engine, pub.lease), amender=amender(settings, queue),
                    gate=compliance_gate(settings, state), **delivery_hooks(settings, state, channels))


def amender(settings: Settings, queue: ReviewQueue) -> Amender:
    """Corrections and retractions over the review queue, with the configured disclaimer."""
    from publish.amend import Amender

    return Amender(queue, disclaimer=settings.compliance.disclaimer, settle=settings.publish.reconcile_settle)


def compliance_gate(settings: Settings, state: StateDB) -> Callable[[Draft, str], str]:
    """What delivery asks before a channel's first part: why, if at all, do this channel's profiles refuse it?"""
    from crew.grounding import refusal

    context = grounding_context(settings, state)
    return lambda draft, channel: refusal(draft, channel, context)


# --- X and market sources (issue 3) ---------------------------------------------------------------------

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
