"""The Telegram bot: on-demand briefs and market commands, running inside the daemon's event loop.

python-telegram-bot drives the conversation; everything it asks of tapewatch goes through a ``BotBackend``
whose methods are blocking (state DB, Chroma, the crew) and therefore run in worker threads. Review buttons
live in ``tapewatch.bot.review``. The bot never builds its own scheduler (``job_queue(None)``): the daemon's
one APScheduler runs every timed job.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from crew.render import TELEGRAM_LIMIT
from sources.errors import TapewatchError
from tapewatch.bot.access import Access, actor
from tapewatch.bot.limits import BriefQueue, RateLimiter, RefusalGate
from tapewatch.bot.messages import answer_query, clip, send_html
from tapewatch.bot.updates import POLLING, PollingHealth, per_chat_processor, updates_request_class
from tapewatch.bot.webhook import WebhookServer

if TYPE_CHECKING:
    from telegram import Update
    from telegram.ext import Application, ContextTypes

log = logging.getLogger(__name__)

COMMANDS: tuple[tuple[str, str], ...] = (
    ("brief", "A market brief now: /brief, /brief $SOL or /brief restaking"),
    ("top", "Tickers ranked by today's signals"),
    ("narratives", "Narratives forming across sources"),
    ("price", "Latest price snapshot: /price $BTC"),
    ("sources", "Health of the ingest sources"),
    ("pause", "Reviewers: pause scheduled posting"),
    ("resume", "Reviewers: resume scheduled posting"),
    ("help", "What this bot can do"),
)
# my_chat_member: being added to a group, so one that is not allowed is left at once.
UPDATES = ["message", "callback_query", "my_chat_member"]
_TICKER = re.compile(r"^\$?([A-Za-z][A-Za-z0-9]{1,9})$")


@dataclass(frozen=True)
class BriefAnswer:
    """What ``/brief`` sends back: Telegram HTML, the stored draft's id and how it was made."""

    html: str
    draft_id: str | None
    mode: str  # "crew" or "data"
    note: str = ""


class BotBackend(Protocol):
    """What the bot needs from tapewatch; all methods block and return Telegram HTML or raise TapewatchError."""

    def brief(self, topic: str | None, ticker: str | None, requested_by: str) -> BriefAnswer:
        """Write a brief (crew if configured and within budget, else data brief) and store it as a draft."""
        ...

    def top(self) -> str:
        """Tickers ranked by signals."""
        ...

    def narratives(self) -> str:
        """Narrative clusters of the window."""
        ...

    def price(self, ticker: str) -> str:
        """The latest stored price snapshot of ``ticker`` and its age."""
        ...

    def sources(self) -> str:
        """Ingest source health."""
        ...

    def refused(self, action: str, who: str, draft_id: str = "") -> None:
        """Write a refused privileged attempt (``/pause`` by a non-reviewer…) to the audit log."""
        ...

    def set_paused(self, paused: bool, by: str) -> str:
        """Pause or resume scheduled posting."""
        ...


@dataclass(frozen=True)
class Webhook:
    """Receive updates on ``listen:port`` at the path of ``url`` (the public HTTPS address Telegram calls)."""

    url: str
    listen: str = "127.0.0.1"
    port: int = 8443


def parse_brief_args(args: Sequence[str]) -> tuple[str | None, str | None]:
    """``/brief`` arguments → (topic, ticker): one $TICKER-looking word is a ticker, anything else a topic."""
    words = [a for a in args if a.strip()]
    if not words:
        return None, None
    if len(words) == 1 and words[0].startswith("$") and _TICKER.match(words[0]):
        return None, words[0].lstrip("$").upper()
    return " ".join(words)[:200], None


class TelegramBot:
    """Command handlers, access control, rate limits and the brief queue around a PTB ``Application``."""

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], backend: BotBackend, access: Access, *,
                 limiter: RateLimiter, queue: BriefQueue, review_chat_id: int | str | None = None,
                 chat_limiter: RateLimiter | None = None, refusals: RefusalGate | None = None) -> None:
        self.app = app
        self.backend = backend
        self.access = access
        self.limiter = limiter
        # /brief per chat as well as per user: a group of many members must not turn into as many drafts.
        self.chat_limiter = chat_limiter or RateLimiter(5, limiter.period_s)
        self.refusals = refusals or RefusalGate(3600.0, 30)
        self.queue = queue
        self.review_chat_id = review_chat_id
        self.refused = 0
        self.answered = 0
        self.webhook_secret: str | None = None
        self._left: set[int] = set()  # groups left (so a burst of their updates leaves once)
        self._webhook: WebhookServer | None = None
        self.health: PollingHealth = app.bot_data.get(POLLING) or PollingHealth()
        if review_chat_id is not None:
            chat = review_chat_id
            self.health.notify = lambda text: self.notify(chat, text)
        self._install()

    def _install(self) -> None:
        from telegram import Update
        from telegram.ext import CallbackQueryHandler, CommandHandler, TypeHandler

        self.app.add_handler(TypeHandler(Update, self._screen), group=-1)
        for name, handler in (("brief", self._brief), ("top", self._top), ("narratives", self._narratives),
                              ("price", self._price), ("sources", self._sources), ("help", self._help),
                              ("start", self._help), ("pause", self._pause), ("resume", self._resume)):
            self.app.add_handler(CommandHandler(name, handler))
        # Every button tap is answered (else the user's client spins): review buttons are answered by the
        # review handlers, which stop there; anything else that reaches this later group is stale or foreign.
        self.app.add_handler(CallbackQueryHandler(self._unknown_button), group=1)
        self.app.add_error_handler(self._on_error)

    async def set_commands(self) -> None:
        """Publish the command menu (``set_my_commands``)."""
        from telegram import BotCommand

        await self.app.bot.set_my_commands([BotCommand(name, text[:256]) for name, text in COMMANDS])

    # -- helpers -------------------------------------------------------------------------------------
    async def _reply(self, update: Update, text: str) -> None:
        if update.effective_chat is not None:
            await send_html(self.app.bot, update.effective_chat.id, text)

    def _allowed(self, update: Update) -> bool:
        user = update.effective_user.id if update.effective_user else None
        chat = update.effective_chat.id if update.effective_chat else None
        return self.access.may_ask(user, chat)

    async def _guard(self, update: Update) -> bool:
        if self._allowed(update):
            return True
        await self._refuse(update, "Sorry, this bot answers only its configured users and chats.")
        return False

    async def _refuse(self, update: Update, text: str, key: object = None) -> None:
        """Refuse; the reply goes out once per user (or ``key``) per period, then silence (no amplification)."""
        self.refused += 1
        user = update.effective_user.id if update.effective_user else None
        if self.refusals.answer(key if key is not None else ("user", user)):
            await self._reply(update, text)

    async def _screen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Before any handler: leave a group the bot does not belong in, without a word, and do nothing else."""
        from telegram.ext import ApplicationHandlerStop

        chat = update.effective_chat
        if chat is None or self.access.may_stay(chat.id, chat.type):
            return
        if update.callback_query is not None:
            await answer_query(update.callback_query, "This bot does not work in this chat.")
        member = update.my_chat_member
        removed = member is not None and member.new_chat_member.status in ("left", "kicked", "banned")
        if chat.id not in self._left and not removed:
            self._left.add(chat.id)
            log.warning("leaving %s %s: it is not in bot.allowed_chats", chat.type, chat.id)
            try:
                await self.app.bot.leave_chat(chat.id)
            except Exception as exc:  # gone already, or Telegram unreachable: the next update from it tries again
                self._left.discard(chat.id)
                log.warning("could not leave chat %s: %s", chat.id, exc)
        raise ApplicationHandlerStop

    async def _unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            await answer_query(update.callback_query, "This button is no longer valid.")

    async def _blocking(self, update: Update, call: Any, *args: Any) -> None:
        """Run a backend call in a thread and reply with its text or its error."""
        try:
            text = await asyncio.to_thread(call, *args)
        except TapewatchError as exc:
            text = f"⚠️ {html.escape(str(exc))}"
        await self._reply(update, text)

    # -- commands ------------------------------------------------------------------------------------
    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self._guard(update):
            return
        lines = ["<b>tapewatch</b> — crypto market briefs that cite their sources.", ""]
        lines += [f"/{name} — {html.escape(text)}" for name, text in COMMANDS]
        await self._reply(update, "\n".join(lines))

    async def _top(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._guard(update):
            await self._blocking(update, self.backend.top)

    async def _narratives(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._guard(update):
            await self._blocking(update, self.backend.narratives)

    async def _sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._guard(update):
            await self._blocking(update, self.backend.sources)

    async def _price(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self._guard(update):
            return
        args = context.args or []
        match = _TICKER.match(args[0]) if len(args) == 1 else None
        if match is None:
            await self._reply(update, "Usage: /price $TICKER, e.g. /price $BTC")
            return
        await self._blocking(update, self.backend.price, match.group(1).upper())

    async def _pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._switch(update, paused=True)

    async def _resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._switch(update, paused=False)

    async def _switch(self, update: Update, *, paused: bool) -> None:
        who = actor(update.effective_user)
        if self.access.reviewer(update.effective_user.id if update.effective_user else None) is None:
            await asyncio.to_thread(self.backend.refused, "pause" if paused else "resume", who)
            await self._refuse(update, "Only reviewers can pause or resume posting.")
            return
        await self._blocking(update, self.backend.set_paused, paused, who)

    async def _brief(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self._guard(update) or update.effective_user is None:
            return
        user = update.effective_user
        chat = update.effective_chat.id if update.effective_chat else user.id
        wait = self.limiter.wait(user.id)
        if wait > 0:
            await self._refuse(update, f"You have asked for several briefs recently; try again in {wait:.0f} s.",
                               ("brief-user", user.id))
            return
        wait = self.chat_limiter.wait(chat)
        if wait > 0:
            await self._refuse(update, f"This chat has asked for several briefs recently; try again in "
                                       f"{wait:.0f} s.", ("brief-chat", chat))
            return
        self.limiter.try_acquire(user.id)
        self.chat_limiter.try_acquire(chat)
        topic, ticker = parse_brief_args(context.args or [])
        requested_by = actor(user)

        acknowledged = asyncio.Event()

        async def job() -> None:
            # The acknowledgement goes out before any brief work starts competing for the interpreter.
            await acknowledged.wait()
            try:
                answer = await asyncio.to_thread(self.backend.brief, topic, ticker, requested_by)
            except TapewatchError as exc:
                await self._reply(update, f"⚠️ {html.escape(str(exc))}")
                return
            text = answer.html + (f"\n\n<i>{html.escape(answer.note)}</i>" if answer.note else "")
            await self._reply(update, text)
            self.answered += 1

        ticket = self.queue.submit(job)
        if ticket is None:
            await self._refuse(update, "The brief queue is full right now; please try again in a few minutes.",
                               ("queue-full", chat))
            return
        what = f"${ticker}" if ticker else (f"“{html.escape(topic)}”" if topic else "the market")
        where = "starting now" if ticket.position == 0 else f"{ticket.position} ahead of you"
        try:
            await self._reply(update, f"On it: a brief on {what} ({where}).")
        finally:
            acknowledged.set()

    async def notify(self, chat_id: int | str, text: str) -> None:
        """Send a plain-text notice (job failures to the review chat); never raises."""
        try:
            await self.app.bot.send_message(chat_id, clip(text, TELEGRAM_LIMIT))
        except Exception:  # a notice that cannot be sent is logged, not fatal
            log.warning("could not send a notice to %s", chat_id, exc_info=True)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """One place for handler failures: log with the traceback and tell the review chat briefly."""
        log.error("telegram handler failed", exc_info=context.error)
        if self.review_chat_id is None:
            return
        try:
            await self.app.bot.send_message(
                self.review_chat_id, f"⚠️ tapewatch bot error: {html.escape(type(context.error).__name__)}: "
                f"{html.escape(str(context.error))[:500]}")
        except Exception:  # the error report must never raise out of the error handler
            log.warning("could not notify the review chat", exc_info=True)

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self, *, poll_timeout: float = 10.0, webhook: Webhook | None = None) -> None:
        """Connect, publish the command menu and start long polling or the webhook (returns once running)."""
        await self.app.initialize()
        await self.set_commands()
        assert self.app.updater is not None, "built with an updater"
        updates = UPDATES
        if webhook is None:
            await self.app.updater.start_polling(timeout=timedelta(seconds=poll_timeout), allowed_updates=updates,
                                                 error_callback=self.health.on_error)
        else:
            # A fresh secret per start: Telegram echoes it in a header, so only Telegram's calls are accepted.
            self.webhook_secret = secrets.token_urlsafe(32)
            path = urlsplit(webhook.url).path.lstrip("/")
            await self.app.bot.set_webhook(webhook.url, allowed_updates=updates, secret_token=self.webhook_secret)
            self._webhook = WebhookServer(self.app, webhook.listen, webhook.port, path, self.webhook_secret)
            await self._webhook.start()
        await self.app.start()

    async def stop(self, *, drain_s: float = 10.0) -> None:
        """Stop polling, let running briefs finish for up to ``drain_s``, then shut the application down."""
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        cancelled = await self.queue.drain(drain_s)
        if cancelled:
            log.warning("stopped with %d brief request(s) unanswered", cancelled)
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()


def build_application(token: str, *, base_url: str | None = None, connect_timeout: float = 5.0,
                      read_timeout: float = 20.0, concurrent: bool = True) -> Application[Any, Any, Any, Any, Any, Any]:
    """A PTB application with bounded HTTP timeouts and no JobQueue of its own (the daemon schedules)."""
    from telegram.ext import ApplicationBuilder
    from telegram.request import HTTPXRequest

    def request(cls: type = HTTPXRequest) -> HTTPXRequest:
        return cls(connect_timeout=connect_timeout, read_timeout=read_timeout,
                   write_timeout=read_timeout, pool_timeout=connect_timeout, connection_pool_size=16)

    # Updates from different chats are handled concurrently (up to 64 at once), so fifty /brief requests
    # arriving together are acknowledged within moments rather than queued behind each other's network round
    # trips; one chat's updates keep their order (commands are answered in the order they were sent).
    health = PollingHealth()
    builder = (ApplicationBuilder().token(token).job_queue(None).request(request())
               .get_updates_request(request(updates_request_class(health)))
               .concurrent_updates(per_chat_processor(64) if concurrent else False))
    if base_url:
        builder = builder.base_url(base_url.rstrip("/") + ("" if base_url.rstrip("/").endswith("/bot") else "/bot"))
    app = builder.build()
    app.bot_data[POLLING] = health  # the bot reports polling failures through it (see tapewatch.bot.updates)
    return app
