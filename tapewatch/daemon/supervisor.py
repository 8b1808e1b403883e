"""Supervision of the daemon's background tasks: no task dies silently, and no process lives on half-alive.

A supervised task that raises is logged, reported (to the review chat, when the bot is up) and restarted
after a backoff that doubles up to a maximum. A task that keeps failing (``max_restarts`` failures in a row,
none of its runs lasting a full backoff period) stops the daemon with an error, so a process manager sees a
non-zero exit and restarts it. A task may also be told to retry for ever (the optional Telegram bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tapewatch.settings import format_duration

log = logging.getLogger(__name__)

Body = Callable[[], Awaitable[None]]


def one_line(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


@dataclass(frozen=True)
class Backoff:
    """Retry delays: ``first`` seconds, doubling up to ``most``; ``limit`` failures in a row are fatal."""

    first: float
    most: float
    limit: int

    def delay(self, failures: int) -> float:
        """The wait before restart number ``failures`` (1-based)."""
        return min(self.first * 2 ** max(failures - 1, 0), self.most)


class Supervisor:
    """Runs named background tasks on the daemon's loop and restarts them when they fail."""

    def __init__(self, backoff: Backoff, *, notify: Callable[[str], None], fail: Callable[[str], None]) -> None:
        self.backoff = backoff
        self.notify = notify  # tell people (the review chat); must not raise
        self.fail = fail  # stop the daemon with this reason (non-zero exit)
        self.restarts: dict[str, int] = {}  # restarts per task, for status and tests
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, body: Body, *, forever: bool = False) -> asyncio.Task[None]:
        """Run ``body`` under supervision; ``forever`` retries without ever stopping the daemon."""
        task = asyncio.get_running_loop().create_task(self._supervise(name, body, forever), name=name)
        self._tasks[name] = task
        return task

    def running(self, name: str) -> bool:
        """Whether the task called ``name`` is still going (being run or waiting to be restarted)."""
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def cancel(self, name: str) -> None:
        """Stop one task and wait until it has stopped."""
        task = self._tasks.pop(name, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def cancel_all(self) -> None:
        """Stop every task (daemon shutdown)."""
        for name in list(self._tasks):
            await self.cancel(name)

    async def _supervise(self, name: str, body: Body, forever: bool) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await body()
                return  # a task that returns has finished its work
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started >= self.backoff.most:
                    failures = 0  # it ran healthily for a while: this is a new episode
                failures += 1
                self.restarts[name] = self.restarts.get(name, 0) + 1
                reason = one_line(exc)
                if not forever and failures > self.backoff.limit:
                    log.error("background task %s failed %d times in a row (%s); stopping the daemon",
                              name, failures, reason, exc_info=exc)
                    self.fail(f"background task {name} keeps failing ({reason})")
                    return
                wait = self.backoff.delay(failures)
                log.error("background task %s failed (%s); restarting it in %s", name, reason,
                          format_duration(wait), exc_info=exc)
                if failures == 1:
                    self.notify(f"⚠️ tapewatch: {name} failed ({reason}); restarting it")
                await asyncio.sleep(wait)
