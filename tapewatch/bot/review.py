"""Review in Telegram: draft cards with Approve / Reject / Edit / Publish now buttons for allowlisted reviewers.

Every action goes through a ``ReviewDesk`` (the same state machine and audit log as the CLI); the bot only
identifies the reviewer, answers every button tap, and keeps the card in the review chat up to date.
"""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from crew.render import TELEGRAM_LIMIT
from sources.errors import TapewatchError

if TYPE_CHECKING:
    from telegram import InlineKeyboardMarkup, Update
    from telegram.ext import Application, ContextTypes

    from tapewatch.bot.telegram import Access

log = logging.getLogger(__name__)

ACTIONS = ("approve", "reject", "edit", "publish")
PREFIX = "rv"


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

    labels = {"approve": "✅ Approve", "reject": "❌ Reject", "edit": "✏️ Edit", "publish": "🚀 Publish now"}
    buttons = [InlineKeyboardButton(labels[a], callback_data=callback_data(a, card.draft_id))
               for a in ACTIONS if a in card.actions]
    if not buttons:
        return None
    return InlineKeyboardMarkup([buttons[:2], buttons[2:]] if len(buttons) > 2 else [buttons])


class ReviewBot:
    """Callback and reply handlers for reviewers, added to the bot's PTB application."""

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], desk: ReviewDesk, access: Access,
                 review_chat_id: int | str) -> None:
        self.app = app
        self.desk = desk
        self.access = access
        self.review_chat_id = review_chat_id
        self._edits: dict[tuple[int, int], tuple[str, int]] = {}  # (chat, prompt message) → (draft, user)
        self._install()

    def _install(self) -> None:
        from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

        self.app.add_handler(CallbackQueryHandler(self._on_button, pattern=rf"^{PREFIX}\|"))
        self.app.add_handler(CommandHandler("override", self._override))
        self.app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, self._on_reply))

    async def post_card(self, draft_id: str) -> int:
        """Send a draft's card to the review chat; returns the message id."""
        from telegram.constants import ParseMode

        card = await asyncio.to_thread(self.desk.card, draft_id)
        message = await self.app.bot.send_message(self.review_chat_id, card.html[:TELEGRAM_LIMIT],
                                                  parse_mode=ParseMode.HTML, reply_markup=keyboard(card),
                                                  disable_web_page_preview=True)
        return int(message.message_id)

    async def refresh_card(self, chat_id: int | str, message_id: int, draft_id: str) -> None:
        """Show a card's current status and buttons (after an action, or once the draft is published)."""
        from telegram.constants import ParseMode
        from telegram.error import BadRequest

        card = await asyncio.to_thread(self.desk.card, draft_id)
        try:
            await self.app.bot.edit_message_text(card.html[:TELEGRAM_LIMIT], chat_id=chat_id, message_id=message_id,
                                                 parse_mode=ParseMode.HTML, reply_markup=keyboard(card),
                                                 disable_web_page_preview=True)
        except BadRequest as exc:  # "message is not modified" after a double tap, or the card is gone
            log.info("review card %s not refreshed: %s", message_id, exc)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        parsed = parse_callback(query.data)
        user = query.from_user
        if parsed is None:
            await query.answer("This button is no longer valid.")
            return
        action, draft_id = parsed
        reviewer = self.access.reviewer(user.id if user else None)
        if reviewer is None:
            who = f"telegram:{user.username or user.id}" if user else "telegram:unknown"
            await asyncio.to_thread(self.desk.refused, draft_id, action, who)
            await query.answer("Sorry, only reviewers can act on drafts.", show_alert=True)
            return
        if action == "edit":
            await query.answer("Reply to my next message with the new text.")
            await self._ask_for_edit(draft_id, user.id, query.message.chat.id if query.message else None)
            return
        try:
            outcome = await asyncio.to_thread(self.desk.act, draft_id, action, reviewer)
        except TapewatchError as exc:
            await query.answer(str(exc)[:200], show_alert=True)
            return
        await query.answer(outcome.message[:200])
        if query.message is not None and outcome.changed:
            await self.refresh_card(query.message.chat.id, query.message.message_id, outcome.draft_id)

    async def _ask_for_edit(self, draft_id: str, user_id: int, chat_id: int | None) -> None:
        from telegram import ForceReply

        chat = chat_id if chat_id is not None else self.review_chat_id
        prompt = await self.app.bot.send_message(
            chat, f"Reply to this message with the new Telegram text for draft {draft_id[:8]}. "
                  "It becomes a new version and is validated again before it can be approved.",
            reply_markup=ForceReply(selective=True, input_field_placeholder="New text"))
        self._edits[(int(prompt.chat.id), int(prompt.message_id))] = (draft_id, user_id)

    async def _on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.reply_to_message is None or update.effective_user is None:
            return
        key = (int(message.chat.id), int(message.reply_to_message.message_id))
        pending = self._edits.get(key)
        if pending is None:
            return
        draft_id, user_id = pending
        reviewer = self.access.reviewer(update.effective_user.id)
        if update.effective_user.id != user_id or reviewer is None:
            await message.reply_text("Only the reviewer who asked to edit can send the new text.")
            return
        self._edits.pop(key, None)
        try:
            outcome = await asyncio.to_thread(self.desk.act, draft_id, "edit", reviewer, text=message.text or "")
        except TapewatchError as exc:
            await message.reply_text(f"Edit not saved: {exc}")
            return
        await message.reply_text(outcome.message)
        await self.post_card(outcome.draft_id)

    async def _override(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/override <draft> <reason…>``: approve a flagged draft with a written reason."""
        message = update.effective_message
        user = update.effective_user
        if message is None:
            return
        reviewer = self.access.reviewer(user.id if user else None)
        args = context.args or []
        if reviewer is None:
            if args:
                who = f"telegram:{user.username or user.id}" if user else "telegram:unknown"
                await asyncio.to_thread(self.desk.refused, args[0], "override", who)
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
