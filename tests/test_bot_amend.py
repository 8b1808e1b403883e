"""Correct and Retract buttons in Telegram: the real desk, amender, review queue and publish run, on fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from memory.state import StateDB
from publish.audit import AuditLog
from tapewatch.bot.desk import QueueDesk
from tapewatch.bot.limits import BriefQueue, RateLimiter
from tapewatch.bot.review import ReviewBot, callback_data
from tapewatch.bot.telegram import Access, TelegramBot, build_application
from tapewatch.clients import amender, delivery, publish_channels, review_queue
from tests.fakes.publishing import add_draft, make_settings
from tests.fakes.telegram_api import CHANNEL_ID, TOKEN, FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import ME_ID, serving_x
from tests.test_bot import ALICE, MALLORY, Backend, until

REVIEW_CHAT = -1003
FIX = "solana validators ship the new client next week, not this week"


def _prompt(fake: FakeTelegramAPI) -> int:
    return [m for m in fake.sent_to(REVIEW_CHAT) if m.text.startswith("Reply to this message")][-1].message_id


def test_correct_and_retract_buttons_go_out_through_the_publish_run(tmp_path: Path) -> None:
    with serving_x() as x, serving_telegram() as fake:
        settings = make_settings(tmp_path, x.base_url, fake.base_url)
        (tmp_path / "data").mkdir()
        state = StateDB(settings.state_url)
        queue = review_queue(settings, state, via="telegram")
        draft = add_draft(state, "a", posts=2)
        queue.approve(draft.id, "alice")

        def publish_run() -> None:
            report = asyncio.run(delivery(settings, state, publish_channels(settings), via="daemon").run())
            assert not report.errors, report.errors

        publish_run()
        first = x.posts_by(ME_ID)[0]
        kicks: list[int] = []
        desk = QueueDesk(queue, publish_soon=lambda: kicks.append(1), amender=amender(settings, queue))
        assert desk.card(draft.id).actions == ("correct", "retract")
        fake.add_chat(REVIEW_CHAT)

        async def session(steps: list[tuple[int, str, str | None]]) -> list[str]:
            app = build_application(TOKEN, base_url=fake.base_url, read_timeout=5)
            access = Access(frozenset(), frozenset(), {ALICE: "alice"}, frozenset({REVIEW_CHAT}))
            bot = TelegramBot(app, Backend(), access, limiter=RateLimiter(5, 60), queue=BriefQueue(1, 1))
            review = ReviewBot(app, desk, access, REVIEW_CHAT)
            await bot.start(poll_timeout=0.2)
            try:
                card = await review.post_card(draft.id)
                for user, action, reply in steps:
                    answered = len(fake.answered)
                    fake.user_callback(user, card, callback_data(action, draft.id))
                    await until(lambda: len(fake.answered) > answered)  # noqa: B023
                    if reply is not None:
                        sent = len(fake.sent_to(REVIEW_CHAT))
                        fake.user_message(user, reply, chat_id=REVIEW_CHAT, reply_to=_prompt(fake))
                        await until(lambda: len(fake.sent_to(REVIEW_CHAT)) > sent)  # noqa: B023
                        await until(lambda: "queued" in fake.sent_to(REVIEW_CHAT)[-1].text
                                    or "not saved" in fake.sent_to(REVIEW_CHAT)[-1].text)
            finally:
                await bot.stop(drain_s=1)
            return [str(a.get("text")) for a in fake.answered]

        answers = asyncio.run(session([(MALLORY, "correct", None), (ALICE, "correct", FIX)]))
        assert answers[0] == "Sorry, only reviewers can act on drafts."
        assert "Correction queued; it goes out now." in fake.sent_to(REVIEW_CHAT)[-1].text and kicks == [1]
        publish_run()  # what publish_soon starts in the daemon
        replies = [p for p in x.posts_by(ME_ID) if p.in_reply_to == first.id and "Correction" in p.text]
        assert len(replies) == 1 and FIX in replies[0].text
        assert next(m for m in fake.sent_to(CHANNEL_ID) if FIX in m.text).params["reply_parameters"]
        publish_run()  # a later run does not post it again
        assert len([p for p in x.posts_by(ME_ID) if "Correction" in p.text]) == 1

        asyncio.run(session([(ALICE, "retract", "the date was wrong")]))
        assert "Retraction queued" in fake.sent_to(REVIEW_CHAT)[-1].text
        publish_run()
        assert x.posts_by(ME_ID) == []  # the thread and the correction under it are gone
        assert len(fake.deleted) == 2 and queue.drafts.get(draft.id).status == "retracted"
        trail = [(e.actor, e.action) for e in AuditLog(state.engine).for_draft(draft.id)]
        assert ("telegram:666 (@user666)", "refused") in trail and ("alice", "retract") in trail
        assert ("alice", "correction_queued") in trail and ("alice", "retraction_queued") in trail
        state.close()
