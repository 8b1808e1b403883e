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
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sources.errors import ConfigError
from tapewatch.settings.crew import ComplianceSettings, GroundingSettings, LLMSettings
from tapewatch.settings.memory import MemorySettings
from tapewatch.settings.publish import PublishSettings, ReviewSettings, ScheduleSettings
from tapewatch.settings.shell import BotSettings, DaemonSettings
from tapewatch.settings.sources import (
    DEFAULT_FEEDS,
    DEFAULT_WATCHLIST,
    FeedSettings,
    FetchSettings,
    MarketSettings,
    XSettings,
)
from tapewatch.settings.track import TrackSettings
from tapewatch.settings.web import WebSettings

SECRET_FIELDS = ("chroma_token", "x_bearer_token", "telegram_bot_token", "llm_api_key", "coingecko_api_key",
                 "x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret")


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
    web: WebSettings = WebSettings()
    track: TrackSettings = TrackSettings()

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

    @model_validator(mode="after")
    def _schedule_profiles_exist(self) -> Settings:
        from crew.profiles import resolve

        for brief in self.schedule.briefs:
            for names in brief.profiles.values():
                resolve(names, self.compliance.profiles_dir)
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
