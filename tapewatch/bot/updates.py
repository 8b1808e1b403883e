"""How updates come in: getUpdates answers with poison updates defused, 409 Conflicts explained, chats in order.

PTB retries a failed getUpdates with growing pauses (1 s up to 30 s) and reports each failure to an error callback;
``PollingHealth`` is that callback: one line per failure instead of a traceback, and for a 409 Conflict (a second
process polling the same token, or a webhook left set) the cause and a notice to the review chat, once per episode.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)
POLLING = "tapewatch.polling"  # key of the application's PollingHealth in ``bot_data``


def explain_conflict(description: str) -> str:
    """What a 409 from getUpdates means and what to do, in one line."""
    if "webhook" in description.lower():
        return ("a webhook is set for this bot token (a tapewatch in webhook mode, or another program); "
                "stop that, or remove the webhook with deleteWebhook, or run this one with bot.webhook_url")
    return ("another process is polling Telegram with the same bot token (a second `tapewatch run`, or the token "
            "used elsewhere); only one may poll: stop the other one")


class PollingHealth:
    """Failures of getUpdates as they happen: one log line each, one review-chat notice per conflict episode."""

    def __init__(self) -> None:
        self.conflicts = 0  # 409s in the current episode
        self.failures = 0
        self.notify: Callable[[str], Coroutine[Any, Any, None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def on_error(self, exc: Exception) -> None:
        """PTB's polling error callback (sync, must not raise): log one line; tell reviewers about a conflict."""
        from telegram.error import Conflict

        self.failures += 1
        if not isinstance(exc, Conflict):
            log.warning("polling Telegram failed (%s: %s); retrying with backoff", type(exc).__name__, exc)
            return
        self.conflicts += 1
        cause = explain_conflict(str(exc))
        log.warning("Telegram answered 409 Conflict (%d in a row): %s; retrying with backoff", self.conflicts, cause)
        if self.conflicts == 1 and self.notify is not None:
            try:
                task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.notify(
                    f"⚠️ tapewatch cannot receive Telegram updates: {cause}. It keeps retrying."))
            except RuntimeError:  # no running loop: nothing to notify from
                return
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def on_updates(self) -> None:
        """A getUpdates call succeeded: a conflict, if any, is over."""
        if self.conflicts:
            log.warning("receiving Telegram updates again after %d conflict(s)", self.conflicts)
        self.conflicts = 0


def updates_request_class(health: PollingHealth | None = None) -> type:
    """An ``HTTPXRequest`` that defuses malformed updates in getUpdates answers.

    PTB parses a getUpdates batch in one go: one update it cannot parse fails the whole batch, and as the
    offset never advances, polling retries the same poison batch forever. Each update that fails to parse is
    replaced by its bare ``update_id`` (which no handler matches), so it is skipped and confirmed.
    """
    from telegram import Update
    from telegram.request import HTTPXRequest

    class SafeUpdatesRequest(HTTPXRequest):
        async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
            status, payload = await super().do_request(url, method, *args, **kwargs)
            if status != 200 or not url.endswith("/getUpdates"):
                return status, payload
            if health is not None:
                health.on_updates()
            try:
                body = json.loads(payload)
            except ValueError:
                return status, payload
            result = body.get("result") if isinstance(body, dict) else None
            if not isinstance(result, list):
                return status, payload
            cleaned = []
            for update in result:
                try:
                    Update.de_json(dict(update), None)
                    cleaned.append(update)
                except Exception:  # any parse failure: keep only the id so the offset moves past it
                    update_id = update.get("update_id") if isinstance(update, dict) else None
                    if isinstance(update_id, int):
                        log.warning("ignoring malformed Telegram update %s", update_id)
                        cleaned.append({"update_id": update_id})
            body["result"] = cleaned
            return status, json.dumps(body).encode()

    return SafeUpdatesRequest


def per_chat_processor(max_concurrent: int) -> Any:
    """An update processor that runs different chats' updates concurrently and one chat's in order."""
    from telegram.ext import BaseUpdateProcessor

    class PerChatOrder(BaseUpdateProcessor):
        def __init__(self) -> None:
            super().__init__(max_concurrent)
            self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

        async def do_process_update(self, update: object, coroutine: Any) -> None:
            chat = getattr(getattr(update, "effective_chat", None), "id", None)
            lock, users = self._locks.get(chat, (asyncio.Lock(), 0))
            self._locks[chat] = (lock, users + 1)
            try:
                async with lock:
                    await coroutine
            finally:
                lock, users = self._locks[chat]
                if users <= 1:
                    del self._locks[chat]  # keep no state for chats that went quiet
                else:
                    self._locks[chat] = (lock, users - 1)

        async def initialize(self) -> None:
            """Nothing to set up."""

        async def shutdown(self) -> None:
            """Nothing to release."""

    return PerChatOrder()
