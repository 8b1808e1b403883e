"""Helpers for review and publishing tests: drafts in a real state DB, settings aimed at the fake servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from memory.drafts import Draft, DraftStore
from memory.state import StateDB
from tapewatch.settings import PublishSettings, ReviewSettings, Settings
from tests.fakes.telegram_api import CHANNEL, TOKEN

REVIEWERS = ["alice", "bob"]


def make_settings(tmp_path: Path, x_url: str | None = None, tg_url: str | None = None,
                  **publish: Any) -> Settings:
    """Settings with both channels aimed at loopback fakes, short timeouts and no reconcile settle time."""
    values: dict[str, Any] = {"timeout": "2s", "connect_timeout": "2s", "reconcile_settle": "0s",
                              "telegram_chat_id": CHANNEL, "x_base_url": x_url, "telegram_base_url": tg_url}
    values.update(publish)
    return Settings(
        data_dir=tmp_path / "data", review=ReviewSettings(reviewers=REVIEWERS, reviewer="alice"),
        publish=PublishSettings.model_validate(values),
        x_consumer_key=SecretStr("ck"), x_consumer_secret=SecretStr("cs"), x_access_token=SecretStr("at"),
        x_access_token_secret=SecretStr("ats"), telegram_bot_token=SecretStr(TOKEN),
    )


def add_draft(state: StateDB, tag: str = "a", *, posts: int = 4, status: str = "pending",
              created_at: datetime | None = None, validation: dict[str, Any] | None = None,
              item_ids: tuple[str, ...] = ()) -> Draft:
    """A stored draft whose texts are unique to ``tag`` (so the duplicate guard tells drafts apart)."""
    now = created_at or datetime.now(UTC)
    words = {"a": "solana validators ship a new client", "b": "ether staking queue empties overnight",
             "c": "dogecoin miners merge pools", "d": "chainlink oracles add rates feeds"}.get(tag, f"story {tag}")
    thread = tuple(f"{i}/{posts} {words}: point {i} of the {tag} brief" for i in range(1, posts + 1))
    draft = Draft(
        created_at=now, mode="data", window_start=now - timedelta(hours=24), window_end=now, x_thread=thread,
        telegram_html=f"<b>{tag.upper()} brief</b>\n{words} — <a href=\"https://news.example/{tag}\">source</a>",
        markdown=f"# {tag}\n{words}", item_ids=item_ids, tickers=("SOL",), status=status,
        validation=validation or {},
    )
    return DraftStore(state).save(draft)


class Sleeps:
    """An injected sleep that records how long it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)
