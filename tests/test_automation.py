"""The posting schedule in the daemon: scheduled brief → draft → review card → approve → posted exactly once."""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger

from memory.drafts import DraftStore
from memory.switches import POSTING_PAUSED, Switches
from publish.audit import AuditLog
from tapewatch.bot.review import callback_data, parse_callback
from tapewatch.bot.service import attach
from tapewatch.daemon import Daemon
from tapewatch.settings import Settings
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko
from tests.fakes.telegram_api import CHANNEL, CHANNEL_ID, TOKEN, FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import ME_ID, FakeXAPI, serving_x
from tests.test_bot import until as bot_until
from tests.test_daemon import make_runtime
from tests.test_databrief import post

ALICE, BOB = 111, 222
# A daemon-driven step (a job firing, a publish run through both fakes) may take up to 20 s on a busy machine.
until = functools.partial(bot_until, timeout=20.0)
REVIEW_CHAT = -1003


@pytest.fixture
def fakes() -> Iterator[tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko]]:
    with serving_x() as x, serving_telegram() as tg, serving_coingecko() as cg:
        cg.set("solana", 213.2, change=3.6)
        tg.add_chat(REVIEW_CHAT)
        yield x, tg, cg


def automation_settings(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI, cg: FakeCoinGecko,
                        **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data", "feeds": [], "watchlist": {"SOL": ["solana"]},
        "market": {"base_url": cg.base_url, "interval": "1h"},
        "daemon": {"retention_interval": "1h", "jitter": "0s", "shutdown_grace": "5s"},
        "publish": {"x_base_url": x.base_url, "telegram_base_url": tg.base_url, "telegram_chat_id": CHANNEL,
                    "timeout": "3s", "connect_timeout": "2s", "reconcile_settle": "0s"},
        "review": {"reviewers": ["alice"]},
        "bot": {"reviewers": [{"telegram_id": ALICE, "name": "alice"}], "review_chat_id": REVIEW_CHAT,
                "allowed_users": [BOB], "poll_timeout": "0.2s"},
        "schedule": {"briefs": [{"name": "morning", "cron": "0 8 * * *", "ticker": "SOL"}],
                     "publish_every": "0.3s", "review_every": "0.2s"},
        "telegram_bot_token": TOKEN, "x_consumer_key": "ck", "x_consumer_secret": "cs", "x_access_token": "at",
        "x_access_token_secret": "ats",
    }
    values.update(overrides)
    return Settings(**values)


def seed(runtime: Any) -> None:
    runtime.memory().add([
        post(1, "Solana validators move to the Halcyon client $SOL", cluster="dev", hours_ago=5, tickers=("SOL",)),
        post(2, "Halcyon rollout on Solana looks clean $SOL fees down", cluster="vc", hours_ago=4, tickers=("SOL",)),
        post(3, "Funds asking about the Solana Halcyon client $SOL", cluster="media", hours_ago=3, tickers=("SOL",)),
    ])


def test_scheduled_brief_is_reviewed_in_telegram_and_posted_exactly_once(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    x, tg, cg = fakes
    monkeypatch.setattr("tests.test_databrief.NOW", datetime.now(UTC))
    hourly = {"briefs": [{"name": "morning", "cron": "0 8 * * *", "ticker": "SOL"}], "publish_every": "1h",
              "review_every": "0.2s"}
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, schedule=hourly), tmp_path, hash_embedder)
    seed(runtime)
    daemon = Daemon(runtime)
    _automation, lines = attach(daemon, runtime)
    assert lines[:2] == ["Telegram bot: on", "Publishing: x, telegram (review policy)"]
    assert "brief morning at '0 8 * * *' (UTC)" in lines

    async def main() -> str:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        try:
            job = await until(lambda: daemon.scheduler.running and daemon.scheduler.get_job("brief-morning"))
            assert isinstance(job.trigger, CronTrigger)
            job.modify(next_run_time=datetime.now(UTC))  # 08:00 has come
            card = await until(lambda: [m for m in tg.sent_to(REVIEW_CHAT) if "reply_markup" in m.params])
            buttons = [b["callback_data"] for row in card[0].params["reply_markup"]["inline_keyboard"] for b in row]
            parsed = parse_callback(buttons[0])
            assert parsed is not None and parsed[0] == "approve"
            draft_id = parsed[1]
            tg.user_callback(BOB, card[0].message_id, callback_data("approve", draft_id))  # not a reviewer
            tg.user_callback(ALICE, card[0].message_id, callback_data("approve", draft_id))
            await until(lambda: len(tg.answered) >= 2)
            tg.user_callback(ALICE, card[0].message_id, callback_data("publish", draft_id))
            draft = DraftStore(runtime.state).get(draft_id)
            await until(lambda: len(x.posts_by(ME_ID)) == len(draft.x_thread) and tg.sent_to(CHANNEL_ID))
            await until(lambda: "<b>published</b>" in card[0].text)  # the card follows the draft to the end
            await daemon.run("publish")  # more publish runs post nothing more
            await daemon.run("publish")
            return draft_id
        finally:
            daemon.stop()
            await asyncio.wait_for(task, timeout=15)

    draft_id = asyncio.run(main())
    draft = DraftStore(runtime.state).get(draft_id)
    assert draft.status == "published" and draft.meta["schedule"] == "morning" and draft.tickers[0] == "SOL"
    posts = x.posts_by(ME_ID)
    # The take goes out with the brief's chart attached (X shows the image's link after the text).
    assert posts[0].media and draft.meta["chart"]["ticker"] == "SOL"
    assert [re.sub(r" https://t\.co/\w+$", "", p.text) for p in posts] == list(draft.x_thread)
    assert all(p.in_reply_to == prev.id for prev, p in itertools.pairwise(posts))
    assert len(tg.sent_to(CHANNEL_ID)) == 1
    answers = [a["text"] for a in tg.answered]
    assert answers[:2] == ["Sorry, only reviewers can act on drafts.", "Approved."]
    # The tap and the daemon's own first publish run race; either way the draft goes out exactly once.
    assert answers[2] in ("Publishing now.", "Already published.")
    actions = [(e.actor, e.via, e.action) for e in AuditLog(runtime.state.engine).for_draft(draft_id)]
    assert ("telegram:222 (@user222)", "telegram", "refused") in actions
    assert ("alice", "telegram", "approve") in actions and ("publisher", "daemon", "publish") in actions
    assert len([m for m in tg.sent_to(REVIEW_CHAT) if m.text.startswith("📝")]) == 1  # one card per draft
    runtime.close()


def test_pause_stops_scheduled_posting_until_resumed(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    x, tg, cg = fakes
    monkeypatch.setattr("tests.test_databrief.NOW", datetime.now(UTC))
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, publish={
        "x_base_url": x.base_url, "telegram_base_url": tg.base_url, "telegram_chat_id": CHANNEL,
        "reconcile_settle": "0s", "policy": "auto"}), tmp_path, hash_embedder)
    seed(runtime)
    daemon = Daemon(runtime)
    automation, _ = attach(daemon, runtime)

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        try:
            await until(lambda: daemon.scheduler.running and daemon.scheduler.get_job("brief-morning"))
            tg.user_message(ALICE, "/pause")
            await until(lambda: Switches(runtime.state).get(POSTING_PAUSED).on)
            await daemon.run("brief:morning")
            assert daemon.last["brief:morning"].startswith("skipped: posting paused by telegram:111 (@user111)")
            runs = daemon.fired["publish"]
            await until(lambda: daemon.fired["publish"] >= runs + 1)
            assert daemon.last["publish"].startswith("skipped: posting paused")
            tg.user_message(ALICE, "/resume")
            await until(lambda: not Switches(runtime.state).get(POSTING_PAUSED).on)
            await daemon.run("brief:morning")  # auto policy: a draft that passes grounding goes out
            await until(lambda: tg.sent_to(CHANNEL_ID))
        finally:
            daemon.stop()
            await asyncio.wait_for(task, timeout=15)

    asyncio.run(main())
    assert [m.text for m in tg.sent_to(ALICE)][:2] == ["Scheduled posting is paused.", "Scheduled posting is running."]
    assert automation.paused() is None
    assert len(x.posts_by(ME_ID)) >= 1
    runtime.close()
