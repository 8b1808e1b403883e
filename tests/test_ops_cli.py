"""Operations from the CLI: pause/resume the posting schedule, and the status screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory.costs import CostEntry, CostLedger
from memory.state import FetchRecord, StateDB
from memory.switches import POSTING_PAUSED, Switches
from publish.outbox import Outbox
from publish.review import ReviewQueue
from tests.fakes.publishing import add_draft
from tests.test_publish_cli import cli


@pytest.fixture
def state(state_url: str) -> StateDB:
    return StateDB(state_url)


def test_pause_and_resume_flip_the_switch_the_daemon_reads(state: StateDB, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["pause", "--as", "carol"], monkeypatch, capsys) == (0, "Scheduled posting is paused.\n")
    assert cli(["pause"], monkeypatch, capsys)[1] == "Scheduled posting was already paused.\n"
    switch = Switches(state).get(POSTING_PAUSED)
    assert switch.on and switch.changed_by.startswith("cli:") and switch.changed_by.endswith(" as carol")
    code, output = cli(["status"], monkeypatch, capsys)
    assert code == 0 and f"Scheduled posting: paused (by {switch.changed_by}" in output
    assert cli(["resume", "--as", "carol"], monkeypatch, capsys)[1] == "Scheduled posting is running.\n"
    assert not Switches(state).get(POSTING_PAUSED).on


def test_status_shows_drafts_queue_spend_budget_and_errors(state: StateDB, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    add_draft(state, "a")
    approved = add_draft(state, "b")
    ReviewQueue(state, reviewers=["alice"]).approve(approved.id, "alice")
    add_draft(state, "c", status="flagged")
    Outbox(state.engine).plan(approved.id, "x", ["1/2 one", "2/2 two"])
    CostLedger(state).record([CostEntry(at=now, run_id="r1", agent="writer", model="openai/gpt-4o-mini", calls=1,
                                        prompt_tokens=1000, completion_tokens=200, cost_usd=0.25)])
    state.record_fetch(FetchRecord(source="theblock", kind="news", url="https://theblock.example/rss",
                                   started_at=now - timedelta(minutes=1), finished_at=now, status="error",
                                   http_status=503, error="HTTP 503"))
    code, output = cli(["status"], monkeypatch, capsys)
    assert code == 0, output
    assert "Scheduled posting: running" in output
    assert "No jobs stored yet: start the daemon with `tapewatch run`." in output
    assert "Drafts: approved 1, flagged 1, pending 1" in output
    assert "Outbox queue: queued 2" in output
    assert "LLM spend: today $0.2500 of $1.00, this month $0.2500 of $20.00" in output
    assert "X reads: 0 of 10,000 posts this month" in output
    assert "source theblock: HTTP 503" in output


def test_run_says_what_the_daemon_will_publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tapewatch.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nfeeds = []\n[market]\nenabled = false\n'
                      '[[schedule.briefs]]\nname = "morning"\ncron = "0 8 * * *"\n', encoding="utf-8")
    code, output = cli(["--config", str(config), "run", "--for", "0.5"], monkeypatch, capsys)
    assert code == 0, output
    assert "Publishing: off (publishing to X needs TAPEWATCH_X_CONSUMER_KEY" in output
    assert "brief morning at '0 8 * * *' (UTC)" in output and "Telegram bot" not in output
    monkeypatch.setenv("TAPEWATCH_PUBLISH__DRY_RUN", "true")
    code, output = cli(["--config", str(config), "run", "--for", "0.3"], monkeypatch, capsys)
    assert code == 0 and "Publishing: dry run (records what would be posted)" in output, output
