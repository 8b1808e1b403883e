"""Settings loading and the CLI's configuration and error behaviour (in process, no model loaded)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sources.errors import ConfigError
from tapewatch.cli import app, main
from tapewatch.settings import load_settings, masked_dump, parse_duration

runner = CliRunner()

GOOD = """
data_dir = "{data}"
[watchlist]
BTC = ["bitcoin", "btc"]
pepe = ["pepe"]

[[feeds]]
name = "wire"
url = "https://wire.example/rss"

[[feeds]]
name = "forum"
url = "https://forum.example/.rss"
kind = "forum"
enabled = false

[memory]
near_duplicate_window = "12h"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tapewatch.toml"
    path.write_text(text.replace("{data}", str(tmp_path / "d")), encoding="utf-8")
    return path


def test_toml_then_env_then_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("TAPEWATCH_MEMORY__NEAR_DUPLICATE_THRESHOLD", "0.9")
    monkeypatch.setenv("TAPEWATCH_X_BEARER_TOKEN", "from-env")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "TAPEWATCH_TELEGRAM_BOT_TOKEN").write_text("from-file\n")
    s = load_settings(path, secrets)
    assert s.watchlist == {"BTC": ["bitcoin", "btc"], "PEPE": ["pepe"]}
    assert [f.name for f in s.feeds] == ["wire", "forum"] and not s.feeds[1].enabled
    assert s.memory.near_duplicate_window == timedelta(hours=12)
    assert s.memory.near_duplicate_threshold == 0.9
    assert s.x_bearer_token is not None and s.x_bearer_token.get_secret_value() == "from-env"
    assert s.telegram_bot_token is not None and s.telegram_bot_token.get_secret_value() == "from-file"
    dumped = json.dumps(masked_dump(s))
    assert "from-env" not in dumped and "from-file" not in dumped and "********" in dumped
    assert str(s) .count("from-env") == 0


def test_defaults_work_without_a_file() -> None:
    s = load_settings(None)
    assert "BTC" in s.watchlist and len(s.feeds) >= 6
    assert s.state_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data_dir = [", "not valid TOML"),
        ('x_bearer_token = "abc"', "contains secrets"),
        ('[[feeds]]\nname = "a"\nurl = "ftp://x"', "feeds.0.url"),
        ('[[feeds]]\nname = "a"\nurl = "https://a.example"\n[[feeds]]\nname = "a"\nurl = "https://b.example"',
         "unique"),
        ('unknown_key = 1', "unknown_key"),
        ('[memory]\nnear_duplicate_window = "soon"', "near_duplicate_window"),
        ('[watchlist]\n"$BTC" = ["btc"]', "ticker"),
        ('[x]\naccounts = [{handle = "not a handle!"}]', "x.accounts.0.handle"),
        ('[x]\naccounts = [{handle = "Alice"}, {handle = "@alice"}]', "unique"),
        ('[x]\ninterval = "0s"', "positive duration"),
        ('[market.coins]\nBTC = "Bit Coin"', "CoinGecko id"),
        ('[daemon]\nretention_interval = "soon"', "daemon.retention_interval"),
        ('x_access_token_secret = "abc"', "contains secrets"),
        ('[publish]\nquiet_hours = "late"', "quiet_hours must look like 23:00-07:00"),
        ('[publish]\ntimezone = "Mars/Olympus"', "unknown time zone"),
        ('[publish]\nchannels = ["mastodon"]', "publish.channels"),
        ('[review]\nreviewers = ["bad name"]', "reviewer name"),
        ('[[bot.reviewers]]\ntelegram_id = 1\nname = "eve"', "eve are not in review.reviewers"),
        ('[[schedule.briefs]]\nname = "m"\ncron = "at eight"', "not a 5-field crontab"),
        ('[[schedule.briefs]]\nname = "m"\ncron = "0 8 * * *"\n[[schedule.briefs]]\nname = "m"\ncron = "0 9 * * *"',
         "names must be unique"),
        ('[schedule]\npublish_every = "0s"', "positive duration"),
        ('[bot]\nwebhook_url = "http://bot.example.org/hook"', "public https:// address"),
    ],
)
def test_invalid_files_give_readable_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("$", r"\$")):
        load_settings(write(tmp_path, text))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_parse_duration() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration(60) == timedelta(minutes=1)
    with pytest.raises(ValueError):
        parse_duration("yesterday")


def test_config_check_prints_effective_settings_with_secrets_masked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("TAPEWATCH_LLM_API_KEY", "sk-very-secret")
    result = runner.invoke(app, ["--config", str(path), "config", "check", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["llm_api_key"] == "********"
    assert data["x_bearer_token"] is None
    assert data["memory"]["near_duplicate_window"]  # durations serialise
    assert "sk-very-secret" not in result.output
    table = runner.invoke(app, ["--config", str(path), "config", "check"])
    assert table.exit_code == 0 and "wire" in table.output and "sk-very-secret" not in table.output


def _run_main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["tapewatch", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out + captured.err


def test_invalid_config_exits_nonzero_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "data_dir = [")
    code, output = _run_main(["--config", str(path), "config", "check"], monkeypatch, capsys)
    assert code == 2
    assert "error:" in output and "not valid TOML" in output and "Traceback" not in output


def test_unknown_feed_name_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    code, output = _run_main(["--config", str(path), "ingest", "--source", "nope"], monkeypatch, capsys)
    assert code == 2 and "no feed named nope" in output and "Traceback" not in output


def test_bad_option_values_are_rejected(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "btc", "--since", "soon"])
    assert result.exit_code == 2 and "duration" in result.output
    result = runner.invoke(app, ["search", "btc", "--kind", "blog"])
    assert result.exit_code == 2


def test_sources_and_memory_on_an_empty_install() -> None:
    result = runner.invoke(app, ["sources"])
    assert result.exit_code == 0 and "coindesk" in result.output and "never" in result.output
    result = runner.invoke(app, ["memory"])
    assert result.exit_code == 0 and "Memory is empty" in result.output


def test_help_is_fast_and_imports_no_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['tapewatch', '--help']\n"
        "from tapewatch.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('crewai', 'torch', 'chromadb', 'sentence_transformers', 'transformers', 'tweepy', "
        "'telegram') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "ingest" in result.stdout
    assert "HEAVY []" in result.stdout


def test_example_config_is_valid_and_matches_the_defaults() -> None:
    example = Path(__file__).parents[1] / "tapewatch.example.toml"
    from_file = load_settings(example)
    defaults = load_settings(None)
    assert from_file.watchlist == defaults.watchlist
    assert [(f.name, f.url, f.kind) for f in from_file.feeds] == [(f.name, f.url, f.kind) for f in defaults.feeds]
    assert from_file.memory == defaults.memory and from_file.fetch == defaults.fetch
    assert from_file.x == defaults.x and from_file.market == defaults.market and from_file.daemon == defaults.daemon
    assert from_file.review == defaults.review and from_file.publish == defaults.publish
    assert from_file.bot == defaults.bot and from_file.schedule == defaults.schedule
    # And as a whole (secrets and data_dir come from the environment, not the file):
    assert from_file.model_dump(exclude={"data_dir"}) == defaults.model_dump(exclude={"data_dir"})
