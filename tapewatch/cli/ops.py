"""Operations: ``tapewatch status`` (one screen for the operator), ``tapewatch pause`` and ``resume``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table
from sqlalchemy import func, select

from tapewatch.cli.root import _ago, app, cli_actor, out, settings

if TYPE_CHECKING:
    from memory.state import SourceHealth

UNSETTLED = ("queued", "intent", "unknown", "needs_check")


def _who(name: str | None) -> str:
    return cli_actor(name)


@app.command()
def pause(as_: Annotated[Optional[str], typer.Option("--as", help="Who pauses (for the record).")] = None,  # noqa: UP045
          ) -> None:
    """Pause scheduled briefs and publishing in the daemon (on-demand /brief keeps working)."""
    from memory.switches import POSTING_PAUSED, Switches
    from tapewatch.clients import open_state

    changed = Switches(open_state(settings())).set(POSTING_PAUSED, True, _who(as_))
    out.print("Scheduled posting is paused." if changed else "Scheduled posting was already paused.")


@app.command()
def resume(as_: Annotated[Optional[str], typer.Option("--as", help="Who resumes (for the record).")] = None,  # noqa: UP045
           ) -> None:
    """Resume scheduled briefs and publishing."""
    from memory.switches import POSTING_PAUSED, Switches
    from tapewatch.clients import open_state

    changed = Switches(open_state(settings())).set(POSTING_PAUSED, False, _who(as_))
    out.print("Scheduled posting is running." if changed else "Scheduled posting was already running.")


@app.command()
def status() -> None:
    """Jobs and next runs, drafts by status, outbox queue, spend, X budget, pause switch and recent errors."""
    from memory import schema
    from memory.costs import CostLedger
    from memory.quotas import Quotas, month_of
    from memory.switches import POSTING_PAUSED, Switches
    from tapewatch.clients import open_state
    from tapewatch.daemon import next_runs

    s = settings()
    state = open_state(s)
    now = datetime.now(UTC)
    switch = Switches(state).get(POSTING_PAUSED)
    out.print(f"Scheduled posting: [bold]{'paused' if switch.on else 'running'}[/bold]"
              + (f" (by {switch.changed_by}, {_ago(switch.changed_at)})" if switch.changed_at else ""))

    jobs = Table(title="jobs (tapewatch run)", header_style="bold")
    jobs.add_column("job")
    jobs.add_column("next run")
    for job_id, when in sorted(next_runs(state.engine).items()):
        if when is None:
            label = "paused"
        elif when < now - timedelta(minutes=1):
            label = f"overdue since {_ago(when)} (is the daemon running?)"
        else:
            label = f"{when:%Y-%m-%d %H:%M:%S} UTC"
        jobs.add_row(job_id, label)
    out.print(jobs if jobs.row_count else "No jobs stored yet: start the daemon with `tapewatch run`.")

    d, o = schema.drafts, schema.outbox
    with state.engine.connect() as conn:
        by_status = {str(r[0]): int(r[1]) for r in
                     conn.execute(select(d.c.status, func.count()).group_by(d.c.status))}
        queue = {str(r[0]): int(r[1]) for r in
                 conn.execute(select(o.c.state, func.count()).where(o.c.state.in_(UNSETTLED), o.c.dry_run == 0)
                              .group_by(o.c.state))}
        failed_parts = conn.execute(select(o.c.draft_id, o.c.channel, o.c.error).where(o.c.state == "failed")
                                    .order_by(o.c.updated_at.desc()).limit(3)).all()
    out.print("Drafts: " + (", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none"))
    out.print("Outbox queue: " + (", ".join(f"{k} {v}" for k, v in sorted(queue.items())) or "empty")
              + ("  [yellow](needs_check: `tapewatch publish outbox`)[/yellow]" if queue.get("needs_check") else ""))

    ledger = CostLedger(state)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    daily, monthly = s.llm.daily_budget_usd, s.llm.monthly_budget_usd
    today, month = ledger.spent(day), ledger.spent(day.replace(day=1))
    out.print(f"LLM spend: today ${today:.4f}" + (f" of ${daily:.2f}" if daily is not None else "")
              + f", this month ${month:.4f}" + (f" of ${monthly:.2f}" if monthly is not None else ""),
              highlight=False)
    x_daily, x_monthly = s.publish.x_daily_budget_usd, s.publish.x_monthly_budget_usd
    x_today, x_month = ledger.spent(day, service="x"), ledger.spent(day.replace(day=1), service="x")
    out.print(f"X spend: today ${x_today:.3f}" + (f" of ${x_daily:.2f}" if x_daily is not None else "")
              + f", this month ${x_month:.3f}" + (f" of ${x_monthly:.2f}" if x_monthly is not None else ""),
              highlight=False)
    usage = Quotas(state).usage(month_of(now))
    out.print(f"X reads: {usage.posts:,} of {s.x.monthly_read_budget:,} posts this month", highlight=False)

    health = state.source_health()
    if health:
        counts: dict[str, int] = {}
        for h in health:
            counts[h.status or "never"] = counts.get(h.status or "never", 0) + 1
        out.print("Sources: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), highlight=False)
    errors = [f"source {h.name}: {h.last_error}" for h in health if h.consecutive_errors]
    errors += [f"draft {r.draft_id[:12]} on {r.channel}: {r.error}" for r in failed_parts]
    if errors:
        out.print("[bold]Recent errors[/bold]")
        for line in errors[:8]:
            out.print(f"  {line}", markup=False, highlight=False)
    problems = [problem for h in health if (problem := _source_problem(h))]
    if problems:
        out.print("[bold]Degraded sources[/bold]")
        for line in problems[:8]:
            out.print(f"  {line}", markup=False, highlight=False)


def _source_problem(h: SourceHealth) -> str | None:
    """One line for a source whose items are in doubt or that skipped entries; None when it has neither."""
    parts = [f"degraded: {h.degraded}"] if h.status == "degraded" else []
    if h.skipped:
        parts.append(f"{h.skipped} entry(ies) or post(s) skipped so far")
    return f"source {h.name}: " + "; ".join(parts) if parts else None
