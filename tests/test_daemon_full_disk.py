"""A full disk must not silently stop the daemon: a real `tapewatch run` whose writes fail for a while.

The disk is "filled" by lowering the running daemon's file-size limit (``RLIMIT_FSIZE`` through ``prlimit``)
to one byte: every write to the state DB, its WAL and the job store then fails (EFBIG, "disk I/O error"),
as on a full disk; raising the limit again ends the episode. A short episode must leave the scheduler and the
lease renewer running; one longer than the lease must stop the daemon with a non-zero exit instead of letting
it run on without its lease.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.daemon_child import Running
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit")]


@pytest.fixture
def cg() -> Iterator[FakeCoinGecko]:
    with serving_coingecko() as server:
        server.set("bitcoin", 97950.0, change=0.8)
        yield server


def start_daemon(tmp_path: Path, cg: FakeCoinGecko, lease: str) -> tuple[Running, Path]:
    data = tmp_path / "data"
    config = tmp_path / "t.toml"
    config.write_text(
        f'data_dir = "{data}"\nfeeds = []\n[market]\nbase_url = "{cg.base_url}"\ninterval = "0.3s"\n'
        f'[daemon]\njitter = "0s"\nlease = "{lease}"\nstore_retry = "0.3s"\nshutdown_grace = "2s"\n'
        'retention_interval = "1h"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
    env.update(COLUMNS="200")
    return Running([sys.executable, "-m", "tapewatch", "--config", str(config), "run"], env), data / "state.db"


def prices_asked(cg: FakeCoinGecko) -> int:
    return len(cg.requests)


def lease_row(db: Path) -> tuple[str, datetime] | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT owner, expires_at FROM publish_lease WHERE name = 'daemon'").fetchone()
    return (row[0], datetime.fromisoformat(row[1]).replace(tzinfo=UTC)) if row else None


class FullDisk:
    """Makes every file write of process ``pid`` fail, as on a full disk, until ``end()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = resource.prlimit(pid, resource.RLIMIT_FSIZE)

    def begin(self) -> None:
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (1, self.before[1]))

    def end(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, self.before)


def test_a_short_full_disk_episode_leaves_the_scheduler_and_the_lease_running(
        tmp_path: Path, cg: FakeCoinGecko) -> None:
    # A 20 s lease is renewed every 6.7 s and given up 3.3 s before it lapses: the episode lasts until a
    # renewal and a job-store write have failed (at most 6.7 s in), then the retry 1.7 s later must succeed,
    # at least 10 s before the daemon would give up. A fixed-length episode could miss every renewal.
    daemon, db = start_daemon(tmp_path, cg, lease="20s")
    try:
        daemon.wait_for(lambda: prices_asked(cg) >= 3, 120, "the first price runs")
        owner, held_until = lease_row(db)  # type: ignore[misc]
        disk = FullDisk(daemon.proc.pid)
        disk.begin()
        try:
            daemon.wait_for(lambda: "could not renew the daemon lease" in daemon.output
                            and "the scheduler could not update its job store" in daemon.output,
                            9, "a failed renewal and a failed job-store write")
            during = prices_asked(cg)
        finally:
            disk.end()
        # The scheduler wakes up again and runs jobs; the lease is renewed by the same daemon.
        daemon.wait_for(lambda: prices_asked(cg) >= during + 5, 30, "price runs after the disk has space again")
        daemon.wait_for(lambda: "renewed the daemon lease again" in daemon.output, 10, "a renewal after the episode")
        assert lease_row(db)[1] > held_until  # type: ignore[index]
        assert lease_row(db)[0] == owner  # type: ignore[index]
        daemon.proc.send_signal(signal.SIGTERM)
    finally:
        output = daemon.wait(60)
    assert daemon.proc.returncode == 0, output
    assert "the scheduler could not update its job store" in output, output
    assert "the scheduler's job store is writable again" in output
    assert "could not renew the daemon lease" in output and "renewed the daemon lease again" in output
    assert "Traceback" not in output and "Stopped after" in output
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_full_disk_outlasting_the_lease_stops_the_daemon_with_an_error(tmp_path: Path, cg: FakeCoinGecko) -> None:
    daemon, _db = start_daemon(tmp_path, cg, lease="3s")
    try:
        daemon.wait_for(lambda: prices_asked(cg) >= 3, 120, "the first price runs")
        disk = FullDisk(daemon.proc.pid)
        disk.begin()
        began = time.monotonic()
        try:
            daemon.proc.wait(timeout=30)  # it must stop by itself, before its lease lapses
        finally:
            disk.end()
        stopped_after = time.monotonic() - began
    finally:
        output = daemon.wait(10)
    assert daemon.proc.returncode == 2, output
    assert "error: the daemon stopped: the daemon lease could not be renewed before it lapses" in output, output
    assert "could not renew the daemon lease" in output  # the retries before giving up
    assert stopped_after < 3 + 2 + 5  # the lease term, the shutdown grace, and some slack for a busy machine
    assert "Traceback" not in output
