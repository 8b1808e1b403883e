"""A loopback fake of the Telegram Bot API methods tapewatch uses, in the real JSON shapes.

``/bot<token>/getMe``, ``sendMessage`` (``reply_parameters`` too), ``deleteMessage``, ``editMessageText``,
``answerCallbackQuery``, ``setMyCommands`` and
``getUpdates`` with long polling (form-encoded like python-telegram-bot sends it, or JSON). Tests act as users
with ``user_message`` / ``user_callback`` (delivered to the bot through getUpdates in the real update shape).
Answers are ``{"ok": true, "result": ...}``; errors ``{"ok": false, "error_code": n, "description": ...}`` with
``parameters.retry_after`` on a 429. Failures are scripted with ``fail_next`` (after ``skip`` matching calls,
optionally after delivering the message, optionally after a delay, optionally with a raw malformed body).
Delivered messages are in ``messages``; every request in ``requests``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer, send_body, send_json

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
    params: dict[str, Any] = field(default_factory=dict)  # as sent, JSON-valued fields decoded
    edits: list[str] = field(default_factory=list)  # earlier texts, when the bot edited the message
    at: float = field(default_factory=time.monotonic)  # when the fake received it (for latency figures)


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


def html_error(text: str) -> str | None:
    """Why Telegram's HTML parse mode would refuse ``text`` (unknown tag, unbalanced tags), or None."""
    check = _TagCheck()
    check.feed(text)
    check.close()
    if check.error or check.stack:
        return check.error or f"Can't find end tag corresponding to start tag \"{check.stack[-1]}\""
    return None


def html_plain(text: str) -> str:
    """The text a reader sees of a Telegram HTML message."""
    check = _TagCheck()
    check.feed(text)
    check.close()
    return "".join(check.text)


class FakeTelegramAPI(LoopbackServer):
    """Serve a fake Bot API on 127.0.0.1; point a PTB ``Bot`` at ``base_url``."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.chats: dict[str, int] = {CHANNEL: CHANNEL_ID, str(CHANNEL_ID): CHANNEL_ID}
        self.messages: list[FakeMessage] = []
        self.requests: list[TgRequest] = []
        self.failures: list[TgFailure] = []
        self.refusals: list[tuple[str, str, int, str]] = []  # (method, text it contains, status, description)
        self.commands: list[dict[str, Any]] = []
        self.answered: list[dict[str, Any]] = []  # answerCallbackQuery calls
        self.left: list[int] = []  # chats the bot left (leaveChat)
        self.deleted: list[FakeMessage] = []  # messages the bot deleted (deleteMessage), gone from ``messages``
        self.usernames: dict[int, str | None] = {}  # a user's @username, when not the default user<id>
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._next_id = 100
        self._lock = threading.Condition()  # stop() wakes the long polls waiting on it
        # base_url is what to pass as ``Bot(base_url=...)``: http://127.0.0.1:PORT/bot (PTB appends the token).
        super().__init__(self._handle, methods=("GET", "POST"), path="/bot")

    def fail_next(self, method: str, status: int = 500, *, times: int = 1, **kwargs: Any) -> None:
        """Queue ``times`` failures for ``method``."""
        with self._lock:
            for _ in range(times):
                self.failures.append(TgFailure(method, status, **kwargs))

    def refuse(self, method: str, containing: str, status: int = 400,
               description: str = "Bad Request: can't parse entities: Unsupported start tag \"poison\"") -> None:
        """Refuse every ``method`` call whose text contains ``containing`` (a poison item), for good."""
        with self._lock:
            self.refusals.append((method, containing, status, description))

    def calls(self, method: str) -> list[TgRequest]:
        """Recorded requests of one method."""
        return [r for r in self.requests if r.method == method]

    # -- acting as users ------------------------------------------------------------------------
    def add_chat(self, chat_id: int) -> None:
        """Make a chat (a user's private chat, a group) known, so the bot may send to it."""
        with self._lock:
            self.chats[str(chat_id)] = chat_id

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (any shape) for getUpdates; returns its update_id."""
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **update})
            self._lock.notify_all()
            return update_id

    def _new_message_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def user_message(self, user_id: int, text: str, *, chat_id: int | None = None,
                     reply_to: int | None = None) -> int:
        """User ``user_id`` writes ``text`` (commands carry a bot_command entity, as real clients send)."""
        chat = chat_id if chat_id is not None else user_id
        self.add_chat(chat)
        message: dict[str, Any] = {
            "message_id": self._new_message_id(), "date": int(time.time()), "chat": _chat_json(chat),
            "from": self._user(user_id), "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            original = self.message(reply_to)
            message["reply_to_message"] = {
                "message_id": reply_to, "date": int(time.time()), "chat": _chat_json(chat),
                "from": _BOT_USER, "text": original.text if original else "",
            }
        return self.push_update({"message": message})

    def bot_added_to(self, chat_id: int, by_user: int) -> int:
        """User ``by_user`` adds the bot to group ``chat_id`` (a ``my_chat_member`` update)."""
        self.add_chat(chat_id)
        member = {"user": _BOT_USER, "status": "member"}
        return self.push_update({"my_chat_member": {
            "chat": _chat_json(chat_id), "from": self._user(by_user), "date": int(time.time()),
            "old_chat_member": {**member, "status": "left"}, "new_chat_member": member}})

    def _user(self, user_id: int) -> dict[str, Any]:
        user = _user_json(user_id)
        if user_id in self.usernames:
            name = self.usernames[user_id]
            user = {k: v for k, v in user.items() if k != "username"} | ({"username": name} if name else {})
        return user

    def user_callback(self, user_id: int, message_id: int, data: str) -> int:
        """User ``user_id`` taps an inline button carrying ``data`` under the bot's message ``message_id``."""
        original = self.message(message_id)
        chat = original.chat_id if original else user_id
        return self.push_update({"callback_query": {
            "id": f"cb{next(self._update_ids)}", "chat_instance": "ci1", "data": data, "from": self._user(user_id),
            "message": {"message_id": message_id, "date": int(time.time()), "chat": _chat_json(chat),
                        "from": _BOT_USER, "text": original.text if original else ""},
        }})

    def message(self, message_id: int) -> FakeMessage | None:
        """A message the bot sent, by id."""
        return next((m for m in self.messages if m.message_id == message_id), None)

    def sent_to(self, chat_id: int) -> list[FakeMessage]:
        """Messages the bot sent to one chat, oldest first."""
        return [m for m in self.messages if m.chat_id == chat_id]

    def pending_updates(self) -> int:
        """Updates the bot has not confirmed yet."""
        with self._lock:
            return len(self._updates)

    # -- request handling -----------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, http_method: str) -> None:
        parts = urlsplit(handler.path)
        token, _, method = parts.path.lstrip("/").partition("/")
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        params = self._params(handler.headers.get("Content-Type", ""), raw, parts.query)
        self.requests.append(TgRequest(method, params))
        if token != f"bot{self.token}":
            send_json(handler, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        refusal = self._refusal(method, params)
        if refusal is not None:
            send_json(handler, refusal[0], {"ok": False, "error_code": refusal[0], "description": refusal[1]})
            return
        failure = self._take_failure(method)
        if failure is not None:
            if failure.after_effect:
                self._route(method, params)
            if failure.delay_s:
                time.sleep(failure.delay_s)
            if failure.raw is not None:
                send_body(handler, failure.status, failure.raw)
                return
            body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            send_json(handler, failure.status, body)
            return
        status, payload = self._route(method, params)
        send_json(handler, status, payload)

    @staticmethod
    def _params(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[0] for k, v in parse_qs(query).items()}
        if "json" in content_type and raw:
            params.update(json.loads(raw))
        elif "multipart/form-data" in content_type and raw:  # sendPhoto with the file itself
            from email.parser import BytesParser
            from email.policy import HTTP

            form = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
            for part in form.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                params[str(name)] = payload if part.get_filename() else payload.decode()
        elif raw:
            params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        return params

    def _refusal(self, method: str, params: dict[str, Any]) -> tuple[int, str] | None:
        text = str(params.get("text") or "")
        with self._lock:
            return next(((status, why) for m, part, status, why in self.refusals if m == method and part in text),
                        None)

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
        if method == "sendPhoto":
            return self._send_photo(params)
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        if method in ("deleteWebhook", "setWebhook"):
            return 200, {"ok": True, "result": True}
        if method == "setMyCommands":
            self.commands = list(_decoded(params).get("commands") or [])
            return 200, {"ok": True, "result": True}
        if method == "leaveChat":
            chat = int(params.get("chat_id") or 0)
            if chat in self.left:
                return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot is not a member"}
            self.left.append(chat)
            return 200, {"ok": True, "result": True}
        if method == "answerCallbackQuery":
            self.answered.append(params)
            return 200, {"ok": True, "result": True}
        if method == "editMessageText":
            return self._edit_message(params)
        if method == "deleteMessage":
            return self._delete_message(params)
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 0.5)  # long polling, short for tests
        with self._lock:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]  # below the offset: confirmed
            while not self._updates and time.monotonic() < deadline:
                self._lock.wait(max(0.0, deadline - time.monotonic()))
            return list(self._updates[: int(params.get("limit") or 100)])

    def _edit_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        target = self.message(int(params.get("message_id") or 0))
        if target is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
        text = str(params.get("text") or "")
        error = html_error(text) if params.get("parse_mode") == "HTML" else None
        if error:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: can't parse entities: {error}"}
        if text == target.text and _decoded(params).get("reply_markup") == target.params.get("reply_markup"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is not modified"}
        target.edits.append(target.text)
        target.text = text
        # As Telegram does: an edit without reply_markup removes the message's inline keyboard.
        target.params = {**{k: v for k, v in target.params.items() if k != "reply_markup"}, **_decoded(params)}
        return 200, {"ok": True, "result": self._message_json(target)}

    def _delete_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            target = self.message(int(params.get("message_id") or 0))
            if target is None or str(target.chat_id) != str(self.chats.get(str(params.get("chat_id")))):
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to delete not found"}
            self.messages.remove(target)
            self.deleted.append(target)
        return 200, {"ok": True, "result": True}

    @staticmethod
    def _message_json(message: FakeMessage) -> dict[str, Any]:
        return {"message_id": message.message_id, "date": int(message.date.timestamp()), "text": message.text,
                "chat": _chat_json(message.chat_id), "from": _BOT_USER}

    def _send_photo(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A photo (kept in ``params["photo"]``) with an optional HTML caption of at most 1024 visible characters."""
        photo, caption = params.get("photo"), str(params.get("caption") or "")
        if not isinstance(photo, bytes) or not photo.startswith(b"\x89PNG"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: IMAGE_PROCESS_FAILED"}
        plain = html_plain(caption) if params.get("parse_mode") == "HTML" and caption else caption
        if caption and params.get("parse_mode") == "HTML" and (error := html_error(caption)):
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: can't parse entities: {error}"}
        if len(plain) > 1024:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message caption is too long"}
        chat = self.chats.get(str(params.get("chat_id")))
        if chat is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        with self._lock:
            self._next_id += 1
            message = FakeMessage(self._next_id, chat, caption, params.get("parse_mode"), False, datetime.now(UTC),
                                  _decoded(params))
            self.messages.append(message)
        return 200, {"ok": True, "result": {
            "message_id": message.message_id, "date": int(message.date.timestamp()), "caption": plain,
            "photo": [{"file_id": f"photo{message.message_id}", "file_unique_id": f"u{message.message_id}",
                       "width": 1200, "height": 675}],
            "chat": {"id": chat, "type": "channel", "title": "tapewatch test", "username": CHANNEL[1:]}}}

    def _send_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = self.chats.get(str(params.get("chat_id")))
        if chat is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        text = str(params.get("text") or "")
        if not text.strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        plain = text
        if params.get("parse_mode") == "HTML":
            error = html_error(text)
            if error:
                return 400, {"ok": False, "error_code": 400,
                             "description": f"Bad Request: can't parse entities: {error}"}
            plain = html_plain(text)
        if len(plain) > 4096:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        reply = _decoded(params).get("reply_parameters")
        # In the channel every message is the bot's own, so a reply must answer one it sent (and did not delete).
        if chat == CHANNEL_ID and isinstance(reply, dict) and self.message(int(reply.get("message_id") or 0)) is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to be replied not found"}
        preview = params.get("link_preview_options")
        preview_opts = json.loads(preview) if isinstance(preview, str) else (preview or {})
        with self._lock:
            self._next_id += 1
            message = FakeMessage(self._next_id, chat, text, params.get("parse_mode"),
                                  bool(preview_opts.get("is_disabled")), datetime.now(UTC), _decoded(params))
            self.messages.append(message)
        if chat != CHANNEL_ID:  # a private chat or a group
            return 200, {"ok": True, "result": {**self._message_json(message), "text": plain}}
        return 200, {"ok": True, "result": {
            "message_id": message.message_id, "date": int(message.date.timestamp()), "text": plain,
            "chat": {"id": chat, "type": "channel", "title": "tapewatch test", "username": CHANNEL[1:]},
            "sender_chat": {"id": chat, "type": "channel", "title": "tapewatch test", "username": CHANNEL[1:]},
        }}

    # -- lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Wake any long poll, then stop serving."""
        with self._lock:
            self._lock.notify_all()
        super().stop()


_BOT_USER = {"id": 123456, "is_bot": True, "first_name": "tapewatch", "username": "tapewatch_bot"}


def _user_json(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}", "username": f"user{user_id}"}


def _chat_json(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
    return {"id": chat_id, "type": "supergroup", "title": f"group {chat_id}"}


def _decoded(params: dict[str, Any]) -> dict[str, Any]:
    """Form values PTB JSON-encodes (markup, command lists, options) turned back into objects."""
    out = dict(params)
    for key in ("reply_markup", "commands", "link_preview_options", "entities", "reply_parameters"):
        value = out.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(value)
    return out


@contextmanager
def serving_telegram(token: str = TOKEN) -> Iterator[FakeTelegramAPI]:
    """A started ``FakeTelegramAPI`` for the duration of a ``with`` block."""
    with FakeTelegramAPI(token) as server:
        yield server
