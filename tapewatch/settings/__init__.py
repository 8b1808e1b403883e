"""Settings, one module per section; everything is importable from ``tapewatch.settings``."""

from tapewatch.settings.crew import (
    AGENTS,
    FREE_MODEL_PREFIXES,
    ComplianceSettings,
    GroundingSettings,
    LLMSettings,
    ModelPrice,
)
from tapewatch.settings.durations import Duration, format_duration, parse_duration
from tapewatch.settings.memory import MemorySettings
from tapewatch.settings.publish import PublishSettings, ReviewSettings, ScheduledBrief, ScheduleSettings
from tapewatch.settings.root import SECRET_FIELDS, Settings, load_settings, masked_dump, read_toml
from tapewatch.settings.shell import BotSettings, DaemonSettings, ReviewerAccount
from tapewatch.settings.sources import (
    DEFAULT_COINS,
    DEFAULT_FEEDS,
    DEFAULT_WATCHLIST,
    FeedSettings,
    FetchSettings,
    MarketSettings,
    XAccountSettings,
    XSettings,
)
from tapewatch.settings.track import TrackSettings
from tapewatch.settings.web import WebSettings

__all__ = [
    "AGENTS",
    "DEFAULT_COINS",
    "DEFAULT_FEEDS",
    "DEFAULT_WATCHLIST",
    "FREE_MODEL_PREFIXES",
    "SECRET_FIELDS",
    "BotSettings",
    "ComplianceSettings",
    "DaemonSettings",
    "Duration",
    "FeedSettings",
    "FetchSettings",
    "GroundingSettings",
    "LLMSettings",
    "MarketSettings",
    "MemorySettings",
    "ModelPrice",
    "PublishSettings",
    "ReviewSettings",
    "ReviewerAccount",
    "ScheduleSettings",
    "ScheduledBrief",
    "Settings",
    "TrackSettings",
    "WebSettings",
    "XAccountSettings",
    "XSettings",
    "format_duration",
    "load_settings",
    "masked_dump",
    "parse_duration",
    "read_toml",
]
