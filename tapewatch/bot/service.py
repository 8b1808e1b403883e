"""Wiring the Telegram bot and the posting schedule into a daemon (``tapewatch run``).

The daemon never waits for Telegram: the bot connects in the background (``BotRunner``), and while the Bot
API rejects the token or cannot be reached it says so in one line and retries with backoff, while ingest,
scheduled briefs and publishing to X go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tapewatch.automation import Automation, publish_channels_or_none
from tapewatch.bot.limits import BriefQueue, RateLimiter, RefusalGate
from tapewatch.bot.telegram import Access, BriefAnswer, TelegramBot, Webhook, build_application
from tapewatch.daemon.supervisor import one_line
from tapewatch.settings import format_duration

if TYPE_CHECKING:
    from tapewatch.bot.backend import BriefWriter
    from tapewatch.daemon import Daemon
    from tapewatch.jobs import Runtime

log = logging.getLogger(__name__)


def brief_writer(runtime: Runtime) -> BriefWriter:
    """The /brief writer: crew when configured (a used-up budget is refused with its message), else data."""
    from tapewatch.briefs import write_brief

    def write(topic: str | None, ticker: str | None, requested_by: str) -> BriefAnswer:
        memory = runtime.memory()
        # The chat answer is the full brief's text; the chart is drawn for scheduled briefs, not for every /brief.
        result = write_brief(runtime.settings, memory, now=datetime.now(UTC), ticker=ticker, topic=topic,
                             chart=False)
        if result.draft is None:
            focus = f" about {html.escape(topic or ticker or '')}" if (topic or ticker) else ""
            return BriefAnswer(f"Nothing to report{focus} in the last 24 hours "
                               f"({result.signals.items} items looked at).", None, result.mode)
        from memory.drafts import DraftStore

        DraftStore(memory.state).update_meta(result.draft.id, requested_by=requested_by)
        status = "" if result.draft.status == "pending" else \
            "\n\n<i>Flagged by the grounding check: a reviewer looks at it before anything is published.</i>"
        note = "Data brief: no language model is configured." if result.mode == "data" and result.note else ""
        return BriefAnswer(result.draft.telegram_html + status, result.draft.id, result.mode, note)

    return write


def attach(daemon: Daemon, runtime: Runtime) -> tuple[Automation, list[str]]:
    """Add the posting schedule and, when a bot token is set, the Telegram bot; returns banner lines."""
    from tapewatch.bot.backend import ShellBackend
    from tapewatch.clients import price_history

    s = runtime.settings
    lines: list[str] = []
    token = s.telegram_bot_token.get_secret_value() if s.telegram_bot_token is not None else None
    review = None
    bot = None
    if token and s.bot.enabled:
        app = build_application(token, base_url=s.publish.telegram_base_url,
                                connect_timeout=s.bot.connect_timeout.total_seconds(),
                                read_timeout=s.bot.read_timeout.total_seconds())
        reviewers = {r.telegram_id: r.name for r in s.bot.reviewers}
        home = {c for c in (s.bot.review_chat_id, _chat_number(s.publish.telegram_chat_id)) if c is not None}
        access = Access(frozenset(s.bot.allowed_users), frozenset(s.bot.allowed_chats), reviewers, frozenset(home))
        refusals = RefusalGate(s.bot.refusal_period.total_seconds(), s.bot.max_refusals)
        automation_ref: list[Automation] = []
        backend = ShellBackend(
            runtime.memory(), brief_writer(runtime), prices=price_history(s, runtime.state),
            set_paused=lambda paused, by: automation_ref[0].set_paused(paused, by))
        bot = TelegramBot(app, backend, access,
                          limiter=RateLimiter(s.bot.brief_limit, s.bot.brief_period.total_seconds()),
                          queue=BriefQueue(s.bot.max_concurrent_briefs, s.bot.max_queued_briefs),
                          review_chat_id=s.bot.review_chat_id, refusals=refusals,
                          chat_limiter=RateLimiter(s.bot.brief_chat_limit, s.bot.brief_period.total_seconds()))
        if s.bot.review_chat_id is not None and reviewers:
            from memory.switches import ReviewCards
            from tapewatch.bot.desk import QueueDesk
            from tapewatch.bot.review import ReviewBot
            from tapewatch.clients import amender, review_queue

            queue = review_queue(s, runtime.state, via="telegram")
            desk = QueueDesk(queue, publish_soon=lambda: automation_ref[0].publish_soon(),
                             amender=amender(s, queue))
            review = ReviewBot(app, desk, access, s.bot.review_chat_id, cards=ReviewCards(runtime.state),
                               refusals=refusals)
        lines.append("Telegram bot: on" + (f", webhook {s.bot.webhook_url}" if s.bot.webhook_url else "")
                     + ("" if review else " (no review chat or reviewers: no review cards)"))
    channels, publishing = publish_channels_or_none(runtime)
    lines.append(publishing)
    runner: BotRunner | None = None
    if bot is not None:
        assert token is not None
        hook = Webhook(s.bot.webhook_url, s.bot.webhook_listen, s.bot.webhook_port) if s.bot.webhook_url else None
        runner = BotRunner(bot, daemon, token=token, poll_timeout=s.bot.poll_timeout.total_seconds(), webhook=hook)
        daemon.add_service(runner.start, runner.stop)
        if s.bot.review_chat_id is not None:
            daemon.notifier = functools.partial(runner.notify, s.bot.review_chat_id)
    automation = Automation(daemon, runtime, review=review, channels=channels,
                            bot_up=(lambda: runner is not None and runner.up))
    if bot is not None:
        automation_ref.append(automation)
    lines += automation.install()
    daemon.add_jobs(automation.schedule)
    return automation, lines


def _chat_number(chat: int | str | None) -> int | None:
    """A chat given by number (the publish chat may be a group); None for an @name or nothing."""
    try:
        return int(str(chat))
    except ValueError:
        return None


class BotRunner:
    """The bot's lifecycle in the daemon: start in the background, retry with backoff until connected."""

    NAME = "Telegram bot"

    def __init__(self, bot: TelegramBot, daemon: Daemon, *, token: str, poll_timeout: float,
                 webhook: Webhook | None) -> None:
        self.bot = bot
        self.daemon = daemon
        self.poll_timeout = poll_timeout
        self.webhook = webhook
        self.up = False  # connected and receiving updates
        self.failures = 0  # failed starts since the last successful one
        self.last_error: str | None = None
        # Never print the token: PTB puts it in InvalidToken's message, and some errors carry the URL.
        self._secrets = [t for t in (token, token.partition(":")[2]) if len(t) >= 8]
        self._notices: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Service start hook: connect in the background, so the daemon never waits for Telegram."""
        self.daemon.supervisor.start(self.NAME, self._connect, forever=True)

    async def stop(self) -> None:
        """Service stop hook: stop connecting, or stop the running bot."""
        await self.daemon.supervisor.cancel(self.NAME)
        if self._notices:  # the last notices (e.g. why the daemon stops) go out before the bot does
            await asyncio.wait(set(self._notices), timeout=5)
        up, self.up = self.up, False
        await self._reset(drain_s=10.0 if up else 0.0)  # running briefs get their time to finish

    def notify(self, chat_id: int | str, text: str) -> None:
        """Send a notice to ``chat_id`` if the bot is up (any thread); never raises, never waits."""
        loop = self.daemon.loop
        if not self.up or loop is None or loop.is_closed():
            return

        def send() -> None:
            task = loop.create_task(self.bot.notify(chat_id, text))
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)

        loop.call_soon_threadsafe(send)

    def describe(self, exc: BaseException) -> str:
        """Why the bot could not start, in one line without the token."""
        from telegram import error as tg

        if isinstance(exc, tg.InvalidToken):
            text = "Telegram rejected the bot token (401 Unauthorized); check TAPEWATCH_TELEGRAM_BOT_TOKEN"
        elif isinstance(exc, tg.TimedOut):
            text = "the Telegram Bot API did not answer in time"
        elif isinstance(exc, tg.NetworkError):
            text = f"the Telegram Bot API cannot be reached ({exc.message})"
        elif isinstance(exc, tg.TelegramError):
            text = f"the Telegram Bot API refused to start the bot ({exc.message})"
        else:
            text = one_line(exc)
        for secret in self._secrets:
            text = text.replace(secret, "[token]")
        return text

    async def _connect(self) -> None:
        backoff = self.daemon.supervisor.backoff
        while True:
            try:
                await self.bot.start(poll_timeout=self.poll_timeout, webhook=self.webhook)
            except Exception as exc:  # any failure to start: the bot stays off, the rest of the daemon runs on
                self.failures += 1
                reason = self.describe(exc)
                wait = backoff.delay(self.failures)
                level = logging.WARNING if reason != self.last_error else logging.INFO  # one line per new cause
                log.log(level, "Telegram bot not started: %s; retrying in %s (ingest and publishing go on)",
                        reason, format_duration(round(wait, 1)))
                self.last_error = reason
                await self._reset()
                await asyncio.sleep(wait)
                continue
            self.up = True
            if self.failures:
                log.warning("Telegram bot connected after %d failed attempt(s)", self.failures)
                if self.bot.review_chat_id is not None:
                    self.notify(self.bot.review_chat_id, f"✅ tapewatch: the Telegram bot is connected again "
                                                         f"(it could not start: {self.last_error})")
            self.failures = 0
            await self._watch(backoff.most)
            # The token was revoked while running: PTB's polling has given up, so start over.
            self.up = False
            await self._reset()

    async def _watch(self, every: float) -> None:
        """Return once the Bot API rejects the token of the running bot (checked with getMe every ``every``)."""
        from telegram import error as tg

        while True:
            await asyncio.sleep(every)
            try:
                await self.bot.app.bot.get_me()
            except tg.InvalidToken as exc:
                self.last_error = self.describe(exc)
                log.warning("Telegram bot stopped: %s; reconnecting (ingest and publishing go on)", self.last_error)
                return
            except Exception:  # a network blip: polling has its own retries, and the next check comes
                log.debug("Telegram health check failed", exc_info=True)

    async def _reset(self, drain_s: float = 0.0) -> None:
        """Undo a start, whole or half done, so the next one begins clean and no HTTP client stays open.

        Step by step, each on its own: after a 401 ended polling, ``Updater.stop`` re-raises it, and a stop
        that gave up there would leave the application running (and every later start refused).
        """
        app = self.bot.app
        with contextlib.suppress(Exception):
            await self.bot.stop(drain_s=drain_s)
        if app.updater is not None and app.updater.running:
            with contextlib.suppress(Exception):
                await app.updater.stop()
        if app.updater is not None:
            _clear_aborted_polling(app.updater)
        if app.running:
            with contextlib.suppress(Exception):
                await app.stop()
        with contextlib.suppress(Exception):
            await app.shutdown()
        with contextlib.suppress(Exception):
            await app.bot.shutdown()  # after a failed initialize the application does not know it has a client


def _clear_aborted_polling(updater: Any) -> None:
    """Let an Updater whose polling ended on a 401 poll again (python-telegram-bot 22).

    ``Updater.stop`` re-raises the error that ended polling before it resets its stop event and task, so
    the next ``start_polling`` would stop at once: the bot would look started and never read an update.
    """
    task = getattr(updater, "_Updater__polling_task", None)
    event = getattr(updater, "_Updater__polling_task_stop_event", None)
    if isinstance(task, asyncio.Task) and task.done() and isinstance(event, asyncio.Event):
        setattr(updater, "_Updater__polling_task", None)  # noqa: B010 - a name-mangled attribute
        event.clear()
