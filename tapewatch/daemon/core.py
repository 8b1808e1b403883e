"""The scheduler daemon: one APScheduler scheduler on the event loop, jobs persisted in the state DB.

Jobs are stored pickled (``SQLAlchemyJobStore``), so each is a module-level function with plain arguments
(``run_job("x")``) that finds the process's ``Daemon`` and its ``Runtime`` through ``current()``. Blocking
work runs in worker threads. A restart keeps each job's stored next run time (a due job runs at once), and
the sources resume from their stored cursors. Other parts (the Telegram bot) add their own jobs to
``Daemon.scheduler`` and their own tasks to the same loop before ``serve()``. Background tasks (the lease
renewer, the scheduler watchdog, the bot's start) run under a ``Supervisor``; what cannot recover stops the
daemon with an error instead of leaving it half alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.interval import IntervalTrigger

from memory import heap
from publish.lease import Lease, describe_owner
from sources.errors import TapewatchError
from tapewatch.daemon.keeper import LeaseKeeper
from tapewatch.daemon.runs import DONE, FAILED, JobRuns, RunTicket
from tapewatch.daemon.scheduler import JOBSTORE_TABLE, SCHEDULED_FOR, GuardedScheduler
from tapewatch.daemon.specs import JOB_IDS, job_specs
from tapewatch.daemon.supervisor import Backoff, Supervisor
from tapewatch.jobs import Runtime, summarise
from tapewatch.settings import format_duration

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
SlotWork = Callable[[RunTicket], str]


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
    # otherwise stay resident until the next batch (memory.heap; a no-op on other C libraries).
    gc.collect()  # a batch's cyclic garbage would otherwise wait for a full collection
    heap.release()


class Daemon:
    """The scheduler and the jobs' shared runtime; ``serve()`` runs until ``stop()`` or SIGINT/SIGTERM."""

    def __init__(self, runtime: Runtime, on_result: Callable[[str, str], None] | None = None) -> None:
        self.runtime = runtime
        self.on_result = on_result  # called with (job kind, one-line summary) after each run
        # Tells people (the review chat) about failures; set by the bot service while the bot is up.
        self.notifier: Callable[[str], None] | None = None
        self.failure: str | None = None  # why the daemon stopped itself; serve() then raises
        self._grace_cap = float("inf")  # how long a stop may wait for running jobs (less once the lease is lost)
        d = runtime.settings.daemon
        self._store_retry = d.store_retry.total_seconds()
        self.scheduler = GuardedScheduler(
            retry_s=self._store_retry, on_store_error=self._store_problem, timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": max(1, int(d.misfire_grace.total_seconds()))},
        )
        self.scheduler.add_jobstore(SQLAlchemyJobStore(engine=runtime.state.engine, tablename=JOBSTORE_TABLE),
                                    "default")
        self.supervisor = Supervisor(
            Backoff(d.restart_backoff.total_seconds(), d.restart_backoff_max.total_seconds(), d.max_restarts),
            notify=self.notify, fail=self.fail)
        self.fired: Counter[str] = Counter()  # finished runs per job kind
        self.last: dict[str, str] = {}  # the last summary per job kind
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()  # binds to the loop on first use, so stop() may come before serve()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._services: list[tuple[Hook, Hook]] = []
        self._job_hooks: list[Callable[[], None]] = []
        self._lease = Lease(runtime.state.engine, d.lease, name="daemon")
        self.runs = JobRuns(runtime.state.engine, self._lease.owner)
        self._started: list[Hook] = []
        self._spawned: set[asyncio.Task[None]] = set()
        self._async_work: dict[str, Callable[[], Awaitable[str]]] = {}
        self._slot_work: dict[str, SlotWork] = {}
        self._work: dict[str, Callable[[], str]] = {
            "feeds": lambda: summarise(runtime.ingest_feeds()),
            "x": self._x,
            "prices": lambda: summarise([runtime.ingest_prices()]),
            "retention": self._retention,
            "x_deletions": lambda: runtime.x_deletions().summary,
        }

    # -- lifecycle -------------------------------------------------------------------------------
    def add_service(self, start: Hook, stop: Hook) -> None:
        """Run ``start()`` once the scheduler runs, ``stop()`` on shutdown once running jobs end (e.g. a bot)."""
        self._services.append((start, stop))

    def add_jobs(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` at start while the scheduler is still paused, to add or update its jobs."""
        self._job_hooks.append(hook)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the daemon runs on (None before it starts)."""
        return self._loop

    def add_work(self, kind: str, work: Callable[[], str] | None = None, *,
                 coroutine: Callable[[], Awaitable[str]] | None = None, per_slot: SlotWork | None = None) -> None:
        """Make ``run_job(kind)`` run ``work`` in a worker thread, ``coroutine`` on the loop, or ``per_slot``.

        ``per_slot`` work runs at most once per scheduled slot, in a worker thread, with its ``RunTicket``;
        a run killed mid-way is retried once by the next daemon.
        """
        if sum(w is not None for w in (work, coroutine, per_slot)) != 1:
            raise ValueError("give exactly one of work, coroutine and per_slot")
        if coroutine is not None:
            self._async_work[kind] = coroutine
        elif per_slot is not None:
            self._slot_work[kind] = per_slot
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
        keeper = LeaseKeeper(self._lease, lost=self._lease_lost, notify=self.notify)
        self.supervisor.start("lease renewer", keeper.run)
        retries = await asyncio.to_thread(self.runs.recover, set(self._slot_work), datetime.now(UTC),
                                          self.runtime.settings.daemon.misfire_grace)
        self.scheduler.start(paused=True)
        self._schedule(datetime.now(UTC))
        for hook in self._job_hooks:
            hook()
        self.scheduler.resume()
        self.supervisor.start("scheduler watchdog", self._watch_scheduler)
        for start, stop in self._services:
            await start()
            self._started.append(stop)
        for ticket in retries:
            self._spawn(self.run(ticket.kind, retry=ticket))

    async def serve(self, *, duration: float | None = None, handle_signals: bool = True) -> None:
        """Run until ``stop()``, a signal or ``duration`` seconds, then stop gracefully.

        Raises ``TapewatchError`` after the stop when the daemon stopped itself because something it needs
        could not recover (its lease, a background task), so the process exits non-zero.
        """
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        if handle_signals and hasattr(signal, "SIGXFSZ"):
            # Past a file-size limit a write then fails with EFBIG, handled like a full disk, instead of the
            # signal killing the process on the spot.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
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
        if self.failure is not None:
            raise TapewatchError(f"the daemon stopped: {self.failure}")

    def stop(self) -> None:
        """Ask ``serve()`` to return; safe from signal handlers and other threads."""
        self.runtime.stopping.set()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        else:
            self._stop.set()

    def fail(self, reason: str) -> None:
        """Stop because something the daemon needs cannot recover: no new runs, then a graceful stop, exit 2."""
        if self.failure is None:
            self.failure = reason
            log.error("stopping the daemon: %s", reason)
            self.notify(f"⛔ tapewatch daemon stopping: {reason}")
        if self.scheduler.running:
            with contextlib.suppress(Exception):
                self.scheduler.pause()
        self.stop()

    def _lease_lost(self, reason: str, left_s: float) -> None:
        # Past the lease's expiry another daemon may start: running jobs get only what is left of it.
        self._grace_cap = left_s
        self.fail(reason)

    def notify(self, text: str) -> None:
        """Tell people about a failure (the review chat, when the bot is up); never raises."""
        if self.notifier is None:
            return
        try:
            self.notifier(text)
        except Exception:
            log.warning("could not pass on a notice", exc_info=True)

    async def shutdown(self) -> None:
        """No new runs; let running batches finish (up to ``daemon.shutdown_grace``), then stop the scheduler."""
        global _current
        self.runtime.stopping.set()
        if self.scheduler.running:
            self.scheduler.pause()  # no new runs
        if self._inflight:
            # Running jobs finish first: some use a service (a publish run updates review cards in Telegram).
            grace = min(self.runtime.settings.daemon.shutdown_grace.total_seconds(), self._grace_cap)
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
        await self.supervisor.cancel_all()
        try:
            await asyncio.to_thread(self._lease.release)
        except Exception as exc:  # e.g. a full disk: the lease then lapses after its term
            log.warning("could not release the daemon lease (%s); it lapses in %s", exc,
                        format_duration(self._lease.ttl.total_seconds()))
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
        who = f" ({describe_owner(holder[0])}, claim valid until {holder[1]:%H:%M:%S} UTC)" if holder else ""
        raise TapewatchError(f"another tapewatch daemon is running on this state database{who}; stop it first")

    async def _watch_scheduler(self) -> None:
        """Nudge the scheduler every ``store_retry``: a wakeup lost for any reason costs at most that long."""
        while True:
            await asyncio.sleep(self._store_retry)
            if self.scheduler.running:
                self.scheduler.wakeup()

    def _store_problem(self, reason: str | None) -> None:
        if reason is None:
            self.notify("✅ tapewatch: the scheduler's job store is writable again")
        else:
            self.notify(f"⚠️ tapewatch: the scheduler cannot write its job store ({reason}); it retries every "
                        f"{format_duration(self._store_retry)}")

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        assert self._loop is not None
        task: asyncio.Task[None] = self._loop.create_task(coroutine)  # type: ignore[arg-type]
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    # -- jobs ------------------------------------------------------------------------------------
    async def run(self, kind: str, *, retry: RunTicket | None = None) -> None:
        """One run of a job kind in a worker thread; errors are logged, never raised into the scheduler."""
        if self.runtime.stopping.is_set():
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        ticket = retry
        status: str | None = None
        summary = ""
        try:
            if kind in self._slot_work:
                if ticket is None:
                    slot = SCHEDULED_FOR.get() or datetime.now(UTC)  # a run by hand is its own slot
                    ticket = await asyncio.to_thread(self.runs.begin, kind, slot, datetime.now(UTC))
                    if ticket is None:
                        log.info("%s: the run for %s UTC has been done already; skipped", kind,
                                 f"{slot:%Y-%m-%d %H:%M:%S}")
                        return
                summary = await asyncio.to_thread(self._slot_work[kind], ticket)
            elif kind in self._async_work:
                summary = await self._async_work[kind]()
            else:
                summary = await asyncio.to_thread(self._work[kind])
            status = DONE
            log.info("%s: %s", kind, summary)
        except TapewatchError as exc:
            # The first line only: a database error goes on with the SQL statement and a help link.
            status, summary = FAILED, f"failed: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}"
            log.error("%s: %s", kind, summary[len("failed: "):])
        except Exception as exc:  # a bug in one run must not stop the daemon
            status, summary = FAILED, f"failed: {exc!r}"
            log.exception("%s: unexpected error", kind)
        finally:
            try:
                if ticket is not None and status is not None:  # cancelled: left running, retried next start
                    await self._finish(ticket, status, summary)
                await asyncio.to_thread(_release_memory)
            finally:  # only now is the run over: shutdown waits for it until here
                if task is not None:
                    self._inflight.discard(task)
        self.last[kind] = summary
        self.fired[kind] += 1
        if self.on_result is not None:
            self.on_result(kind, summary)
        if status == FAILED:
            self.notify(f"⚠️ job {kind} {summary}")

    async def _finish(self, ticket: RunTicket, status: str, summary: str) -> None:
        try:
            await asyncio.to_thread(self.runs.finish, ticket, status, summary, datetime.now(UTC))
        except Exception as exc:  # a draft it wrote was marked with it already; otherwise one more run later
            log.warning("could not record the end of %s (%s)", ticket.kind, exc)

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
