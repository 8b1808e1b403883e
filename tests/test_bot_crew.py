"""/brief end to end: Telegram (fake Bot API) → bot → analyst crew (real crewAI, fake LLM server) → reply."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from memory.drafts import DraftStore
from tapewatch.bot.backend import ShellBackend
from tapewatch.bot.limits import BriefQueue, RateLimiter
from tapewatch.bot.service import brief_writer
from tapewatch.bot.telegram import Access, TelegramBot, build_application
from tests.crew_support import crew_settings, fill_with_samples, llm_server_fixture  # noqa: F401
from tests.fakes import crew_replies
from tests.fakes.llm_server import LLMServer
from tests.fakes.telegram_api import TOKEN, serving_telegram
from tests.test_bot import ALICE, until
from tests.test_daemon import make_runtime


def ask(runtime: Any, text: str, replies: int) -> list[str]:
    """Send ``text`` as ALICE to a real bot over ``runtime``; return the bot's messages to her."""
    with serving_telegram() as fake:
        async def main() -> None:
            app = build_application(TOKEN, base_url=fake.base_url, read_timeout=5)
            backend = ShellBackend(runtime.memory(), brief_writer(runtime))
            bot = TelegramBot(app, backend, Access(frozenset({ALICE}), frozenset(), {}),
                              limiter=RateLimiter(5, 60), queue=BriefQueue(1, 5))
            await bot.start(poll_timeout=0.2)
            try:
                fake.user_message(ALICE, text)
                await until(lambda: len(fake.sent_to(ALICE)) >= replies, timeout=60)
            finally:
                await bot.stop(drain_s=5)

        asyncio.run(main())
        return [m.text for m in fake.sent_to(ALICE)]


def test_brief_command_runs_the_crew_and_answers_with_the_stored_draft(
        llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hash_embedder: Any) -> None:
    settings = crew_settings(monkeypatch, llm_server)
    llm_server.responder = crew_replies.well_behaved
    runtime = make_runtime(settings, tmp_path, hash_embedder)
    fill_with_samples(runtime.memory())
    texts = ask(runtime, "/brief", 2)
    assert texts[0] == "On it: a brief on the market (starting now)."
    drafts = DraftStore(runtime.state).list()
    assert len(drafts) == 1 and drafts[0].mode == "crew" and drafts[0].meta["requested_by"] == "telegram:111 (@user111)"
    assert texts[1].startswith(drafts[0].telegram_html[:200])
    assert "Not financial advice." in texts[1] and len(llm_server.requests) == 3
    runtime.close()


def test_brief_command_over_budget_says_so_and_calls_no_model(
        llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hash_embedder: Any) -> None:
    settings = crew_settings(monkeypatch, llm_server, daily_budget_usd="0")
    llm_server.responder = crew_replies.well_behaved
    runtime = make_runtime(settings, tmp_path, hash_embedder)
    fill_with_samples(runtime.memory())
    texts = ask(runtime, "/brief $BTC", 2)
    assert texts[1].startswith("⚠️ the daily LLM budget is used up") and llm_server.requests == []
    assert DraftStore(runtime.state).list() == []
    runtime.close()
