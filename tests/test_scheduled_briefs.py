"""Scheduled briefs are not lost and never doubled: real daemon subprocesses, killed with SIGKILL.

A slot that came due while the daemon was down runs once on restart (within ``misfire_grace``); a brief
killed mid-run (here: while the analyst crew waits on a slow model) is retried once by the next daemon; a
retry killed too is not retried again; and no restart ever writes a slot's brief twice.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tapewatch.daemon import JOBSTORE_TABLE
from tapewatch.jobs import Runtime
from tapewatch.settings import load_settings
from tests.backends import database_toml, rows
from tests.daemon_child import Running
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko
from tests.fakes.embedder import HashEmbedder
from tests.fakes.llm_server import LLMServer, Reply, serving_llm
from tests.test_automation import seed

pytestmark = pytest.mark.slow
JOB = "brief-morning"


class Model:
    """The fake model's mood: "slow" (a reply that takes minutes: the run is killed meanwhile) or "refusing"."""

    def __init__(self, server: LLMServer) -> None:
        self.mood = "slow"
        server.responder = self.reply

    def reply(self, body: dict[str, Any]) -> Reply:
        if self.mood == "slow":
            return Reply(content="…", delay_s=120)
        return Reply.fail(401, "invalid api key")  # the crew fails at once: the scheduled brief falls back


@pytest.fixture
def fakes() -> Iterator[tuple[LLMServer, FakeCoinGecko]]:
    with serving_llm() as llm, serving_coingecko() as cg:
        cg.set("solana", 213.2, change=3.6)
        yield llm, cg


def configure(tmp_path: Path, llm: LLMServer, cg: FakeCoinGecko, monkeypatch: pytest.MonkeyPatch,
              state_url: str) -> Path:
    config = tmp_path / "t.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n{database_toml(state_url)}feeds = []\n[watchlist]\nSOL = ["solana"]\n'
        f'[market]\nbase_url = "{cg.base_url}"\ninterval = "1h"\n'
        # Retention every 2 s: its runs show that a restarted daemon's scheduler is at work.
        '[daemon]\njitter = "0s"\nretention_interval = "2s"\nshutdown_grace = "2s"\nlease = "30s"\n'
        f'[llm]\nmodel = "openai/fake-model"\nbase_url = "{llm.base_url}"\ntimeout = "150s"\nmax_retries = 0\n'
        'daily_budget_usd = 10\nmonthly_budget_usd = 100\n'
        '[[schedule.briefs]]\nname = "morning"\ncron = "0 8 * * *"\nticker = "SOL"\n')
    monkeypatch.setattr("tests.test_databrief.NOW", datetime.now(UTC))
    runtime = Runtime(load_settings(config), embed=HashEmbedder())
    seed(runtime)  # three posts about $SOL: something to write about
    runtime.close()
    return config


def url_of(config: Path) -> str:
    return load_settings(config).state_url


def query(config: Path, sql: str) -> list[tuple[Any, ...]]:
    return rows(url_of(config), sql)


def brief_drafts(config: Path) -> list[tuple[Any, ...]]:
    return query(config, "SELECT id, meta FROM drafts WHERE meta LIKE '%\"schedule\": \"morning\"%'")


def runs(config: Path) -> list[tuple[Any, ...]]:
    return query(config, "SELECT status, attempts, draft_id, slot FROM job_runs WHERE kind = 'brief:morning'")


def stored_job(config: Path) -> bool:
    return bool(query(config, f"SELECT id FROM {JOBSTORE_TABLE} WHERE id = '{JOB}'"))


def come_due_while_down(config: Path, ago: timedelta) -> datetime:
    """Move the stored slot into the past, as if the daemon had been down when it came due."""
    slot = (datetime.now(UTC) - ago).replace(microsecond=0)

    async def move() -> None:
        # A paused scheduler on a loop changes the stored job and never runs it (a BackgroundScheduler's
        # thread would process due jobs once more while shutting down).
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_jobstore(SQLAlchemyJobStore(url=url_of(config), tablename=JOBSTORE_TABLE))
        scheduler.start(paused=True)
        scheduler.modify_job(JOB, next_run_time=slot)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.05)

    asyncio.run(move())
    [(stored,)] = query(config, f"SELECT next_run_time FROM {JOBSTORE_TABLE} WHERE id = '{JOB}'")
    assert stored == slot.timestamp()
    return slot


def first_daemon(config: Path) -> None:
    """A daemon that stores the brief's job and is killed before its slot (08:00) comes."""
    daemon = Running.child(config)
    try:
        daemon.wait_for(lambda: stored_job(config), 120, "the brief's job in the job store")
    finally:
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.wait(10)


def kill_mid_brief(config: Path, llm: LLMServer) -> str:
    """Start a daemon, let the brief reach the model, kill the daemon with SIGKILL; its output."""
    asked = len(llm.requests)
    daemon = Running.child(config)
    try:
        daemon.wait_for(lambda: len(llm.requests) > asked, 180, "the brief asking the model")
    finally:
        daemon.proc.send_signal(signal.SIGKILL)
        output = daemon.wait(10)
    return output


def stop(daemon: Running) -> str:
    daemon.proc.send_signal(signal.SIGTERM)
    output = daemon.wait(60)
    assert daemon.proc.returncode == 0, output
    return output


def test_a_missed_slot_runs_on_restart_and_a_killed_brief_is_retried_once_never_twice(
        fakes: tuple[LLMServer, FakeCoinGecko], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        state_url: str) -> None:
    llm, cg = fakes
    model = Model(llm)
    config = configure(tmp_path, llm, cg, monkeypatch, state_url)
    first_daemon(config)
    slot = come_due_while_down(config, timedelta(minutes=3))  # within misfire_grace (10m)

    # The restarted daemon runs the missed slot at once; it is killed while the crew waits on the model.
    kill_mid_brief(config, llm)
    assert [r[:2] for r in runs(config)] == [("running", 1)] and not brief_drafts(config)

    # The next daemon retries it (the model now fails fast, so the brief falls back to a data brief).
    model.mood = "refusing"
    daemon = Running.child(config)
    try:
        daemon.wait_for(lambda: brief_drafts(config), 180, "the retried brief's draft")
    finally:
        output = stop(daemon)
    assert "was interrupted mid-run; running it again (attempt 2)" in output
    [(status, attempts, draft_id, stored_slot)] = runs(config)
    [(draft, meta)] = brief_drafts(config)
    assert (status, attempts, draft_id) == ("done", 2, draft)
    # SQLite keeps UTC text; PostgreSQL an aware timestamp.
    stored = (datetime.fromisoformat(stored_slot).replace(tzinfo=UTC) if isinstance(stored_slot, str)
              else stored_slot.astimezone(UTC))
    assert stored == slot
    assert f'"slot": "{slot.isoformat()}"' in meta and '"attempt": 2' in meta

    # Another restart neither retries it nor runs the slot again.
    asked = len(llm.requests)
    again = Running.child(config)
    try:
        # A due brief is submitted in the scheduler's first pass, before the first retention run comes.
        again.wait_for(lambda: again.output.count("retention:") >= 2, 120, "the restarted daemon's first runs")
    finally:
        output = stop(again)
    assert "brief:morning" not in output and len(llm.requests) == asked
    assert len(brief_drafts(config)) == 1 and len(runs(config)) == 1


def test_a_brief_killed_on_its_retry_too_is_not_retried_again(
        fakes: tuple[LLMServer, FakeCoinGecko], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        state_url: str) -> None:
    llm, cg = fakes
    Model(llm)  # slow for ever
    config = configure(tmp_path, llm, cg, monkeypatch, state_url)
    first_daemon(config)
    come_due_while_down(config, timedelta(minutes=1))
    kill_mid_brief(config, llm)  # the missed slot, killed
    kill_mid_brief(config, llm)  # its retry, killed too
    assert [r[:2] for r in runs(config)] == [("running", 2)]

    asked = len(llm.requests)
    daemon = Running.child(config)
    try:
        daemon.wait_for(lambda: runs(config) and runs(config)[0][0] == "lost", 120, "the run marked lost")
        daemon.wait_for(lambda: daemon.output.count("retention:") >= 2, 60, "the daemon's first runs")
    finally:
        output = stop(daemon)
    assert "is lost: interrupted on its retry too; not retried again" in output
    assert len(llm.requests) == asked and not brief_drafts(config)


def test_a_slot_missed_by_more_than_the_grace_is_skipped(
        fakes: tuple[LLMServer, FakeCoinGecko], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        state_url: str) -> None:
    llm, cg = fakes
    Model(llm)
    config = configure(tmp_path, llm, cg, monkeypatch, state_url)
    first_daemon(config)
    come_due_while_down(config, timedelta(minutes=30))  # misfire_grace is 10m
    daemon = Running.child(config)
    try:
        daemon.wait_for(lambda: "missed by" in daemon.output, 120, "APScheduler's missed-run line")
    finally:
        stop(daemon)
    assert not llm.requests and not runs(config)
