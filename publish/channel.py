"""What a publishing channel (X, Telegram) offers the outbox, and how its failures are classified.

Every failure of a send is one of: ``Retryable`` (the post certainly did not go out: a 429, a refused
connection, an error the service answered with), ``Ambiguous`` (it may have gone out: a read timeout, a reset
connection, a 5xx from X, an unreadable reply) or ``Rejected`` (the service refused it for good: 4xx).
Only ``Retryable`` is ever sent again directly; ``Ambiguous`` goes through reconciliation first.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sources.errors import PublishError


class Retryable(PublishError):
    """The post did not go out; try again after ``wait_s`` (a service's hint) or a backoff."""

    def __init__(self, message: str, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class RateLimited(Retryable):
    """A 429: the service says when to come back."""


class Ambiguous(PublishError):
    """The post may or may not have gone out."""


class Rejected(PublishError):
    """The service refused the post and will refuse it again."""


@dataclass(frozen=True)
class Media:
    """An image to attach to a part: PNG bytes and its alt text."""

    png: bytes
    alt: str = ""
    name: str = "chart.png"


@dataclass(frozen=True)
class Sent:
    """Where a part went."""

    remote_id: str
    url: str | None = None


@dataclass(frozen=True)
class Lookup:
    """A search of the channel for a part: what was found, and whether the search covered the whole window."""

    found: Sent | None
    complete: bool


class Channel(Protocol):
    """A place drafts are published to; async so the daemon's event loop can await it."""

    name: str
    # True when ``find`` can search the account's own recent posts (X); False when only a person can check.
    reconcilable: bool

    async def open(self) -> None:
        """Get ready to send (log in, check the token)."""

    async def close(self) -> None:
        """Release connections."""

    async def send(self, text: str, reply_to: str | None, media: Media | None = None) -> Sent:
        """Post one part, replying to ``reply_to`` when given, with ``media`` attached when given."""

    async def find(self, text: str, reply_to: str | None, since: datetime) -> Lookup:
        """Look for a post with this text (and parent) among the account's own posts since ``since``."""


_URL = re.compile(r"https?://\S+")


def normalise_post(text: str) -> str:
    """Text as a service may echo it back: entities unescaped, links (X wraps them in t.co) and spacing blurred."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(_URL.sub("<url>", text).split()).casefold()
