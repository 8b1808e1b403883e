"""Bookkeeping for paid and rate-limited APIs: the monthly X read ledger, "not before" pauses, X user ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from memory import schema
from memory.state import StateDB
from sources.errors import StoreError


def month_of(when: datetime) -> str:
    """The UTC month a read is billed to, e.g. '2026-11'."""
    return when.astimezone(UTC).strftime("%Y-%m")


def next_month(when: datetime) -> datetime:
    """Midnight UTC on the first day of the month after ``when`` (when a monthly cap resets)."""
    when = when.astimezone(UTC)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Usage:
    """Posts read (what X bills) and requests made in one UTC month."""

    month: str
    posts: int = 0
    requests: int = 0


@dataclass(frozen=True)
class Pause:
    """An API that asked not to be called before ``until``."""

    name: str
    until: datetime
    reason: str


class Quotas:
    """The ledger, pauses and user-id cache, in the state database."""

    def __init__(self, state: StateDB) -> None:
        self.engine = state.engine

    def usage(self, month: str) -> Usage:
        """What was read in ``month`` ('YYYY-MM')."""
        t = schema.x_reads
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.posts, t.c.requests).where(t.c.month == month)).first()
        return Usage(month, int(row.posts), int(row.requests)) if row else Usage(month)

    def record_reads(self, when: datetime, posts: int, requests: int = 1) -> Usage:
        """Add ``posts`` read with ``requests`` calls to the month of ``when``; return the month's total."""
        t = schema.x_reads
        month = month_of(when)
        try:
            for _ in range(2):  # a concurrent first insert of the month loses the race once, then updates
                try:
                    with self.engine.begin() as conn:
                        done = conn.execute(
                            update(t).where(t.c.month == month)
                            .values(posts=t.c.posts + posts, requests=t.c.requests + requests, updated_at=when)
                        )
                        if not done.rowcount:
                            conn.execute(insert(t).values(month=month, posts=posts, requests=requests,
                                                          updated_at=when))
                    break
                except IntegrityError:
                    continue
        except SQLAlchemyError as exc:
            raise StoreError(f"could not record X reads: {exc}") from exc
        return self.usage(month)

    def paused_until(self, name: str, now: datetime) -> Pause | None:
        """The pause on ``name`` if it still holds at ``now``."""
        t = schema.rate_limits
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).first()
        if row is None or row.until <= now:
            return None
        return Pause(row.name, row.until, row.reason)

    def pause(self, name: str, until: datetime, reason: str) -> None:
        """Ask every later run not to call ``name`` before ``until``."""
        t = schema.rate_limits
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(t).where(t.c.name == name))
                conn.execute(insert(t).values(name=name, until=until, reason=reason[:500]))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not record the pause on {name}: {exc}") from exc

    def pauses(self, now: datetime) -> list[Pause]:
        """Every pause still in force at ``now``."""
        t = schema.rate_limits
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.until > now).order_by(t.c.name)).all()
        return [Pause(r.name, r.until, r.reason) for r in rows]

    def user_ids(self, handles: Iterable[str]) -> dict[str, str]:
        """Cached X user ids of ``handles`` (lower-case handle → id)."""
        wanted = sorted({h.lstrip("@").lower() for h in handles})
        if not wanted:
            return {}
        t = schema.x_users
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.handle, t.c.user_id).where(t.c.handle.in_(wanted))).all()
        return {r.handle: r.user_id for r in rows}

    def remember_users(self, ids: Mapping[str, str], when: datetime) -> None:
        """Cache resolved user ids (lower-case handle → id)."""
        if not ids:
            return
        t = schema.x_users
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(t).where(t.c.handle.in_(sorted(ids))))
                conn.execute(insert(t), [{"handle": h, "user_id": i, "resolved_at": when} for h, i in ids.items()])
        except SQLAlchemyError as exc:
            raise StoreError(f"could not cache X user ids: {exc}") from exc
