"""Helpers for review and publishing tests: drafts in a real state DB, settings aimed at the fake servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from memory.drafts import Draft, DraftStore
from memory.state import FetchRecord, StateDB
from sources.item import Item, item_id_for_url
from sources.tickers import Watchlist
from tapewatch.settings import DEFAULT_WATCHLIST, PublishSettings, ReviewSettings, Settings
from tests.fakes.telegram_api import CHANNEL, TOKEN

REVIEWERS = ["alice", "bob"]
DISCLAIMER = "Not financial advice."


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
    """A stored draft whose texts are unique to ``tag`` (so the duplicate guard tells drafts apart).

    Unless ``item_ids`` are given, it cites a stored news item of its own that names $SOL and carries its
    link, and ends with the default disclaimer: it passes the grounding validator as it is.
    """
    now = created_at or datetime.now(UTC)
    words = {"a": "solana validators ship a new client", "b": "ether staking queue empties overnight",
             "c": "dogecoin miners merge pools", "d": "chainlink oracles add rates feeds"}.get(tag, f"story {tag}")
    url = f"https://news.example/{tag}"
    if not item_ids:
        item = Item(id=item_id_for_url(url), kind="news", source="wire", url=url, title=f"{words} ($SOL)",
                    text=f"{words}; traders watch $SOL.", published_at=now - timedelta(hours=1),
                    fetched_at=now - timedelta(hours=1), tickers=("SOL",))
        if not state.existing_ids([item.id]):
            # Fetched from the outlet's own feed, so its link is one the validator trusts.
            fetch = FetchRecord(source="wire", kind="news", url="https://news.example/feed.xml", started_at=now,
                                finished_at=now, status="ok", new=1)
            state.commit_batch([item], [], fetch)
        item_ids = (item.id,)
    thread = tuple(f"{i}/{posts} {words}: point {i} of the {tag} brief" for i in range(1, posts + 1))
    thread = (*thread[:-1], f"{thread[-1]} {DISCLAIMER}")
    draft = Draft(
        created_at=now, mode="data", window_start=now - timedelta(hours=24), window_end=now, x_thread=thread,
        telegram_html=f"<b>{tag.upper()} brief</b>\n{words} — <a href=\"{url}\">source</a>\n{DISCLAIMER}",
        markdown=f"# {tag}\n{words} ([source]({url}))\n\n{DISCLAIMER}", item_ids=item_ids, tickers=("SOL",),
        status=status,
        # $SOL is a watchlist ticker backed by the window's signals.
        signals={"items": 1, "stories": 1, "tickers": [{"ticker": t, "mentions": 1, "clusters": 1}
                                                       for t in {"SOL", *Watchlist(DEFAULT_WATCHLIST).extract(words)}]},
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
