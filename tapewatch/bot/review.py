"""Review in Telegram: draft cards with Approve / Reject / Edit / Publish now buttons for allowlisted reviewers.

Every action goes through a ``ReviewDesk`` (the same state machine and audit log as the CLI); the bot only
identifies the reviewer, answers every button tap, and keeps the card in the review chat up to date.
"""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sources.errors import TapewatchError
from tapewatch.bot.access import actor
from tapewatch.bot.limits import RefusalGate
from tapewatch.bot.messages import answer_query, fit_html, plain_text, send_html, send_part

if TYPE_CHECKING:
    from telegram import InlineKeyboardMarkup, Update
    from telegram.ext import Application, ContextTypes

    from tapewatch.bot.access import Access

log = logging.getLogger(__name__)

ACTIONS = ("approve", "reject", "edit", "publish", "correct", "retract")
# Buttons that ask the reviewer for text first (a reply to the bot's prompt): what the prompt says.
ASKS = {"edit": "the new Telegram text for draft {id}. It becomes a new version and is validated again before it "
                "can be approved.",
        "correct": "the correction of published draft {id}. It is checked like any draft, then posted once as a "
                   "reply under its X thread and its Telegram message.",
        "retract": "why published draft {id} is retracted. Its X posts and Telegram messages are then deleted."}
PREFIX = "rv"
MAX_CARD_ATTEMPTS = 3  # refusals of one draft's card before reviewers get a plain notice instead


@dataclass(frozen=True)
class Card:
    """A draft as shown to reviewers: Telegram HTML and which buttons make sense for its status."""

    draft_id: str
    html: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """The result of a reviewer's action: a short answer and the draft whose card to show next."""

    message: str
    draft_id: str
    changed: bool = True


class ReviewDesk(Protocol):
    """Review operations (blocking; they write the state DB and its audit log)."""

    def card(self, draft_id: str) -> Card:
        """The draft's review card."""
        ...

    def act(self, draft_id: str, action: str, reviewer: str, *, text: str | None = None,
            reason: str | None = None) -> Outcome:
        """Apply ``action`` (approve, reject, edit, publish, override) as ``reviewer`` from Telegram."""
        ...

    def refused(self, draft_id: str, action: str, who: str) -> None:
        """Audit an attempt by someone who is not a reviewer."""
        ...


class CardLog(Protocol):
    """Which drafts have a review card (``memory.switches.ReviewCards`` keeps it in the state DB)."""

    def posted(self, draft_ids: list[str]) -> set[str]:
        """The subset of ``draft_ids`` that already have a card."""
        ...

    def record(self, draft_id: str, chat_id: int | str, message_id: int) -> None:
        """Remember the card of ``draft_id``."""
        ...

    def message_of(self, draft_id: str) -> tuple[str, int] | None:
        """(chat id, message id) of the draft's card."""
        ...

    def failed(self, draft_id: str, error: str) -> int:
        """Record a refused card; how many times it has been refused now."""
        ...

    def given_up(self, draft_ids: list[str], attempts: int) -> set[str]:
        """The subset of ``draft_ids`` refused ``attempts`` times or more."""
        ...


class MemoryCards:
    """A ``CardLog`` for this process only (when no state DB is at hand)."""

    def __init__(self) -> None:
        self._cards: dict[str, tuple[str, int]] = {}
        self._failures: dict[str, int] = {}

    def posted(self, draft_ids: list[str]) -> set[str]:
        """The subset of ``draft_ids`` that already have a card."""
        return {d for d in draft_ids if d in self._cards}

    def record(self, draft_id: str, chat_id: int | str, message_id: int) -> None:
        """Remember the card of ``draft_id``."""
        self._cards[draft_id] = (str(chat_id), message_id)

    def message_of(self, draft_id: str) -> tuple[str, int] | None:
        """(chat id, message id) of the draft's card."""
        return self._cards.get(draft_id)

    def failed(self, draft_id: str, error: str) -> int:
        """Count a refused card."""
        self._failures[draft_id] = self._failures.get(draft_id, 0) + 1
        return self._failures[draft_id]

    def given_up(self, draft_ids: list[str], attempts: int) -> set[str]:
        """The subset of ``draft_ids`` refused ``attempts`` times or more."""
        return {d for d in draft_ids if self._failures.get(d, 0) >= attempts}


@dataclass
class CardRun:
    """What one round of posting review cards did."""

    posted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (draft id, why)
    stopped: str | None = None


def callback_data(action: str, draft_id: str) -> str:
    """Button payload (Telegram allows 64 bytes)."""
    return f"{PREFIX}|{action}|{draft_id}"


def parse_callback(data: str | None) -> tuple[str, str] | None:
    """(action, draft id) from a button payload, or None when it is not ours or malformed."""
    parts = (data or "").split("|")
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] not in ACTIONS or not parts[2].isalnum():
        return None
    return parts[1], parts[2]


def keyboard(card: Card) -> InlineKeyboardMarkup | None:
    """Inline buttons for the actions the card allows."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    labels = {"approve": "✅ Approve", "reject": "❌ Reject", "edit": "✏️ Edit", "publish": "🚀 Publish now",
              "correct": "📝 Correct", "retract": "🗑 Retract"}
    buttons = [InlineKeyboardButton(labels[a], callback_data=callback_data(a, card.draft_id))
               for a in ACTIONS if a in card.actions]
    if not buttons:
        return None
    return InlineKeyboardMarkup([buttons[:2], buttons[2:]] if len(buttons) > 2 else [buttons])


class ReviewBot:
    """Callback and reply handlers for reviewers, added to the bot's PTB application."""

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], desk: ReviewDesk, access: Access,
                 review_chat_id: int | str, *, cards: CardLog | None = None,
                 refusals: RefusalGate | None = None) -> None:
        self.app = app
        self.desk = desk
        self.access = access
        self.review_chat_id = review_chat_id
        self.cards: CardLog = cards if cards is not None else MemoryCards()
        self.refusals = refusals or RefusalGate(3600.0, 30)  # share the bot's, so strangers get one reply in all
        # (chat, prompt message) → (draft, user, action): a reply to the prompt carries the text the action needs.
        self._edits: dict[tuple[int, int], tuple[str, int, str]] = {}
        self._posting = asyncio.Lock()  # one card per draft: the card job and an edit never post the same twice
        self._install()

    def _install(self) -> None:
        from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

        self.app.add_handler(CallbackQueryHandler(self._on_button, pattern=rf"^{PREFIX}\|"))
        self.app.add_handler(CommandHandler("override", self._override))
        self.app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, self._on_reply))

    async def post_card(self, draft_id: str) -> int:
        """Send a draft's card to the review chat and remember it; returns the message id."""
        async with self._posting:
            return await self._post_card(draft_id)

    async def _post_card(self, draft_id: str) -> int:
        card = await asyncio.to_thread(self.desk.card, draft_id)
        message = await send_part(self.app.bot, self.review_chat_id, fit_html(card.html), keyboard(card))
        await asyncio.to_thread(self.cards.record, draft_id, self.review_chat_id, int(message.message_id))
        return int(message.message_id)

    async def post_new_cards(self, draft_ids: list[str], most: int) -> CardRun:
        """Post a card for each of these drafts that has none yet (up to ``most``), in order.

        A card Telegram refuses (or one that cannot be built) is recorded against its draft and the rest go on;
        after ``MAX_CARD_ATTEMPTS`` refusals the draft gets a plain notice instead. Telegram being unreachable
        ends the run without counting against any draft.
        """
        from telegram.error import BadRequest, Forbidden, TelegramError

        run = CardRun()
        async with self._posting:
            done = await asyncio.to_thread(self.cards.posted, draft_ids)
            done |= await asyncio.to_thread(self.cards.given_up, draft_ids, MAX_CARD_ATTEMPTS)
            for draft_id in (d for d in draft_ids if d not in done):
                if len(run.posted) >= most:
                    break
                try:
                    await self._post_card(draft_id)
                except (BadRequest, Forbidden) as exc:
                    await self._card_refused(draft_id, f"Telegram refused it: {exc}", run)
                except TelegramError as exc:  # not this draft's fault: every other card would fail the same way
                    run.stopped = f"Telegram unreachable: {exc}"
                    log.warning("review cards: %s; the rest wait for the next run", run.stopped)
                    break
                except Exception as exc:  # a draft the card cannot be built from must not block the others
                    await self._card_refused(draft_id, f"{type(exc).__name__}: {exc}", run)
                else:
                    run.posted.append(draft_id)
        return run

    async def _card_refused(self, draft_id: str, why: str, run: CardRun) -> None:
        attempts = await asyncio.to_thread(self.cards.failed, draft_id, why)
        run.failed.append((draft_id, why))
        log.warning("review card for draft %s not posted (attempt %d of %d): %s", draft_id[:12], attempts,
                    MAX_CARD_ATTEMPTS, why[:300])
        if attempts == MAX_CARD_ATTEMPTS:
            await send_html(self.app.bot, self.review_chat_id, html.escape(
                f"⚠️ Draft {draft_id[:12]} could not be shown here ({why[:300]}). Review it with "
                f"`tapewatch drafts show {draft_id[:12]}`."))

    async def refresh_card(self, chat_id: int | str, message_id: int, draft_id: str) -> None:
        """Show a card's current status and buttons (after an action, or once the draft is published)."""
        from telegram.constants import ParseMode
        from telegram.error import BadRequest

        card = await asyncio.to_thread(self.desk.card, draft_id)
        text = fit_html(card.html)
        for parse_mode in (ParseMode.HTML, None):
            try:
                await self.app.bot.edit_message_text(text if parse_mode else plain_text(text), chat_id=chat_id,
                                                     message_id=message_id, parse_mode=parse_mode,
                                                     reply_markup=keyboard(card), disable_web_page_preview=True)
                return
            except BadRequest as exc:  # "message is not modified" after a double tap, the card is gone, or
                log.info("review card %s not refreshed: %s", message_id, exc)  # refused as HTML: plain next
                if "parse" not in str(exc).lower():
                    return

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Every tap on a review button is answered exactly once, whatever happens; later handlers never see it."""
        from telegram.ext import ApplicationHandlerStop

        query = update.callback_query
        if query is None:
            return
        text, alert, refresh = "Something went wrong; the draft is unchanged.", True, None
        try:
            text, alert, refresh = await self._button(query)
        except Exception:  # answered all the same below; the fault is logged with its traceback
            log.exception("review button %r failed", str(query.data)[:64])
        await answer_query(query, text, alert=alert)
        if query.message is not None and refresh is not None:
            await self.refresh_card(query.message.chat.id, query.message.message_id, refresh)
        raise ApplicationHandlerStop

    async def _button(self, query: Any) -> tuple[str, bool, str | None]:
        """The answer to a tap (text, as an alert, the draft whose card to refresh); acting goes through the desk."""
        parsed = parse_callback(query.data)
        if parsed is None:
            return "This button is no longer valid.", False, None
        action, draft_id = parsed
        user = query.from_user
        reviewer = self.access.reviewer(user.id if user else None)
        if reviewer is None:
            await asyncio.to_thread(self.desk.refused, draft_id, action, actor(user))
            return "Sorry, only reviewers can act on drafts.", True, None
        if action in ASKS:
            await self._ask_for_text(draft_id, action, user.id, query.message.chat.id if query.message else None)
            return "Reply to my next message with the text.", False, None
        try:
            outcome = await asyncio.to_thread(self.desk.act, draft_id, action, reviewer)
        except TapewatchError as exc:
            return str(exc), True, None
        return outcome.message, False, outcome.draft_id if outcome.changed else None

    async def _ask_for_text(self, draft_id: str, action: str, user_id: int, chat_id: int | None) -> None:
        from telegram import ForceReply

        chat = chat_id if chat_id is not None else self.review_chat_id
        prompt = await self.app.bot.send_message(
            chat, "Reply to this message with " + ASKS[action].format(id=draft_id[:8]),
            reply_markup=ForceReply(selective=True, input_field_placeholder="New text" if action == "edit"
                                    else action.capitalize()))
        self._edits[(int(prompt.chat.id), int(prompt.message_id))] = (draft_id, user_id, action)

    async def _on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.reply_to_message is None or update.effective_user is None:
            return
        key = (int(message.chat.id), int(message.reply_to_message.message_id))
        pending = self._edits.get(key)
        if pending is None:
            return
        draft_id, user_id, action = pending
        reviewer = self.access.reviewer(update.effective_user.id)
        if update.effective_user.id != user_id or reviewer is None:
            await asyncio.to_thread(self.desk.refused, draft_id, action, actor(update.effective_user))
            if self.refusals.answer(("user", update.effective_user.id)):
                await message.reply_text(f"Only the reviewer who asked to {action} can send the text.")
            return
        self._edits.pop(key, None)
        words = {"text": message.text or ""} if action != "retract" else {"reason": message.text or ""}
        try:
            outcome = await asyncio.to_thread(self.desk.act, draft_id, action, reviewer, **words)
        except TapewatchError as exc:
            await message.reply_text(f"{action.capitalize()} not saved: {exc}")
            return
        await message.reply_text(outcome.message)
        if action != "edit":
            card = await asyncio.to_thread(self.cards.message_of, draft_id)
            if card is not None:
                await self.refresh_card(card[0], card[1], draft_id)
            return
        # The new version gets its one card here (recorded, so the card job never posts a second), and the
        # old version's card shows it is superseded.
        await self.post_new_cards([outcome.draft_id], 1)
        old = await asyncio.to_thread(self.cards.message_of, draft_id)
        if old is not None and outcome.draft_id != draft_id:
            await self.refresh_card(old[0], old[1], draft_id)

    async def _override(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/override <draft> <reason…>``: approve a flagged draft with a written reason."""
        message = update.effective_message
        user = update.effective_user
        if message is None:
            return
        reviewer = self.access.reviewer(user.id if user else None)
        args = context.args or []
        if reviewer is None:
            await asyncio.to_thread(self.desk.refused, args[0] if args else "", "override", actor(user))
            if self.refusals.answer(("user", user.id if user else None)):
                await message.reply_text("Only reviewers can override a flagged draft.")
            return
        if len(args) < 2:
            await message.reply_text("Usage: /override <draft id> <reason>")
            return
        try:
            outcome = await asyncio.to_thread(self.desk.act, args[0], "override", reviewer,
                                              reason=" ".join(args[1:]))
        except TapewatchError as exc:
            await message.reply_text(html.unescape(str(exc)))
            return
        await message.reply_text(outcome.message)
