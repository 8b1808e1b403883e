"""Settings of the shell: the daemon and the Telegram bot."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tapewatch.settings.durations import Duration, _positive


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
