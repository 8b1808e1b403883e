"""One pass over the X sources: resolve handles once, read new posts within the monthly budget, store them.

Each account or query reads only posts newer than its cursor (``since_id``). The cursor moves to the
newest stored post in the same transaction as the posts. Reads are billed per post returned, so every
answer is added to the monthly ledger as soon as it arrives, and no request may ask for more posts than
the budget has left. When a run is cut short (page cap, budget, rate limit, stop), the cursor still
moves to the newest post read: a post is never paid for twice, and older unread posts of that run are
skipped and the outcome says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memory.quotas import Quotas, month_of, next_month
from memory.state import FetchRecord
from memory.store import Memory
from sources.errors import IngestError, StoreError
from sources.item import Item
from sources.tickers import Watchlist
from sources.x import (
    MIN_RESULTS,
    SEARCH_WINDOW,
    XAccessError,
    XRateLimited,
    XReader,
    XSourceSpec,
    parse_posts,
    post_time,
)
from tapewatch.ingest import SourceOutcome, within_retention
from tapewatch.settings import XSettings

log = logging.getLogger(__name__)


@dataclass
class XRunReport:
    """What one X pass did, and why it stopped early if it did."""

    outcomes: list[SourceOutcome] = field(default_factory=list)
    posts_read: int = 0
    requests: int = 0
    budget: int = 0
    used: int = 0  # posts read this month after the pass
    notes: list[str] = field(default_factory=list)


class _Stop(Exception):
    """Ends the pass for every remaining source; ``message`` says why, ``fatal`` marks a credentials error."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class XIngestor:
    """Reads the configured X accounts and queries into memory, within the monthly read budget."""

    def __init__(self, memory: Memory, reader: XReader, quotas: Quotas, watchlist: Watchlist, settings: XSettings,
                 *, clock: Callable[[], datetime] | None = None, stopping: threading.Event | None = None,
                 retention: timedelta | None = None,
                 on_reads: Callable[[datetime, int], None] | None = None) -> None:
        self.memory = memory
        self.on_reads = on_reads  # X bills each post read: the shell records it in the cost ledger
        self.reader = reader
        self.quotas = quotas
        self.watchlist = watchlist
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stopping = stopping or threading.Event()
        self.retention = retention
        self.clusters = {a.handle.lower(): a.cluster for a in settings.accounts}
        self._lookup_problem: str | None = None  # why handles could not be resolved in this pass

    def run(self, specs: Sequence[XSourceSpec],
            on_done: Callable[[SourceOutcome], None] | None = None) -> XRunReport:
        """Read every source once; a failing source is recorded and the rest go on."""
        report = XRunReport(budget=self.settings.monthly_read_budget)
        stop: _Stop | None = None
        ids: dict[str, str] = {}
        self._lookup_problem = None
        try:
            ids = self._user_ids([s.target for s in specs if s.endpoint == "timeline"], report)
        except _Stop as exc:
            if exc.fatal:
                stop = exc
            else:  # the lookup is paused or rate limited: timelines wait, searches go on
                self._lookup_problem = str(exc)
                report.notes.append(str(exc))
        for spec in specs:
            if stop is None and self.stopping.is_set():
                stop = _Stop("not read: the daemon is stopping")
            if stop is not None:
                outcome = self._failed(spec, self.clock(), str(stop)) if stop.fatal else self._skipped(spec, str(stop))
            else:
                outcome, stop = self._one(spec, ids, report)
            report.outcomes.append(outcome)
            if on_done:
                on_done(outcome)
        if stop is not None:
            report.notes.append(str(stop))
        report.used = self.quotas.usage(month_of(self.clock())).posts
        return report

    def _user_ids(self, handles: list[str], report: XRunReport) -> dict[str, str]:
        """Handle → user id, from the cache or one lookup request per 100 new handles."""
        ids = self.quotas.user_ids(handles)
        missing = sorted({h.lower() for h in handles} - set(ids))
        if not missing:
            return ids
        pause = self._pause("x:users")
        if pause:
            raise _Stop(pause)
        try:
            found = self.reader.resolve(missing)
        except XRateLimited as exc:
            self.quotas.pause("x:users", exc.reset_at, str(exc))
            raise _Stop(str(exc)) from exc
        except XAccessError as exc:
            raise _Stop(str(exc), fatal=exc.fatal) from exc
        except IngestError as exc:
            log.warning("X handle lookup failed: %s", exc)
            report.notes.append(f"handle lookup failed: {exc}")
            return ids
        report.requests += (len(missing) + 99) // 100
        self.quotas.remember_users(found, self.clock())
        return {**ids, **found}

    def _pause(self, name: str) -> str | None:
        pause = self.quotas.paused_until(name, self.clock())
        if pause is None:
            return None
        return f"X {name.split(':')[1]} paused until {pause.until:%Y-%m-%d %H:%M:%S} UTC after a rate limit"

    def _one(self, spec: XSourceSpec, ids: dict[str, str], report: XRunReport) -> tuple[SourceOutcome, _Stop | None]:
        """Read and store one source; the second value, when set, ends the pass."""
        started = self.clock()
        user_id = ids.get(spec.target.lower()) if spec.endpoint == "timeline" else None
        if spec.endpoint == "timeline" and user_id is None:
            if self._lookup_problem:
                return self._skipped(spec, f"handle not resolved yet: {self._lookup_problem}"), None
            return self._failed(spec, started, f"X has no account @{spec.target} (or it could not be looked up)"), None
        pause = self._pause(f"x:{spec.endpoint}")
        if pause:
            return self._skipped(spec, pause), None
        cursor = self.memory.state.cursor(spec.name)
        items, newest, warnings, skipped, problem = self._read(spec, user_id, cursor, report)
        if isinstance(problem, XRateLimited):
            self.quotas.pause(f"x:{spec.endpoint}", problem.reset_at, str(problem))
        stop = problem if isinstance(problem, _Stop) else None
        if isinstance(problem, XAccessError) and problem.fatal:
            stop = _Stop(str(problem), fatal=True)
        if problem is not None and newest is None:  # nothing was read
            if stop is not None:
                return (self._failed(spec, started, str(stop)) if stop.fatal else self._skipped(spec, str(stop))), stop
            if isinstance(problem, XRateLimited):
                return self._skipped(spec, str(problem)), None
            return self._failed(spec, started, str(problem)), None
        if problem is not None:
            warnings.append(f"stopped early ({problem}); older new posts of this run were skipped")
        degraded = f"{skipped} post(s) X sent could not be used and were skipped" if skipped else None
        fresh = within_retention(items, started, self.retention)
        try:
            result = self.memory.add(fresh, FetchRecord(
                source=spec.name, kind="social", url=spec.url, started_at=started, finished_at=self.clock(),
                status="ok", http_status=200, warnings=tuple(warnings), cursor=newest, skipped=skipped,
                degraded=degraded,
            ))
        except StoreError as exc:
            return self._failed(spec, started, str(exc)), stop
        for warning in warnings:
            log.warning("%s: %s", spec.name, warning)
        return SourceOutcome(name=spec.name, kind="social", status="ok", new=result.new, duplicate=result.duplicate,
                             near_duplicate=result.near_duplicate, warnings=tuple(warnings), skipped=skipped,
                             degraded=degraded, too_old=len(items) - len(fresh)), stop

    def _read(self, spec: XSourceSpec, user_id: str | None, cursor: str | None,
              report: XRunReport) -> tuple[list[Item], str | None, list[str], int, Exception | None]:
        """Pages of posts newer than ``cursor``: items, newest id read, warnings, posts skipped, what cut it short."""
        s = self.settings
        pages = s.max_pages if cursor else s.first_run_pages
        items: list[Item] = []
        warnings: list[str] = []
        skipped = 0
        created = post_time(cursor) if cursor and spec.endpoint == "search" else None
        if created is not None and created < self.clock() - SEARCH_WINDOW + timedelta(minutes=10):
            # X refuses a since_id older than search's 7-day window; every post it can return is newer anyway.
            warnings.append(f"cursor from {created:%Y-%m-%d} is older than recent search's 7 days; reading the "
                            "newest posts instead")
            cursor = None
        newest: str | None = None
        token: str | None = None
        for _ in range(pages):
            if self.stopping.is_set():
                return items, newest, warnings, skipped, _Stop("the daemon is stopping")
            now = self.clock()
            used = self.quotas.usage(month_of(now)).posts
            left = s.monthly_read_budget - used
            minimum = MIN_RESULTS[spec.endpoint]
            if left < minimum:
                return items, newest, warnings, skipped, _Stop(
                    f"monthly X read budget reached: {used:,} of {s.monthly_read_budget:,} posts read in "
                    f"{month_of(now)}; X reading resumes {next_month(now):%Y-%m-%d} 00:00 UTC "
                    "(x.monthly_read_budget)")
            try:
                payload = self.reader.page(spec, user_id=user_id, since_id=cursor,
                                           max_results=max(min(s.max_results, left), minimum), token=token)
                page = parse_posts(payload, source=spec.name, watchlist=self.watchlist, fetched_at=now,
                                   clusters=self.clusters, authors={user_id: spec.target} if user_id else None,
                                   account=spec.target if spec.endpoint == "timeline" else None)
            except IngestError as exc:
                return items, newest, warnings, skipped, exc
            finally:
                report.requests += 1
            self.quotas.record_reads(now, page.count)
            if self.on_reads is not None and page.count:
                self.on_reads(now, page.count)
            report.posts_read += page.count
            items += page.items
            warnings += page.warnings
            skipped += page.skipped
            if page.newest_id and (newest is None or int(page.newest_id) > int(newest)):
                newest = page.newest_id
            token = page.next_token
            if not token:
                break
        else:
            if token:
                warnings.append(f"more than {pages} page(s) of new posts; older ones were skipped (x.max_pages)")
        return items, newest, warnings, skipped, None

    def _skipped(self, spec: XSourceSpec, reason: str) -> SourceOutcome:
        # Not the source's fault: nothing goes into its health record.
        log.info("%s: skipped: %s", spec.name, reason)
        return SourceOutcome(name=spec.name, kind="social", status="skipped", error=reason)

    def _failed(self, spec: XSourceSpec, started: datetime, error: str) -> SourceOutcome:
        log.warning("%s: %s", spec.name, error)
        try:
            self.memory.record(FetchRecord(source=spec.name, kind="social", url=spec.url, started_at=started,
                                           finished_at=self.clock(), status="error", error=error))
        except StoreError as exc:
            log.error("%s: could not record the error: %s", spec.name, exc)
        return SourceOutcome(name=spec.name, kind="social", status="error", error=error)
