"""Time words in a claim ("today", "yesterday", "this week", "on Tuesday") as spans of time.

A claim that says "today" about an event its sources reported three days ago is wrong even when every
number in it is right. Spans are computed against an anchor (the end of the brief's window) in UTC, and
an item's own time word moves its event from its publication time ("yesterday" in a post from Wednesday
is Tuesday).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PATTERN = re.compile(
    r"(?<!since )(?<!from )(?<!until )(?<!till )"
    r"\b(?P<word>earlier today|so far today|today|tonight|this (?:morning|afternoon|evening)|"
    r"yesterday|last night|overnight|this week|last week|this month|last month|"
    r"(?:on |last |this )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))(?:'s)?\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class TimeSpan:
    """What a time word covers, as [start, end) in UTC."""

    word: str
    start: datetime
    end: datetime

    def holds(self, when: datetime, slack: timedelta) -> bool:
        """Whether ``when`` falls in the span, give or take ``slack`` (time zones, late reports)."""
        return self.start - slack <= when < self.end + slack


def _day(anchor: datetime) -> datetime:
    return anchor.replace(hour=0, minute=0, second=0, microsecond=0)


def _span(word: str, anchor: datetime) -> tuple[datetime, datetime]:
    day = _day(anchor)
    w = word.lower()
    if w in ("today", "earlier today", "so far today", "tonight"):
        return day, anchor + timedelta(minutes=1)
    if w == "this morning":
        return day, day + timedelta(hours=13)
    if w in ("this afternoon", "this evening"):
        return day + timedelta(hours=11), anchor + timedelta(minutes=1)
    if w == "yesterday":
        return day - timedelta(days=1), day
    if w == "last night":
        return day - timedelta(hours=8), day + timedelta(hours=6)
    if w == "overnight":
        return anchor - timedelta(hours=18), anchor + timedelta(minutes=1)
    if w == "this week":
        return anchor - timedelta(days=7), anchor + timedelta(minutes=1)
    if w == "last week":
        return anchor - timedelta(days=14), anchor - timedelta(days=4)
    if w == "this month":
        return day.replace(day=1), anchor + timedelta(minutes=1)
    if w == "last month":
        first = day.replace(day=1)
        return (first - timedelta(days=1)).replace(day=1), first
    name = w.split()[-1]
    back = (anchor.weekday() - _WEEKDAYS.index(name)) % 7
    if w.startswith("last ") and back == 0:
        back = 7
    start = day - timedelta(days=back)
    return start, start + timedelta(days=1)


def time_spans(text: str, anchor: datetime) -> list[TimeSpan]:
    """The time words of ``text`` as spans relative to ``anchor``."""
    return [TimeSpan(m.group("word").lower(), *_span(m.group("word"), anchor)) for m in _PATTERN.finditer(text)]


def event_time(text: str, published: datetime) -> datetime:
    """When what ``text`` reports happened: its publication time, moved by its own time word if it has one."""
    spans = time_spans(text, published)
    if not spans:
        return published
    span = spans[0]
    # The middle of a past span, never later than publication.
    middle = span.start + (min(span.end, published) - span.start) / 2
    return min(middle, published)
