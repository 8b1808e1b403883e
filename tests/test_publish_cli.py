"""The review and publish CLI, in process and (for the crash test) in subprocesses killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from memory.state import StateDB
from publish.outbox import Outbox
from publish.review import ReviewQueue
from tapewatch.cli import main
from tests.backends import database_toml
from tests.fakes.publishing import add_draft
from tests.fakes.telegram_api import CHANNEL, TOKEN, FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import ME_ID, FakeXAPI, serving_x

SECRETS = {"TAPEWATCH_X_CONSUMER_KEY": "ck", "TAPEWATCH_X_CONSUMER_SECRET": "cs",
           "TAPEWATCH_X_ACCESS_TOKEN": "at", "TAPEWATCH_X_ACCESS_TOKEN_SECRET": "ats",
           "TAPEWATCH_TELEGRAM_BOT_TOKEN": TOKEN}


def write_config(path: Path, data: Path, x: FakeXAPI, tg: FakeTelegramAPI, *, timeout: str = "2s",
                 channels: str = '["x", "telegram"]', reviewers: str = '["alice", "bob"]',
                 state_url: str = "sqlite") -> Path:
    path.write_text(
        f'data_dir = "{data}"\n{database_toml(state_url)}[review]\nreviewers = {reviewers}\n'
        f'[publish]\nchannels = {channels}\ntelegram_chat_id = "{CHANNEL}"\ntimeout = "{timeout}"\n'
        f'reconcile_settle = "0s"\nx_base_url = "{x.base_url}"\ntelegram_base_url = "{tg.base_url}"\n'
    )
    return path


@pytest.fixture
def servers() -> Iterator[tuple[FakeXAPI, FakeTelegramAPI]]:
    with serving_x() as x, serving_telegram() as tg:
        yield x, tg


def cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["tapewatch", *args])
    monkeypatch.setenv("COLUMNS", "250")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: tuple[FakeXAPI, FakeTelegramAPI],
        state_url: str) -> StateDB:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    write_config(tmp_path / "tapewatch.toml", tmp_path / "data", *servers)
    state = StateDB(state_url)
    yield state
    state.close()


def test_review_commands(env: StateDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    draft = add_draft(env, "a")
    code, output = cli(["drafts", "approve", draft.id[:10]], monkeypatch, capsys)
    assert code == 2 and "who is reviewing? pass --as NAME" in output and "Traceback" not in output
    code, output = cli(["drafts", "approve", draft.id[:10], "--as", "mallory"], monkeypatch, capsys)
    assert code == 2 and "'mallory' is not a reviewer" in output
    monkeypatch.setenv("TAPEWATCH_REVIEW__REVIEWER", "bob")
    text = "1/2 first\n---\n2/2 second. Not financial advice."
    code, output = cli(["drafts", "edit", draft.id[:10], "--text", text], monkeypatch, capsys)
    assert code == 0 and "Saved version 2" in output, output
    new_id = output.split("draft ", 1)[1].split()[0]
    code, output = cli(["drafts", "show", new_id, "--format", "x"], monkeypatch, capsys)
    assert code == 0 and f"edited from {draft.id}" in output and "grounding: ok" in output
    assert "1/2 first" in output and "created" in output and "bob" in output  # the audit trail
    # $EDITOR: a script that edits the file in place.
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/second/SECOND/' \"$1\"\n")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    code, output = cli(["drafts", "edit", new_id], monkeypatch, capsys)
    assert code == 0 and "Saved version 3" in output, output
    third = output.split("draft ", 1)[1].split()[0]
    assert ReviewQueue(env).drafts.get(third).x_thread == ("1/2 first", "2/2 SECOND. Not financial advice.")
    code, output = cli(["drafts", "approve", third], monkeypatch, capsys)
    assert code == 0 and "Approved draft" in output
    code, output = cli(["drafts", "approve", third, "--as", "alice"], monkeypatch, capsys)
    assert code == 0 and "already approved" in output
    other = add_draft(env, "b")
    code, output = cli(["drafts", "schedule", other.id, "--in", "2h"], monkeypatch, capsys)
    assert code == 0 and "scheduled for" in output
    code, output = cli(["drafts", "reject", other.id, "--reason", "off topic"], monkeypatch, capsys)
    assert code == 0 and "Rejected" in output
    code, output = cli(["drafts", "list"], monkeypatch, capsys)
    assert code == 0 and output.count("superseded") == 2 and "approved" in output and "rejected" in output
    code, output = cli(["drafts", "schedule", other.id, "--at", "tomorrow"], monkeypatch, capsys)
    assert code == 2 and "not a date and time" in output


def test_publish_dry_run_then_live_and_show_links(env: StateDB, servers: tuple[FakeXAPI, FakeTelegramAPI],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    x, tg = servers
    draft = add_draft(env, "a", posts=2)
    ReviewQueue(env, reviewers=["alice"]).approve(draft.id, "alice")
    code, output = cli(["publish", "--dry-run"], monkeypatch, capsys)
    assert code == 0 and "Dry run: nothing was posted" in output and draft.x_thread[1] in output
    assert x.requests == [] and tg.requests == []
    code, output = cli(["publish"], monkeypatch, capsys)
    assert code == 0 and "1 published, 0 failed" in output and "3 part(s) sent" in output, output
    code, output = cli(["drafts", "show", draft.id, "--format", "none"], monkeypatch, capsys)
    posts = x.posts_by(ME_ID)
    assert "published" in output and f"https://x.com/tapewatch_bot/status/{posts[1].id}" in output
    assert f"https://t.me/tapewatch_test/{tg.messages[0].message_id}" in output and "dry_run" in output


def test_telegram_needs_check_is_resolved_by_a_person(env: StateDB, servers: tuple[FakeXAPI, FakeTelegramAPI],
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    x, tg = servers
    write_config(tmp_path / "tapewatch.toml", tmp_path / "data", x, tg, timeout="0.5s", channels='["telegram"]')
    draft = add_draft(env, "a")
    ReviewQueue(env, reviewers=["alice"]).approve(draft.id, "alice")
    tg.fail_next("sendMessage", 504, after_effect=True, delay_s=1.2)
    code, output = cli(["publish"], monkeypatch, capsys)
    assert code == 0 and "1 need a person to check" in output and "publish resolve" in output, output
    code, output = cli(["publish", "outbox"], monkeypatch, capsys)
    [pending] = Outbox(env.engine).in_states("needs_check")
    row = str(pending.id)
    assert "needs_check" in output and draft.id[:12] in output
    code, output = cli(["publish", "resolve", row, "--sent", str(tg.messages[0].message_id)], monkeypatch, capsys)
    assert code == 2 and "who is reviewing" in output
    code, output = cli(["publish", "resolve", row, "--sent", str(tg.messages[0].message_id), "--as", "alice"],
                       monkeypatch, capsys)
    assert code == 0 and "recorded as sent" in output, output
    code, output = cli(["publish"], monkeypatch, capsys)
    assert "1 published" in output and len(tg.messages) == 1 and len(tg.calls("sendMessage")) == 1
    code, output = cli(["drafts", "show", draft.id, "--format", "none"], monkeypatch, capsys)
    assert "resolved" in output and "alice" in output


def test_publish_without_credentials_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, output = cli(["publish"], monkeypatch, capsys)
    assert code == 2 and "TAPEWATCH_X_CONSUMER_KEY" in output and "Traceback" not in output


# -- kill -9 in the middle of a thread ----------------------------------------------------------------------

def _posts_requested(x: FakeXAPI) -> int:
    return len(x.calls("/2/tweets", "POST"))


def _states(url: str) -> list[str]:
    state = StateDB(url)
    try:
        with state.engine.connect() as conn:
            return list(conn.execute(text("SELECT state FROM outbox WHERE channel = 'x' ORDER BY part")).scalars())
    finally:
        state.close()


@pytest.mark.slow
@pytest.mark.parametrize("created_before_kill", [False, True])
def test_sigkill_after_part_two_of_four_then_restart(tmp_path: Path, created_before_kill: bool, state_url: str) -> None:
    with serving_x() as x, serving_telegram() as tg:
        data = tmp_path / "data"
        config = write_config(tmp_path / "t.toml", data, x, tg, timeout="30s", channels='["x"]', state_url=state_url)
        state = StateDB(state_url)
        draft = add_draft(state, "a", posts=4)
        ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
        state.close()
        # Part 3 hangs (created first, or not at all) until long after the process is dead.
        x.fail_next("/2/tweets", 503, method="POST", skip=2, delay_s=8, after_effect=created_before_kill)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | SECRETS | {"COLUMNS": "200"}
        command = [sys.executable, "-m", "tapewatch", "--config", str(config), "publish"]
        victim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while _posts_requested(x) < 3 and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert victim.poll() is None, victim.communicate()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert _states(state_url) == ["sent", "sent", "intent", "queued"]
        assert len(x.posts_by(ME_ID)) == (3 if created_before_kill else 2)

        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 published" in done.stdout
        expected = "1 reconciled" if created_before_kill else "0 reconciled"
        assert expected in done.stdout, done.stdout
        posts = x.posts_by(ME_ID)
        assert [p.text for p in posts] == list(draft.x_thread)  # 1-2 not reposted, 3-4 once each
        assert all(posts[i].in_reply_to == posts[i - 1].id for i in range(1, 4))
        assert _states(state_url) == ["sent"] * 4
