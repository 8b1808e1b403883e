"""Every background task of the daemon is supervised: a failure is logged, told to the review chat and retried
with backoff; a task that cannot recover stops the daemon with an error (a non-zero exit), never half alive."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sources.errors import TapewatchError
from tapewatch.bot.service import attach
from tapewatch.daemon import Daemon, run_job
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko
from tests.fakes.telegram_api import FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import FakeXAPI, serving_x
from tests.test_automation import REVIEW_CHAT, automation_settings, until
from tests.test_daemon import make_runtime

RETRY = {"retention_interval": "1h", "jitter": "0s", "shutdown_grace": "5s", "restart_backoff": "0.05s",
         "restart_backoff_max": "0.2s", "max_restarts": 3}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko]]:
    with serving_x() as x, serving_telegram() as tg, serving_coingecko() as cg:
        cg.set("solana", 213.2)
        tg.add_chat(REVIEW_CHAT)
        yield x, tg, cg


def daemon_with(fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, embedder: Any) -> Daemon:
    x, tg, cg = fakes
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, daemon=RETRY), tmp_path, embedder)
    daemon = Daemon(runtime)
    attach(daemon, runtime)
    return daemon


def test_a_task_that_keeps_failing_stops_the_daemon_with_an_error(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any) -> None:
    tg = fakes[1]
    daemon = daemon_with(fakes, tmp_path, hash_embedder)
    calls: list[float] = []

    async def broken() -> None:
        calls.append(asyncio.get_running_loop().time())
        raise RuntimeError("the watched thing is gone")

    async def start() -> None:
        # Start it once the bot is up, so the notices have somewhere to go.
        await until(lambda: tg.calls("getUpdates"))
        daemon.supervisor.start("watcher", broken)

    async def stop() -> None:
        pass

    daemon.add_service(start, stop)

    async def main() -> None:
        await asyncio.wait_for(daemon.serve(handle_signals=False), timeout=30)

    with pytest.raises(TapewatchError, match=r"the daemon stopped: background task watcher keeps failing "
                                             r"\(RuntimeError: the watched thing is gone\)"):
        asyncio.run(main())
    assert len(calls) == 1 + 3  # the first run and max_restarts restarts
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09 and gaps[2] >= 0.19  # backoff doubles up to its maximum
    notices = [m.text for m in tg.sent_to(REVIEW_CHAT)]
    assert "⚠️ tapewatch: watcher failed (RuntimeError: the watched thing is gone); restarting it" in notices
    assert any(n.startswith("⛔ tapewatch daemon stopping: background task watcher keeps failing") for n in notices)
    assert not daemon.scheduler.running
    daemon.runtime.close()


def test_a_task_that_recovers_keeps_the_daemon_running(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any) -> None:
    daemon = daemon_with(fakes, tmp_path, hash_embedder)
    calls: list[int] = []
    healthy = asyncio.Event()

    async def flaky() -> None:
        calls.append(1)
        if len(calls) <= 3:  # fails as often as allowed, then works
            raise OSError("No space left on device")
        healthy.set()
        await asyncio.sleep(3600)

    async def start() -> None:
        daemon.supervisor.start("flaky", flaky)

    async def stop() -> None:
        pass

    daemon.add_service(start, stop)

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        await asyncio.wait_for(healthy.wait(), timeout=20)
        await asyncio.sleep(0.5)
        assert not task.done() and daemon.failure is None
        daemon.stop()
        await asyncio.wait_for(task, timeout=15)  # returns normally: no error

    asyncio.run(main())
    assert len(calls) == 4 and daemon.supervisor.restarts["flaky"] == 3
    daemon.runtime.close()


def test_a_daemon_whose_lease_is_taken_over_stops_at_once_with_an_error(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,
        state_url: str) -> None:
    from sqlalchemy import update

    from memory import schema

    x, tg, cg = fakes
    # Renewals every 2 s: a slow connect on a busy machine must not read as a lapsed lease.
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, daemon={**RETRY, "lease": "6s",
                                                                             "shutdown_grace": "20s"}),
                           tmp_path, hash_embedder)
    daemon = Daemon(runtime)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(60)
        return "done"

    daemon.add_work("slow", coroutine=slow)

    async def main() -> float:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        await until(lambda: daemon.scheduler.running)
        daemon.scheduler.add_job(run_job, args=["slow"], id="slow", jobstore="default")
        await asyncio.wait_for(started.wait(), timeout=20)
        with runtime.state.engine.begin() as conn:  # another daemon took the lease over (ours had lapsed)
            conn.execute(update(schema.publish_lease).where(schema.publish_lease.c.name == "daemon")
                         .values(owner="elsewhere:1:t:b:1"))
        began = asyncio.get_running_loop().time()
        with pytest.raises(TapewatchError, match="the daemon lease was taken over by another process"):
            await asyncio.wait_for(task, timeout=30)
        return asyncio.get_running_loop().time() - began

    stopped_in = asyncio.run(main())
    assert stopped_in < 10  # not the 20 s shutdown grace: with the lease gone, running jobs are not waited for
    runtime.close()
