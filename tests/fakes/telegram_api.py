"""A loopback fake of the Telegram Bot API methods tapewatch uses, in the real JSON shapes.

``/bot<token>/getMe`` and ``/bot<token>/sendMessage`` (form-encoded like python-telegram-bot sends it, or JSON).
Answers are ``{"ok": true, "result": ...}``; errors ``{"ok": false, "error_code": n, "description": ...}`` with
``parameters.retry_after`` on a 429. Failures are scripted with ``fail_next`` (after ``skip`` matching calls,
optionally after delivering the message, optionally after a delay, optionally with a raw malformed body).
Delivered messages are in ``messages``; every request in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "123456:TEST-token"
CHANNEL = "@tapewatch_test"
CHANNEL_ID = -1001234567890
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                 "tg-spoiler", "blockquote", "tg-emoji"}


@dataclass
class FakeMessage:
    message_id: int
    chat_id: int
    text: str
    parse_mode: str | None
    link_preview_disabled: bool
    date: datetime


@dataclass
class TgFailure:
    """One scripted failure for calls of ``method``."""

    method: str
    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    delay_s: float = 0.0  # longer than the client's read timeout → a client-side timeout
    after_effect: bool = False  # deliver the message, then fail
    raw: bytes | None = None  # a malformed body instead of JSON
    skip: int = 0  # let this many matching calls through first


@dataclass
class TgRequest:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class _TagCheck(HTMLParser):
    """Telegram's HTML: only a few tags, all closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self.error = self.error or f"Unsupported start tag \"{tag}\""
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = self.error or f"Unexpected end tag \"{tag}\""

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class FakeTelegramAPI:
    """Serve a fake Bot API on 127.0.0.1; point a PTB ``Bot`` at ``base_url``."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.chats: dict[str, int] = {CHANNEL: CHANNEL_ID, str(CHANNEL_ID): CHANNEL_ID}
        self.messages: list[FakeMessage] = []
        self.requests: list[TgRequest] = []
        self.failures: list[TgFailure] = []
        self._next_id = 100
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        """What to pass as ``Bot(base_url=...)`` (PTB appends the token)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/bot"

    def fail_next(self, method: str, status: int = 500, *, times: int = 1, **kwargs: Any) -> None:
        """Queue ``times`` failures for ``method``."""
        with self._lock:
            for _ in range(times):
                self.failures.append(TgFailure(method, status, **kwargs))

    def calls(self, method: str) -> list[TgRequest]:
        """Recorded requests of one method."""
        return [r for r in self.requests if r.method == method]

    # -- request handling -----------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        token, _, method = parts.path.lstrip("/").partition("/")
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        params = self._params(handler.headers.get("Content-Type", ""), raw, parts.query)
        self.requests.append(TgRequest(method, params))
        if token != f"bot{self.token}":
            self._send(handler, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        failure = self._take_failure(method)
        if failure is not None:
            if failure.after_effect:
                self._route(method, params)
            if failure.delay_s:
                time.sleep(failure.delay_s)
            if failure.raw is not None:
                self._send_raw(handler, failure.status, failure.raw)
                return
            body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            self._send(handler, failure.status, body)
            return
        status, payload = self._route(method, params)
        self._send(handler, status, payload)

    @staticmethod
    def _params(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[0] for k, v in parse_qs(query).items()}
        if "json" in content_type and raw:
            params.update(json.loads(raw))
        elif raw:
            params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        return params

    def _take_failure(self, method: str) -> TgFailure | None:
        with self._lock:
            for i, failure in enumerate(self.failures):
                if failure.method == method:
                    if failure.skip > 0:
                        failure.skip -= 1
                        return None
                    return self.failures.pop(i)
        return None

    def _route(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": 123456, "is_bot": True, "first_name": "tapewatch",
                                                "username": "tapewatch_bot", "can_join_groups": False,
                                                "can_read_all_group_messages": False,
                                                "supports_inline_queries": False}}
        if method == "sendMessage":
            return self._send_message(params)
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _send_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = self.chats.get(str(params.get("chat_id")))
        if chat is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        text = str(params.get("text") or "")
        if not text.strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        plain = text
        if params.get("parse_mode") == "HTML":
            check = _TagCheck()
            check.feed(text)
            check.close()
            if check.error or check.stack:
                error = check.error or f"Can't find end tag corresponding to start tag \"{check.stack[-1]}\""
                return 400, {"ok": False, "error_code": 400,
                             "description": f"Bad Request: can't parse entities: {error}"}
            plain = "".join(check.text)
        if len(plain) > 4096:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        preview = params.get("link_preview_options")
        preview_opts = json.loads(preview) if isinstance(preview, str) else (preview or {})
        with self._lock:
            self._next_id += 1
            message = FakeMessage(self._next_id, chat, text, params.get("parse_mode"),
                                  bool(preview_opts.get("is_disabled")), datetime.now(UTC))
            self.messages.append(message)
        return 200, {"ok": True, "result": {
            "message_id": message.message_id, "date": int(message.date.timestamp()), "text": plain,
            "chat": {"id": chat, "type": "channel", "title": "tapewatch test", "username": CHANNEL[1:]},
            "sender_chat": {"id": chat, "type": "channel", "title": "tapewatch test", "username": CHANNEL[1:]},
        }}

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        self._send_raw(handler, status, json.dumps(payload).encode())

    @staticmethod
    def _send_raw(handler: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeTelegramAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def serving_telegram(token: str = TOKEN) -> Iterator[FakeTelegramAPI]:
    """A started ``FakeTelegramAPI`` for the duration of a ``with`` block."""
    server = FakeTelegramAPI(token).start()
    try:
        yield server
    finally:
        server.stop()
