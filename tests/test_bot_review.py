"""Review buttons in Telegram: real PTB application against the fake Bot API, a state-keeping desk."""

from __future__ import annotations

import asyncio
from typing import Any

from sources.errors import PublishError
from tapewatch.bot.limits import BriefQueue, RateLimiter
from tapewatch.bot.review import Card, Outcome, ReviewBot, callback_data, parse_callback
from tapewatch.bot.telegram import Access, TelegramBot, build_application
from tests.fakes.telegram_api import TOKEN, FakeTelegramAPI, serving_telegram
from tests.test_bot import ALICE, BOB, MALLORY, Backend, until

REVIEW_CHAT = -1001


class Desk:
    """Drafts with statuses and an audit list, enforcing the transitions the real review queue enforces."""

    def __init__(self) -> None:
        self.status = {"a" * 32: "pending", "f" * 32: "flagged"}
        self.text = {"a" * 32: "SOL leads", "f" * 32: "Flagged text"}
        self.audit: list[tuple[str, str, str]] = []

    def card(self, draft_id: str) -> Card:
        status = self.status[draft_id]
        actions = {"pending": ("approve", "reject", "edit"), "flagged": ("reject", "edit"),
                   "approved": ("reject", "publish"), }.get(status, ())
        return Card(draft_id, f"<b>{status}</b> {self.text[draft_id]}", actions)

    def act(self, draft_id: str, action: str, reviewer: str, *, text: str | None = None,
            reason: str | None = None) -> Outcome:
        status = self.status[draft_id]
        if action == "edit":
            new_id = f"{len(self.status):032d}"
            self.status[new_id] = "pending"
            self.text[new_id] = text or ""
            self.audit.append((draft_id, "edit", reviewer))
            return Outcome(f"Saved as a new version {new_id[:8]}.", new_id)
        target = {"approve": "approved", "override": "approved", "reject": "rejected", "publish": "published"}[action]
        if status == target:
            return Outcome(f"Already {target}.", draft_id, changed=False)
        if status == "flagged" and action == "approve":
            raise PublishError("draft is flagged: use /override <id> <reason>")
        self.status[draft_id] = target
        self.audit.append((draft_id, action, reviewer + (f" ({reason})" if reason else "")))
        return Outcome(target.capitalize() + ".", draft_id)

    def refused(self, draft_id: str, action: str, who: str) -> None:
        self.audit.append((draft_id, f"refused:{action}", who))


def run_review(fake: FakeTelegramAPI, desk: Desk, scenario: Any) -> None:
    async def main() -> None:
        app = build_application(TOKEN, base_url=fake.base_url, read_timeout=5)
        access = Access(frozenset({BOB}), frozenset(), {ALICE: "alice"}, frozenset({REVIEW_CHAT}))
        bot = TelegramBot(app, Backend(), access, limiter=RateLimiter(5, 60), queue=BriefQueue(1, 5),
                          review_chat_id=REVIEW_CHAT)
        review = ReviewBot(app, desk, access, REVIEW_CHAT)
        fake.add_chat(REVIEW_CHAT)
        await bot.start(poll_timeout=0.2)
        try:
            await scenario(review)
        finally:
            await bot.stop(drain_s=2)

    asyncio.run(main())


def test_card_buttons_approve_and_double_tap_is_idempotent() -> None:
    desk = Desk()
    draft = "a" * 32
    with serving_telegram() as fake:
        async def scenario(review: ReviewBot) -> None:
            card_id = await review.post_card(draft)
            markup = fake.message(card_id).params["reply_markup"]  # type: ignore[union-attr]
            datas = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
            assert datas == [callback_data(a, draft) for a in ("approve", "reject", "edit")]
            fake.user_callback(ALICE, card_id, callback_data("approve", draft))
            fake.user_callback(ALICE, card_id, callback_data("approve", draft))
            await until(lambda: len(fake.answered) >= 2)
            await until(lambda: fake.message(card_id).text.startswith("<b>approved"))  # type: ignore[union-attr]

        run_review(fake, desk, scenario)
        assert [a["text"] for a in fake.answered] == ["Approved.", "Already approved."]
    assert desk.status[draft] == "approved"
    assert desk.audit == [(draft, "approve", "alice")]


def test_non_reviewer_is_refused_politely_and_audited() -> None:
    desk = Desk()
    draft = "a" * 32
    with serving_telegram() as fake:
        async def scenario(review: ReviewBot) -> None:
            card_id = await review.post_card(draft)
            fake.user_callback(MALLORY, card_id, callback_data("approve", draft))
            fake.user_callback(BOB, card_id, callback_data("publish", draft))
            await until(lambda: len(fake.answered) >= 2)

        run_review(fake, desk, scenario)
        assert all(a["text"] == "Sorry, only reviewers can act on drafts." for a in fake.answered)
    assert desk.status[draft] == "pending"
    assert desk.audit == [(draft, "refused:approve", "telegram:666 (@user666)"),
                          (draft, "refused:publish", "telegram:222 (@user222)")]


def test_stale_or_forged_buttons_are_answered_without_action() -> None:
    desk = Desk()
    with serving_telegram() as fake:
        async def scenario(review: ReviewBot) -> None:
            card_id = await review.post_card("a" * 32)
            fake.user_callback(ALICE, card_id, "rv|delete|" + "a" * 32)
            fake.user_callback(ALICE, card_id, "rv|approve|../../etc")
            await until(lambda: len(fake.answered) >= 2)

        run_review(fake, desk, scenario)
        assert [a["text"] for a in fake.answered] == ["This button is no longer valid."] * 2
    assert desk.audit == []
    assert parse_callback(None) is None and parse_callback("rv|approve|abc") == ("approve", "abc")


def test_edit_flow_creates_a_new_version_with_its_own_card() -> None:
    desk = Desk()
    draft = "a" * 32
    with serving_telegram() as fake:
        async def scenario(review: ReviewBot) -> None:
            card_id = await review.post_card(draft)
            fake.user_callback(ALICE, card_id, callback_data("edit", draft))
            prompt = await until(lambda: [m for m in fake.sent_to(REVIEW_CHAT) if "Reply to this message" in m.text])
            assert prompt[0].params["reply_markup"]["force_reply"] is True
            fake.user_message(BOB, "hijack", chat_id=REVIEW_CHAT, reply_to=prompt[0].message_id)
            await until(lambda: any("Only the reviewer who asked" in m.text for m in fake.sent_to(REVIEW_CHAT)))
            fake.user_message(ALICE, "SOL leads; ETH lags", chat_id=REVIEW_CHAT, reply_to=prompt[0].message_id)
            await until(lambda: any(m.text.endswith("SOL leads; ETH lags") for m in fake.sent_to(REVIEW_CHAT)))

        run_review(fake, desk, scenario)
        texts = [m.text for m in fake.sent_to(REVIEW_CHAT)]
    new_id = f"{2:032d}"
    assert desk.status[new_id] == "pending" and desk.text[new_id] == "SOL leads; ETH lags"
    assert desk.status[draft] == "pending"  # the original is kept
    assert any(t.startswith("Saved as a new version") for t in texts)
    assert desk.audit == [(draft, "refused:edit", "telegram:222 (@user222)"), (draft, "edit", "alice")]


def test_flagged_draft_needs_override_with_reason() -> None:
    desk = Desk()
    flagged = "f" * 32
    with serving_telegram() as fake:
        async def scenario(review: ReviewBot) -> None:
            card_id = await review.post_card(flagged)
            buttons = fake.message(card_id).params["reply_markup"]["inline_keyboard"]  # type: ignore[union-attr]
            assert "approve" not in str(buttons)
            fake.user_callback(ALICE, card_id, callback_data("approve", flagged))  # forged: not on the card
            await until(lambda: fake.answered)
            fake.user_message(ALICE, f"/override {flagged}", chat_id=REVIEW_CHAT)
            fake.user_message(MALLORY, f"/override {flagged} because", chat_id=REVIEW_CHAT)
            fake.user_message(ALICE, f"/override {flagged} price checked by hand", chat_id=REVIEW_CHAT)
            await until(lambda: len(fake.sent_to(REVIEW_CHAT)) >= 4)

        run_review(fake, desk, scenario)
        texts = [m.text for m in fake.sent_to(REVIEW_CHAT)][1:]
        assert fake.answered[0]["text"].startswith("draft is flagged")
    assert texts == ["Usage: /override <draft id> <reason>", "Only reviewers can override a flagged draft.",
                     "Approved."]
    assert desk.audit[-1] == (flagged, "override", "alice (price checked by hand)")
