"""Telegram's own failure modes: 409 Conflict, button taps that must be answered, unreadable webhook updates."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.error
import urllib.request

import pytest

from tapewatch.bot.limits import BriefQueue, RateLimiter
from tapewatch.bot.review import Card, Outcome, ReviewBot, callback_data
from tapewatch.bot.telegram import Access, TelegramBot, Webhook, build_application
from tests.fakes.telegram_api import TOKEN, serving_telegram
from tests.test_bot import ALICE, Backend, run_bot, until
from tests.test_bot_review import Desk, run_review

WEBHOOK_SET = ("Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
               "webhook first")
TWO_POLLERS = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"


def test_a_409_conflict_is_one_line_with_its_cause_one_notice_and_backoff(caplog: pytest.LogCaptureFixture) -> None:
    backend = Backend()
    with serving_telegram() as fake:
        fake.add_chat(-100)  # run_bot's review chat
        fake.fail_next("getUpdates", 409, description=WEBHOOK_SET)
        fake.fail_next("getUpdates", 409, description=TWO_POLLERS)

        async def scenario(bot: TelegramBot) -> None:
            await until(lambda: len(fake.calls("getUpdates")) >= 3)
            fake.user_message(ALICE, "/top")
            await until(lambda: fake.sent_to(ALICE))

        with caplog.at_level(logging.INFO):
            run_bot(fake, backend, scenario)
        polls = [r.at for r in fake.calls("getUpdates")]
        notices = [m.text for m in fake.sent_to(-100)]
    lines = [r for r in caplog.records if "409 Conflict" in r.getMessage() and r.name.startswith("tapewatch")]
    assert len(lines) == 2 and all("\n" not in r.getMessage() and r.exc_info is None for r in lines)
    assert "a webhook is set for this bot token" in lines[0].getMessage()
    assert "another process is polling Telegram with the same bot token" in lines[1].getMessage()
    assert not [r for r in caplog.records if r.exc_info]  # no traceback at all, let alone one per retry
    assert len(notices) == 1 and "cannot receive Telegram updates" in notices[0]  # once per episode
    assert polls[1] - polls[0] >= 0.9 and polls[2] - polls[1] >= 1.4  # backoff between the retries
    assert any("receiving Telegram updates again" in r.getMessage() for r in caplog.records)
    assert [m.text for m in fake.sent_to(ALICE)] == ["<b>Top</b>\n1. SOL"]  # and then it works


class CrashingDesk(Desk):
    """A desk that fails on one draft with an error that is not the project's (a bug, a lost database)."""

    def act(self, draft_id: str, action: str, reviewer: str, *, text: str | None = None,
            reason: str | None = None) -> Outcome:
        if draft_id == "c" * 32:
            raise RuntimeError("database disk image is malformed")
        return super().act(draft_id, action, reviewer, text=text, reason=reason)

    def card(self, draft_id: str) -> Card:
        return Card(draft_id, "<b>card</b>", ("approve",)) if draft_id == "c" * 32 else super().card(draft_id)


def test_every_button_tap_is_answered_even_stale_foreign_or_failing_ones() -> None:
    desk = CrashingDesk()
    with serving_telegram() as fake:
        async def scenario(review: ReviewBot) -> None:
            card_id = await review.post_card("a" * 32)
            crash_id = await review.post_card("c" * 32)
            fake.user_callback(ALICE, card_id, "somebody-elses|button")  # foreign: not ours at all
            fake.user_callback(ALICE, card_id, callback_data("approve", "9" * 32))  # stale: no such draft
            fake.user_callback(ALICE, crash_id, callback_data("approve", "c" * 32))  # the desk crashes
            fake.user_callback(ALICE, card_id, callback_data("approve", "a" * 32))
            await until(lambda: len(fake.answered) >= 4)
            await asyncio.sleep(0.3)  # nothing is answered twice

        run_review(fake, desk, scenario)
        answers = [a["text"] for a in fake.answered]
    assert answers == ["This button is no longer valid.", "Something went wrong; the draft is unchanged.",
                       "Something went wrong; the draft is unchanged.", "Approved."]


def test_button_taps_are_answered_when_the_bot_has_no_review_desk() -> None:
    with serving_telegram() as fake:
        async def scenario(bot: TelegramBot) -> None:
            fake.user_message(ALICE, "/top")
            message = (await until(lambda: fake.sent_to(ALICE)))[0]
            fake.user_callback(ALICE, message.message_id, callback_data("approve", "a" * 32))
            await until(lambda: fake.answered)

        run_bot(fake, Backend(), scenario)
        assert [a["text"] for a in fake.answered] == ["This button is no longer valid."]


def test_webhook_skips_unreadable_updates_with_200_and_a_warning_without_the_body(
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = Backend()
    secret_text = "PRIVATE-MESSAGE-TEXT"  # what a user wrote must never reach the log
    with serving_telegram() as fake:
        fake.add_chat(ALICE)

        async def main() -> list[int]:
            app = build_application(TOKEN, base_url=fake.base_url, read_timeout=5)
            bot = TelegramBot(app, backend, Access(frozenset({ALICE}), frozenset(), {}),
                              limiter=RateLimiter(5, 60), queue=BriefQueue(1, 5))
            await bot.start(webhook=Webhook("https://bot.example.org/tw/hook", "127.0.0.1", port))

            def post(body: bytes, secret: str | None = None) -> int:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/tw/hook", data=body,
                    headers={"Content-Type": "application/json",
                             "X-Telegram-Bot-Api-Secret-Token": secret or str(bot.webhook_secret)})
                try:
                    with urllib.request.urlopen(request, timeout=5) as answer:
                        return int(answer.status)
                except urllib.error.HTTPError as exc:
                    return exc.code

            top = {"update_id": 3, "message": {
                "message_id": 1, "date": 0, "chat": {"id": ALICE, "type": "private"},
                "from": {"id": ALICE, "is_bot": False, "first_name": "a"}, "text": "/top",
                "entities": [{"type": "bot_command", "offset": 0, "length": 4}]}}
            broken = {"update_id": 2, "message": {"message_id": "x", "chat": "nope", "text": secret_text}}
            try:
                statuses = [await asyncio.to_thread(post, json.dumps(broken).encode()),
                            await asyncio.to_thread(post, f"not json {secret_text}".encode()),
                            await asyncio.to_thread(post, json.dumps(top).encode()),
                            await asyncio.to_thread(post, json.dumps(top).encode(), "forged")]
                await until(lambda: fake.sent_to(ALICE))
            finally:
                await bot.stop(drain_s=1)
            return statuses

        with caplog.at_level(logging.DEBUG):
            statuses = asyncio.run(main())
        assert [m.text for m in fake.sent_to(ALICE)] == ["<b>Top</b>\n1. SOL"]
    assert statuses == [200, 200, 200, 403]  # Telegram would resend a refused update forever
    skipped = [r.getMessage() for r in caplog.records if "webhook: skipped" in r.getMessage()]
    assert len(skipped) == 2 and "update 2 " in skipped[0] and "without an id" in skipped[1]
    assert not [r for r in caplog.records if secret_text in r.getMessage()]
    assert all(r.levelno < logging.ERROR for r in caplog.records)
