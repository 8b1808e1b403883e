"""The scheduler daemon: one APScheduler ``AsyncIOScheduler`` on the event loop, jobs persisted in the state DB.

Jobs are stored pickled (``SQLAlchemyJobStore``), so each is a module-level function with plain arguments
(``run_job("x")``) that finds the process's ``Daemon`` and its ``Runtime`` through ``current()``. Blocking
work runs in worker threads. A restart keeps each job's stored next run time (a due job runs at once), and
the sources resume from their stored cursors. Other parts (the Telegram bot) add their own jobs to
``Daemon.scheduler`` and their own tasks to the same loop before ``serve()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from publish.lease import Lease
from sources.errors import TapewatchError
from tapewatch.jobs import Runtime, market_coins, summarise, x_specs

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class JobSpec:
    """One recurring job of this module: ``run_job(kind)`` every ``interval``."""

    id: str
    kind: str
    interval: timedelta
    name: str


# The job ids this module owns; a job of ours that is no longer configured is removed on start.
JOB_IDS = {"feeds": "ingest-feeds", "x": "ingest-x", "prices": "ingest-prices", "retention": "retention"}

_current: Daemon | None = None


def current() -> Daemon | None:
    """The daemon running in this process, if any."""
    return _current


async def run_job(kind: str) -> None:
    """Entry point of every scheduled job of this module (a plain function, so the job store can pickle it)."""
    daemon = current()
    if daemon is None:
        log.warning("job %s fired with no daemon in this process; ignored", kind)
        return
    await daemon.run(kind)


def _release_memory() -> None:
    """Hand freed heap back to the OS after a batch (glibc only), so an idle daemon stays small."""
    # A 1,000-post batch leaves ~120 MB of freed but still mapped heap in glibc's arenas, which would
    # otherwise stay resident until the next batch. Other C libraries lack malloc_trim: nothing to do.
    gc.collect()  # a batch's cyclic garbage would otherwise wait for a full collection
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def job_specs(runtime: Runtime) -> list[JobSpec]:
    """The jobs the settings call for: a source with nothing configured gets no job."""
    s = runtime.settings
    specs = []
    if any(f.enabled for f in s.feeds):
        specs.append(JobSpec(JOB_IDS["feeds"], "feeds", s.fetch.interval, "ingest feeds"))
    if s.x_bearer_token is not None and x_specs(s) and s.x.monthly_read_budget > 0:
        specs.append(JobSpec(JOB_IDS["x"], "x", s.x.interval, "ingest X"))
    if s.market.enabled and market_coins(s)[0]:
        specs.append(JobSpec(JOB_IDS["prices"], "prices", s.market.interval, "ingest prices"))
    specs.append(JobSpec(JOB_IDS["retention"], "retention", s.daemon.retention_interval, "retention"))
    return specs


class Daemon:
    """The scheduler and the jobs' shared runtime; ``serve()`` runs until ``stop()`` or SIGINT/SIGTERM."""

    def __init__(self, runtime: Runtime, on_result: Callable[[str, str], None] | None = None) -> None:
        self.runtime = runtime
        self.on_result = on_result  # called with (job kind, one-line summary) after each run
        self.on_failure: Callable[[str, str], None] | None = None  # after a run that failed (e.g. tell reviewers)
        d = runtime.settings.daemon
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": max(1, int(d.misfire_grace.total_seconds()))},
        )
        self.scheduler.add_jobstore(SQLAlchemyJobStore(engine=runtime.state.engine, tablename=JOBSTORE_TABLE),
                                    "default")
        self.fired: Counter[str] = Counter()  # finished runs per job kind
        self.last: dict[str, str] = {}  # the last summary per job kind
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()  # binds to the loop on first use, so stop() may come before serve()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._services: list[tuple[Hook, Hook]] = []
        self._lease = Lease(runtime.state.engine, d.lease, name="daemon")
        self._renewer: asyncio.Task[None] | None = None
        self._started: list[Hook] = []
        self._async_work: dict[str, Callable[[], Awaitable[str]]] = {}
        self._work: dict[str, Callable[[], str]] = {
            "feeds": lambda: summarise(runtime.ingest_feeds()),
            "x": self._x,
            "prices": lambda: summarise([runtime.ingest_prices()]),
            "retention": self._retention,
        }

    # -- lifecycle -------------------------------------------------------------------------------
    def add_service(self, start: Hook, stop: Hook) -> None:
        """Run ``start()`` once the scheduler runs, ``stop()`` on shutdown once running jobs end (e.g. a bot)."""
        self._services.append((start, stop))

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the daemon runs on (None before it starts)."""
        return self._loop

    def add_work(self, kind: str, work: Callable[[], str] | None = None, *,
                 coroutine: Callable[[], Awaitable[str]] | None = None) -> None:
        """Make ``run_job(kind)`` run ``work`` in a worker thread (or ``coroutine`` on the loop)."""
        if (work is None) == (coroutine is None):
            raise ValueError("give exactly one of work and coroutine")
        if coroutine is not None:
            self._async_work[kind] = coroutine
        else:
            assert work is not None
            self._work[kind] = work

    async def start(self) -> None:
        """Start the scheduler with this module's jobs (stored ones keep their next run time)."""
        global _current
        if _current is not None and _current is not self:
            raise TapewatchError("another daemon is already running in this process")
        self._claim()
        _current = self
        self._loop = asyncio.get_running_loop()
        self._renewer = self._loop.create_task(self._keep_lease())
        self.scheduler.start(paused=True)
        self._schedule(datetime.now(UTC))
        self.scheduler.resume()
        for start, stop in self._services:
            await start()
            self._started.append(stop)

    async def serve(self, *, duration: float | None = None, handle_signals: bool = True) -> None:
        """Run until ``stop()``, a signal or ``duration`` seconds, then stop gracefully."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        try:
            await self.start()
            if duration is None:
                await self._stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=duration)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self.shutdown()

    def stop(self) -> None:
        """Ask ``serve()`` to return; safe from signal handlers and other threads."""
        self.runtime.stopping.set()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        else:
            self._stop.set()

    async def shutdown(self) -> None:
        """No new runs; let running batches finish (up to ``daemon.shutdown_grace``), then stop the scheduler."""
        global _current
        self.runtime.stopping.set()
        if self.scheduler.running:
            self.scheduler.pause()  # no new runs
        if self._inflight:
            # Running jobs finish first: some use a service (a publish run updates review cards in Telegram).
            grace = self.runtime.settings.daemon.shutdown_grace.total_seconds()
            log.info("waiting up to %.0fs for %d running job(s)", grace, len(self._inflight))
            _done, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            if pending:
                # Every batch commits its items and cursor in one transaction, so abandoning one loses only it.
                log.warning("abandoning %d job(s) still running after the grace period", len(pending))
        while self._started:  # then services, newest first (a bot stops taking commands and drains its own)
            stop = self._started.pop()
            try:
                await stop()
            except Exception:
                log.exception("a service failed to stop")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await asyncio.to_thread(self._lease.release)
        if _current is self:
            _current = None

    async def run_once(self) -> None:
        """Run each configured job once, one after the other (``tapewatch run --once``)."""
        global _current
        self._claim()
        _current = self
        self._loop = asyncio.get_running_loop()
        try:
            for spec in job_specs(self.runtime):
                await self.run(spec.kind)
        finally:
            _current = None
            await asyncio.to_thread(self._lease.release)

    # -- one daemon per state DB -----------------------------------------------------------------
    def _claim(self) -> None:
        """Take the daemon lease, or refuse: two daemons on one state DB would run every job twice."""
        if self._lease.acquire():
            return
        holder = self._lease.holder()
        who = f" ({holder[0]}, claim valid until {holder[1]:%H:%M:%S} UTC)" if holder else ""
        raise TapewatchError(f"another tapewatch daemon is running on this state database{who}; stop it first")

    async def _keep_lease(self) -> None:
        """Renew the lease every third of its term; if another daemon took it over, stop this one."""
        every = max(0.05, self._lease.ttl.total_seconds() / 3)
        while True:
            await asyncio.sleep(every)
            if not await asyncio.to_thread(self._lease.renew):
                log.error("the daemon lease was taken over by another process; stopping")
                self.stop()
                return

    # -- jobs ------------------------------------------------------------------------------------
    async def run(self, kind: str) -> None:
        """One run of a job kind in a worker thread; errors are logged, never raised into the scheduler."""
        if self.runtime.stopping.is_set():
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            if kind in self._async_work:
                summary = await self._async_work[kind]()
            else:
                summary = await asyncio.to_thread(self._work[kind])
            log.info("%s: %s", kind, summary)
        except TapewatchError as exc:
            summary = f"failed: {exc}"
            log.error("%s: %s", kind, exc)
        except Exception as exc:  # a bug in one run must not stop the daemon
            summary = f"failed: {exc!r}"
            log.exception("%s: unexpected error", kind)
        finally:
            try:
                await asyncio.to_thread(_release_memory)
            finally:  # only now is the run over: shutdown waits for it until here
                if task is not None:
                    self._inflight.discard(task)
        self.last[kind] = summary
        self.fired[kind] += 1
        if self.on_result is not None:
            self.on_result(kind, summary)
        if self.on_failure is not None and summary.startswith("failed"):
            self.on_failure(kind, summary)

    def _x(self) -> str:
        report = self.runtime.ingest_x()
        line = (f"{summarise(report.outcomes)}; {report.posts_read} post(s) read in {report.requests} request(s); "
                f"budget {report.used:,}/{report.budget:,} this month")
        return "; ".join([line, *report.notes])

    def _retention(self) -> str:
        items, snapshots = self.runtime.retention()
        return f"removed {items} item(s) and {snapshots} price snapshot(s)"

    def _schedule(self, now: datetime) -> None:
        """Add or update this module's jobs; keep a stored job's next run time unless the interval shrank."""
        wanted = {spec.id: spec for spec in job_specs(self.runtime)}
        for job in self.scheduler.get_jobs():
            if job.id in JOB_IDS.values() and job.id not in wanted:
                job.remove()
        jitter_cap = self.runtime.settings.daemon.jitter.total_seconds()
        for spec in wanted.values():
            seconds = spec.interval.total_seconds()
            existing = self.scheduler.get_job(spec.id)
            next_run = now
            if existing is not None and existing.next_run_time is not None:
                next_run = max(min(existing.next_run_time, now + spec.interval), now)
            self.scheduler.add_job(
                run_job, IntervalTrigger(seconds=seconds, jitter=min(jitter_cap, seconds / 10) or None, timezone=UTC),
                args=[spec.kind], id=spec.id, name=spec.name, replace_existing=True, next_run_time=next_run,
            )


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
