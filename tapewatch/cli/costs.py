"""CLI: ``tapewatch costs``, what the analyst crew (LLM) and X (posts, reads) cost, by day, against the budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from tapewatch.cli.root import app, out, settings


@app.command()
def costs(days: Annotated[int, typer.Option("--days", "-d", min=1, max=366, help="How many days back.")] = 30) -> None:
    """Spend by day: the analyst crew's LLM calls by model, and X's posts and reads, against the budgets."""
    from crew.costs import day_start, month_start
    from memory.costs import CostLedger
    from tapewatch.clients import open_state

    s = settings()
    ledger = CostLedger(open_state(s))
    now = datetime.now(UTC)
    rows = ledger.by_day_and_model(day_start(now) - timedelta(days=days - 1))
    today, month = ledger.spent(day_start(now)), ledger.spent(month_start(now))
    if rows:
        table = Table(title=f"LLM and X spend, last {days} days (UTC)", header_style="bold")
        for col in ("day", "model / X", "runs", "calls / posts", "prompt tokens", "completion tokens", "USD"):
            table.add_column(col, justify="left" if col in ("day", "model / X") else "right")
        for r in rows:
            # A model on your own server costs nothing unless llm.prices names it: say so, not "0.0000".
            usd = "local" if r.cost_usd == 0 and _local(s.llm, r.model) else f"{r.cost_usd:.4f}"
            table.add_row(f"{r.day:%Y-%m-%d}", r.model, str(r.runs), str(r.calls), f"{r.prompt_tokens:,}",
                          f"{r.completion_tokens:,}", usd)
        table.add_row("total", "", "", str(sum(r.calls for r in rows)), f"{sum(r.prompt_tokens for r in rows):,}",
                      f"{sum(r.completion_tokens for r in rows):,}", f"{sum(r.cost_usd for r in rows):.4f}",
                      style="bold")
        out.print(table)
    else:
        out.print(f"No LLM or X spend in the last {days} days.")
    llm, pub = s.llm, s.publish
    out.print(f"Today ${today:.4f} of {_limit(llm.daily_budget_usd)} (llm.daily_budget_usd); "
              f"this month ${month:.4f} of {_limit(llm.monthly_budget_usd)} (llm.monthly_budget_usd).",
              highlight=False)
    x_today, x_month = ledger.spent(day_start(now), service="x"), ledger.spent(month_start(now), service="x")
    out.print(f"X: today ${x_today:.3f} of {_limit(pub.x_daily_budget_usd)} (publish.x_daily_budget_usd); "
              f"this month ${x_month:.3f} of {_limit(pub.x_monthly_budget_usd)} (publish.x_monthly_budget_usd). "
              f"Prices: ${pub.x_price_post_usd:g} a post, ${pub.x_price_post_url_usd:g} with a link, "
              f"${pub.x_price_read_usd:g} a post read (publish.x_price_*).", highlight=False)
    if llm.model and _local(llm, llm.model):
        out.print(f"[dim]{llm.model} runs on a local server ({llm.base_url or 'its default address'}): it costs "
                  "nothing unless llm.prices names it.[/dim]")
    elif not llm.prices and llm.model:
        out.print(f"[dim]No llm.prices entry: unlisted models are charged at ${llm.default_price.prompt:g} / "
                  f"${llm.default_price.completion:g} per million prompt / completion tokens "
                  "(llm.default_price).[/dim]")


def _local(llm: Any, model: str) -> bool:
    # Only the configured LLM models: X's rows in the same table are never "local".
    configured = {llm.model_for(agent) for agent in ("researcher", "analyst", "writer")}
    return model in configured and model not in llm.prices and bool(llm.is_local(model))


def _limit(value: float | None) -> str:
    return "no limit" if value is None else f"${value:.2f}"
