"""When drafts may go out: the publishing policy, quiet hours, the daily cap and the duplicate guard."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from publish.channel import normalise_post
from publish.outbox import Outbox

_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class PublishPolicy:
    """The rules a publish run follows (built from ``[publish]`` and ``[review]`` settings)."""

    mode: str = "review"  # review: approved drafts only; auto: also pending drafts that passed grounding
    channels: tuple[str, ...] = ("x", "telegram")
    quiet_hours: tuple[time, time] | None = None
    timezone: str = "UTC"
    max_posts_per_day: int = 12
    duplicate_window: timedelta = timedelta(hours=72)
    duplicate_threshold: float = 0.9
    expire_after: timedelta = timedelta(hours=48)

    def is_quiet(self, now: datetime) -> bool:
        """True inside the quiet hours (a window may wrap past midnight)."""
        if self.quiet_hours is None:
            return False
        start, end = self.quiet_hours
        local = now.astimezone(ZoneInfo(self.timezone)).time()
        return start <= local < end if start <= end else (local >= start or local < end)


def parse_quiet_hours(value: str | None) -> tuple[time, time] | None:
    """'23:00-07:00' → (23:00, 07:00); None stays None."""
    if not value:
        return None
    start, end = (time.fromisoformat(p) for p in value.split("-"))
    return start, end


def similarity(a: str, b: str) -> float:
    """How alike two posts read, 0..1, after tags, links, case and spacing are blurred."""
    from rapidfuzz import fuzz

    return float(fuzz.ratio(_plain(a), _plain(b))) / 100.0


def _plain(text: str) -> str:
    return normalise_post(_TAG.sub(" ", text))


class DuplicateGuard:
    """Block a post too similar to one sent on the same channel recently."""

    def __init__(self, outbox: Outbox, window: timedelta, threshold: float) -> None:
        self.outbox = outbox
        self.window = window
        self.threshold = threshold

    def check(self, channel: str, texts: list[str], now: datetime, draft_id: str) -> tuple[str, float] | None:
        """(draft id, similarity) of the most similar recent post at or above the threshold, if any."""
        mine = "\n".join(texts)
        best: tuple[str, float] | None = None
        for other, parts in self.outbox.sent_since(channel, now - self.window).items():
            if other == draft_id:
                continue
            score = similarity(mine, "\n".join(parts))
            if score >= self.threshold and (best is None or score > best[1]):
                best = (other, score)
        return best
