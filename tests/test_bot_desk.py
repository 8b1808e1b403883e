"""The Telegram review desk over the real review queue and audit log, driven by button taps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from crew.model import Problem, ValidationReport
from memory.drafts import Draft
from memory.state import StateDB
from publish.audit import AuditLog
from publish.review import ReviewError, ReviewQueue
from tapewatch.bot.desk import QueueDesk, card_html
from tapewatch.bot.limits import BriefQueue, RateLimiter
from tapewatch.bot.review import ReviewBot, callback_data
from tapewatch.bot.telegram import Access, TelegramBot, build_application
from tests.fakes.telegram_api import TOKEN, serving_telegram
from tests.test_bot import ALICE, MALLORY, Backend, until

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REVIEW_CHAT = -1002


def draft(status: str = "pending", problems: tuple[Problem, ...] = ()) -> Draft:
    report = ValidationReport(problems, checked_at=NOW)
    return Draft(created_at=NOW, mode="data", window_start=NOW - timedelta(hours=24), window_end=NOW,
                 x_thread=("SOL leads attention today [1]",), telegram_html="<b>SOL</b> leads <i>attention</i>",
                 markdown="**SOL** leads", item_ids=(), tickers=("SOL",), status=status,
                 validation=report.to_dict(), meta={"cost_usd": 0.0123, "models": ["openai/gpt-4o-mini"]})


@pytest.fixture
def desk(state_url: str) -> QueueDesk:
    state = StateDB(state_url)
    kicks: list[int] = []
    d = QueueDesk(ReviewQueue(state, reviewers=["alice"], via="telegram"), publish_soon=lambda: kicks.append(1))
    d.kicks = kicks  # type: ignore[attr-defined]
    return d


def test_card_shows_status_report_cost_and_the_right_buttons(desk: QueueDesk) -> None:
    store = desk.queue.drafts
    ok = store.save(draft())
    flagged = store.save(draft("flagged", (Problem("price_mismatch", "ETH $33,000 matches no snapshot"),)))
    card = desk.card(ok.id)
    assert card.actions == ("approve", "reject", "edit")
    assert "✅ Grounding" in card.html and "Cost $0.0123" in card.html and card.html.endswith(ok.telegram_html)
    fcard = desk.card(flagged.id)
    assert fcard.actions == ("reject", "edit")
    assert "ETH $33,000 matches no snapshot" in fcard.html and f"/override {flagged.id[:12]}" in fcard.html
    long = store.save(draft())
    text = "\n".join(f"• line {i}" for i in range(1500))
    assert len(card_html(Draft(**{**long.__dict__, "telegram_html": text}))) <= 4096


def test_actions_go_through_the_queue_and_audit(desk: QueueDesk) -> None:
    d = desk.queue.drafts.save(draft())
    assert desk.act(d.id, "approve", "alice").message == "Approved."
    assert desk.act(d.id, "approve", "alice").message == "Already approved."
    assert desk.act(d.id, "publish", "alice").message == "Publishing now."
    assert desk.kicks == [1]  # type: ignore[attr-defined]
    assert desk.queue.scheduled([d.id])[d.id] <= datetime.now(UTC)
    with pytest.raises(ReviewError, match="not a reviewer"):
        desk.act(d.id, "reject", "mallory")
    with pytest.raises(ReviewError, match="no draft"):
        desk.act("f" * 32, "approve", "alice")
    desk.refused(d.id, "approve", "telegram:mallory")
    actions = [(e.actor, e.via, e.action) for e in AuditLog(desk.queue.state.engine).for_draft(d.id)]
    assert actions == [("alice", "telegram", "approve"), ("alice", "telegram", "scheduled"),
                       ("telegram:mallory", "telegram", "refused")]


def test_flagged_needs_override_and_edit_revalidates(desk: QueueDesk) -> None:
    flagged = desk.queue.drafts.save(draft("flagged", (Problem("unknown_ticker", "$FROG is in no cited item"),)))
    with pytest.raises(ReviewError, match="cannot be approved as it is"):
        desk.act(flagged.id, "approve", "alice")
    with pytest.raises(ReviewError, match="needs a reason"):
        desk.act(flagged.id, "override", "alice", reason=" ")
    edited = desk.act(flagged.id, "edit", "alice", text="<b>SOL</b> leads; no frog")
    new = desk.queue.drafts.get(edited.draft_id)
    assert new.version == 2 and new.parent_id == flagged.id and new.telegram_html == "<b>SOL</b> leads; no frog"
    assert desk.queue.drafts.get(flagged.id).status == "superseded"


def test_button_taps_end_to_end_through_telegram(desk: QueueDesk) -> None:
    d = desk.queue.drafts.save(draft())
    with serving_telegram() as fake:
        fake.add_chat(REVIEW_CHAT)

        async def main() -> None:
            app = build_application(TOKEN, base_url=fake.base_url, read_timeout=5)
            access = Access(frozenset(), frozenset(), {ALICE: "alice"}, frozenset({REVIEW_CHAT}))
            bot = TelegramBot(app, Backend(), access, limiter=RateLimiter(5, 60), queue=BriefQueue(1, 1))
            review = ReviewBot(app, desk, access, REVIEW_CHAT)
            await bot.start(poll_timeout=0.2)
            try:
                card = await review.post_card(d.id)
                fake.user_callback(MALLORY, card, callback_data("approve", d.id))
                fake.user_callback(ALICE, card, callback_data("approve", d.id))
                fake.user_callback(ALICE, card, callback_data("approve", d.id))
                await until(lambda: len(fake.answered) >= 3)
                await until(lambda: "<b>approved</b>" in fake.message(card).text)  # type: ignore[union-attr]
            finally:
                await bot.stop(drain_s=1)

        asyncio.run(main())
        answers = [a["text"] for a in fake.answered]
        buttons = str(fake.sent_to(REVIEW_CHAT)[0].params["reply_markup"])
    assert answers == ["Sorry, only reviewers can act on drafts.", "Approved.", "Already approved."]
    assert "publish" in buttons and "approve" not in buttons  # the card now offers Publish now / Reject
    audit = AuditLog(desk.queue.state.engine).for_draft(d.id)
    assert [(e.actor, e.action) for e in audit] == [("telegram:666 (@user666)", "refused"), ("alice", "approve")]
