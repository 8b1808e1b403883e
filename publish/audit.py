"""The append-only audit log: who moved which draft, when, how, and through which channel."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from memory import schema

# Where an actor acted from: the CLI, the Telegram bot, the web review page, or the daemon itself.
VIA = ("cli", "telegram", "web", "daemon")


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    draft_id: str
    actor: str
    via: str
    action: str
    from_status: str | None
    to_status: str | None
    channel: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def record(conn: Connection, *, at: datetime, draft_id: str, actor: str, via: str, action: str,
           from_status: str | None = None, to_status: str | None = None, channel: str | None = None,
           reason: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Append one entry inside the caller's transaction, so it commits or rolls back with the change."""
    conn.execute(insert(schema.audit_log).values(
        at=at, draft_id=draft_id, actor=actor, via=via, action=action, from_status=from_status,
        to_status=to_status, channel=channel, reason=reason,
        detail=json.dumps(detail or {}, ensure_ascii=False, default=str),
    ))


class AuditLog:
    """Read the audit log. There is deliberately no update or delete."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def for_draft(self, draft_id: str) -> list[AuditEntry]:
        """Entries about one draft, oldest first."""
        a = schema.audit_log
        with self.engine.connect() as conn:
            rows = conn.execute(select(a).where(a.c.draft_id == draft_id).order_by(a.c.id)).all()
        return [_entry(r) for r in rows]

    def all(self, limit: int = 10_000) -> list[AuditEntry]:
        """The whole log (up to ``limit`` entries), oldest first."""
        a = schema.audit_log
        with self.engine.connect() as conn:
            rows = conn.execute(select(a).order_by(a.c.id).limit(limit)).all()
        return [_entry(r) for r in rows]


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id, at=row.at, draft_id=row.draft_id, actor=row.actor, via=row.via, action=row.action,
        from_status=row.from_status, to_status=row.to_status, channel=row.channel, reason=row.reason,
        detail=json.loads(row.detail or "{}"),
    )
