"""PostgreSQL restarting under a running daemon: while it is down, jobs fail with a clear one-line error and
the daemon keeps running; once it is back the next runs succeed, and nothing is lost or stored twice.

The daemon gets a cluster of its own (``.ci/postgres.sh start``), so stopping it touches no other test.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from memory import schema
from tapewatch.daemon import JOB_IDS, Daemon, next_runs
from tests.backends import TEST_DATABASE_URL
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.x_api import FakeXAPI
from tests.test_daemon import cg, make_runtime, settings_for, x  # noqa: F401  (fixtures)

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "postgres.sh"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(TEST_DATABASE_URL is None, reason="TAPEWATCH_TEST_DATABASE_URL is not set")]


def pg(command: str, directory: Path) -> str:
    done = subprocess.run(["bash", str(SCRIPT), command, str(directory)], capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        if "no PostgreSQL binaries" in done.stderr:
            pytest.skip("PostgreSQL's binaries are not installed here")
        raise AssertionError(f"postgres.sh {command} failed: {done.stderr}")
    return done.stdout.strip()


@pytest.fixture
def cluster() -> Iterator[tuple[str, Path]]:
    # Under /tmp, not tmp_path: the cluster's owner (an unprivileged user when we are root) must reach it,
    # and the socket path must stay short.
    directory = Path("/tmp") / f"tapewatch-pg-{uuid.uuid4().hex[:10]}"
    url = pg("start", directory)
    yield url, directory
    pg("stop", directory)


def items_of(runtime: Any, source: str) -> list[str]:
    with runtime.state.engine.connect() as conn:
        return list(conn.execute(select(schema.items.c.id).where(schema.items.c.source == source)).scalars())


def test_the_database_restarting_under_a_running_daemon_loses_and_doubles_nothing(
        cluster: tuple[str, Path], x: FakeXAPI, cg: FakeCoinGecko, tmp_path: Path,  # noqa: F811
        hash_embedder: Any) -> None:
    url, directory = cluster
    alice = x.add_user("alice")
    posts = [x.post(alice, f"$SOL before the restart {n}") for n in range(3)]
    settings = settings_for(None, x, cg, every="0.3s", database_url=url,
                            daemon={"lease": "60s", "store_retry": "0.5s", "retention_interval": "0.3s"})
    runtime = make_runtime(settings, tmp_path, hash_embedder)
    results: list[tuple[str, str]] = []
    daemon = Daemon(runtime, on_result=lambda kind, summary: results.append((kind, summary)))
    down_at: list[int] = []

    def outage() -> None:
        # New posts, and an X request that takes 10 s: the server goes down while that batch is in flight, so
        # the batch cannot be stored (stopping the server takes a while on a busy machine).
        posts.extend(x.post(alice, f"$SOL during the outage {n}") for n in range(2))
        path = f"/2/users/{alice.id}/tweets"
        seen = len(x.calls(path))
        x.fail_next(path, 200, delay_s=10, pass_through=True)
        deadline = time.monotonic() + 90
        while len(x.calls(path)) == seen:
            assert time.monotonic() < deadline, "no X request came"
            time.sleep(0.02)
        pg("down", directory)
        down_at.append(len(results))
        while not [k for k, s in results[down_at[0]:] if k == "x" and s.startswith("failed")]:
            assert time.monotonic() < deadline, results[down_at[0]:]
            time.sleep(0.05)
        time.sleep(1)  # a few scheduler passes against the stopped server
        pg("up", directory)
        posts.extend(x.post(alice, f"$SOL after the restart {n}") for n in range(2))

    def caught_up() -> bool:
        if not down_at or len(results) <= down_at[0]:
            return False
        after = results[down_at[0]:]
        healed = {k for k, s in after if not s.startswith("failed")} >= {"x", "prices", "retention"}
        return healed and runtime.state.cursor("x:@alice") == posts[-1].id

    async def wait(check: Any, timeout: float, what: str, task: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert not task.done(), f"the daemon stopped waiting for {what}: {daemon.failure}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}; runs: {results}"
            await asyncio.sleep(0.05)

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        await wait(lambda: len(items_of(runtime, "x:@alice")) == 3 and daemon.fired["prices"] >= 1, 120,
                   "the first batch", task)
        await asyncio.to_thread(outage)  # the daemon goes on running meanwhile
        await wait(caught_up, 180, "every job to run cleanly again and X to catch up", task)
        daemon.stop()
        await asyncio.wait_for(task, timeout=15)

    asyncio.run(main())

    assert daemon.failure is None  # it kept running through the outage
    failures = [(k, s) for k, s in results[down_at[0]:] if s.startswith("failed")]
    assert failures
    for _kind, summary in failures:  # one readable line naming the state database's trouble
        assert "\n" not in summary and "Traceback" not in summary
        words = ("connect", "connection", "server closed", "terminat", "shutting down")
        assert any(w in summary.lower() for w in words), summary
    # Nothing lost, nothing twice: every post stored once, the cursor on the newest, the job store whole.
    stored = items_of(runtime, "x:@alice")
    assert len(stored) == len(set(stored)) == len(posts) == 7
    with runtime.state.engine.connect() as conn:
        leases = conn.execute(select(func.count()).select_from(schema.publish_lease)).scalar()
    assert leases == 0  # released on the clean stop
    assert set(next_runs(runtime.state.engine)) >= {JOB_IDS[k] for k in ("x", "prices", "retention")}
    runtime.close()
