"""Lanes: the public pages and the desk each render on their own few threads.

Pages are CPU-bound Python. Run on Starlette's default pool (40 threads), twenty concurrent requests fight
over the GIL: measured in `bench/web.py`, each request then cost about 50% more CPU than served one after the
other, and every page waited behind every other. Here a sync page runs on its lane's threads only
(`web.public_threads`, `web.desk_threads`), so a crowd on a permalink linked from X cannot slow the
reviewers down, nor the desk the public archive. Actions (POSTs) keep their own `run_in_threadpool` calls.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tapewatch.web.security import PRIVATE_PREFIXES


class Lane:
    """A limit on the threads rendering one kind of page, one limiter per event loop (anyio's are bound)."""

    def __init__(self, name: str, threads: int) -> None:
        self.name, self.threads = name, threads
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = (
            weakref.WeakKeyDictionary())

    def limiter(self) -> CapacityLimiter:
        loop = asyncio.get_running_loop()
        found = self._limiters.get(loop)
        if found is None:
            found = self._limiters[loop] = CapacityLimiter(self.threads)
        return found


def in_lane(endpoint: Callable[[Request], Response], lane: Lane) -> Callable[[Request], Any]:
    """``endpoint`` (a sync page) as an async one that renders on ``lane``'s threads."""

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        return await anyio.to_thread.run_sync(endpoint, request, limiter=lane.limiter())

    return run


def laned(routes: Sequence[BaseRoute], public: Lane, desk: Lane) -> list[BaseRoute]:
    """The routes, each sync page moved onto the desk's lane or the public one by its path."""
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and not inspect.iscoroutinefunction(route.endpoint):
            lane = desk if route.path.startswith(PRIVATE_PREFIXES) else public
            route = Route(route.path, in_lane(route.endpoint, lane), methods=sorted(route.methods or ()),
                          name=route.name)
        out.append(route)
    return out
