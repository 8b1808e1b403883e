"""CLI for the daemon: ``tapewatch run``, and the schedule and X budget part of ``tapewatch sources``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from tapewatch.cli.root import _ago, app, out, settings
from tapewatch.settings import format_duration

if TYPE_CHECKING:
    from memory.state import StateDB
    from tapewatch.settings import Settings


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="Run every job once, then exit (for cron or a first fill).")]
    = False,
    for_seconds: Annotated[
        Optional[float],  # noqa: UP045 - typer needs Optional at runtime on 3.11
        typer.Option("--for", min=0.1, help="Stop by itself after this many seconds."),
    ] = None,
) -> None:
    """Run the daemon: ingest feeds, X and prices on their schedules until SIGINT/SIGTERM."""
    from tapewatch.daemon import Daemon, job_specs
    from tapewatch.jobs import Runtime

    s = settings()
    runtime = Runtime(s)

    def report(kind: str, summary: str) -> None:
        out.print(f"{datetime.now(UTC):%H:%M:%S} [bold]{kind}[/bold]: {summary}", highlight=False)

    daemon = Daemon(runtime, on_result=report)
    try:
        specs = job_specs(runtime)
        out.print("Jobs: " + ", ".join(f"{j.name} every {format_duration(j.interval.total_seconds())}" for j in specs),
                  highlight=False)
        if not once:
            from tapewatch.bot.service import attach

            _automation, lines = attach(daemon, runtime)
            if s.web.enabled:  # the desk on the daemon's event loop, publishing and pausing through its automation
                from tapewatch.web.service import attach as attach_web

                lines += attach_web(daemon, runtime, _automation)
            for line in lines:
                out.print(line, highlight=False)
        for note in _x_notes(s):
            out.print(f"[yellow]{note}[/yellow]", highlight=False)
        if once:
            asyncio.run(daemon.run_once())
        else:
            out.print("Running; Ctrl-C or SIGTERM stops after the current batch.")
            asyncio.run(daemon.serve(duration=for_seconds))
            out.print(f"Stopped after {sum(daemon.fired.values())} job run(s).")
    finally:
        runtime.close()


def print_schedule(s: Settings, state: StateDB) -> None:
    """Next run of each daemon job, the X read budget, and pauses after rate limits."""
    from memory.quotas import Quotas, month_of, next_month
    from tapewatch.daemon import JOB_IDS, next_runs
    from tapewatch.jobs import x_specs

    now = datetime.now(UTC)
    stored = next_runs(state.engine)
    table = Table(title="daemon schedule (tapewatch run)", header_style="bold")
    for col in ("job", "every", "next run"):
        table.add_column(col)
    intervals = {"feeds": s.fetch.interval, "x": s.x.interval, "prices": s.market.interval,
                 "retention": s.daemon.retention_interval, "x_deletions": s.x.compliance_every}
    for kind, job_id in JOB_IDS.items():
        when = stored.get(job_id)
        if job_id not in stored:
            nxt = ("not scheduled yet" if not kind.startswith("x") or s.x_bearer_token
                   else "off (no X bearer token)")
        elif when is None:
            nxt = "paused"
        elif when < now:
            nxt = f"overdue since {_ago(when)} (is the daemon running?)"
        else:
            nxt = f"in {format_duration((when - now).total_seconds())} ({when:%Y-%m-%d %H:%M:%S} UTC)"
        table.add_row(kind, format_duration(intervals[kind].total_seconds()), nxt)
    out.print(table)
    quotas = Quotas(state)
    usage = quotas.usage(month_of(now))
    budget = s.x.monthly_read_budget
    specs = x_specs(s)
    if specs or usage.posts:
        out.print(f"X read budget: {usage.posts:,} of {budget:,} posts read in {usage.month} "
                  f"({max(budget - usage.posts, 0):,} left, {usage.requests:,} requests); resets "
                  f"{next_month(now):%Y-%m-%d} 00:00 UTC.", highlight=False)
    if specs:
        out.print("X sources: " + ", ".join(f"{x.name}{f' ({x.cluster})' if x.cluster else ''}" for x in specs),
                  highlight=False)
    for note in _x_notes(s):
        out.print(note, highlight=False)
    for pause in quotas.pauses(now):
        out.print(f"[yellow]{pause.name} paused until {pause.until:%Y-%m-%d %H:%M:%S} UTC: {pause.reason}[/yellow]",
                  highlight=False)


def _x_notes(s: Settings) -> list[str]:
    notes = []
    if s.x.accounts or s.x.queries:
        if s.x_bearer_token is None:
            notes.append("X accounts/queries are configured but there is no bearer token: set "
                         "TAPEWATCH_X_BEARER_TOKEN to read them.")
        if s.x.monthly_read_budget == 0:
            notes.append("x.monthly_read_budget is 0: X is not read.")
    return notes
