"""The daemon in process: jobs fire on short intervals against loopback fakes, persist, stop gracefully, resume.

A subprocess test sends SIGTERM to a real `tapewatch run` in the middle of an X batch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from memory import schema
from tapewatch.cli import app
from tapewatch.daemon import JOB_IDS, Daemon, current, job_specs, next_runs
from tapewatch.jobs import Runtime
from tapewatch.settings import Settings
from tests.conftest import FEEDS
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko
from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.x_api import FakeXAPI, serving_x


@pytest.fixture
def x() -> Iterator[FakeXAPI]:
    with serving_x() as server:
        yield server


@pytest.fixture
def cg() -> Iterator[FakeCoinGecko]:
    with serving_coingecko() as server:
        server.set("bitcoin", 97950.0, change=0.8)
        server.set("solana", 213.2, change=3.6)
        yield server


def settings_for(feeds: FeedServer | None, xapi: FakeXAPI, cg: FakeCoinGecko, every: str = "0.2s",
                 **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "feeds": [{"name": "wire", "url": feeds.url("/wire.xml")}] if feeds else [],
        "fetch": {"interval": every, "timeout": "2s"},
        "x": {"api_base_url": xapi.base_url, "interval": every, "accounts": [{"handle": "alice", "cluster": "vc"}],
              "backoff": "0.01s", "timeout": "3s"},
        "market": {"base_url": cg.base_url, "interval": every},
        "daemon": {"retention_interval": every, "jitter": "0s", "shutdown_grace": "5s"},
        "watchlist": {"BTC": ["bitcoin"], "SOL": ["solana"]},
        "x_bearer_token": "t",
    }
    for key, value in overrides.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) else value
    return Settings(**values)


def make_runtime(settings: Settings, tmp_path: Path, embedder: Any) -> Runtime:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma = chromadb.PersistentClient(path=str(tmp_path / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    return Runtime(settings, embed=embedder, chroma=chroma)


def serve_until(daemon: Daemon, done: Callable[[], bool], timeout: float = 20.0,
                while_running: Callable[[], None] | None = None) -> None:
    """Run ``daemon.serve()`` until ``done()`` holds, then stop it and wait for a clean return."""

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        deadline = time.monotonic() + timeout
        while not done():
            assert not task.done(), "serve() returned by itself"
            assert time.monotonic() < deadline, f"timed out; fired so far: {dict(daemon.fired)}"
            await asyncio.sleep(0.02)
        if while_running:
            while_running()
        daemon.stop()
        await asyncio.wait_for(task, timeout=15)

    asyncio.run(main())


def count(runtime: Runtime, table: Any) -> int:
    with runtime.state.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_jobs_fire_store_data_persist_and_stop(feed_server: FeedServer, x: FakeXAPI, cg: FakeCoinGecko,
                                               tmp_path: Path, hash_embedder: Any, state_url: str) -> None:
    feed_server.routes["/wire.xml"] = Route(body=(FEEDS / "rss2.xml").read_bytes())
    alice = x.add_user("alice")
    for n in range(3):
        x.post(alice, f"$SOL note {n}")
    runtime = make_runtime(settings_for(feed_server, x, cg), tmp_path, hash_embedder)
    daemon = Daemon(runtime)
    assert [j.kind for j in job_specs(runtime)] == ["feeds", "x", "x_deletions", "prices", "retention"]

    serve_until(daemon, lambda: min(daemon.fired[k] for k in ("feeds", "x", "prices", "retention")) >= 2)

    assert not daemon.scheduler.running and current() is None
    sources = {h.name: h for h in runtime.state.source_health()}
    assert sources["wire"].items == 3 and sources["x:@alice"].items == 3 and sources["coingecko"].last_status == "ok"
    assert runtime.state.cursor("x:@alice") == x.posts_by(alice.id)[-1].id
    assert runtime.prices.latest("SOL").price_usd == 213.2  # type: ignore[union-attr]
    # Feeds answer from their conditional-GET validators or re-store nothing; X asks only after its cursor.
    assert count(runtime, schema.items) == 6
    timeline_calls = x.calls(f"/2/users/{alice.id}/tweets")
    assert len(timeline_calls) >= 2 and "since_id" in timeline_calls[-1].query
    assert len(x.calls("/2/users/by")) == 1
    assert set(next_runs(runtime.state.engine)) == set(JOB_IDS.values())
    assert "3 new" in daemon.last["feeds"] or "0 new" in daemon.last["feeds"]
    runtime.close()


def test_restart_keeps_the_schedule_applies_changes_and_resumes_from_cursors(
        x: FakeXAPI, cg: FakeCoinGecko, tmp_path: Path, hash_embedder: Any, state_url: str) -> None:
    alice = x.add_user("alice")
    for n in range(4):
        x.post(alice, f"before {n}")
    hourly = settings_for(None, x, cg, every="1h")
    first = Daemon(make_runtime(hourly, tmp_path, hash_embedder))
    serve_until(first, lambda: first.fired["x"] >= 1 and first.fired["prices"] >= 1)
    cursor = first.runtime.state.cursor("x:@alice")
    stored = next_runs(first.runtime.state.engine)[JOB_IDS["x"]]
    assert stored is not None and stored.timestamp() - time.time() > 3000
    first.runtime.close()

    # Same settings: the stored next run (an hour away) holds, so nothing runs right after the restart.
    again = Daemon(make_runtime(hourly, tmp_path, hash_embedder))
    started = time.monotonic()
    serve_until(again, lambda: time.monotonic() - started > 0.6)
    assert sum(again.fired.values()) == 0
    assert next_runs(again.runtime.state.engine)[JOB_IDS["x"]] == stored
    again.runtime.close()

    # A shorter X interval applies at once (replace_existing); X resumes after the stored cursor.
    newer = [x.post(alice, f"after {n}") for n in range(2)]
    x.requests.clear()
    quicker = settings_for(None, x, cg, every="1h", x={"interval": "0.2s"})
    third = Daemon(make_runtime(quicker, tmp_path, hash_embedder))
    serve_until(third, lambda: third.fired["x"] >= 1)
    calls = x.calls(f"/2/users/{alice.id}/tweets")
    assert calls[0].query["since_id"] == [cursor] and not x.calls("/2/users/by")
    assert third.runtime.state.cursor("x:@alice") == newer[-1].id
    assert third.fired["prices"] == 0  # still an hour away
    assert count(third.runtime, schema.items) == 6
    third.runtime.close()

    # X no longer configured: its stored job goes; the others stay.
    no_x = settings_for(None, x, cg, every="1h", x={"accounts": []})
    fourth = Daemon(make_runtime(no_x, tmp_path, hash_embedder))
    serve_until(fourth, lambda: True)
    assert JOB_IDS["x"] not in next_runs(fourth.runtime.state.engine)
    fourth.runtime.close()


def test_stop_lets_the_running_batch_finish(x: FakeXAPI, cg: FakeCoinGecko, tmp_path: Path,
                                            hash_embedder: Any, state_url: str) -> None:
    alice = x.add_user("alice")
    posts = [x.post(alice, f"slow {n}") for n in range(3)]
    x.fail_next(f"/2/users/{alice.id}/tweets", 200, delay_s=1.0, pass_through=True)  # a slow timeline page
    runtime = make_runtime(settings_for(None, x, cg, every="1h"), tmp_path, hash_embedder)
    daemon = Daemon(runtime)
    # Stop as soon as the page request is in flight; the batch must still complete and commit.
    serve_until(daemon, lambda: bool(x.calls(f"/2/users/{alice.id}/tweets")))
    assert daemon.fired["x"] == 1
    assert runtime.state.cursor("x:@alice") == posts[-1].id
    assert count(runtime, schema.items) == 3
    runtime.close()


def test_services_share_the_loop_and_the_scheduler(cg: FakeCoinGecko, x: FakeXAPI, tmp_path: Path,
                                                  hash_embedder: Any) -> None:
    """What a bot needs: start and stop with the daemon, add its own jobs to the same scheduler."""
    events: list[str] = []
    daemon = Daemon(make_runtime(settings_for(None, x, cg, every="1h", x={"accounts": []}), tmp_path, hash_embedder))

    async def start() -> None:
        events.append("start")
        daemon.scheduler.add_job(tick, "interval", seconds=0.1, id="bot-tick", replace_existing=True,
                                 jobstore="volatile")

    async def stop() -> None:
        events.append(f"stop (scheduler running: {daemon.scheduler.running})")

    daemon.scheduler.add_jobstore("memory", "volatile")
    daemon.add_service(start, stop)
    serve_until(daemon, lambda: TICKS.count("tick") >= 2)
    assert events == ["start", "stop (scheduler running: True)"]
    assert JOB_IDS["prices"] in next_runs(daemon.runtime.state.engine)
    daemon.runtime.close()


TICKS: list[str] = []


async def tick() -> None:
    TICKS.append("tick")


def test_sources_shows_next_runs_and_x_budget(x: FakeXAPI, cg: FakeCoinGecko, tmp_path: Path,
                                              hash_embedder: Any) -> None:
    alice = x.add_user("alice")
    for n in range(3):
        x.post(alice, f"budget {n}")
    settings = settings_for(None, x, cg, every="1h", x={"monthly_read_budget": 500},
                            data_dir=tmp_path / "data")
    daemon = Daemon(make_runtime(settings, tmp_path, hash_embedder))
    serve_until(daemon, lambda: daemon.fired["x"] >= 1)
    daemon.runtime.close()
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nfeeds = []\n[x]\nmonthly_read_budget = 500\n'
                      f'accounts = [{{handle = "alice", cluster = "vc"}}]\n')
    result = CliRunner().invoke(app, ["--config", str(config), "sources"], env={"TAPEWATCH_X_BEARER_TOKEN": "t"})
    assert result.exit_code == 0, result.output
    assert "x:@alice" in result.output and "daemon schedule" in result.output
    assert "3 of 500 posts read" in result.output and "497 left" in result.output
    assert "in 59m" in result.output or "in 1h" in result.output


def test_run_once_runs_each_job_once(cg: FakeCoinGecko, tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nfeeds = []\n[market]\nbase_url = "{cg.base_url}"\n')
    result = CliRunner().invoke(app, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "ingest prices every 5m" in result.output and "prices: 1 source(s), 2 new" in result.output
    assert "retention: removed 0 item(s)" in result.output and "feeds" not in result.output.split("Jobs:")[1]


@pytest.mark.slow
def test_sigterm_stops_a_real_daemon_cleanly_mid_batch(x: FakeXAPI, cg: FakeCoinGecko, tmp_path: Path) -> None:
    alice = x.add_user("alice")
    for n in range(3):
        x.post(alice, f"$BTC first batch {n}")
    data = tmp_path / "data"
    config = tmp_path / "t.toml"
    config.write_text(
        f'data_dir = "{data}"\nfeeds = []\n'
        f'[x]\napi_base_url = "{x.base_url}"\ninterval = "1s"\naccounts = [{{handle = "alice", cluster = "vc"}}]\n'
        f'[market]\nbase_url = "{cg.base_url}"\ninterval = "1s"\n[daemon]\njitter = "0s"\nshutdown_grace = "20s"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
    env.update(TAPEWATCH_X_BEARER_TOKEN="t", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "tapewatch", "--config", str(config), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    db = data / "state.db"

    def cursor() -> str | None:
        if not db.exists():
            return None
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                row = conn.execute("SELECT cursor FROM source_cursors WHERE source = 'x:@alice'").fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    try:
        deadline = time.monotonic() + 180
        while cursor() is None:  # the first X batch (loading the real model) is stored
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # A second daemon on the same state DB refuses to start (it would run every job twice).
        second = subprocess.run([sys.executable, "-m", "tapewatch", "--config", str(config), "run", "--once"],
                                capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "another tapewatch daemon is running on this state database" in second.stderr + second.stdout
        newest = [x.post(alice, f"$BTC second batch {n}") for n in range(2)][-1]
        seen = len(x.calls(f"/2/users/{alice.id}/tweets"))
        x.fail_next(f"/2/users/{alice.id}/tweets", 200, delay_s=1.5, pass_through=True)
        while len(x.calls(f"/2/users/{alice.id}/tweets")) == seen:  # the next X request is in flight
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "Stopped after" in output and "Traceback" not in output
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        items = conn.execute("SELECT count(*) FROM items WHERE source = 'x:@alice'").fetchone()[0]
        jobs = {r[0] for r in conn.execute("SELECT id FROM apscheduler_jobs")}
        leases = conn.execute("SELECT count(*) FROM publish_lease WHERE name = 'daemon'").fetchone()[0]
    assert leases == 0  # released on a clean stop
    assert cursor() == newest.id and items == 5  # the in-flight batch finished and committed with its cursor
    assert {"ingest-x", "ingest-prices", "retention"} <= jobs
