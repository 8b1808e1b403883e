"""The daemon starts without Telegram: a rejected (401) or unreachable bot token is one clear line without the
token, the bot retries in the background, and ingest and publishing to X go on meanwhile.

Real python-telegram-bot and tweepy clients talk to the loopback fakes; the daemon is the real one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.drafts import DraftStore
from publish.review import ReviewQueue
from tapewatch.bot.service import attach
from tapewatch.daemon import Daemon
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko
from tests.fakes.publishing import add_draft
from tests.fakes.telegram_api import CHANNEL_ID, TOKEN, FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import ME_ID, FakeXAPI, serving_x
from tests.test_automation import ALICE, REVIEW_CHAT, automation_settings, until
from tests.test_daemon import make_runtime

FAST_RETRY = {"retention_interval": "1h", "jitter": "0s", "shutdown_grace": "5s", "restart_backoff": "0.2s",
              "restart_backoff_max": "0.5s"}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko]]:
    # The fake accepts another token than the one configured: every call with ours gets 401 Unauthorized.
    with serving_x() as x, serving_telegram(token="654321:the-right-token") as tg, serving_coingecko() as cg:
        cg.set("solana", 213.2, change=3.6)
        tg.add_chat(REVIEW_CHAT)
        yield x, tg, cg


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused): the Bot API is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/bot"


def approved_draft(runtime: Any) -> str:
    draft = add_draft(runtime.state, "a", posts=2)
    ReviewQueue(runtime.state, reviewers=["alice"]).approve(draft.id, "alice")
    return draft.id


def bot_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "Telegram bot" in r.getMessage()]


def test_a_rejected_token_is_one_line_and_everything_else_keeps_running(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    x, tg, cg = fakes
    settings = automation_settings(tmp_path, x, tg, cg, daemon=FAST_RETRY,
                                   market={"base_url": cg.base_url, "interval": "0.3s"})
    runtime = make_runtime(settings, tmp_path, hash_embedder)
    draft_id = approved_draft(runtime)
    daemon = Daemon(runtime)
    attach(daemon, runtime)
    caplog.set_level(logging.INFO)

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        try:
            # Telegram refuses us, yet prices are ingested and the draft's X thread is posted.
            await until(lambda: len(x.posts_by(ME_ID)) == 2 and daemon.fired["prices"] >= 2
                        and "publish" in daemon.last)
            await until(lambda: len(tg.calls("getMe")) >= 3)  # and the bot keeps trying, with backoff
            assert not task.done()
            assert not tg.calls("getUpdates")
            assert daemon.last["review-cards"] == "skipped: the Telegram bot is not connected"
            assert "telegram unavailable (Telegram rejected the bot token (401 Unauthorized)" in daemon.last["publish"]
            assert DraftStore(runtime.state).get(draft_id).status == "approved"  # its Telegram part waits
            # The token is fixed (here: the Bot API starts accepting it): the bot comes up by itself.
            tg.token = TOKEN
            await until(lambda: tg.calls("getUpdates"))
            tg.user_message(ALICE, "/help")
            await until(lambda: tg.sent_to(ALICE))
            await until(lambda: tg.sent_to(CHANNEL_ID) and DraftStore(runtime.state).get(draft_id).status
                        == "published")
            await until(lambda: any("connected again" in m.text for m in tg.sent_to(REVIEW_CHAT)))
        finally:
            daemon.stop()
            await asyncio.wait_for(task, timeout=15)

    asyncio.run(main())
    assert len(x.posts_by(ME_ID)) == 2  # nothing posted twice when the Telegram part went out later
    warnings = [r.getMessage() for r in bot_lines(caplog) if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # one line for the cause (retries repeat it at INFO), one when connected
    assert warnings[0].startswith("Telegram bot not started: Telegram rejected the bot token (401 Unauthorized); "
                                  "check TAPEWATCH_TELEGRAM_BOT_TOKEN; retrying in")
    assert warnings[1].startswith("Telegram bot connected after")
    assert all(r.exc_info is None for r in bot_lines(caplog))  # no traceback
    # (httpx's own INFO request lines carry the URL, token included: silenced by default, redacted by issue 17.12)
    everything = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tapewatch"))
    everything += "\n".join(daemon.last.values())
    assert TOKEN not in everything and TOKEN.partition(":")[2] not in everything
    runtime.close()


def test_an_unreachable_bot_api_does_not_stop_the_daemon(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    x, tg, cg = fakes
    down = closed_port_url()
    settings = automation_settings(tmp_path, x, tg, cg, daemon=FAST_RETRY,
                                   market={"base_url": cg.base_url, "interval": "0.3s"},
                                   publish={"x_base_url": x.base_url, "telegram_base_url": down,
                                            "telegram_chat_id": "@tapewatch_test", "timeout": "2s",
                                            "connect_timeout": "1s", "reconcile_settle": "0s"})
    runtime = make_runtime(settings, tmp_path, hash_embedder)
    approved_draft(runtime)
    daemon = Daemon(runtime)
    attach(daemon, runtime)
    caplog.set_level(logging.WARNING)

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        try:
            await until(lambda: len(x.posts_by(ME_ID)) == 2 and daemon.fired["prices"] >= 2
                        and "publish" in daemon.last)
            await until(lambda: bot_lines(caplog))
            assert not task.done() and daemon.supervisor.running("Telegram bot")  # still trying
        finally:
            daemon.stop()
            await asyncio.wait_for(task, timeout=15)  # a clean stop while the bot is still retrying

    asyncio.run(main())
    lines = [r.getMessage() for r in bot_lines(caplog)]
    assert len(lines) == 1 and lines[0].startswith("Telegram bot not started: the Telegram Bot API cannot be "
                                                   "reached"), lines
    assert "retrying in" in lines[0] and "ingest and publishing go on" in lines[0]
    runtime.close()


@pytest.mark.slow
def test_tapewatch_run_with_a_rejected_token_says_so_once_and_keeps_ingesting(tmp_path: Path) -> None:
    with serving_coingecko() as cg, serving_telegram(token="654321:the-right-token") as tg:
        cg.set("bitcoin", 97950.0)
        config = tmp_path / "t.toml"
        config.write_text(
            f'data_dir = "{tmp_path / "data"}"\nfeeds = []\n[market]\nbase_url = "{cg.base_url}"\ninterval = "0.5s"\n'
            f'[publish]\ntelegram_base_url = "{tg.base_url}"\n[bot]\npoll_timeout = "0.2s"\n'
            '[daemon]\njitter = "0s"\nrestart_backoff = "0.3s"\nrestart_backoff_max = "1s"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
        env.update(TAPEWATCH_TELEGRAM_BOT_TOKEN=TOKEN, COLUMNS="200")
        done = subprocess.run([sys.executable, "-m", "tapewatch", "--config", str(config), "run", "--for", "4"],
                              capture_output=True, text=True, env=env, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output and TOKEN not in output and TOKEN.partition(":")[2] not in output
    assert output.count("Telegram rejected the bot token (401 Unauthorized)") == 1, output
    assert output.count("prices: 1 source(s)") >= 3  # ingest ran all along
    assert len(tg.calls("getMe")) >= 3  # the bot kept retrying in the background


def test_a_token_revoked_while_running_is_noticed_and_the_bot_reconnects(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    x, tg, cg = fakes
    tg.token = TOKEN  # accepted at first
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, daemon=FAST_RETRY), tmp_path, hash_embedder)
    daemon = Daemon(runtime)
    attach(daemon, runtime)
    caplog.set_level(logging.WARNING)

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        try:
            await until(lambda: tg.calls("getUpdates"))
            tg.token = "654321:the-new-token"  # revoked in BotFather: PTB's polling gives up on a 401
            await until(lambda: any(r.getMessage().startswith("Telegram bot stopped: Telegram rejected the bot "
                                                              "token (401 Unauthorized)") for r in caplog.records))
            tg.token = TOKEN  # (the operator puts the right token back)
            polls = len(tg.calls("getUpdates"))
            await until(lambda: len(tg.calls("getUpdates")) > polls + 1)
            tg.user_message(ALICE, "/help")
            await until(lambda: tg.sent_to(ALICE))
            assert not task.done()
        finally:
            daemon.stop()
            await asyncio.wait_for(task, timeout=15)

    asyncio.run(main())
    runtime.close()
