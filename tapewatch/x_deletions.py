"""The X deletion job: stored X posts that X no longer returns (deleted, suspended, protected) leave memory.

X's developer rules ask that stored X content be deleted within 24 hours once it is gone from X. Every
``x.compliance_every`` this looks up the stored posts younger than ``x.compliance_window``, 100 ids a
request, within the monthly read budget (X bills the posts it returns), and deletes the gone ones'
vectors, then their rows: a crash between the two leaves rows the next run finds and deletes again,
never a vector nobody can find. Each run is recorded as source ``x:compliance`` in ``tapewatch sources``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import desc, select

from memory import schema
from memory.quotas import Quotas, month_of, next_month
from memory.state import FetchRecord, StateDB
from memory.store import Memory
from sources.errors import IngestError, StoreError
from sources.x import XRateLimited, XReader
from sources.x_deletions import post_id, unavailable
from tapewatch.settings.sources import XSettings

log = logging.getLogger(__name__)
SOURCE = "x:compliance"
LOOKUP_URL = "https://api.twitter.com/2/tweets"
BATCH = 100  # ids per GET /2/tweets, X's maximum


@dataclass
class DeletionReport:
    """What one run did."""

    stored: int = 0  # stored X posts in the window
    checked: int = 0  # of those, looked up
    returned: int = 0  # posts X returned (billed as reads)
    requests: int = 0
    deleted: dict[str, str] = field(default_factory=dict)  # item id → why X no longer returns its post
    stopped: str | None = None  # why the run ended before checking everything

    @property
    def summary(self) -> str:
        """One line: "checked 250 of 250 stored X post(s) in 3 request(s); deleted 4 (deleted 3, …)"."""
        why: dict[str, int] = {}
        for reason in self.deleted.values():
            why[reason] = why.get(reason, 0) + 1
        detail = f" ({', '.join(f'{r} {n}' for r, n in sorted(why.items()))})" if why else ""
        line = (f"checked {self.checked} of {self.stored} stored X post(s) in {self.requests} request(s); "
                f"deleted {len(self.deleted)}{detail}")
        return f"{line}; {self.stopped}" if self.stopped else line


class XDeletions:
    """Look stored X posts up on X and forget those it no longer returns."""

    def __init__(self, memory: Memory, reader: XReader, quotas: Quotas, settings: XSettings, *,
                 clock: Callable[[], datetime] | None = None, stopping: threading.Event | None = None) -> None:
        self.memory = memory
        self.reader = reader
        self.quotas = quotas
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stopping = stopping or threading.Event()

    def run(self) -> DeletionReport:
        """One pass over the window; every outcome, a failure too, is recorded as source ``x:compliance``."""
        started = self.clock()
        report = DeletionReport()
        error: str | None = None
        try:
            self._pass(report)
        except (IngestError, StoreError) as exc:
            error = str(exc)
            report.stopped = f"stopped: {exc}"
        log.info("x deletions: %s", report.summary)
        try:
            self.memory.state.record_fetch(FetchRecord(
                source=SOURCE, kind="x-compliance", url=LOOKUP_URL, started_at=started, finished_at=self.clock(),
                status="error" if error else "ok", warnings=(report.summary,), error=error))
        except StoreError as exc:  # a full disk: the deletions stand, only the record is missing
            log.warning("x deletions: could not record the run: %s", exc)
        return report

    def _pass(self, report: DeletionReport) -> None:
        pause = self.quotas.paused_until(SOURCE, self.clock())
        if pause is not None:
            report.stopped = f"paused until {pause.until:%Y-%m-%d %H:%M:%S} UTC ({pause.reason})"
            return
        posts = stored_posts(self.memory.state, self.clock() - self.settings.compliance_window)
        report.stored = len(posts)
        ids = list(posts)
        at = 0
        while at < len(ids):
            if self.stopping.is_set():
                report.stopped = "the daemon is stopping"
                return
            now = self.clock()
            used = self.quotas.usage(month_of(now)).posts
            left = self.settings.monthly_read_budget - used
            if left < 1:
                report.stopped = (f"monthly X read budget reached ({used:,} of {self.settings.monthly_read_budget:,}); "
                                  f"the rest is checked from {next_month(now):%Y-%m-%d} (x.monthly_read_budget)")
                return
            batch = ids[at:at + min(BATCH, left)]
            try:
                payload = self.reader.lookup(batch)
            except XRateLimited as exc:
                self.quotas.pause(SOURCE, exc.reset_at, "rate limited (429)")
                report.stopped = str(exc)
                return
            finally:
                report.requests += 1
            found = unavailable(payload, batch)
            self.quotas.record_reads(now, found.returned)
            report.returned += found.returned
            report.checked += len(batch)
            gone = {posts[i]: why for i, why in found.gone.items()}
            if gone:
                self.forget(list(gone))
                report.deleted.update(gone)
            at += len(batch)

    def forget(self, item_ids: list[str]) -> None:
        """Vectors first, then rows (see the module docstring for why this order)."""
        self.memory.vectors.delete(ids=item_ids)
        self.memory.state.delete_items(item_ids)


def stored_posts(state: StateDB, since: datetime) -> dict[str, str]:
    """Post id → item id of the stored X posts published since ``since``."""
    it = schema.items
    with state.engine.connect() as conn:
        rows = conn.execute(select(it.c.id, it.c.url).where(it.c.source.startswith("x:"), it.c.kind == "social",
                                                            it.c.published_at >= since)
                            .order_by(desc(it.c.published_at))).all()
    return {pid: r.id for r in rows if (pid := post_id(r.url))}


def last_run(state: StateDB) -> tuple[datetime, str, str | None] | None:
    """When the deletion job last ran, its summary and its error, or None if it never did."""
    log_ = schema.fetch_log
    with state.engine.connect() as conn:
        row = conn.execute(select(log_.c.finished_at, log_.c.warnings, log_.c.error).where(log_.c.source == SOURCE)
                           .order_by(desc(log_.c.finished_at)).limit(1)).first()
    if row is None:
        return None
    return row.finished_at, _summary(row.warnings), row.error


def _summary(raw: str | None) -> str:
    return "; ".join((raw or "").splitlines())
