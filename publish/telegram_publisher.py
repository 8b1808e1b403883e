"""Publish to a Telegram channel in HTML through python-telegram-bot's ``Bot`` (async)."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from typing import Any

from publish.channel import Ambiguous, Lookup, Media, RateLimited, Rejected, Retryable, Sent

CAPTION_LIMIT = 1024  # visible characters of a photo's caption


class TelegramPublisher:
    """The Telegram channel over an injected ``telegram.Bot``."""

    name = "telegram"
    # The Bot API cannot read a channel's history, so a part that may have gone out is left to a person.
    reconcilable = False

    def __init__(self, bot: Any, chat_id: str | int) -> None:
        self.bot = bot
        self.chat_id = chat_id

    async def open(self) -> None:
        """Start the HTTP client and check the token (getMe)."""
        from telegram import error as tg

        try:
            await self.bot.initialize()
        except tg.InvalidToken:
            # PTB's message quotes the token: say what happened without it (and without chaining it in).
            raise Rejected("Telegram rejected the bot token (401 Unauthorized); check "
                           "TAPEWATCH_TELEGRAM_BOT_TOKEN") from None
        except Exception as exc:
            raise classify(exc) from exc

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.bot.shutdown()

    async def send(self, text: str, reply_to: str | None, media: Media | None = None) -> Sent:
        """Send one HTML message; link previews off, because a brief cites several sources, not one.

        With ``media``: a photo with the message as its caption, or, past the caption limit, the photo and then
        the message (the part's id is the message's).
        """
        from telegram import LinkPreviewOptions
        from telegram.constants import ParseMode

        if media is not None:
            if _visible_length(text) <= CAPTION_LIMIT:
                try:
                    photo = await self.bot.send_photo(chat_id=self.chat_id, photo=media.png, caption=text,
                                                      parse_mode=ParseMode.HTML, filename=media.name)
                except Exception as exc:
                    raise classify(exc) from exc
                return Sent(str(photo.message_id), message_link(self.chat_id, photo.message_id))
            try:
                await self.bot.send_photo(chat_id=self.chat_id, photo=media.png, filename=media.name)
            except Exception as exc:
                raise classify(exc) from exc
        try:
            message = await self.bot.send_message(
                chat_id=self.chat_id, text=text, parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except Exception as exc:
            problem = classify(exc)
            if media is not None and isinstance(problem, Retryable):
                # The photo went out: sending the part again would repeat it, so a person settles this part.
                raise Ambiguous(f"the chart was sent but its text failed: {problem}") from exc
            raise problem from exc
        return Sent(str(message.message_id), message_link(self.chat_id, message.message_id))

    async def reply(self, text: str, reply_to: str) -> Sent:
        """Send an HTML message in reply to one of the channel's messages (a correction under a brief)."""
        from telegram import LinkPreviewOptions, ReplyParameters
        from telegram.constants import ParseMode

        try:
            message = await self.bot.send_message(
                chat_id=self.chat_id, text=text, parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_parameters=ReplyParameters(message_id=int(reply_to)),
            )
        except Exception as exc:
            raise classify(exc) from exc
        return Sent(str(message.message_id), message_link(self.chat_id, message.message_id))

    async def delete(self, remote_id: str) -> bool:
        """Delete one of the channel's messages; False when it is already gone (deleting twice is harmless)."""
        from telegram import error as tg

        try:
            return bool(await self.bot.delete_message(chat_id=self.chat_id, message_id=int(remote_id)))
        except tg.BadRequest as exc:
            if "not found" in str(exc).lower():
                return False
            raise classify(exc) from exc
        except Exception as exc:
            raise classify(exc) from exc

    async def find(self, text: str, reply_to: str | None, since: datetime) -> Lookup:
        """The Bot API has no way to list what a channel holds: never complete."""
        return Lookup(None, complete=False)


def _visible_length(html_text: str) -> int:
    """Characters a reader sees of an HTML message (Telegram counts the caption after parsing its entities)."""
    import html
    import re

    return len(html.unescape(re.sub(r"<[^>]*>", "", html_text)).encode("utf-16-le")) // 2


def message_link(chat_id: str | int, message_id: int) -> str | None:
    """A t.me link for a public (@name) or private (-100…) channel."""
    chat = str(chat_id)
    if chat.startswith("@"):
        return f"https://t.me/{chat[1:]}/{message_id}"
    if chat.startswith("-100"):
        return f"https://t.me/c/{chat[4:]}/{message_id}"
    return None


def classify(exc: Exception) -> Exception:
    """Map a python-telegram-bot error to Retryable, Ambiguous or Rejected."""
    import httpx
    from telegram import error as tg

    if isinstance(exc, tg.RetryAfter):
        with warnings.catch_warnings():  # PTB 22 warns while moving retry_after from int to timedelta
            warnings.simplefilter("ignore")
            after = exc.retry_after
        seconds = after.total_seconds() if isinstance(after, timedelta) else float(after)
        return RateLimited(f"Telegram flood control (429); retry in {seconds:g} s", seconds)
    cause = exc.__cause__
    if isinstance(exc, tg.TimedOut):
        if isinstance(cause, httpx.ConnectTimeout | httpx.PoolTimeout) or "Pool timeout" in str(exc):
            return Retryable(f"could not reach Telegram: {exc}")
        return Ambiguous(f"Telegram did not answer in time: {exc}")
    if isinstance(exc, tg.InvalidToken):  # PTB's message quotes the token itself: keep it out of rows and chats
        return Rejected("Telegram rejected the bot token; check TAPEWATCH_TELEGRAM_BOT_TOKEN")
    if isinstance(exc, tg.BadRequest | tg.Forbidden | tg.ChatMigrated | tg.EndPointNotFound):
        return Rejected(f"Telegram refused the message: {exc}"[:500])
    if isinstance(exc, tg.NetworkError):
        if isinstance(cause, httpx.ConnectError):
            return Retryable(f"could not connect to Telegram: {exc}")
        if cause is None:  # the Bot API answered with an error of its own: nothing was sent
            return Retryable(f"Telegram error: {exc}")
        return Ambiguous(f"connection to Telegram broke: {exc}")
    return exc if isinstance(exc, Retryable | Ambiguous | Rejected) else Ambiguous(f"Telegram call failed: {exc!r}")
