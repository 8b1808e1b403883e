"""`tapewatch web --workers N`: N processes accepting on one listening socket.

The desk's pages are CPU-bound Python (SQL building, templates), so one process serves from one core however
many threads it has. The parent binds the socket once and hands it to each spawned worker; the kernel spreads
connections among the workers accepting on it. A worker that dies is started again; SIGINT or SIGTERM stops
them all gracefully. Workers share nothing in memory: sessions, failed-login counts, the outbox and its lease
live in the state database, so any worker can serve any request and a publish still goes out once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from sources.errors import ConfigError
from tapewatch.settings import Settings

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0  # between a worker's death and its replacement, so a crash loop cannot spin
STOP_GRACE_S = 10.0  # for in-flight requests after SIGTERM, before a worker is killed


def standalone_app(settings: Settings) -> Any:
    """The desk app as ``tapewatch web`` serves it: its own state DB, the vector store opened on first use."""
    from tapewatch.clients import open_memory, open_state
    from tapewatch.web.app import build_app
    from tapewatch.web.service import standalone_deps

    state = open_state(settings)
    opened: list[object] = []

    def memory() -> object:
        if not opened:
            opened.append(open_memory(settings))
        return opened[0]

    return build_app(standalone_deps(settings, state, memory))


def bind(settings: Settings, host: str | None, port: int | None) -> socket.socket:
    """The listening socket on ``host``:``port`` (default: the settings'); a taken port is a ConfigError."""
    host, port = host or settings.web.host, port or settings.web.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def worker(settings: Settings, sock: socket.socket, make_app: Callable[[Settings], Any] = standalone_app) -> None:
    """Serve ``make_app(settings)`` on ``sock`` until SIGTERM (Ctrl-C reaches the parent, which stops us)."""
    from tapewatch.web.service import server

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    srv = server(make_app(settings), settings)

    async def run() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: setattr(srv, "should_exit", True))
        await srv.serve(sockets=[sock])

    asyncio.run(run())


def serve_workers(settings: Settings, sock: socket.socket, workers: int,
                  make_app: Callable[[Settings], Any] = standalone_app) -> int:
    """Run ``workers`` processes of ``make_app`` (a module-level function: it is pickled by name) on ``sock``
    until SIGINT/SIGTERM; returns how many times one was restarted."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked locks, threads or pools
    stopping: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(n: int) -> BaseProcess:
        proc = ctx.Process(target=worker, args=(settings, sock, make_app), name=f"tapewatch-web-{n}", daemon=False)
        proc.start()
        return proc

    procs = [start(n) for n in range(workers)]
    restarts = 0
    try:
        while not stopping:
            for n, proc in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    log.warning("web worker %d (pid %s) exited with %s; starting another", n, proc.pid,
                                proc.exitcode)
                    time.sleep(RESTART_PAUSE_S)
                    procs[n] = start(n)
                    restarts += 1
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker finishes its requests and stops
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return restarts
