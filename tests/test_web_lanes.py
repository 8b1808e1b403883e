"""Pages render on their lane's threads: a crowd on the desk cannot hold up the public archive, or the reverse."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tapewatch.web.lanes import Lane, laned


def test_a_busy_desk_lane_leaves_the_public_lane_free_and_each_lane_keeps_its_thread_count() -> None:
    running = {"desk": 0, "public": 0}
    most = {"desk": 0, "public": 0}
    lock = threading.Lock()
    release = threading.Event()

    def page(kind: str, wait: bool) -> Response:
        with lock:
            running[kind] += 1
            most[kind] = max(most[kind], running[kind])
        if wait:
            release.wait(10)  # a desk page stuck on something slow
        else:
            time.sleep(0.01)
        with lock:
            running[kind] -= 1
        return PlainTextResponse(kind)

    def desk(request: Request) -> Response:
        return page("desk", True)

    def brief(request: Request) -> Response:
        return page("public", False)

    async def action(request: Request) -> Response:  # async endpoints are left as they are
        return PlainTextResponse("acted")

    routes = laned([Route("/desk", desk), Route("/b/{pid}", brief), Route("/desk/act", action, methods=["POST"])],
                   Lane("public", 2), Lane("desk", 1))
    app = Starlette(routes=routes)

    async def main() -> tuple[list[int], float, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            stuck = [asyncio.create_task(client.get("/desk")) for _ in range(3)]
            await asyncio.sleep(0.3)
            start = time.monotonic()
            public = await asyncio.gather(*(client.get(f"/b/{n}") for n in range(8)))
            took = time.monotonic() - start
            acted = (await client.post("/desk/act")).status_code
            release.set()
            return [r.status_code for r in [*public, *await asyncio.gather(*stuck)]], took, acted

    codes, took, acted = asyncio.run(main())
    assert codes == [200] * 11 and acted == 200
    assert took < 5  # served while every desk thread was stuck
    assert most == {"desk": 1, "public": 2}
