"""CLI refusals are audited with a stable identity; pause/resume say who; the data dir and state DB are private."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from memory.state import StateDB
from memory.switches import POSTING_PAUSED, Switches
from publish.audit import AuditLog
from tapewatch.clients import open_state
from tapewatch.settings import Settings
from tests.fakes.publishing import add_draft
from tests.test_publish_cli import cli, env, servers  # noqa: F401  (fixtures)

ME = f"cli:{os.getuid()} ({pwd.getpwuid(os.getuid()).pw_name})"


def test_cli_refusals_are_audited_with_the_os_account_and_the_claimed_name(
        env: StateDB, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    draft = add_draft(env, "a")
    assert cli(["drafts", "approve", draft.id[:10], "--as", "mallory"], monkeypatch, capsys)[0] == 2
    assert cli(["drafts", "reject", draft.id[:10], "--as", "mallory", "-r", "spam"], monkeypatch, capsys)[0] == 2
    assert cli(["drafts", "edit", draft.id[:10], "--as", "eve", "--text", "x"], monkeypatch, capsys)[0] == 2
    assert cli(["drafts", "schedule", draft.id[:10], "--in", "1h", "--as", "alice"], monkeypatch, capsys)[0] == 0
    assert cli(["drafts", "schedule", draft.id[:10], "--in", "1h", "--as", "trudy"], monkeypatch, capsys)[0] == 2
    refused = [(e.draft_id, e.actor, e.via, (e.reason or "").split(":")[0]) for e in AuditLog(env.engine).all()
               if e.action == "refused"]
    assert refused == [(draft.id, f"{ME} as mallory", "cli", "approve"),
                       (draft.id, f"{ME} as mallory", "cli", "reject"),
                       (draft.id, f"{ME} as eve", "cli", "edit"), (draft.id, f"{ME} as trudy", "cli", "schedule")]
    assert "'mallory' is not a reviewer" in next(e.reason or "" for e in AuditLog(env.engine).all())


def test_pause_and_resume_are_in_the_audit_log_with_who(
        env: StateDB, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert cli(["pause", "--as", "carol"], monkeypatch, capsys)[0] == 0
    assert cli(["pause"], monkeypatch, capsys)[0] == 0
    assert cli(["resume", "--as", "carol"], monkeypatch, capsys)[0] == 0
    entries = [(e.action, e.actor, e.via, e.reason) for e in AuditLog(env.engine).all()]
    assert entries == [("pause", f"{ME} as carol", "cli", None), ("pause", ME, "cli", "it already was"),
                       ("resume", f"{ME} as carol", "cli", None)]
    assert Switches(env).get(POSTING_PAUSED).changed_by == f"{ME} as carol"


def test_the_data_dir_and_the_state_db_are_created_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: without care the directory is 0755 and the database 0644
    try:
        state = open_state(Settings(data_dir=tmp_path / "new" / "data", feeds=[]))
        Switches(state).set(POSTING_PAUSED, True, "cli:test")  # a write: SQLite makes its -wal and -shm files
        mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "new" / "data").iterdir()}
        assert stat.S_IMODE((tmp_path / "new" / "data").stat().st_mode) == 0o700
        assert mode["state.db"] == 0o600
        assert all(m == 0o600 for name, m in mode.items() if name.startswith("state.db")), mode
        state.close()
    finally:
        os.umask(old)
