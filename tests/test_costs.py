"""The cost ledger, budgets and `tapewatch costs`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crew.costs import AgentUsage, Budget, BudgetExceeded, Price, check_budget, day_start, month_start
from memory.costs import CostEntry, CostLedger
from memory.migrations import current_version
from memory.state import StateDB
from tapewatch.cli import app
from tapewatch.settings import load_settings

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def entry(at: datetime, cost: float, *, run: str = "r1", agent: str = "writer", model: str = "openai/gpt-4o-mini",
          calls: int = 1) -> CostEntry:
    return CostEntry(at=at, run_id=run, agent=agent, model=model, calls=calls, prompt_tokens=1000 * calls,
                     completion_tokens=100 * calls, cost_usd=cost)


@pytest.fixture
def ledger(state_url: str) -> CostLedger:
    return CostLedger(StateDB(state_url))


def test_usage_costs_money_by_the_price_table() -> None:
    usage = AgentUsage("writer", "openai/gpt-4o-mini", calls=2, prompt_tokens=12_000, completion_tokens=3_000)
    assert usage.cost(Price(0.15, 0.60)) == pytest.approx(0.0036)
    llm = load_settings(None).llm
    assert llm.price_of("ollama/llama3.1").prompt == 0.0  # local servers are free unless listed
    assert llm.price_of("openai/unlisted") == llm.default_price


def test_the_ledger_adds_up_by_window_day_and_model(ledger: CostLedger) -> None:
    ledger.record([entry(NOW - timedelta(hours=1), 0.10), entry(NOW - timedelta(hours=1), 0.05, agent="researcher",
                                                                model="ollama/llama3.1")])
    ledger.record([entry(NOW - timedelta(days=1), 0.20, run="r2", calls=3)])
    ledger.record([entry(NOW - timedelta(days=40), 9.0, run="r3")])
    assert ledger.spent(day_start(NOW)) == pytest.approx(0.15)
    assert ledger.spent(month_start(NOW)) == pytest.approx(0.35)
    assert ledger.spent(NOW - timedelta(days=2), NOW - timedelta(hours=2)) == pytest.approx(0.20)
    rows = ledger.by_day_and_model(NOW - timedelta(days=7))
    assert [(r.day.isoformat(), r.model, r.runs, r.calls, r.cost_usd) for r in rows] == [
        ("2026-11-26", "ollama/llama3.1", 1, 1, pytest.approx(0.05)),
        ("2026-11-26", "openai/gpt-4o-mini", 1, 1, pytest.approx(0.10)),
        ("2026-11-25", "openai/gpt-4o-mini", 1, 3, pytest.approx(0.20)),
    ]
    ledger.attach("r1", "d" * 32)
    ledger.record([])


def test_budgets_are_checked_before_a_run_by_utc_day_and_month(ledger: CostLedger) -> None:
    ledger.record([entry(NOW - timedelta(hours=2), 0.60), entry(datetime(2026, 11, 2, tzinfo=UTC), 19.50, run="r0")])
    check_budget(Budget(daily_usd=1.0, monthly_usd=None), ledger.spent, NOW)
    check_budget(Budget(daily_usd=None, monthly_usd=None), ledger.spent, NOW)
    with pytest.raises(BudgetExceeded, match=r"\$0.6000 spent today of \$0.50.*resume at 2026-11-27 00:00 UTC"):
        check_budget(Budget(daily_usd=0.50, monthly_usd=100.0), ledger.spent, NOW)
    with pytest.raises(BudgetExceeded, match=r"monthly LLM budget is used up: \$20.1000 spent this month of \$20.00"):
        check_budget(Budget(daily_usd=5.0, monthly_usd=20.0), ledger.spent, NOW)
    # A new UTC day starts a new daily budget; a new month a new monthly one.
    check_budget(Budget(daily_usd=0.50, monthly_usd=None), ledger.spent, NOW + timedelta(hours=9))
    check_budget(Budget(daily_usd=None, monthly_usd=20.0), ledger.spent, datetime(2026, 12, 1, 0, 5, tzinfo=UTC))


def test_migration_6_adds_the_ledger_to_an_existing_database(state_url: str) -> None:
    from memory.migrations import MIGRATIONS, migrate
    from memory.state import make_engine

    engine = make_engine(state_url)
    assert migrate(engine, tuple(m for m in MIGRATIONS if m.version <= 4)) == [1, 2, 3, 4]
    assert 6 in migrate(engine) and current_version(engine) == MIGRATIONS[-1].version
    CostLedger(StateDB(state_url)).record([entry(NOW, 0.01)])


def test_costs_command_shows_spend_and_budgets(monkeypatch: pytest.MonkeyPatch, ledger: CostLedger,
                                               tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["costs"])
    assert empty.exit_code == 0 and "No LLM or X spend in the last 30 days" in empty.output
    assert "of $1.00 (llm.daily_budget_usd)" in empty.output
    now = datetime.now(UTC)
    ledger.record([entry(now, 0.0123, model="openai/gpt-4o-mini", calls=4)])
    monkeypatch.setattr("tapewatch.clients.open_state", lambda _settings: ledger.state)
    monkeypatch.setenv("TAPEWATCH_LLM__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("TAPEWATCH_LLM__MONTHLY_BUDGET_USD", "5")
    result = runner.invoke(app, ["costs", "--days", "7"])
    assert result.exit_code == 0, result.output
    assert "openai/gpt-4o-mini" in result.output and "0.0123" in result.output and "4,000" in result.output
    assert "Today $0.0123 of $1.00" in result.output and "of $5.00 (llm.monthly_budget_usd)" in result.output
    assert "llm.default_price" in result.output  # no price table entry: say how it was charged
    assert runner.invoke(app, ["costs", "--days", "0"]).exit_code == 2


def test_failed_runs_count_against_the_budget(ledger: CostLedger) -> None:
    failed: Any = CostEntry(at=NOW, run_id="rf", agent="researcher", model="m", calls=2, prompt_tokens=5000,
                            completion_tokens=100, cost_usd=0.7, status="failed")
    ledger.record([failed])
    with pytest.raises(BudgetExceeded):
        check_budget(Budget(daily_usd=0.7, monthly_usd=None), ledger.spent, NOW)
