"""Runs of once-per-slot jobs (scheduled briefs) in the state DB: begun before the work, finished with it.

A run is keyed by its job kind and its slot (the time it was scheduled for), so a slot runs at most once
even when the scheduler fires it again (a job-store write that failed, a restart). A run still ``running``
when a daemon starts was killed mid-way: it is retried once if it began within the grace period, else it is
marked ``lost``; a retry that is killed too is never retried again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from memory.schema import job_runs
from tapewatch.settings import format_duration

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED, LOST = "running", "done", "failed", "lost"


@dataclass(frozen=True)
class RunTicket:
    """One run of a once-per-slot job: its row id, kind, slot and attempt number."""

    id: int
    kind: str
    slot: datetime
    attempt: int = 1


class JobRuns:
    """The ``job_runs`` table."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner  # the daemon lease owner: rows of other owners that still run were interrupted

    def begin(self, kind: str, slot: datetime, now: datetime) -> RunTicket | None:
        """Record a new run of ``kind`` for ``slot``; None when that slot has a run already."""
        try:
            with self.engine.begin() as conn:
                row_id = conn.execute(insert(job_runs).values(
                    kind=kind, slot=slot, status=RUNNING, attempts=1, owner=self.owner, started_at=now,
                    summary="")).inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError:
            return None
        return RunTicket(int(row_id), kind, slot)

    def interrupted(self) -> Sequence[tuple[RunTicket, datetime]]:
        """Runs left ``running`` by another (dead) daemon, with when their last attempt began; oldest first."""
        j = job_runs
        with self.engine.connect() as conn:
            rows = conn.execute(select(j.c.id, j.c.kind, j.c.slot, j.c.attempts, j.c.started_at)
                                .where(j.c.status == RUNNING, j.c.owner != self.owner).order_by(j.c.id)).all()
        return [(RunTicket(r.id, r.kind, r.slot, r.attempts), r.started_at) for r in rows]

    def retry(self, ticket: RunTicket, now: datetime) -> RunTicket | None:
        """Take an interrupted run over for its second attempt; None if another daemon got it first."""
        with self.engine.begin() as conn:
            changed = conn.execute(update(job_runs).where(job_runs.c.id == ticket.id, job_runs.c.status == RUNNING,
                                                          job_runs.c.attempts == ticket.attempt)
                                   .values(attempts=ticket.attempt + 1, owner=self.owner, started_at=now)).rowcount
        return RunTicket(ticket.id, ticket.kind, ticket.slot, ticket.attempt + 1) if changed == 1 else None

    def finish(self, ticket: RunTicket, status: str, summary: str, now: datetime, *, draft_id: str | None = None,
               conn: Connection | None = None) -> bool:
        """End a running run (in ``conn``'s transaction if given); False if it had ended already."""
        stmt = (update(job_runs).where(job_runs.c.id == ticket.id, job_runs.c.status == RUNNING)
                .values(status=status, summary=summary[:2000], finished_at=now, draft_id=draft_id))
        if conn is not None:
            return conn.execute(stmt).rowcount == 1
        with self.engine.begin() as own:
            return own.execute(stmt).rowcount == 1

    def recover(self, kinds: set[str], now: datetime, grace: timedelta) -> list[RunTicket]:
        """Runs a dead daemon left unfinished: those of ``kinds`` to retry now; the others are marked lost."""
        retries = []
        for ticket, started in self.interrupted():
            what = f"{ticket.kind} (slot {ticket.slot:%Y-%m-%d %H:%M} UTC)"
            if ticket.attempt >= 2:
                reason = "interrupted on its retry too; not retried again"
            elif ticket.kind not in kinds:
                reason = "interrupted, and no longer configured"
            elif now - started > grace:
                reason = f"interrupted more than misfire_grace ({format_duration(grace.total_seconds())}) ago"
            else:
                retry = self.retry(ticket, now)
                if retry is not None:
                    log.warning("%s was interrupted mid-run; running it again (attempt 2)", what)
                    retries.append(retry)
                continue
            self.finish(ticket, LOST, reason, now)
            log.error("%s is lost: %s", what, reason)
        return retries

    def get(self, kind: str, slot: datetime) -> tuple[str, int, str | None] | None:
        """(status, attempts, draft id) of the run of ``kind`` for ``slot``, if there is one."""
        j = job_runs
        with self.engine.connect() as conn:
            row = conn.execute(select(j.c.status, j.c.attempts, j.c.draft_id)
                               .where(j.c.kind == kind, j.c.slot == slot)).first()
        return (row.status, row.attempts, row.draft_id) if row else None
