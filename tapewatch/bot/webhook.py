"""The webhook receiver: Telegram's calls on ``listen:port``, checked against the secret token, into PTB's queue.

Our own small tornado handler instead of PTB's: an update that does not parse is skipped like polling skips it,
answered 200 (else Telegram resends the same poison update forever, holding up every later one) with a one-line
warning that names the update id, never its body (which can hold users' messages).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telegram.ext import Application

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20  # bytes; Telegram's updates are a few kB


class WebhookServer:
    """Serve ``path`` on ``listen:port`` for one PTB application (start and stop inside its event loop)."""

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], listen: str, port: int, path: str,
                 secret: str) -> None:
        self.app = app
        self.listen = listen
        self.port = port
        self.path = "/" + path.strip("/")
        self.secret = secret
        self.skipped = 0
        self._server: Any = None

    async def start(self) -> None:
        """Listen (returns once the socket is bound)."""
        import tornado.httpserver
        import tornado.web

        class Quiet(tornado.web.Application):
            def log_request(self, handler: tornado.web.RequestHandler) -> None:
                """No access log: one line per Telegram call is noise (and the path holds the secret's twin)."""

        web = Quiet([(rf"{self.path}/?", _handler_class(), {"receiver": self})])
        self._server = tornado.httpserver.HTTPServer(web, max_body_size=MAX_BODY)
        self._server.listen(self.port, address=self.listen)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    async def receive(self, content_type: str, token: str | None, body: bytes) -> int:
        """Handle one call; the HTTP status to answer."""
        from telegram import Update
        from telegram.ext import ExtBot

        if content_type.split(";")[0].strip().lower() != "application/json":
            return 403
        if not token or not hmac.compare_digest(token.encode(), self.secret.encode()):
            return 403
        try:
            data = json.loads(body)
        except ValueError:
            return self._skip(None, "the body is not JSON", len(body))
        if not isinstance(data, dict):
            return self._skip(None, "the body is not a JSON object", len(body))
        update_id = data.get("update_id") if isinstance(data.get("update_id"), int) else None
        try:
            update = Update.de_json(data, self.app.bot)
        except Exception as exc:  # any shape PTB cannot read: skipped, as polling skips it
            return self._skip(update_id, f"{type(exc).__name__}", len(body))
        if update is None:
            return 200
        if isinstance(self.app.bot, ExtBot):
            self.app.bot.insert_callback_data(update)
        await self.app.update_queue.put(update)
        return 200

    def _skip(self, update_id: int | None, why: str, size: int) -> int:
        self.skipped += 1
        log.warning("webhook: skipped Telegram update %s that could not be read (%s, %d bytes)",
                    update_id if update_id is not None else "without an id", why, size)
        return 200


def _handler_class() -> type:
    import tornado.web

    class Handler(tornado.web.RequestHandler):
        SUPPORTED_METHODS = ("POST",)

        def initialize(self, receiver: WebhookServer) -> None:
            self.receiver = receiver

        async def post(self) -> None:
            status = await self.receiver.receive(self.request.headers.get("Content-Type", ""),
                                                 self.request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                                                 self.request.body)
            self.set_status(status)
            self.finish()

    return Handler
