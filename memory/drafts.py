"""Drafts: briefs waiting for review, stored in the state database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from memory import schema
from memory.state import StateDB
from sources.errors import StoreError


@dataclass(frozen=True)
class Draft:
    """One brief in its three formats, with what it was built from.

    ``status`` is one of pending, flagged (failed grounding), approved, rejected, published, failed, expired,
    superseded (an edit replaced it; see ``publish/review.py`` for the state machine).
    ``meta`` holds provenance (models, prompt version, tokens, cost); ``validation`` the grounding report.
    An edit is a new draft with ``version`` + 1 and ``parent_id`` set to the draft it edits.
    """

    created_at: datetime
    mode: str  # "data" (from signals alone) or "crew"
    window_start: datetime
    window_end: datetime
    x_thread: tuple[str, ...]
    telegram_html: str
    markdown: str
    item_ids: tuple[str, ...]
    tickers: tuple[str, ...] = ()
    topic: str = ""
    status: str = "pending"
    signals: dict[str, Any] = field(default_factory=dict, compare=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    validation: dict[str, Any] = field(default_factory=dict, compare=False)
    version: int = 1
    parent_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class DraftStore:
    """Save, list and load drafts."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def save(self, draft: Draft, conn: Connection | None = None) -> Draft:
        """Store a new draft (inside ``conn``'s transaction when one is given)."""
        with nullcontext(conn) if conn is not None else self.state.engine.begin() as conn:
            conn.execute(
                insert(schema.drafts).values(
                    id=draft.id, created_at=draft.created_at, mode=draft.mode, status=draft.status,
                    topic=draft.topic, window_start=draft.window_start, window_end=draft.window_end,
                    x_thread=json.dumps(list(draft.x_thread), ensure_ascii=False),
                    telegram_html=draft.telegram_html, markdown=draft.markdown,
                    item_ids=json.dumps(list(draft.item_ids)), tickers=" ".join(draft.tickers),
                    signals=json.dumps(draft.signals, ensure_ascii=False, default=str),
                    meta=json.dumps(draft.meta, ensure_ascii=False, default=str),
                    validation=json.dumps(draft.validation, ensure_ascii=False, default=str),
                    version=draft.version, parent_id=draft.parent_id,
                )
            )
        return draft

    def update_meta(self, draft_id: str, **values: Any) -> None:
        """Merge ``values`` into a stored draft's ``meta`` (provenance and routing, never its text)."""
        d = schema.drafts
        with self.state.engine.begin() as conn:
            raw = conn.execute(select(d.c.meta).where(d.c.id == draft_id)).scalar()
            if raw is None:
                raise StoreError(f"no draft {draft_id!r}")
            meta = {**json.loads(raw), **values}
            conn.execute(update(d).where(d.c.id == draft_id)
                         .values(meta=json.dumps(meta, ensure_ascii=False, default=str)))

    def get(self, draft_id: str) -> Draft:
        """The draft with this id, or the only one whose id starts with it."""
        d = schema.drafts
        with self.state.engine.connect() as conn:
            rows = conn.execute(select(d).where(d.c.id.startswith(draft_id, autoescape=True)).limit(2)).all()
        if not rows:
            raise StoreError(f"no draft {draft_id!r}")
        if len(rows) > 1:
            raise StoreError(f"draft id {draft_id!r} is ambiguous; give more characters")
        return _draft(rows[0])

    def list(self, status: str | None = None, limit: int = 20) -> list[Draft]:
        """Newest drafts first."""
        d = schema.drafts
        q = select(d).order_by(d.c.created_at.desc()).limit(limit)
        if status:
            q = q.where(d.c.status == status)
        with self.state.engine.connect() as conn:
            return [_draft(r) for r in conn.execute(q)]

    def recent(self, since: datetime) -> Sequence[Draft]:
        """Drafts created since ``since`` (for novelty against what was already covered)."""
        d = schema.drafts
        with self.state.engine.connect() as conn:
            return [_draft(r) for r in conn.execute(select(d).where(d.c.created_at >= since))]


def _draft(row: Any) -> Draft:
    return Draft(
        id=row.id, created_at=row.created_at, mode=row.mode, status=row.status, topic=row.topic,
        window_start=row.window_start, window_end=row.window_end, x_thread=tuple(json.loads(row.x_thread)),
        telegram_html=row.telegram_html, markdown=row.markdown, item_ids=tuple(json.loads(row.item_ids)),
        tickers=tuple(row.tickers.split()), signals=json.loads(row.signals), meta=json.loads(row.meta),
        validation=json.loads(row.validation), version=row.version, parent_id=row.parent_id,
    )
