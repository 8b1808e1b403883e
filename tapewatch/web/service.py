"""Serving the desk: on its own (`tapewatch web`) or as a service on the daemon's event loop (`tapewatch run`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from sources.errors import ConfigError, PublishError
from tapewatch.web.app import WebDeps, build_app

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from memory.state import StateDB
    from tapewatch.daemon import Daemon
    from tapewatch.jobs import Runtime
    from tapewatch.settings import Settings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon (or ``tapewatch web``) owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(app: Starlette, settings: Settings, *, host: str | None = None, port: int | None = None) -> uvicorn.Server:
    """A uvicorn server for ``app``, believing forwarded headers only from ``web.trusted_proxies``."""
    w = settings.web
    config = uvicorn.Config(app, host=host or w.host, port=port or w.port, log_level="warning", access_log=False,
                            proxy_headers=True, forwarded_allow_ips=w.trusted_proxies, lifespan="off",
                            server_header=False)
    return _Server(config)


class StandalonePublisher:
    """Publish now without the daemon: one publish run at a time, in a background thread."""

    def __init__(self, settings: Settings, state: StateDB) -> None:
        self.settings = settings
        self.state = state
        self._lock = threading.Lock()
        self.last: str | None = None

    def __call__(self, draft_id: str) -> str:
        """Start a publish run now; a run already going picks the draft up (it is scheduled for now)."""
        from tapewatch.clients import publish_channels

        channels = {} if self.settings.publish.dry_run else publish_channels(self.settings)  # ConfigError: say so
        if not self._lock.acquire(blocking=False):
            return "A publish run is going; it takes this draft too."
        threading.Thread(target=self._run, args=(channels,), name="web publish", daemon=True).start()
        return "Publishing now."

    def _run(self, channels: dict[str, Any]) -> None:
        from tapewatch.clients import delivery

        try:
            report = asyncio.run(delivery(self.settings, self.state, channels, via="web")
                                 .run(dry_run=self.settings.publish.dry_run))
            self.last = f"{len(report.published)} published, {len(report.failed)} failed, {len(report.waiting)} waiting"
        except Exception:
            log.exception("web: publish run failed")
        finally:
            self._lock.release()


async def serve_until_signalled(web: uvicorn.Server) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully (`tapewatch web`)."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(web, "should_exit", True))
    await web.serve()


def standalone_deps(settings: Settings, state: StateDB, memory: Callable[[], Any] | None) -> WebDeps:
    """The desk's dependencies when it runs on its own."""
    from tapewatch.clients import draft_validator

    publisher = StandalonePublisher(settings, state)

    def publish_now(draft_id: str) -> str:
        try:
            return publisher(draft_id)
        except ConfigError as exc:
            raise PublishError(f"publishing is not configured: {exc}") from exc

    return WebDeps(settings=settings, state=state, memory=memory, validator=draft_validator(settings, state),
                   publish_now=publish_now)


def attach(daemon: Daemon, runtime: Runtime, automation: Any) -> list[str]:
    """Serve the desk inside `tapewatch run` (``[web] enabled``), supervised like the daemon's other tasks."""
    from tapewatch.clients import draft_validator

    s = runtime.settings

    def publish_now(draft_id: str) -> str:
        try:
            automation.publish_soon()
        except Exception as exc:
            raise PublishError(f"the daemon cannot publish now: {exc}") from exc
        return "Publishing now."

    deps = WebDeps(settings=s, state=runtime.state, memory=runtime.memory,
                   validator=draft_validator(s, runtime.state), publish_now=publish_now,
                   set_paused=automation.set_paused)
    web = server(build_app(deps), s)

    async def start() -> None:
        daemon.supervisor.start("web desk", _serve(web))

    async def stop() -> None:
        web.should_exit = True

    daemon.add_service(start, stop)
    return [f"Web desk: http://{s.web.host}:{s.web.port}/ (public archive at /, the desk at /desk)"]


def _serve(web: uvicorn.Server) -> Callable[[], Any]:
    async def run() -> None:
        web.should_exit = False
        await web.serve()
        if not web.should_exit:  # it stopped by itself (the port was taken): the supervisor retries
            raise RuntimeError(f"the web desk stopped serving on {web.config.host}:{web.config.port}")

    return run
