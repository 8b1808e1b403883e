"""Keeping the daemon lease: renew it every third of its term, survive failed renewals, never outlive it.

A renewal that fails (a full disk, a lost connection, a database that hangs) does not end the lease: it
stays ours until the expiry last written. The keeper retries quickly until then; if no renewal gets through
before the lease would lapse, the daemon stops (non-zero), because past that point a second daemon may
start on the same state DB and every job would run twice. A lease another process took over stops the
daemon at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from publish.lease import Lease
from tapewatch.daemon.supervisor import one_line

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews ``lease`` until cancelled; calls ``lost(reason, seconds left)`` and returns when it can't hold it."""

    def __init__(self, lease: Lease, *, lost: Callable[[str, float], None], notify: Callable[[str], None]) -> None:
        self.lease = lease
        self.lost = lost
        self.notify = notify
        ttl = lease.ttl.total_seconds()
        self.every = max(0.05, ttl / 3)
        self.retry = max(0.05, min(ttl / 12, 5.0))
        # Stop this long before the lease lapses, so no second daemon can start while this one still runs.
        self.margin = min(ttl / 6, 10.0)
        self.held_until = time.monotonic() + ttl  # the lease was just acquired
        self.failures = 0

    def acquired(self) -> None:
        """The lease was (re)acquired just now."""
        self.held_until = time.monotonic() + self.lease.ttl.total_seconds()

    async def run(self) -> None:
        """Renew for ever (until cancelled), or until the lease is lost."""
        while True:
            await asyncio.sleep(self.every if self.failures == 0 else self.retry)
            attempt = time.monotonic()
            left = self.held_until - attempt - self.margin
            try:
                if left <= 0:
                    raise TimeoutError("no time left")
                ours = await asyncio.wait_for(asyncio.to_thread(self.lease.renew), timeout=left)
            except Exception as exc:  # the lease is still ours until held_until: retry until then
                self.failures += 1
                reason = "the database did not answer in time" if isinstance(exc, TimeoutError) else one_line(exc)
                if time.monotonic() >= self.held_until - self.margin:
                    self.lost(f"the daemon lease could not be renewed before it lapses ({reason}); stopping "
                              "rather than run without it", max(0.0, self.held_until - time.monotonic()))
                    return
                log.warning("could not renew the daemon lease (%s); retrying in %.1fs, %.0fs before it lapses",
                            reason, self.retry, self.held_until - time.monotonic())
                if self.failures == 1:
                    self.notify(f"⚠️ tapewatch: could not renew the daemon lease ({reason}); retrying")
                continue
            if not ours:
                self.lost("the daemon lease was taken over by another process; stopping", 0.0)
                return
            self.held_until = attempt + self.lease.ttl.total_seconds()
            if self.failures:
                log.warning("renewed the daemon lease again after %d failed attempt(s)", self.failures)
                self.failures = 0
