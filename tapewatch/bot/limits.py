"""Fairness for the Telegram bot: a per-user rate limit and a bounded queue for brief requests."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

log = logging.getLogger(__name__)
_MAX_KEYS = 10_000  # senders remembered before the ones whose window has passed are dropped


class RateLimiter:
    """At most ``limit`` acquisitions per user within a sliding ``period_s``."""

    def __init__(self, limit: int, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.period_s = period_s
        self._clock = clock
        self._seen: dict[int, deque[float]] = {}

    def try_acquire(self, user_id: int) -> float:
        """0.0 when allowed (and counted); else the seconds until the user may ask again."""
        wait = self.wait(user_id)
        if wait == 0.0:
            self._seen[user_id].append(self._clock())
        return wait

    def wait(self, user_id: int) -> float:
        """Seconds until ``user_id`` may acquire (0.0: now), without counting anything."""
        now = self._clock()
        stamps = self._seen.setdefault(user_id, deque())
        while stamps and now - stamps[0] >= self.period_s:
            stamps.popleft()
        if len(stamps) >= self.limit:
            return max(0.0, self.period_s - (now - stamps[0]))
        if not stamps and len(self._seen) > _MAX_KEYS:  # a flood of one-off senders: forget the quiet ones
            self._seen = {k: v for k, v in self._seen.items() if v}
            self._seen.setdefault(user_id, stamps)
        return 0.0


class RefusalGate:
    """A refusal is answered at most once per key (user or chat) per period, and at most ``most`` times per period
    in all; every other refusal is silent, so strangers cannot make the bot amplify their traffic."""

    def __init__(self, period_s: float, most: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self.most = most
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._answered: deque[float] = deque()
        self.silenced = 0

    def answer(self, key: Hashable) -> bool:
        """True when this refusal may be answered (and is counted); False: stay silent."""
        now = self._clock()
        while self._answered and now - self._answered[0] >= self.period_s:
            self._answered.popleft()
        last = self._last.get(key)
        if (last is not None and now - last < self.period_s) or len(self._answered) >= self.most:
            self.silenced += 1
            return False
        if len(self._last) > _MAX_KEYS:
            self._last = {k: t for k, t in self._last.items() if now - t < self.period_s}
        self._last[key] = now
        self._answered.append(now)
        return True


@dataclass(frozen=True)
class Ticket:
    """A place in the brief queue."""

    position: int  # 0 = starting now
    number: int


class BriefQueue:
    """Run at most ``concurrency`` jobs at once with at most ``capacity`` waiting; refuse beyond that."""

    def __init__(self, concurrency: int, capacity: int) -> None:
        self.concurrency = concurrency
        self.capacity = capacity
        self._semaphore = asyncio.Semaphore(concurrency)
        self._running = 0
        self._waiting = 0
        self._numbers = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def depth(self) -> int:
        """Jobs waiting or running."""
        return self._running + self._waiting

    def submit(self, job: Callable[[], Awaitable[None]]) -> Ticket | None:
        """Schedule ``job``; None when the queue is full (nothing was scheduled)."""
        free = max(0, self.concurrency - self._running)
        queued = max(0, self._waiting - free)  # submitted jobs that will not start right away
        if queued >= self.capacity:
            return None
        self._numbers += 1
        position = max(0, self._waiting + 1 - free)
        self._waiting += 1
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Ticket(position, self._numbers)

    async def _run(self, job: Callable[[], Awaitable[None]]) -> None:
        async with self._semaphore:
            self._waiting -= 1
            self._running += 1
            try:
                await job()
            except Exception:  # one failing request is logged; the queue and the requests behind it go on
                log.exception("a queued brief request failed")
            finally:
                self._running -= 1

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for queued jobs, then cancel the rest; returns how many were cancelled."""
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)
