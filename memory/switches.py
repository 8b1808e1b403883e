"""Run-time switches (e.g. scheduled posting paused) and the record of review cards posted to Telegram."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from memory import schema
from memory.state import StateDB

POSTING_PAUSED = "posting_paused"
_VIA = ("cli", "telegram", "web")  # where an actor acted from, by the prefix of their identity


@dataclass(frozen=True)
class Switch:
    """A switch's position and who moved it last."""

    name: str
    on: bool
    changed_at: datetime | None
    changed_by: str


class Switches:
    """Named on/off switches in the state database (off until set)."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def get(self, name: str) -> Switch:
        """The switch ``name`` (off, never changed, when absent)."""
        s = schema.switches
        with self.state.engine.connect() as conn:
            row = conn.execute(select(s).where(s.c.name == name)).first()
        if row is None:
            return Switch(name, False, None, "")
        return Switch(row.name, bool(row.on), row.changed_at, row.changed_by)

    def set(self, name: str, on: bool, by: str) -> bool:
        """Move the switch; returns True when its position changed. Every call is in the audit log, with who."""
        s = schema.switches
        now = datetime.now(UTC)
        with self.state.engine.begin() as conn:
            current = conn.execute(select(s.c.on).where(s.c.name == name)).scalar()
            if current is None:
                try:
                    with conn.begin_nested():  # a savepoint, so a lost race doesn't poison the transaction
                        conn.execute(insert(s).values(name=name, on=on, changed_at=now, changed_by=by))
                except IntegrityError:  # inserted concurrently by another process: update instead
                    pass
                else:
                    _audit(conn, name, on, by, now, changed=on)
                    return on
            if current is not None and bool(current) == on:
                _audit(conn, name, on, by, now, changed=False)
                return False
            conn.execute(update(s).where(s.c.name == name).values(on=on, changed_at=now, changed_by=by))
            _audit(conn, name, on, by, now, changed=True)
            return True


def _audit(conn: Connection, name: str, on: bool, by: str, at: datetime, *, changed: bool) -> None:
    """The audit log's entry for a switch (no draft): who paused or resumed posting, and from where."""
    action = ("resume", "pause")[on] if name == POSTING_PAUSED else f"{name}:{('off', 'on')[on]}"
    prefix = by.split(":", 1)[0]
    conn.execute(insert(schema.audit_log).values(
        at=at, draft_id="", actor=by[:100], via=prefix if prefix in _VIA else "daemon", action=action[:30],
        reason=None if changed else "it already was", detail=json.dumps({"switch": name, "on": on})))


class ReviewCards:
    """Which drafts have a review card in Telegram (posted once, even across restarts)."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def posted(self, draft_ids: list[str]) -> set[str]:
        """The subset of ``draft_ids`` that already have a card."""
        c = schema.review_cards
        with self.state.engine.connect() as conn:
            return set(conn.execute(select(c.c.draft_id).where(c.c.draft_id.in_(draft_ids))).scalars())

    def record(self, draft_id: str, chat_id: int | str, message_id: int) -> None:
        """Remember the card of ``draft_id``."""
        with self.state.engine.begin() as conn:
            conn.execute(insert(schema.review_cards).values(draft_id=draft_id, chat_id=str(chat_id),
                                                            message_id=message_id, posted_at=datetime.now(UTC)))

    def message_of(self, draft_id: str) -> tuple[str, int] | None:
        """(chat id, message id) of the draft's card."""
        c = schema.review_cards
        with self.state.engine.connect() as conn:
            row = conn.execute(select(c).where(c.c.draft_id == draft_id)).first()
        return (row.chat_id, row.message_id) if row else None

    def failed(self, draft_id: str, error: str) -> int:
        """Record that Telegram refused the card of ``draft_id``; returns how many times it has now."""
        f = schema.review_card_failures
        now = datetime.now(UTC)
        with self.state.engine.begin() as conn:
            attempts = conn.execute(select(f.c.attempts).where(f.c.draft_id == draft_id)).scalar()
            if attempts is None:
                conn.execute(insert(f).values(draft_id=draft_id, attempts=1, last_error=error[:1000], last_at=now))
                return 1
            conn.execute(update(f).where(f.c.draft_id == draft_id)
                         .values(attempts=attempts + 1, last_error=error[:1000], last_at=now))
            return int(attempts) + 1

    def given_up(self, draft_ids: list[str], attempts: int) -> set[str]:
        """The subset of ``draft_ids`` whose card was refused ``attempts`` times or more."""
        f = schema.review_card_failures
        with self.state.engine.connect() as conn:
            return set(conn.execute(select(f.c.draft_id).where(f.c.draft_id.in_(draft_ids),
                                                             f.c.attempts >= attempts)).scalars())
