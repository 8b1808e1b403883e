"""The outbox: one row per (draft, channel, part), so every post goes out once and none is lost.

A part moves ``queued → intent → sent``. The intent is committed *before* the remote call and the remote id
right after it, so a crash or a timeout leaves an ``intent`` / ``unknown`` row that the next run reconciles
instead of resending blindly. Other end states: ``failed`` (the service refused it for good), ``needs_check``
(a person must say whether it went out), ``blocked`` (the duplicate guard stopped it). Dry runs write
separate rows with ``dry_run = 1`` and state ``dry_run``. Every change is audited in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, insert, select, update

from memory import schema
from publish.audit import record
from sources.errors import PublishError

QUEUED, INTENT, SENT, UNKNOWN, FAILED, NEEDS_CHECK, BLOCKED, DRY_RUN = (
    "queued", "intent", "sent", "unknown", "failed", "needs_check", "blocked", "dry_run")
UNSETTLED = (INTENT, UNKNOWN)  # the remote side may or may not have the post


@dataclass(frozen=True)
class OutboxRow:
    """One part of one draft on one channel."""

    id: int
    draft_id: str
    channel: str
    part: int
    parts: int
    text: str
    state: str
    dry_run: bool
    remote_id: str | None
    url: str | None
    reply_to: str | None
    attempts: int
    error: str | None
    created_at: datetime
    intent_at: datetime | None
    sent_at: datetime | None


def started(conn: Connection, draft_id: str) -> bool:
    """True once any real (not dry-run) part of the draft has left the queue."""
    o = schema.outbox
    return bool(conn.execute(select(exists().where(
        o.c.draft_id == draft_id, o.c.dry_run == 0, o.c.state != QUEUED))).scalar())


class Outbox:
    """Plan, move and read outbox rows; ``actor`` / ``via`` go into the audit log."""

    def __init__(self, engine: Engine, *, actor: str = "publisher", via: str = "cli",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.actor = actor
        self.via = via
        self.clock = clock

    def plan(self, draft_id: str, channel: str, texts: Sequence[str], *, dry_run: bool = False) -> list[OutboxRow]:
        """Queue the parts of a draft for a channel (once); return all its rows in thread order."""
        o = schema.outbox
        now = self.clock()
        with self.engine.begin() as conn:
            # Lock the draft's row first (SQLite: BEGIN IMMEDIATE has the database's lock already), so a second
            # planner on PostgreSQL waits, then finds the rows instead of inserting them again.
            d = schema.drafts
            conn.execute(update(d).where(d.c.id == draft_id).values(status=d.c.status))
            have = self._rows(conn, draft_id, channel, dry_run)
            if not have:
                state = DRY_RUN if dry_run else QUEUED
                conn.execute(insert(o), [
                    {"draft_id": draft_id, "channel": channel, "part": i, "parts": len(texts), "text": text,
                     "dry_run": int(dry_run), "state": state, "created_at": now, "updated_at": now}
                    for i, text in enumerate(texts)
                ])
                record(conn, at=now, draft_id=draft_id, actor=self.actor, via=self.via, channel=channel,
                       action="dry_run" if dry_run else "queued", detail={"parts": len(texts)})
                have = self._rows(conn, draft_id, channel, dry_run)
        return have

    def rows(self, draft_id: str, channel: str | None = None, *, dry_run: bool | None = False) -> list[OutboxRow]:
        """Rows of a draft (one channel or all), in channel and thread order."""
        o = schema.outbox
        q = select(o).where(o.c.draft_id == draft_id).order_by(o.c.channel, o.c.dry_run, o.c.part)
        if channel is not None:
            q = q.where(o.c.channel == channel)
        if dry_run is not None:
            q = q.where(o.c.dry_run == int(dry_run))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def get(self, row_id: int) -> OutboxRow:
        """One row by id."""
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.outbox).where(schema.outbox.c.id == row_id)).first()
        if row is None:
            raise PublishError(f"no outbox row {row_id}")
        return _row(row)

    def in_states(self, *states: str) -> list[OutboxRow]:
        """Real rows in any of ``states``, oldest draft first, in thread order."""
        o = schema.outbox
        q = (select(o).where(o.c.state.in_(states), o.c.dry_run == 0)
             .order_by(o.c.created_at, o.c.draft_id, o.c.channel, o.c.part))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def sent_since(self, channel: str, since: datetime) -> dict[str, list[str]]:
        """Texts of parts sent on ``channel`` since ``since``, per draft, in thread order."""
        o = schema.outbox
        q = (select(o.c.draft_id, o.c.text).where(o.c.channel == channel, o.c.state == SENT, o.c.dry_run == 0,
                                                  o.c.sent_at >= since).order_by(o.c.draft_id, o.c.part))
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for draft_id, text in conn.execute(q):
                out.setdefault(draft_id, []).append(text)
        return out

    def drafts_started_since(self, since: datetime) -> int:
        """How many drafts had a first part sent since ``since`` (a thread counts once)."""
        o = schema.outbox
        first = (select(o.c.draft_id, func.min(o.c.sent_at).label("first"))
                 .where(o.c.state == SENT, o.c.dry_run == 0).group_by(o.c.draft_id).subquery())
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(first.c.first >= since)).scalar() or 0)

    # -- moves: each a compare-and-set on the row's state, audited in the same transaction ----------
    def mark_intent(self, row: OutboxRow, reply_to: str | None) -> bool:
        """queued → intent, only while the draft is still approved; False if someone else moved first."""
        d = schema.drafts
        approved = exists().where(and_(d.c.id == row.draft_id, d.c.status == "approved"))
        return self._move(row, (QUEUED,), INTENT, "intent", guard=approved, reply_to=reply_to,
                          intent_at=self.clock(), attempts=schema.outbox.c.attempts + 1, error=None)

    def mark_sent(self, row: OutboxRow, remote_id: str, url: str | None, *, action: str = "sent",
                  actor: str | None = None, reason: str | None = None) -> bool:
        """intent / unknown / needs_check → sent, with the remote id."""
        return self._move(row, (INTENT, UNKNOWN, NEEDS_CHECK), SENT, action, actor=actor, reason=reason,
                          remote_id=remote_id, url=url, sent_at=self.clock(), error=None)

    def mark_unknown(self, row: OutboxRow, error: str) -> bool:
        """intent → unknown: the call failed in a way that may still have posted."""
        return self._move(row, (INTENT,), UNKNOWN, "unknown", reason=error, error=error)

    def mark_failed(self, row: OutboxRow, error: str) -> bool:
        """queued / intent / unknown → failed: refused for good, or out of attempts."""
        return self._move(row, (QUEUED, INTENT, UNKNOWN), FAILED, "failed", reason=error, error=error)

    def mark_needs_check(self, row: OutboxRow, reason: str) -> bool:
        """intent / unknown → needs_check: only a person can tell whether it went out."""
        return self._move(row, UNSETTLED, NEEDS_CHECK, "needs_check", reason=reason, error=reason)

    def requeue(self, row: OutboxRow, reason: str, *, actor: str | None = None) -> bool:
        """intent / unknown / needs_check → queued: known not to have gone out, so it may be sent again."""
        return self._move(row, (INTENT, UNKNOWN, NEEDS_CHECK), QUEUED, "requeued", actor=actor, reason=reason,
                          error=reason)

    def block(self, row: OutboxRow, reason: str, *, action: str = "blocked") -> bool:
        """queued → blocked by the duplicate guard (or ``action="refused"``: by a channel's compliance profile)."""
        return self._move(row, (QUEUED,), BLOCKED, action, reason=reason, error=reason)

    def _move(self, row: OutboxRow, from_states: Sequence[str], to: str, action: str, *, guard: Any = None,
              actor: str | None = None, reason: str | None = None, **values: Any) -> bool:
        o = schema.outbox
        now = self.clock()
        with self.engine.begin() as conn:
            q = update(o).where(o.c.id == row.id, o.c.state.in_(list(from_states)))
            if guard is not None:
                q = q.where(guard)
            # Lock the row before reading it, so the state we audit is the one we replace.
            conn.execute(update(o).where(o.c.id == row.id).values(state=o.c.state))
            current = conn.execute(select(o.c.state).where(o.c.id == row.id)).scalar()
            if conn.execute(q.values(state=to, updated_at=now, **values)).rowcount != 1:
                return False
            record(conn, at=now, draft_id=row.draft_id, actor=actor or self.actor, via=self.via, action=action,
                   channel=row.channel, reason=reason,
                   detail={"row": row.id, "part": row.part + 1, "parts": row.parts, "from": current, "to": to,
                           **{k: v for k, v in values.items() if k in ("remote_id", "reply_to", "url")}})
        return True

    @staticmethod
    def _rows(conn: Connection, draft_id: str, channel: str, dry_run: bool) -> list[OutboxRow]:
        o = schema.outbox
        q = select(o).where(o.c.draft_id == draft_id, o.c.channel == channel, o.c.dry_run == int(dry_run))
        return [_row(r) for r in conn.execute(q.order_by(o.c.part))]


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        id=r.id, draft_id=r.draft_id, channel=r.channel, part=r.part, parts=r.parts, text=r.text, state=r.state,
        dry_run=bool(r.dry_run), remote_id=r.remote_id, url=r.url, reply_to=r.reply_to, attempts=r.attempts,
        error=r.error, created_at=r.created_at, intent_at=r.intent_at, sent_at=r.sent_at,
    )
