"""The Telegram bot against a loopback fake Bot API: real PTB application, updates via getUpdates."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sources.errors import LLMError
from tapewatch.bot.limits import BriefQueue, RateLimiter
from tapewatch.bot.messages import split_html
from tapewatch.bot.telegram import Access, BriefAnswer, TelegramBot, build_application, parse_brief_args
from tests.fakes.telegram_api import TOKEN, FakeTelegramAPI, serving_telegram

ALICE, BOB, MALLORY = 111, 222, 666


class Backend:
    """A scripted backend that records calls; ``gate`` holds briefs until released."""

    def __init__(self) -> None:
        self.briefs: list[tuple[str | None, str | None, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_brief: Exception | None = None
        self.paused: list[tuple[bool, str]] = []
        self.refusals: list[tuple[str, str]] = []
        self.brief_html: str | None = None  # what /brief answers, instead of the short default

    def brief(self, topic: str | None, ticker: str | None, requested_by: str) -> BriefAnswer:
        self.gate.wait(10)
        if self.fail_brief:
            raise self.fail_brief
        self.briefs.append((topic, ticker, requested_by))
        subject = ticker or topic or "market"
        if self.brief_html is not None:
            return BriefAnswer(self.brief_html, "d" * 32, "data")
        return BriefAnswer(f"<b>Brief: {subject}</b>\n• a line <a href=\"https://example.com/a\">[1]</a>",
                           "d" * 32, "data", note="data brief")

    def top(self) -> str:
        return "<b>Top</b>\n1. SOL"

    def narratives(self) -> str:
        return "<b>Narratives</b>\n• restaking"

    def price(self, ticker: str) -> str:
        if ticker == "NOPE":
            raise LLMError("no price snapshot for NOPE")
        return f"{ticker} $100.00"

    def sources(self) -> str:
        return "coindesk ok"

    def refused(self, action: str, who: str, draft_id: str = "") -> None:
        self.refusals.append((action, who))

    def set_paused(self, paused: bool, by: str) -> str:
        self.paused.append((paused, by))
        return "paused" if paused else "resumed"


def run_bot(fake: FakeTelegramAPI, backend: Backend, scenario: Callable[[TelegramBot], Awaitable[None]], *,
            limit: int = 5, concurrency: int = 2, capacity: int = 10) -> TelegramBot:
    """Start a real PTB bot against ``fake``, run ``scenario``, stop it."""

    async def main() -> TelegramBot:
        app = build_application(TOKEN, base_url=fake.base_url, read_timeout=5)
        bot = TelegramBot(app, backend, Access(frozenset({ALICE, BOB}), frozenset(), {ALICE: "alice"}),
                          limiter=RateLimiter(limit, 600), queue=BriefQueue(concurrency, capacity),
                          review_chat_id=-100)
        await bot.start(poll_timeout=0.2)
        try:
            await scenario(bot)
        finally:
            await bot.stop(drain_s=5)
        return bot

    return asyncio.run(main())


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting for the bot")


def test_commands_are_routed_and_the_menu_is_published() -> None:
    backend = Backend()
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            fake.user_message(ALICE, "/top")
            fake.user_message(ALICE, "/narratives")
            fake.user_message(ALICE, "/price $sol")
            fake.user_message(ALICE, "/price")
            fake.user_message(ALICE, "/price $NOPE")
            fake.user_message(ALICE, "/sources")
            fake.user_message(ALICE, "/help")
            await until(lambda: len(fake.sent_to(ALICE)) >= 7)

        run_bot(fake, backend, scenario)
        texts = [m.text for m in fake.sent_to(ALICE)]
    assert texts[0].startswith("<b>Top</b>")
    assert texts[1].startswith("<b>Narratives</b>")
    assert texts[2] == "SOL $100.00"
    assert texts[3].startswith("Usage: /price")
    assert texts[4] == "⚠️ no price snapshot for NOPE"
    assert texts[5] == "coindesk ok"
    assert "/brief" in texts[6] and "/price" in texts[6]
    assert {c["command"] for c in fake.commands} >= {"brief", "top", "narratives", "price", "sources", "help"}
    assert all(m.params.get("parse_mode") == "HTML" for m in fake.sent_to(ALICE))


def test_brief_is_acknowledged_then_answered_with_its_arguments() -> None:
    backend = Backend()
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            backend.gate.clear()
            fake.user_message(ALICE, "/brief $sol")
            ack = await until(lambda: fake.sent_to(ALICE))
            assert ack[0].text == "On it: a brief on $SOL (starting now)."
            assert backend.briefs == []  # acknowledged before the brief was written
            backend.gate.set()
            await until(lambda: len(fake.sent_to(ALICE)) >= 2)
            fake.user_message(BOB, "/brief liquid restaking")
            await until(lambda: len(fake.sent_to(BOB)) >= 2)

        bot = run_bot(fake, backend, scenario)
        answer = fake.sent_to(ALICE)[1].text
    assert answer.startswith("<b>Brief: SOL</b>") and answer.endswith("<i>data brief</i>")
    assert backend.briefs == [(None, "SOL", "telegram:111 (@user111)"),
                              ("liquid restaking", None, "telegram:222 (@user222)")]
    assert bot.answered == 2


def test_unknown_user_is_refused_once_then_silently_and_backend_never_called() -> None:
    backend = Backend()
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            for _ in range(10):
                fake.user_message(MALLORY, "/brief $SOL")
            fake.user_message(MALLORY, "/top")
            await until(lambda: bot.refused >= 11 and fake.pending_updates() == 0)

        bot = run_bot(fake, backend, scenario)
        texts = [m.text for m in fake.sent_to(MALLORY)]
    assert texts == ["Sorry, this bot answers only its configured users and chats."]  # no amplification
    assert backend.briefs == [] and bot.refused == 11 and bot.refusals.silenced == 10


def test_per_user_rate_limit_refuses_with_a_clear_reply() -> None:
    backend = Backend()
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            for _ in range(3):
                fake.user_message(BOB, "/brief")
            fake.user_message(ALICE, "/brief")  # another user is not affected
            await until(lambda: len(fake.sent_to(BOB)) >= 5 and len(fake.sent_to(ALICE)) >= 2)

        run_bot(fake, backend, scenario, limit=2)
        bob = [m.text for m in fake.sent_to(BOB)]
    assert sum(t.startswith("On it") for t in bob) == 2
    assert sum(t.startswith("You have asked for several briefs recently") for t in bob) == 1
    assert len(backend.briefs) == 3


def test_full_queue_refuses_and_nothing_accepted_is_lost() -> None:
    backend = Backend()
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            backend.gate.clear()
            for _ in range(4):
                fake.user_message(ALICE, "/brief")
            await until(lambda: len(fake.sent_to(ALICE)) >= 4)
            backend.gate.set()
            await until(lambda: len(backend.briefs) >= 3 and len(fake.sent_to(ALICE)) >= 7)

        run_bot(fake, backend, scenario, concurrency=1, capacity=2)
        texts = [m.text for m in fake.sent_to(ALICE)]
    acks = [t for t in texts if t.startswith("On it")]
    assert acks == ["On it: a brief on the market (starting now).", "On it: a brief on the market (1 ahead of you).",
                    "On it: a brief on the market (2 ahead of you)."]
    assert sum(t.startswith("The brief queue is full") for t in texts) == 1
    assert sum(t.startswith("<b>Brief: market") for t in texts) == 3


def test_budget_or_llm_errors_become_a_reply() -> None:
    backend = Backend()
    backend.fail_brief = LLMError("daily LLM budget of $1.00 reached; try again tomorrow")
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            fake.user_message(ALICE, "/brief")
            await until(lambda: len(fake.sent_to(ALICE)) >= 2)

        run_bot(fake, backend, scenario)
        texts = [m.text for m in fake.sent_to(ALICE)]
    assert texts[1] == "⚠️ daily LLM budget of $1.00 reached; try again tomorrow"


def test_malformed_and_unknown_updates_are_ignored() -> None:
    backend = Backend()
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            fake.push_update({"edited_channel_post": {"weird": True}})
            fake.push_update({"message": {"message_id": 5, "date": 0, "chat": {"id": ALICE, "type": "private"},
                                          "text": "hello, no sender"}})
            fake.push_update({"poll": {"id": "p"}})
            fake.user_message(ALICE, "not a command")
            fake.user_message(ALICE, "/unknowncommand")
            fake.user_message(ALICE, "/top")
            await until(lambda: fake.sent_to(ALICE))
            await until(lambda: fake.pending_updates() == 0)

        run_bot(fake, backend, scenario)
        assert [m.text for m in fake.sent_to(ALICE)] == ["<b>Top</b>\n1. SOL"]


def test_pause_needs_a_reviewer() -> None:
    backend = Backend()
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            fake.user_message(BOB, "/pause")
            fake.user_message(ALICE, "/pause")
            await until(lambda: fake.sent_to(BOB) and fake.sent_to(ALICE))

        run_bot(fake, backend, scenario)
        assert fake.sent_to(BOB)[0].text == "Only reviewers can pause or resume posting."
    assert backend.paused == [(True, "telegram:111 (@user111)")]  # the id, stable; the username as shown
    assert backend.refusals == [("pause", "telegram:222 (@user222)")]


@pytest.mark.parametrize(("args", "expected"), [
    ([], (None, None)), (["$sol"], (None, "SOL")), (["sol"], ("sol", None)),
    (["liquid", "restaking"], ("liquid restaking", None)), (["$SOL", "ETF"], ("$SOL ETF", None)),
])
def test_brief_arguments(args: list[str], expected: tuple[str | None, str | None]) -> None:
    assert parse_brief_args(args) == expected


def test_split_html_keeps_lines_whole_and_under_the_limit() -> None:
    text = "\n".join(f"• line {i} <a href=\"https://e.com/{i}\">[{i}]</a>" for i in range(400))
    parts = split_html(text, 4096)
    assert all(len(p) <= 4096 for p in parts) and len(parts) > 1
    assert "\n".join(parts) == text


def test_a_long_answer_arrives_whole_in_valid_parts_even_when_one_part_is_refused() -> None:
    """A tag spanning lines used to be cut with the line split: Telegram refused the part and the rest never went."""
    backend = Backend()
    lines = [f"• line {i}: ETF flows &amp; <a href=\"https://e.com/{i}\">source {i}</a>" for i in range(200)]
    lines[150] = "• POISON line the API refuses"
    backend.brief_html = "<b>Brief</b>\n<blockquote>" + "\n".join(lines) + "</blockquote>\n<i>end of brief</i>"
    with serving_telegram() as fake:
        fake.refuse("sendMessage", "POISON")

        async def scenario(bot: TelegramBot) -> None:
            fake.user_message(ALICE, "/brief")
            await until(lambda: any("end of brief" in m.text for m in fake.sent_to(ALICE)))

        run_bot(fake, backend, scenario)
        parts = [m.text for m in fake.sent_to(ALICE)][1:]  # after the acknowledgement
    expected = split_html(backend.brief_html)
    assert len(expected) >= 3
    assert all(p.count("<blockquote>") == p.count("</blockquote>") for p in parts)
    assert parts == [p for p in expected if "POISON" not in p]  # only the refused part is missing
    assert "line 0:" in parts[0] and "line 199:" in parts[-1]


def test_webhook_mode_registers_and_accepts_only_telegram_calls() -> None:
    import json
    import socket
    import urllib.error
    import urllib.request

    from tapewatch.bot.telegram import Webhook

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = Backend()
    with serving_telegram() as fake:
        async def main() -> None:
            app = build_application(TOKEN, base_url=fake.base_url, read_timeout=5)
            bot = TelegramBot(app, backend, Access(frozenset({ALICE}), frozenset(), {}),
                              limiter=RateLimiter(5, 60), queue=BriefQueue(1, 5))
            await bot.start(webhook=Webhook("https://bot.example.org/tw/hook", "127.0.0.1", port))
            try:
                registered = fake.calls("setWebhook")[-1].params
                assert registered["url"] == "https://bot.example.org/tw/hook"
                assert registered["secret_token"] == bot.webhook_secret
                update = {"update_id": 1, "message": {
                    "message_id": 1, "date": 0, "chat": {"id": ALICE, "type": "private"},
                    "from": {"id": ALICE, "is_bot": False, "first_name": "a"}, "text": "/top",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 4}]}}

                def post(secret: str) -> int:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}/tw/hook", data=json.dumps(update).encode(),
                        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
                    try:
                        with urllib.request.urlopen(request, timeout=5) as answer:
                            return int(answer.status)
                    except urllib.error.HTTPError as exc:
                        return exc.code

                fake.add_chat(ALICE)
                assert await asyncio.to_thread(post, "forged") == 403
                assert await asyncio.to_thread(post, str(bot.webhook_secret)) == 200
                await until(lambda: fake.sent_to(ALICE))
            finally:
                await bot.stop(drain_s=1)

        asyncio.run(main())
        assert [m.text for m in fake.sent_to(ALICE)] == ["<b>Top</b>\n1. SOL"]  # the forged call did nothing
