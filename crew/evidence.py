"""What stored items state, sentence by sentence: the numbers each states about which asset, and when.

The validator asks questions of this: does a cited item state $612M about BTC's ETF flows? Which
independent groups name $FROG? A number an item states grounds only a number about what the item
says it is about (entity–number binding on both sides), and an item that reads as instructions to an
AI grounds nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crew.claims import sentences, without_urls
from crew.entities import Entities
from crew.numbers import Number, numbers_in_sentence
from crew.timewords import event_time
from crew.trust import SourcePolicy
from sources.injection import is_suspect_row

_DIRECTED_ROLES = frozenset({"price", "move", "volume", "mcap", "flow"})
_COPY_NOISE = re.compile(r"https?://\S+|@\w+|#\w+|[^\w\s$%]")


@dataclass(frozen=True)
class Statement:
    """One sentence of an item, with what it names and the numbers it states."""

    text: str
    tickers: frozenset[str]
    numbers: tuple[Number, ...]
    when: datetime  # when what it reports happened


@dataclass(frozen=True)
class Source:
    """One stored item as evidence."""

    row: Any
    tier: str
    group: str
    suspect: bool
    statements: tuple[Statement, ...]

    @property
    def id(self) -> str:
        """The item id."""
        return str(self.row.id)

    @property
    def tickers(self) -> frozenset[str]:
        """Every ticker the item names (its stored tickers and any named in its text)."""
        stored = frozenset(t.upper() for t in (self.row.tickers or "").split())
        return stored.union(*(s.tickers for s in self.statements))

    def label(self) -> str:
        """How a reviewer knows the item: its outlet or account and its tier."""
        who = self.row.author if self.row.kind == "social" and self.row.author else self.row.source
        return f"{who} ({self.tier})"


def read_source(row: Any, entities: Entities, policy: SourcePolicy) -> Source:
    """An item row as evidence: its statements, tier, group, and whether it is suspect."""
    body = f"{row.title}.\n{row.text or ''}" if (row.text or "") != row.title else f"{row.title}"
    statements = []
    for sentence in sentences(without_urls(body))[:200]:
        mentions = entities.mentions(sentence)
        tickers = frozenset(t for m in mentions for t in (m.ticker.split("/") if m.pair else (m.ticker,)))
        statements.append(Statement(sentence, tickers, tuple(numbers_in_sentence(sentence, mentions)),
                                    event_time(sentence, row.published_at)))
    return Source(row=row, tier=policy.tier(row), group=policy.group(row), suspect=is_suspect_row(row),
                  statements=tuple(statements))


@dataclass(frozen=True)
class Backing:
    """A number a source states that grounds a claim's number."""

    source: Source
    statement: Statement


def compatible(claim: Number, stated: Number, about: frozenset[str] = frozenset()) -> bool:
    """Whether ``stated`` (from a source about ``about``) is the same fact as ``claim``: unit, asset, direction
    and measure. A number the source states about no asset in its sentence is about what the source names."""
    if claim.kind != stated.kind:
        return False
    if claim.entity and stated.entity and claim.entity != stated.entity:
        return False
    if claim.entity and not stated.entity and not set(claim.entity.split("/")) & about:
        return False  # the source names no such asset: its number is about something else
    if claim.direction and stated.direction and claim.direction != stated.direction:
        return False
    if claim.role in _DIRECTED_ROLES and stated.role in _DIRECTED_ROLES and claim.role != stated.role:
        return False
    if claim.kind == "count" and claim.noun and stated.noun and claim.noun[:4] != stated.noun[:4]:
        return False
    return claim.matches(stated.value, other_slack=stated.slack)


def backing(claim: Number, sources: Iterable[Source]) -> tuple[list[Backing], str | None]:
    """Sources that state ``claim``; else the closest near miss as a problem code (wrong_asset, wrong_direction)."""
    found: list[Backing] = []
    miss: str | None = None
    for source in sources:
        if source.suspect:
            continue
        for statement in source.statements:
            for stated in statement.numbers:
                if compatible(claim, stated, source.tickers):
                    found.append(Backing(source, statement))
                elif stated.kind == claim.kind and claim.matches(stated.value, other_slack=stated.slack):
                    subject = {stated.entity} if stated.entity else set(source.tickers)
                    if claim.entity and claim.entity not in subject:
                        miss = miss or "wrong_asset"
                    elif claim.direction and stated.direction and claim.direction != stated.direction:
                        miss = "wrong_direction"
    return found, None if found else miss


def independent_groups(sources: Iterable[Source]) -> set[str]:
    """The distinct independence groups among non-suspect sources; copies of one text count once.

    Posts that repeat one text (a copy-paste campaign across accounts) are one voice, whatever groups the
    accounts are in: their group is the first copy's.
    """
    from rapidfuzz import fuzz

    groups: set[str] = set()
    seen: list[tuple[str, str]] = []  # (normalised text, group)
    for s in sources:
        if s.suspect:
            continue
        text = _COPY_NOISE.sub(" ", f"{s.row.title} {s.row.text or ''}".lower())
        copy = next((g for t, g in seen if fuzz.token_set_ratio(text, t) >= 85), None)
        group = copy or s.group
        seen.append((text, group))
        groups.add(group)
    return groups


def by_id(sources: Iterable[Source]) -> Mapping[str, Source]:
    """Sources keyed by item id."""
    return {s.id: s for s in sources}
