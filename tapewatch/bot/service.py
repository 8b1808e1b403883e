"""Wiring the Telegram bot and the posting schedule into a daemon (``tapewatch run``)."""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tapewatch.automation import Automation, publish_channels_or_none
from tapewatch.bot.limits import BriefQueue, RateLimiter, RefusalGate
from tapewatch.bot.telegram import Access, BriefAnswer, TelegramBot, Webhook, build_application

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
        result = write_brief(runtime.settings, memory, now=datetime.now(UTC), ticker=ticker, topic=topic)
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
            from tapewatch.clients import review_queue

            desk = QueueDesk(review_queue(s, runtime.state, via="telegram"),
                             publish_soon=lambda: automation_ref[0].publish_soon())
            review = ReviewBot(app, desk, access, s.bot.review_chat_id, cards=ReviewCards(runtime.state),
                               refusals=refusals)
        lines.append("Telegram bot: on" + (f", webhook {s.bot.webhook_url}" if s.bot.webhook_url else "")
                     + ("" if review else " (no review chat or reviewers: no review cards)"))
    channels, publishing = publish_channels_or_none(runtime)
    lines.append(publishing)
    automation = Automation(daemon, runtime, review=review, channels=channels)
    if bot is not None:
        automation_ref.append(automation)
        poll = s.bot.poll_timeout.total_seconds()
        hook = Webhook(s.bot.webhook_url, s.bot.webhook_listen, s.bot.webhook_port) if s.bot.webhook_url else None
        daemon.add_service(lambda: bot.start(poll_timeout=poll, webhook=hook), bot.stop)
        if s.bot.review_chat_id is not None:
            chat = s.bot.review_chat_id

            def notify(kind: str, summary: str) -> None:
                if summary.startswith("failed") and daemon.loop is not None:
                    daemon.loop.create_task(bot.notify(chat, f"⚠️ job {kind} {summary}"))

            daemon.on_failure = notify
    lines += automation.install()
    daemon.add_service(automation.schedule, automation.unschedule)
    return automation, lines


def _chat_number(chat: int | str | None) -> int | None:
    """A chat given by number (the publish chat may be a group); None for an @name or nothing."""
    try:
        return int(str(chat))
    except ValueError:
        return None
