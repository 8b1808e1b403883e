"""Leases identify their holder by host, boot id, PID and start time, so a dead holder is taken over at once.

A holder recorded as PID 1 (every daemon in a container is PID 1) or with a PID that now belongs to another
process is dead, although ``os.kill(pid, 0)`` succeeds; a live holder keeps its lease.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from memory import schema
from memory.state import StateDB
from publish.lease import Lease, ProcessIdentity, boot_id, describe_owner, start_time
from tapewatch.cli import app
from tests.backends import database_toml

pytestmark = pytest.mark.skipif(not boot_id() or start_time(os.getpid()) is None, reason="needs Linux /proc")


def record_holder(state: StateDB, name: str, owner: str, minutes: float = 10) -> None:
    with state.engine.begin() as conn:
        conn.execute(insert(schema.publish_lease).values(
            name=name, owner=owner, expires_at=datetime.now(UTC) + timedelta(minutes=minutes)))


def owner_of(pid: int, start: str) -> str:
    return f"{socket.gethostname()}:{pid}:0ldt0ken:{boot_id()}:{start}"


def other_start(pid: int) -> str:
    """A start time that process ``pid`` does not have: the process that held the PID before it."""
    return str(int(start_time(pid) or "0") + 12345)


@pytest.fixture
def state(state_url: str) -> StateDB:
    db = StateDB(state_url)
    yield db
    db.close()


@pytest.mark.parametrize("name", ["publish", "daemon"])
def test_a_dead_pid_1_holder_is_taken_over_at_once(state: StateDB, name: str) -> None:
    # The daemon that was PID 1 before its container restarted: PID 1 exists (it is someone else now).
    os.kill(1, 0)
    record_holder(state, name, owner_of(1, other_start(1)))
    lease = Lease(state.engine, timedelta(minutes=10), name=name)
    assert lease.acquire()
    assert lease.holder()[0] == lease.owner  # type: ignore[index]


def test_a_reused_pid_does_not_keep_a_dead_holder_alive(state: StateDB) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # The holder had this PID, but an earlier process: the PID has been reused since.
        record_holder(state, "publish", owner_of(other.pid, other_start(other.pid)))
        assert Lease(state.engine, timedelta(minutes=10)).acquire()
    finally:
        other.kill()
        other.wait()


def test_a_live_holder_keeps_its_lease_and_a_killed_one_loses_it_at_once(state: StateDB, state_url: str) -> None:
    url = state_url
    code = (
        "import sys, time\n"
        "from datetime import timedelta\n"
        "from memory.state import StateDB\n"
        "from publish.lease import Lease\n"
        f"lease = Lease(StateDB({url!r}).engine, timedelta(minutes=10))\n"
        "assert lease.acquire()\n"
        "print(lease.owner, flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        owner = holder.stdout.readline().strip()  # type: ignore[union-attr]
        assert ProcessIdentity.parse(owner) == ProcessIdentity.of(holder.pid)
        assert describe_owner(owner) == f"pid {holder.pid} on {socket.gethostname()}"
        assert not Lease(state.engine, timedelta(minutes=10)).acquire()  # alive: refused
        # Our own PID and start time under another token (a second Lease object in this process) is alive too.
        record_holder(state, "daemon", owner_of(os.getpid(), start_time(os.getpid()) or ""))
        assert not Lease(state.engine, timedelta(minutes=10), name="daemon").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        started = time.monotonic()
        assert Lease(state.engine, timedelta(minutes=10)).acquire()  # dead: taken at once, not in 10 minutes
        assert time.monotonic() - started < 5
    finally:
        if holder.poll() is None:
            holder.kill()


def test_holders_this_host_cannot_check_wait_for_expiry(state: StateDB) -> None:
    with state.engine.begin() as conn:  # another machine; the same name in another boot; an older owner format
        for name, owner in (("a", f"elsewhere:{os.getpid() + 1}:t:{boot_id()}:1"),
                            ("b", f"{socket.gethostname()}:1:t:00000000-0000-0000-0000-000000000000:1"),
                            ("c", f"{socket.gethostname()}:1:t")):
            conn.execute(insert(schema.publish_lease).values(
                name=name, owner=owner, expires_at=datetime.now(UTC) + timedelta(minutes=10)))
    for name in ("a", "b", "c"):
        assert not Lease(state.engine, timedelta(minutes=10), name=name).acquire()
    expired = datetime.now(UTC) + timedelta(minutes=20)
    assert Lease(state.engine, timedelta(minutes=10), name="a", clock=lambda: expired).acquire()


def test_run_starts_at_once_after_a_pid_1_daemon_died(tmp_path: Path, state_url: str) -> None:
    data = tmp_path / "data"
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{data}"\n{database_toml(state_url)}feeds = []\n[market]\nenabled = false\n')
    from tapewatch.clients import open_state
    from tapewatch.settings import load_settings

    state = open_state(load_settings(config))
    record_holder(state, "daemon", owner_of(1, other_start(1)), minutes=2)
    result = CliRunner().invoke(app, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "retention: removed 0 item(s)" in result.output
    with state.engine.connect() as conn:
        assert conn.execute(select(schema.publish_lease.c.owner)).first() is None  # released after the run
    state.close()


@pytest.mark.parametrize("expired", [False, True])
def test_processes_racing_for_a_lease_give_it_to_exactly_one(state_url: str, expired: bool) -> None:
    # Separate engines, as separate processes (two daemons, two publish runs on two hosts) would have.
    states = [StateDB(state_url) for _ in range(5)]
    if expired:  # a holder on another host whose lease lapsed: every racer may take it over
        record_holder(states[0], "publish", f"elsewhere:{os.getpid()}:t:{boot_id()}:1", minutes=-1)
    leases = [Lease(s.engine, timedelta(minutes=10)) for s in states]
    barrier = threading.Barrier(len(leases))
    won: list[tuple[bool, str]] = []

    def race(lease: Lease) -> None:
        barrier.wait()
        won.append((lease.acquire(), lease.owner))

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(w for w, _ in won) == [False] * 4 + [True]
    [winner] = [owner for w, owner in won if w]
    holder = leases[0].holder()
    assert holder is not None and holder[0] == winner
    for s in states:
        s.close()
