"""`tapewatch users …` and `tapewatch web`; the CLI's audit entries name the OS account beside --as."""

from __future__ import annotations

import io
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from memory.accounts import Accounts
from memory.state import StateDB
from publish.audit import AuditLog
from tests.fakes.publishing import add_draft
from tests.test_publish_cli import cli
from tests.test_web_daemon import free_port


@pytest.fixture
def state(tmp_path: Path) -> StateDB:
    (tmp_path / "data").mkdir()
    return StateDB(f"sqlite:///{tmp_path / 'data' / 'state.db'}")


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_users_add_list_disable_passwd(state: StateDB, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "correct horse battery\n")
    assert cli(["users", "add", "alice", "--role", "admin", "--password-stdin"], monkeypatch, capsys) == (
        0, "Added alice (admin).\n")
    code, listing = cli(["users", "list"], monkeypatch, capsys)
    assert code == 0 and "alice" in listing and "admin" in listing and "active" in listing
    accounts = Accounts(state)
    token = accounts.open_session(accounts.get("alice"), __import__("datetime").timedelta(hours=1))
    _stdin(monkeypatch, "a brand new password\n")
    assert cli(["users", "passwd", "alice", "--password-stdin"], monkeypatch, capsys)[0] == 0
    assert accounts.session(token) is None and accounts.verify("alice", "a brand new password") is not None
    assert cli(["users", "disable", "alice"], monkeypatch, capsys)[0] == 0
    assert "disabled" in cli(["users", "list"], monkeypatch, capsys)[1]
    assert accounts.verify("alice", "a brand new password") is None


@pytest.mark.parametrize(("args", "stdin", "why"), [
    (["users", "add", "bob", "--role", "reviewer"], "", "--password-stdin"),
    (["users", "add", "bob", "--role", "owner", "--password-stdin"], "long enough pw\n", "role must be one of"),
    (["users", "add", "bob", "--password-stdin"], "short\n", "at least 10 characters"),
    (["users", "add", "bob", "--password-stdin"], "", "held no password"),
    (["users", "disable", "nobody"], "", "no user 'nobody'"),
])
def test_bad_user_commands_give_one_line_and_change_nothing(state: StateDB, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str], args: list[str],
                                                            stdin: str, why: str) -> None:
    _stdin(monkeypatch, stdin)
    code, output = cli(args, monkeypatch, capsys)
    assert code == 2 and why in output and "Traceback" not in output
    assert Accounts(state).list() == []


def test_cli_review_actions_record_the_os_account_beside_the_claimed_name(
        state: StateDB, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TAPEWATCH_REVIEW__REVIEWERS", '["alice"]')
    draft = add_draft(state)
    code, output = cli(["drafts", "approve", draft.id, "--as", "alice", "--override", "checked by hand"],
                       monkeypatch, capsys)
    assert code == 0, output
    login = pwd.getpwuid(os.getuid()).pw_name
    approvals = [e for e in AuditLog(state.engine).for_draft(draft.id) if e.action == "approve"]
    assert [(e.actor, e.via) for e in approvals] == [(f"cli:{os.getuid()} ({login}) as alice", "cli")]


def test_tapewatch_web_serves_until_sigterm(tmp_path: Path, state: StateDB) -> None:
    port = free_port()
    env = {**os.environ, "TAPEWATCH_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "tapewatch", "web", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("tapewatch web did not answer")
        assert page.status_code == 200 and "Latest briefs" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/desk", timeout=5).status_code == 303
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out  # a graceful stop
    assert "create the first admin" in out and f"Serving on http://127.0.0.1:{port}/" in out


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _workers(pid: int) -> set[int]:
    """The parent's worker processes (spawn also starts a resource tracker, which serves no pages)."""
    return {c for c in _children(pid) if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes().decode()}


def _until(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail("timed out")


def test_tapewatch_web_workers_share_the_port_survive_a_kill_and_stop_together(tmp_path: Path,
                                                                              state: StateDB) -> None:
    port = free_port()
    env = {**os.environ, "TAPEWATCH_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "tapewatch", "web", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _until(lambda: answers() and len(_workers(proc.pid)) == 2)
        first = _workers(proc.pid)
        # Each request on a new connection: the kernel hands connections to whichever worker accepts.
        assert all(httpx.get(f"{base}/", timeout=5).status_code == 200 for _ in range(10))
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _until(lambda: len(_workers(proc.pid)) == 2 and victim not in _workers(proc.pid))
        _until(answers)
        assert all(httpx.get(f"{base}/", timeout=5).status_code == 200 for _ in range(10))
        # A second server on the same port is refused in one line.
        taken = subprocess.run([sys.executable, "-m", "tapewatch", "web", "--port", str(port), "--workers", "2"],
                               env=env, capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in taken.stdout + taken.stderr
        assert "Traceback" not in taken.stdout + taken.stderr
        workers = _workers(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "with 2 worker processes" in out and "Stopped." in out and "exited with -9" in out
    assert not any(Path(f"/proc/{w}").exists() and "zombie" not in Path(f"/proc/{w}/status").read_text()
                   for w in workers)
