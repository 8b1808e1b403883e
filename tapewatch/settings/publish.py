"""Settings of review, publishing and the posting schedule."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tapewatch.settings.durations import Duration, _positive


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
    # X's automation rules: no unsolicited @mentions (only these handles may be mentioned), few tags per post
    # (issue 14's "x.max_tags" is these two caps, one per kind of tag: the names predate it).
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
    # The public base URL of the web archive (`tapewatch web`); posts link to {archive_url}/b/{public id}.
    # Unset: a post links to its top source instead, and the thread has no pointer to the full brief.
    archive_url: str | None = None
    # What goes to X: the take (one post) or a thread of at most x_max_posts posts (the take first).
    x_shape: Literal["take", "thread"] = "take"
    x_max_posts: int = Field(default=4, ge=2, le=12)
    x_attach_chart: bool = True  # a chart of the lead ticker on the take (X media upload) and on Telegram
    # X's pay-per-use prices (USD; check the current ones on X's developer pricing page): recorded in the
    # cost ledger for every part published and every post read.
    x_price_read_usd: float = Field(default=0.005, ge=0.0)
    x_price_post_usd: float = Field(default=0.015, ge=0.0)
    x_price_post_url_usd: float = Field(default=0.20, ge=0.0)
    # Budgets on X writes (UTC day / month; None: no limit); a publish run that would pass one is refused.
    x_daily_budget_usd: float | None = Field(default=2.0, ge=0.0)
    x_monthly_budget_usd: float | None = Field(default=30.0, ge=0.0)
    telegram_base_url: str | None = None  # a local Bot API server, e.g. http://localhost:8081/bot

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("quiet_hours must look like 23:00-07:00")
        return value

    @field_validator("archive_url")
    @classmethod
    def _archive(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
            raise ValueError("archive_url must be an http(s):// base URL without query, e.g. https://briefs.example.org")
        return value.rstrip("/") if value else value

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
    shape: Literal["take", "thread"] = "take"  # on X: one post, or a short thread (publish.x_max_posts)
    # Compliance profiles of this entry's drafts per channel, instead of [compliance.channels]'s list.
    profiles: dict[Literal["x", "telegram"], list[str]] = {}

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
