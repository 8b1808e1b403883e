"""The public archive: every published brief under its public id (``memory.public_ids``), nothing else.

Only published drafts are ever found by public id; the ids themselves, and how a new draft gets one, live in
``memory/public_ids.py`` (re-exported here).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from memory import schema
from memory.drafts import Draft, DraftStore, _draft
from memory.public_ids import PUBLIC_ID, assign_public_id, new_public_id, permalink, public_id
from memory.state import StateDB

__all__ = ["PUBLIC_ID", "Archive", "Entry", "assign_public_id", "new_public_id", "permalink", "public_id"]


@dataclass(frozen=True)
class Entry:
    """A published brief as the archive lists it."""

    public_id: str
    published_at: datetime
    draft: Draft


class Archive:
    """Read published briefs by public id, newest first, or by ticker; ``sync`` indexes new publications."""

    def __init__(self, state: StateDB) -> None:
        self.state = state
        self.drafts = DraftStore(state)
        self._seen = -1  # the audit log's last row read by sync (-1: scan every published draft once)

    def sync(self) -> int:
        """Index drafts published since the last sync; returns how many were added.

        The first sync of an instance looks at every published draft; later ones read only the audit log's
        new "publish" entries, so the public pages never scan the drafts table.
        """
        d, a, log = schema.drafts, schema.archive, schema.audit_log
        with self.state.engine.connect() as conn:
            mark = int(conn.execute(select(func.coalesce(func.max(log.c.id), 0))).scalar() or 0)
            new = ~exists().where(a.c.draft_id == d.c.id)
            q = select(d.c.id, d.c.meta, d.c.tickers, d.c.created_at).where(d.c.status == "published", new)
            if self._seen >= 0:
                if mark == self._seen:
                    return 0
                q = q.where(d.c.id.in_(select(log.c.draft_id).where(log.c.id > self._seen, log.c.id <= mark,
                                                                     log.c.action == "publish")))
            rows = conn.execute(q).all()
            self._seen = mark
            if not rows:
                return 0
            when = dict(conn.execute(select(log.c.draft_id, func.max(log.c.at)).where(
                log.c.draft_id.in_([r.id for r in rows]), log.c.action == "publish").group_by(log.c.draft_id)).all())
        added = 0
        for r in rows:
            meta = json.loads(r.meta or "{}")
            stub = Draft(created_at=r.created_at, mode="", window_start=r.created_at, window_end=r.created_at,
                         x_thread=(), telegram_html="", markdown="", item_ids=(), meta=meta, id=r.id)
            for pid in dict.fromkeys((public_id(stub), public_id(replace(stub, meta={})))):
                try:
                    with self.state.engine.begin() as conn:
                        conn.execute(insert(a).values(public_id=pid, draft_id=r.id, tickers=r.tickers,
                                                      published_at=when.get(r.id) or r.created_at))
                except IntegrityError:  # indexed by a concurrent sync, or (copied meta) the id is taken
                    continue
                added += 1
                break
        return added

    def get(self, pid: str) -> Entry | None:
        """The published brief with this public id, or None."""
        if not PUBLIC_ID.fullmatch(pid):
            return None
        a, d = schema.archive, schema.drafts
        # One query for the index row and its draft (by the exact id: the store's prefix lookup can't use the key).
        q = select(a.c.public_id, a.c.published_at, d).join(d, d.c.id == a.c.draft_id).where(a.c.public_id == pid)
        with self.state.engine.connect() as conn:
            found = conn.execute(q).first()
        if found is None and self.sync():
            with self.state.engine.connect() as conn:
                found = conn.execute(q).first()
        # A retracted brief keeps its page, marked as retracted with the reason (publish/amend.py).
        if found is None or found.status not in ("published", "retracted"):
            return None
        return Entry(found.public_id, found.published_at, _draft(found))

    def latest(self, limit: int = 20, ticker: str | None = None) -> list[Entry]:
        """The newest published briefs (about ``ticker`` when given)."""
        self.sync()
        a, d = schema.archive, schema.drafts
        # The newest entries by the archive's own index first, then their drafts by id.
        q = select(a.c.public_id, a.c.published_at, a.c.draft_id).order_by(a.c.published_at.desc()).limit(limit)
        if ticker:
            padded = literal(" ") + a.c.tickers + literal(" ")
            q = q.where(padded.contains(f" {ticker.upper()} ", autoescape=True))
        with self.state.engine.connect() as conn:
            entries = conn.execute(q).all()
            ids = [e.draft_id for e in entries]
            drafts = {r.id: _draft(r) for r in conn.execute(select(d).where(d.c.id.in_(ids)))} if ids else {}
        return [Entry(e.public_id, e.published_at, drafts[e.draft_id]) for e in entries
                if e.draft_id in drafts and drafts[e.draft_id].status == "published"]

    def sources(self, draft: Draft) -> list[Any]:
        """The stored items a brief cites, in the order it cites them."""
        found = self.state.items_by_ids(draft.item_ids)
        return [found[i] for i in draft.item_ids if i in found]

    def price_series(self, ticker: str, start: datetime, end: datetime,
                     most: int = 400) -> list[tuple[datetime, float]]:
        """(time, USD price) snapshots of ``ticker`` between ``start`` and ``end``, thinned to ``most`` points."""
        p = schema.price_snapshots
        with self.state.engine.connect() as conn:
            rows: Sequence[Any] = conn.execute(select(p.c.observed_at, p.c.price_usd).where(
                p.c.ticker == ticker.upper(), p.c.observed_at >= start, p.c.observed_at <= end)
                .order_by(p.c.observed_at)).all()
        step = max(1, len(rows) // most)
        points = [(r.observed_at, float(r.price_usd)) for r in rows[::step]]
        if rows and points[-1][0] != rows[-1].observed_at:
            points.append((rows[-1].observed_at, float(rows[-1].price_usd)))
        return points
