"""The daemon's APScheduler: an ``AsyncIOScheduler`` whose wakeup survives job-store failures.

APScheduler 3 writes each due job's next run time to its job store after submitting it. When that write
fails (a full disk, a lost database connection) the exception escapes ``_process_jobs`` and the wakeup
timer is never set again: the process lives on with no job ever running. Here a failed pass is logged,
reported once per episode, and retried after ``retry_s``. A job whose new next run time could not be
stored is due again at the next pass: ingest jobs are idempotent, once-per-slot jobs are deduplicated by
their slot (``SCHEDULED_FOR``, the run time APScheduler scheduled the run for).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tapewatch.settings import format_duration

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"

# The run time the scheduler submitted the current run for (None when a run was started by hand).
SCHEDULED_FOR: ContextVar[datetime | None] = ContextVar("scheduled_for", default=None)


class SlotExecutor(AsyncIOExecutor):
    """AsyncIOExecutor that hands each run the time it was scheduled for, through ``SCHEDULED_FOR``."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        # The run's task copies the context now, so the value is the run's own even when runs overlap.
        token = SCHEDULED_FOR.set(run_times[-1] if run_times else None)
        try:
            super()._do_submit_job(job, run_times)
        finally:
            SCHEDULED_FOR.reset(token)


class GuardedScheduler(AsyncIOScheduler):
    """An ``AsyncIOScheduler`` that never loses its wakeup to a job-store error."""

    def __init__(self, *, retry_s: float, on_store_error: Callable[[str | None], None] | None = None,
                 **options: Any) -> None:
        super().__init__(jobstore_retry_interval=retry_s, **options)
        self.retry_s = retry_s
        self.on_store_error = on_store_error  # called with a reason when an episode starts, None when it ends
        self.store_errors = 0  # failed passes so far
        self._failing = False

    def _process_jobs(self) -> float | None:
        try:
            wait: float | None = super()._process_jobs()
        except Exception as exc:  # e.g. "database or disk is full" while storing a job's next run time
            self.store_errors += 1
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            log.warning("the scheduler could not update its job store (%s); looking again in %s",
                        reason, format_duration(self.retry_s))
            if not self._failing:
                self._failing = True
                self._report(reason)
            return self.retry_s
        if self._failing:
            self._failing = False
            log.warning("the scheduler's job store is writable again")
            self._report(None)
        return wait

    def _report(self, reason: str | None) -> None:
        if self.on_store_error is not None:
            try:
                self.on_store_error(reason)
            except Exception:  # a report must never break the wakeup it reports on
                log.exception("could not report a job-store problem")

    def _create_default_executor(self) -> SlotExecutor:
        return SlotExecutor()


def next_runs(state_engine: Any) -> dict[str, datetime | None]:
    """Stored next run time per job id (None: paused), read from the job store's table without unpickling."""
    from sqlalchemy import inspect, select

    if not inspect(state_engine).has_table(JOBSTORE_TABLE):
        return {}
    table = SQLAlchemyJobStore(engine=state_engine, tablename=JOBSTORE_TABLE).jobs_t
    with state_engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.next_run_time)).all()
    return {r.id: datetime.fromtimestamp(r.next_run_time, tz=UTC) if r.next_run_time is not None else None
            for r in rows}
