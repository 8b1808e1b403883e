"""Who may use the bot (allowlists, reviewers), which groups it stays in, and how the audit log names a user."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_USERNAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Access:
    """Who may use the bot: on-demand users/chats, and reviewers (telegram user id → reviewer name).

    ``home`` holds the other chats the bot belongs in (the review chat, the publish channel) besides ``chats``.
    """

    users: frozenset[int]
    chats: frozenset[int]
    reviewers: dict[int, str]
    home: frozenset[int] = frozenset()

    def may_ask(self, user_id: int | None, chat_id: int | None) -> bool:
        """On-demand commands: allowlisted users, allowlisted chats, and reviewers."""
        return (user_id is not None and (user_id in self.users or user_id in self.reviewers)) or (
            chat_id is not None and chat_id in self.chats)

    def reviewer(self, user_id: int | None) -> str | None:
        """The reviewer name of a Telegram user, or None."""
        return self.reviewers.get(user_id) if user_id is not None else None

    def may_stay(self, chat_id: int, chat_type: str | None) -> bool:
        """Groups only when allowlisted or one of the bot's own; private chats and channels always (the publish
        channel may be configured by @name, whose numeric id the bot does not know)."""
        return chat_type not in ("group", "supergroup") or chat_id in self.chats or chat_id in self.home


def actor(user: Any) -> str:
    """A Telegram user as the audit log names them: the numeric id (stable), plus the @username as shown.

    Never the username alone: anyone can take the name "alice", nobody can take another's id.
    """
    if user is None:
        return "telegram:unknown"
    name = _USERNAME.sub("", str(getattr(user, "username", "") or ""))[:32]
    return f"telegram:{int(user.id)}" + (f" (@{name})" if name else "")
