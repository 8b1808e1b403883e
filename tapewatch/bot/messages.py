"""Telegram HTML messages: split to the message limit with every part valid, fit one part, or fall back to plain.

Telegram refuses a whole message whose HTML does not parse, so a part must never end inside a tag or an entity,
nor leave a tag open. Text is read as a run of atoms (a character, an entity, a tag); tags that Telegram does not
know, and stray ``<``, ``>`` or ``&``, become escaped text; tags still open at a cut are closed at the end of the
part and opened again, with their attributes, at the start of the next.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from crew.render import TELEGRAM_LIMIT

# The tags of Telegram's HTML parse mode (https://core.telegram.org/bots/api#html-style).
TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                  "tg-spoiler", "blockquote", "tg-emoji"})
_ATOM = re.compile(
    r"<(?P<close>/)?(?P<name>[a-zA-Z][a-zA-Z0-9-]*)"
    r"(?P<attrs>(?:\s+[a-zA-Z][a-zA-Z0-9-]*(?:=(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s\"'<>=`]+))?)*)\s*>"
    r"|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);"
    r"|[\ud800-\udbff][\udc00-\udfff]|.", re.DOTALL)
_ESCAPE = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_MIN_LIMIT = 16  # room for the longest atom that is not a tag (a numeric entity) with room to spare
_MAX_FLOOD_WAIT_S = 5.0  # a reply waits out a short flood-control pause once; longer ones drop the part
log = logging.getLogger(__name__)
_JOINS = {"\u200d", "\ufe0e", "\ufe0f"}  # zero-width joiner and variation selectors bind to their neighbours


@dataclass(frozen=True)
class _Atom:
    kind: str  # "text", "open" or "close"
    raw: str  # the markup as it goes into a message
    name: str = ""  # tag name for open/close; the character for text


def u16(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _atoms(text: str) -> list[_Atom]:
    """``text`` as balanced atoms: unknown tags and stray markup become text, unclosed tags are closed."""
    out: list[_Atom] = []
    stack: list[str] = []
    for match in _ATOM.finditer(text):
        raw = match.group()
        name = (match.group("name") or "").lower()
        if match.group("name") is not None and name in TAGS:
            if match.group("close"):
                if name not in stack:
                    continue  # a close tag with nothing to close: dropped
                while stack:  # closing an outer tag closes the ones left open inside it
                    inner = stack.pop()
                    out.append(_Atom("close", f"</{inner}>", inner))
                    if inner == name:
                        break
            else:
                stack.append(name)
                out.append(_Atom("open", f"<{name}{match.group('attrs').rstrip()}>", name))
            continue
        if raw.startswith("&") and len(raw) > 1:
            out.append(_Atom("text", raw, html.unescape(raw)))
        elif len(raw) > 1:  # an unknown tag: shown as the text it is
            out.extend(_Atom("text", _ESCAPE.get(c, c), c) for c in raw)
        else:
            out.append(_Atom("text", _ESCAPE.get(raw, raw), raw))
    out.extend(_Atom("close", f"</{name}>", name) for name in reversed(stack))
    return out


def _cuttable(atoms: list[_Atom], k: int) -> bool:
    """Whether a part may end before atom ``k`` without splitting a character sequence."""
    before, after = atoms[k - 1], atoms[k]
    if before.kind != "text" or after.kind != "text":
        return True
    return not (before.name in _JOINS or after.name in _JOINS or unicodedata.combining(after.name[:1] or " "))


def split_html(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """``text`` as Telegram HTML messages of at most ``limit`` UTF-16 units each, cut at a line, else a space.

    Every part is valid on its own (tags balanced, none cut, no entity cut); the whitespace a part was cut at is
    dropped; parts with no visible text are left out.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"a Telegram message limit of {limit} is too small (at least {_MIN_LIMIT})")
    try:
        return _split(_atoms(text), limit)
    except _TooDeep:  # tags nested deeper than a message holds: the words still go out, without formatting
        return _split(_atoms(html.escape(plain_text(text), quote=False)), limit)


class _TooDeep(Exception):
    """The tags open at some point (with the next atom) do not fit one message."""


def _split(atoms: list[_Atom], limit: int) -> list[str]:
    parts: list[str] = []
    stack: list[_Atom] = []  # tags open where the next part starts
    i = 0
    while i < len(atoms):
        if atoms[i].kind == "text" and atoms[i].name in (" ", "\n"):
            i += 1  # a part never starts with the whitespace the previous one was cut at
            continue
        cut, at_cut = _next_cut(atoms, i, stack, limit)
        part = "".join(a.raw for a in stack) + "".join(a.raw for a in atoms[i:cut]) \
            + "".join(f"</{a.name}>" for a in reversed(at_cut))
        if plain_text(part).strip():
            parts.append(part)
        stack, i = at_cut, cut
    return parts


def _next_cut(atoms: list[_Atom], start: int, stack: list[_Atom], limit: int) -> tuple[int, list[_Atom]]:
    """Where the part beginning at ``start`` (inside the ``stack`` of open tags) ends, and the tags open there."""
    open_ = list(stack)
    size = sum(u16(a.raw) for a in open_)
    closing = sum(u16(f"</{a.name}>") for a in open_)
    # Candidate cuts by kind: the latest of each, and the latest that leaves the part at least half full.
    latest: dict[str, tuple[int, list[_Atom]]] = {}
    full: dict[str, tuple[int, list[_Atom]]] = {}
    j = start
    while j < len(atoms):
        atom = atoms[j]
        after = closing + (u16(f"</{atom.name}>") if atom.kind == "open" else 0) \
            - (u16(atom.raw) if atom.kind == "close" else 0)
        if j > start and _cuttable(atoms, j):  # a cut before atom j: everything before it fits
            kind = {"\n": "line", " ": "space"}.get(atom.name, "any") if atom.kind == "text" else "any"
            latest[kind] = (j, list(open_))
            if 2 * (size + closing) >= limit:
                full[kind] = latest[kind]
        if size + u16(atom.raw) + after > limit:
            break
        size += u16(atom.raw)
        closing = after
        if atom.kind == "open":
            open_.append(atom)
        elif atom.kind == "close":
            open_.pop()
        j += 1
    if j == len(atoms):
        return j, open_
    for kind in ("line", "space", "any"):
        if kind in full:
            return full[kind]
    for kind in ("line", "space", "any"):
        if kind in latest:
            return latest[kind]
    raise _TooDeep()


def fit_html(text: str, limit: int = TELEGRAM_LIMIT, more: str = "…") -> str:
    """The first part of ``text`` that fits ``limit`` together with ``more`` (HTML) when text was left out."""
    whole = split_html(text, limit)
    if len(whole) <= 1:
        return whole[0] if whole else ""
    head = split_html(text, limit - u16(more))
    return (head[0] if head else "") + more


def clip(text: str, limit: int = TELEGRAM_LIMIT) -> str:
    """Plain ``text`` cut to ``limit`` UTF-16 units (an emoji counts 2), never inside a surrogate pair."""
    if u16(text) <= limit:
        return text
    out, size = [], 0
    for char in text:
        size += u16(char)
        if size > limit - 1:
            break
        out.append(char)
    return "".join(out) + "…"


def plain_text(text: str) -> str:
    """What a reader sees of ``text``: the HTML without its tags, entities decoded (for a plain-text fallback)."""
    return "".join(a.name for a in _atoms(text) if a.kind == "text")


async def send_html(bot: Any, chat_id: int | str, text: str, *, reply_markup: Any = None,
                    limit: int = TELEGRAM_LIMIT) -> list[Any]:
    """Send ``text`` in as many messages as it takes (buttons on the last); the messages that went out.

    One part Telegram refuses never stops the others: each goes through ``send_part``, and a part that still
    fails is logged in one line while the next is tried.
    """
    from telegram.error import TelegramError

    parts = split_html(text, limit)
    sent: list[Any] = []
    for number, part in enumerate(parts, 1):
        try:
            sent.append(await send_part(bot, chat_id, part, reply_markup if number == len(parts) else None))
        except TelegramError as exc:
            log.warning("could not send part %d/%d to chat %s: %s", number, len(parts), chat_id, exc)
    return sent


async def send_part(bot: Any, chat_id: int | str, part: str, reply_markup: Any = None) -> Any:
    """Send one message as HTML; refused as HTML, the same words go as plain text. Raises ``TelegramError``."""
    from telegram.constants import ParseMode
    from telegram.error import BadRequest

    try:
        return await _send_once(bot, chat_id, part, reply_markup, ParseMode.HTML)
    except BadRequest as exc:
        plain = plain_text(part).strip()
        if "parse" not in str(exc).lower() or not plain:  # chat not found, bad buttons…: plain won't help
            raise
        log.warning("Telegram refused a message to chat %s as HTML (%s); sent as plain text", chat_id, exc)
        return await _send_once(bot, chat_id, plain, reply_markup, None)


async def _send_once(bot: Any, chat_id: int | str, text: str, markup: Any, parse_mode: str | None) -> Any:
    """One sendMessage; a short flood-control wait is waited out once."""
    import asyncio

    from telegram.error import RetryAfter

    for attempt in range(2):
        try:
            return await bot.send_message(chat_id, text, parse_mode=parse_mode, reply_markup=markup,
                                          disable_web_page_preview=True)
        except RetryAfter as exc:
            wait = _seconds(exc)
            if attempt or wait > _MAX_FLOOD_WAIT_S:
                raise
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def _seconds(exc: Any) -> float:
    import warnings
    from datetime import timedelta

    with warnings.catch_warnings():  # PTB 22 warns while moving retry_after from int to timedelta
        warnings.simplefilter("ignore")
        after = exc.retry_after
    return after.total_seconds() if isinstance(after, timedelta) else float(after)


async def answer_query(query: Any, text: str, *, alert: bool = False) -> None:
    """Answer a button tap (the user's client waits for it); a stale query's refusal is logged, never raised."""
    from telegram.error import TelegramError

    try:
        await query.answer(text[:200], show_alert=alert)
    except TelegramError as exc:  # "query is too old", or Telegram unreachable
        log.info("button tap not answered: %s", exc)
