"""`tapewatch health` (Docker's HEALTHCHECK) against a real daemon: unhealthy before it starts, healthy while it
runs, unhealthy once it is killed (its lease runs out) or its scheduler stops running jobs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.coingecko import serving_coingecko

pytestmark = pytest.mark.slow


def health(config: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {"COLUMNS": "60"}
    proc = subprocess.run([sys.executable, "-m", "tapewatch", "--config", str(config), "health"], capture_output=True,
                          text=True, env=env, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def wait_for(config: Path, code: int, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        got, output = health(config)
        if got == code:
            return output
        assert time.monotonic() < deadline, f"health kept answering {got}: {output}"
        time.sleep(0.5)


def test_health_follows_the_daemon(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "t.toml"
    with serving_coingecko() as cg:
        cg.set("bitcoin", 97950.0, change=0.8)
        config.write_text(f'data_dir = "{data}"\nfeeds = []\n[market]\nbase_url = "{cg.base_url}"\ninterval = "1h"\n'
                          '[daemon]\njitter = "0s"\nlease = "3s"\n')
        code, output = health(config)
        assert code == 1 and output.strip() == (f"unhealthy: no state database at {data / 'state.db'} "
                                                "(has `tapewatch run` started?)")
        assert not (data / "state.db").exists()  # the probe never creates it

        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
        daemon = subprocess.Popen([sys.executable, "-m", "tapewatch", "--config", str(config), "run"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            assert wait_for(config, 0).strip() == "healthy"
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=30)
            output = wait_for(config, 1, timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert output.startswith("unhealthy: the daemon's lease ran out") and "the daemon is hung or gone" in output
    assert len(output.splitlines()) == 1

    # A lease that is renewed while no job runs any more (the wakeup died): overdue jobs make it unhealthy.
    now = datetime.now(UTC)
    with sqlite3.connect(data / "state.db") as conn:
        conn.execute("UPDATE publish_lease SET expires_at = ? WHERE name = 'daemon'",
                     ((now + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.%f"),))
        conn.execute("UPDATE apscheduler_jobs SET next_run_time = ? WHERE id = 'ingest-prices'",
                     ((now - timedelta(hours=1)).timestamp(),))
    code, output = health(config)
    assert code == 1 and output.startswith("unhealthy: job ingest-prices is overdue by 1h"), output


def test_a_broken_config_is_unhealthy_with_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text('data_dir = "/nonexistent"\n[daemon]\nlease = "soon"\n')
    code, output = health(config)
    assert code == 1 and output.startswith("unhealthy: invalid settings in") and "daemon.lease" in output


def test_a_stopped_daemon_is_unhealthy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{data}"\nfeeds = []\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
    subprocess.run([sys.executable, "-m", "tapewatch", "--config", str(config), "pause"], env=env, check=True,
                   capture_output=True, timeout=60)  # creates the state DB, as any command does
    code, output = health(config)
    assert code == 1
    assert output.strip() == "unhealthy: no daemon holds the lease: `tapewatch run` is not running (or stopped)"
