"""Durations as readers see them: the CLI, the bot and publishing never print Python's '1 day, 0:00:00'."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from tapewatch.cli import app
from tapewatch.settings import format_duration, parse_duration

RAW_TIMEDELTA = re.compile(r"\d+ days?, \d+:\d\d:\d\d|\b\d+:\d\d:\d\d\b")


@pytest.mark.parametrize(("seconds", "shown"), [
    (0.2, "0.2s"), (5, "5s"), (60, "1m"), (90, "1m 30s"), (3540, "59m"), (3600, "1h"), (86400, "24h"),
    (129600, "36h"), (7 * 86400, "7d"), (90061, "1d 1h"), (10 * 86400 + 3600, "10d 1h"), (-300, "-5m"),
])
def test_format_duration_reads_like_what_people_type(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown
    assert format_duration(timedelta(seconds=seconds)) == shown
    if " " not in shown and not shown.startswith("-"):
        assert parse_duration(shown) == timedelta(seconds=seconds)  # whole units read back


def test_cli_messages_humanise_windows_and_ages() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["brief", "--window", "1d"])
    assert result.exit_code == 0 and "from the last 24h" in result.output, result.output
    for args in (["brief", "--window", "7d"], ["prune", "--older-than", "30d"], ["signals", "--window", "2d"]):
        out = runner.invoke(app, args).output
        assert not RAW_TIMEDELTA.search(out), (args, out)
    assert "more than 30d ago" in runner.invoke(app, ["prune", "--older-than", "30d"]).output


def test_drafts_show_prints_the_windows_real_start_and_end() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--samples", "always"]).exit_code == 0
    made = runner.invoke(app, ["brief", "--window", "7d", "--shape", "thread", "--format", "x"])
    assert made.exit_code == 0, made.output
    draft_id = re.search(r"Saved as draft (\w+)", made.output).group(1)  # type: ignore[union-attr]
    shown = " ".join(runner.invoke(app, ["drafts", "show", draft_id, "--format", "none"]).output.split())
    match = re.search(r"window (\d{4}-\d\d-\d\d \d\d:\d\d) to (\d{4}-\d\d-\d\d \d\d:\d\d) UTC \(7d\)", shown)
    assert match, shown
    assert match.group(1)[:10] != match.group(2)[:10]  # a week apart: both dates, not just a time
    assert re.search(r"X: thread of \d post\(s\)", shown), shown
    assert "--shape" in runner.invoke(app, ["brief", "--help"]).output
    assert runner.invoke(app, ["brief", "--shape", "megathread"]).exit_code == 2
