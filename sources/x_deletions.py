"""X's rule on deleted content: which stored posts X no longer returns, read from a GET /2/tweets?ids= answer.

Pure: ``post_id`` takes the id out of a stored post's URL, ``unavailable`` reads one lookup answer. A post
is gone when X names it in ``errors`` (not found: deleted; not authorised: its author suspended or
protected) or, when the answer has no error that names no post, simply leaves it out of ``data``. An
answer that cannot be read raises, so nothing is deleted on a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sources.errors import FeedParseError

_STATUS = re.compile(r"/status(?:es)?/(\d{1,25})(?:[/?#]|$)")


def post_id(url: str) -> str | None:
    """The post id in an x.com / twitter.com status URL, or None."""
    m = _STATUS.search(url or "")
    return m.group(1) if m else None


@dataclass(frozen=True)
class Lookup:
    """What one lookup said about the ids asked."""

    present: frozenset[str]
    gone: dict[str, str]  # post id → why X no longer returns it (deleted, suspended, protected, …)

    @property
    def returned(self) -> int:
        """Posts X returned, which is what it bills as reads."""
        return len(self.present)


def unavailable(payload: Any, asked: Sequence[str]) -> Lookup:
    """Which of ``asked`` X returned and which it no longer does, with X's reason."""
    if not isinstance(payload, Mapping):
        raise FeedParseError(f"X lookup answer is {type(payload).__name__}, not a JSON object")
    data, errors = payload.get("data") or [], payload.get("errors") or []
    if not isinstance(data, list) or not isinstance(errors, list):
        raise FeedParseError("X lookup answer: data and errors must be lists")
    wanted = set(asked)
    present = frozenset(str(p.get("id")) for p in data if isinstance(p, Mapping) and str(p.get("id")) in wanted)
    gone: dict[str, str] = {}
    unnamed = False
    for err in errors:
        if not isinstance(err, Mapping):
            unnamed = True
            continue
        ident = str(err.get("resource_id") or err.get("value") or "")
        if ident in wanted and ident not in present:
            gone[ident] = _reason(err)
        else:
            unnamed = True
    if not unnamed:  # X leaves unavailable posts out; trust an omission only when every error named its post
        for ident in wanted - present - set(gone):
            gone[ident] = "not returned"
    return Lookup(present, gone)


def _reason(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type") or "")
    detail = " ".join(str(err.get("detail") or err.get("title") or "").split())[:120]
    if kind.endswith("resource-not-found"):
        return "deleted"
    if "suspend" in detail.lower():
        return "author suspended"
    if kind.endswith("not-authorized-for-resource"):
        return "not authorised (suspended or protected)"
    return detail or kind or "unavailable"
