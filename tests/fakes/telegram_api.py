"""A loopback fake of the Telegram Bot API, answering in its real JSON shapes.

Point python-telegram-bot at it with ``base_url=server.base_url`` (``http://127.0.0.1:PORT/bot``). Tests
push updates with ``user_message`` / ``user_callback`` (delivered by ``getUpdates``, long polling included),
script failures with ``fail_next``, and read what the bot sent in ``sent`` / ``calls``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

BOT_ID = 7000000001
RAW_TEXT_KEYS = {"text", "caption", "callback_query_id", "query_id", "parse_mode", "url", "description"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class Failure:
    """One scripted failure for ``method`` (``None`` = any method but getUpdates)."""

    method: str | None
    error_code: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    delay_s: float = 0.0
    after_effect: bool = False  # perform the call (e.g. deliver the message) before failing


@dataclass
class SentMessage:
    message_id: int
    chat_id: int | str
    text: str
    params: dict[str, Any] = field(default_factory=dict)
    edits: list[str] = field(default_factory=list)


def _decode(params: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in params.items():
        value = values[-1]
        if key in RAW_TEXT_KEYS:
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


class FakeTelegram:
    """Serve a fake Bot API on 127.0.0.1 for any token."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.sent: list[SentMessage] = []
        self.failures: list[Failure] = []
        self.commands: list[dict[str, Any]] = []
        self.answered: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._lock = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                server._handle(self)

            def do_GET(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        """What to pass as PTB's ``base_url``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/bot"

    # -- scripting -------------------------------------------------------------------------------
    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (any shape); returns its update_id."""
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **update})
            self._lock.notify_all()
            return update_id

    def user_message(self, user_id: int, text: str, *, chat_id: int | None = None,
                     username: str | None = None, reply_to: int | None = None) -> int:
        """A user sends ``text`` (commands get a bot_command entity like real clients send)."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": {"id": chat_id or user_id, "type": "private" if chat_id in (None, user_id) else "group"},
            "from": {"id": user_id, "is_bot": False, "first_name": username or f"user{user_id}",
                     "username": username or f"user{user_id}"},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            original = self.message(reply_to)
            message["reply_to_message"] = {
                "message_id": reply_to, "date": int(time.time()),
                "chat": {"id": original.chat_id if original else chat_id or user_id, "type": "group"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "tapewatch", "username": "tapewatch_bot"},
                "text": original.text if original else "",
            }
        return self.push_update({"message": message})

    def user_callback(self, user_id: int, message_id: int, data: str, *, username: str | None = None) -> int:
        """A user taps an inline button with ``data`` under the bot's message ``message_id``."""
        original = self.message(message_id)
        chat_id = original.chat_id if original else user_id
        return self.push_update({"callback_query": {
            "id": f"cb{next(self._update_ids)}", "chat_instance": "ci1", "data": data,
            "from": {"id": user_id, "is_bot": False, "first_name": username or f"user{user_id}",
                     "username": username or f"user{user_id}"},
            "message": {"message_id": message_id, "date": int(time.time()),
                        "chat": {"id": chat_id, "type": "group"},
                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "tapewatch"},
                        "text": original.text if original else ""},
        }})

    def fail_next(self, method: str | None, error_code: int = 500, *, times: int = 1, **kwargs: Any) -> None:
        """Queue ``times`` failures for ``method``."""
        for _ in range(times):
            self.failures.append(Failure(method, error_code, **kwargs))

    # -- inspection ------------------------------------------------------------------------------
    def message(self, message_id: int) -> SentMessage | None:
        """A message the bot sent, by id."""
        return next((m for m in self.sent if m.message_id == message_id), None)

    def sent_to(self, chat_id: int | str) -> list[SentMessage]:
        """Messages the bot sent to one chat, oldest first."""
        return [m for m in self.sent if str(m.chat_id) == str(chat_id)]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        """Poll ``predicate()`` until it returns something truthy (for tests driving the bot)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.01)
        raise AssertionError(f"timed out after {timeout}s waiting for the bot")

    def pending_updates(self) -> int:
        """Updates not yet fetched by the bot."""
        with self._lock:
            return len(self._updates)

    # -- request handling ------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        method = path.rsplit("/", 1)[-1]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        ctype = handler.headers.get("Content-Type", "")
        json_body = "json" in ctype and raw
        params = json.loads(raw) if json_body else _decode(parse_qs(raw, keep_blank_values=True))
        self.calls.append(Call(method, params))
        failure = self._take_failure(method)
        if failure is not None:
            if failure.after_effect:
                self._route(method, params)
            if failure.delay_s:
                time.sleep(failure.delay_s)
            body: dict[str, Any] = {"ok": False, "error_code": failure.error_code,
                                    "description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
                body["description"] = f"Too Many Requests: retry after {failure.retry_after}"
            self._send(handler, failure.error_code, body)
            return
        ok, result = self._route(method, params)
        if ok:
            self._send(handler, 200, {"ok": True, "result": result})
        else:
            self._send(handler, 400, {"ok": False, "error_code": 400, "description": result})

    def _take_failure(self, method: str) -> Failure | None:
        with self._lock:
            for i, failure in enumerate(self.failures):
                if failure.method == method or (failure.method is None and method != "getUpdates"):
                    return self.failures.pop(i)
        return None

    def _route(self, method: str, params: dict[str, Any]) -> tuple[bool, Any]:
        if method == "getMe":
            return True, {"id": BOT_ID, "is_bot": True, "first_name": "tapewatch", "username": "tapewatch_bot",
                          "can_join_groups": True, "can_read_all_group_messages": False,
                          "supports_inline_queries": False}
        if method == "getUpdates":
            return True, self._get_updates(params)
        if method in ("deleteWebhook", "setWebhook", "close", "logOut"):
            return True, True
        if method == "setMyCommands":
            self.commands = list(params.get("commands") or [])
            return True, True
        if method == "getMyCommands":
            return True, self.commands
        if method == "answerCallbackQuery":
            self.answered.append(params)
            return True, True
        if method == "sendMessage":
            if not str(params.get("text", "")).strip():
                return False, "Bad Request: message text is empty"
            if len(str(params["text"])) > 4096:
                return False, "Bad Request: message is too long"
            message = SentMessage(next(self._message_ids), params["chat_id"], str(params["text"]), params)
            self.sent.append(message)
            return True, self._message_json(message)
        if method in ("editMessageText", "editMessageReplyMarkup"):
            target = self.message(int(params.get("message_id", 0)))
            if target is None:
                return False, "Bad Request: message to edit not found"
            if method == "editMessageText":
                target.edits.append(target.text)
                target.text = str(params.get("text", ""))
            target.params = {**target.params, **params}
            return True, self._message_json(target)
        return False, f"Bad Request: method {method} not supported by the fake"

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 0.5)  # long polling, short for tests
        deadline = time.monotonic() + timeout
        with self._lock:
            # Telegram forgets updates below the offset: they were confirmed.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._lock.wait(max(0.0, deadline - time.monotonic()))
            return list(self._updates[: int(params.get("limit") or 100)])

    @staticmethod
    def _message_json(message: SentMessage) -> dict[str, Any]:
        chat_id = message.chat_id
        chat: dict[str, Any] = {"id": chat_id, "type": "channel" if str(chat_id).startswith("@") else "group"}
        if str(chat_id).startswith("@"):
            chat = {"id": -1001000000000, "type": "channel", "username": str(chat_id)[1:]}
        return {"message_id": message.message_id, "date": int(time.time()), "chat": chat,
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "tapewatch"}, "text": message.text}

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeTelegram:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._lock.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def serving_telegram() -> Iterator[FakeTelegram]:
    """A started ``FakeTelegram`` for the duration of a ``with`` block."""
    server = FakeTelegram().start()
    try:
        yield server
    finally:
        server.stop()
