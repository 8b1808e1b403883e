"""CLI for the track record: ``tapewatch track``, ``backtest``, ``correct`` and ``retract``."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from sources.errors import TapewatchError
from tapewatch.cli.root import app, err, out, settings

if TYPE_CHECKING:
    from crew.scorecard import TrackOptions
    from crew.track import HorizonStats
    from publish.amend import Amender
    from publish.review import ReviewQueue


def _horizons(value: str | None) -> tuple[timedelta, ...]:
    from tapewatch.settings import parse_duration

    if not value:
        return tuple(settings().track.horizons)
    try:
        found = sorted({parse_duration(p.strip()) for p in value.split(",") if p.strip()})
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--horizon") from exc
    if not found or any(h <= timedelta(0) for h in found):
        raise typer.BadParameter("give positive durations like 1d,5d", param_hint="--horizon")
    return tuple(found)


def _options(horizon: str | None, benchmark: str | None) -> TrackOptions:
    from crew.scorecard import TrackOptions
    from crew.track import Benchmark

    s = settings()
    name = (benchmark or s.track.benchmark)
    if name.lower() not in ("btc", "basket"):
        raise typer.BadParameter("must be BTC or basket", param_hint="--benchmark")
    bench = Benchmark("basket" if name.lower() == "basket" else "BTC", basket=s.watchlist)
    t = s.track
    return TrackOptions(_horizons(horizon), bench, t.tolerance, t.min_calls, t.bootstrap, t.seed)


def _stats_table(title: str, stats: list[HorizonStats]) -> Table:
    from crew.track import MIN_SPANS, label

    table = Table(title=title, header_style="bold")
    for col in ("horizon", "N", "unscorable", "waiting", "mean excess", "95% interval", "median excess",
                "95% interval ", "hit rate", "direction matched"):
        table.add_column(col, justify="right" if col != "horizon" else "left")
    for s in stats:
        if not s.enough:
            why = (f"too few calls ({s.n} of {s.min_calls} needed)" if s.n < s.min_calls else
                   f"too few independent spans ({s.spans:.1f} of {MIN_SPANS} needed: the horizons overlap)")
            table.add_row(label(s.horizon), str(s.n), str(s.unscorable), str(s.waiting), why, "", "", "", "", "")
            continue
        ci = f"{s.mean_ci.low:+.2f} … {s.mean_ci.high:+.2f}" if s.mean_ci else ""
        mci = f"{s.median_ci.low:+.2f} … {s.median_ci.high:+.2f}" if s.median_ci else ""
        direction = (f"{s.direction_matched:.0%} of {s.framed}" if s.direction_matched is not None
                     else (f"too few framed ({s.framed})" if s.framed else "no framed calls"))
        table.add_row(label(s.horizon), str(s.n), str(s.unscorable), str(s.waiting), f"{s.mean:+.2f}%", ci,
                      f"{s.median:+.2f}%", mci, f"{s.hit_rate:.0%}", direction)
    return table


@app.command()
def track(
    horizon: Annotated[Optional[str], typer.Option(help="Horizons, e.g. 1d,5d,10d,30d (default: track.horizons).")] = None,  # noqa: UP045,E501
    benchmark: Annotated[Optional[str], typer.Option(help="BTC or basket (default: track.benchmark).")] = None,  # noqa: UP045
    as_json: Annotated[bool, typer.Option("--json", help="Print every call's scores and the stats as JSON.")] = False,
) -> None:
    """How published calls did: forward return, benchmark and excess per horizon, with honest sample sizes."""
    from crew.scorecard import track_record
    from tapewatch.clients import open_state

    options = _options(horizon, benchmark)
    record = track_record(open_state(settings()), options, datetime.now(UTC))
    if as_json:
        out.print_json(json.dumps(record.as_dict()))
        return
    if not record.calls:
        out.print("No published calls yet: calls are recorded when a brief is published (`tapewatch publish`).")
        return
    drafts = len({c.draft_id for c in record.calls})
    out.print(f"{len(record.calls)} call(s) from {drafts} published brief(s); excess return over "
              f"{record.benchmark} in percentage points, snapshots within {options.tolerance} of each end.")
    out.print(_stats_table("track record", record.stats))


@app.command()
def backtest(
    start: Annotated[str, typer.Option("--from", help="First day, e.g. 2026-09-01 (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Last window end, e.g. 2026-10-31 (UTC).")],
    every: Annotated[str, typer.Option(help="Window length and spacing.")] = "24h",
    top: Annotated[int, typer.Option(min=1, max=50, help="Tickers per ranking per window.")] = 5,
    rank: Annotated[str, typer.Option(help="breadth, mentions or both.")] = "both",
    horizon: Annotated[Optional[str], typer.Option(help="Horizons (default: track.horizons).")] = None,  # noqa: UP045
    benchmark: Annotated[Optional[str], typer.Option(help="BTC or basket (default: track.benchmark).")] = None,  # noqa: UP045
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write one CSV row per (window, ticker).")] = None,  # noqa: UP045
    sentiment: Annotated[bool, typer.Option(help="Also score sentiment (slow; no ranking uses it).")] = False,
) -> None:
    """Replay the signals over stored history and compare the rankings' top N by forward excess return."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from crew.backtest import csv_rows
    from crew.scorecard import backtest as run_backtest
    from tapewatch.clients import open_state
    from tapewatch.settings import parse_duration

    try:
        step = parse_duration(every)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from exc
    if rank not in ("breadth", "mentions", "both"):
        raise typer.BadParameter("must be breadth, mentions or both", param_hint="--rank")
    first, last = _day(start, "--from"), _day(end, "--to")
    if last <= first or step <= timedelta(0):
        raise typer.BadParameter("--to must be after --from, and --every positive")
    options = _options(horizon, benchmark)
    rankings = ("breadth", "mentions") if rank == "both" else (rank,)
    with Progress(TextColumn("[bold]replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("windows", total=None)
        result = run_backtest(open_state(settings()), options, start=first, end=last, every=step, top=top,
                              rankings=rankings, now=datetime.now(UTC), sentiment=sentiment,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    out.print(f"{len(result.windows)} window(s) of {every} from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} "
              f"UTC, top {top}; excess over {options.benchmark.name} in percentage points"
              + (f"; {result.empty_windows} window(s) had no items" if result.empty_windows else ""))
    for name in rankings:
        out.print(_stats_table(f"ranked by {name}", result.stats[name]))
    if out_file is not None:
        header, rows = csv_rows(result, options.horizons, with_sentiment=sentiment)
        with out_file.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        out.print(f"Wrote {len(rows)} row(s) to {out_file}.")


def _day(value: str, hint: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-09-01", param_hint=hint) from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


DraftArg = Annotated[str, typer.Argument(help="Draft id or a unique prefix of it.")]
AsOpt = Annotated[Optional[str], typer.Option("--as", help="Reviewer name (default: review.reviewer).")]  # noqa: UP045


@app.command()
def correct(
    draft_id: DraftArg,
    text: Annotated[str, typer.Option("--text", help="The correction, posted as a reply on X and Telegram.")],
    reviewer: AsOpt = None,
) -> None:
    """Post a correction of a published draft under its X thread and its Telegram message (once)."""
    from tapewatch.cli.review import _audited

    queue, amender = _amender()
    name = reviewer or settings().review.reviewer or ""
    with _audited(queue, draft_id, "correct", name):
        amendment = amender.correct(draft_id, text, name)
    _carry_out(amender, amendment.draft_id, amendment.id)


@app.command()
def retract(
    draft_id: DraftArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; shown on the archive page.")],
    reviewer: AsOpt = None,
) -> None:
    """Retract a draft: nothing more of it is posted, and its X posts and Telegram messages are deleted."""
    from tapewatch.cli.review import _audited

    queue, amender = _amender()
    name = reviewer or settings().review.reviewer or ""
    with _audited(queue, draft_id, "retract", name):
        amendment = amender.retract(draft_id, reason, name)
    _carry_out(amender, amendment.draft_id, amendment.id)


def _amender() -> tuple[ReviewQueue, Amender]:
    from tapewatch.clients import amender, open_state, review_queue

    state = open_state(settings())
    queue = review_queue(settings(), state)
    return queue, amender(settings(), queue)


def _carry_out(amender: Amender, draft_id: str, amendment_id: int) -> None:
    """Open the channels the steps need, carry the steps out, and say where each one stands."""
    from publish.amend import AmendReport
    from publish.lease import Lease
    from tapewatch.clients import publish_channels

    async def go() -> AmendReport:
        opened = {}
        channels = publish_channels(settings())
        # One publisher at a time: a publish run (the daemon's) seeing this process's reply mid-call would take
        # it for a crash's leftover. While one runs, it carries the amendment out itself.
        lease = Lease(amender.engine, settings().publish.lease)
        if not lease.acquire():
            holder = lease.holder()
            err.print(f"A publish run is active ({holder[0] if holder else '?'}); it carries this out.",
                      highlight=False)
            return AmendReport(waiting=1)
        try:
            for name, channel in channels.items():
                try:
                    await channel.open()
                except TapewatchError as exc:
                    err.print(f"[yellow]{name} unavailable, its steps wait:[/yellow] {exc}", highlight=False)
                    continue
                opened[name] = channel
            return await amender.run(opened, draft_id)
        finally:
            for channel in opened.values():
                await channel.close()
            lease.release()

    report = asyncio.run(go())
    [amendment] = [a for a in amender.of_draft(draft_id) if a.id == amendment_id]
    what = "Correction" if amendment.kind == "correction" else "Retraction"
    out.print(f"{what} of draft {draft_id[:12]} by {amendment.requested_by}: {amendment.text}", markup=False,
              highlight=False)
    for step in amendment.steps:
        where = f" → {step.url or step.remote_id}" if step.remote_id else ""
        note = f" ({step.error})" if step.error and step.state != "sent" else ""
        out.print(f"  step {step.id}: {step.channel} {step.op} {step.target}: {step.state}{where}{note}",
                  markup=False, highlight=False)
    if amendment.done:
        out.print(f"{what} done.")
        return
    if report.needs_check or any(s.state in ("needs_check", "failed") for s in amendment.steps):
        out.print("[yellow]Some steps need a person:[/yellow] check the channel, then `tapewatch resolve-step STEP "
                  "--sent ID | --not-sent` (a reply) or `--done` (a delete you handled).")
    else:
        out.print("Some steps wait: run the command again, or the next `tapewatch publish` finishes them.")
    raise typer.Exit(1)


@app.command("resolve-step")
def resolve_step(
    step_id: Annotated[int, typer.Argument(help="The step (see `tapewatch correct` / `retract` output).")],
    sent: Annotated[Optional[str], typer.Option(help="The reply did go out: its post / message id.")] = None,  # noqa: UP045
    not_sent: Annotated[bool, typer.Option("--not-sent", help="The reply did not go out: send it again.")] = False,
    done: Annotated[bool, typer.Option("--done", help="You deleted (or checked) that post by hand.")] = False,
    reviewer: AsOpt = None,
) -> None:
    """Settle a correction or retraction step only a person can judge (Telegram after a crash, a refused delete)."""
    if sum((sent is not None, not_sent, done)) != 1:
        raise typer.BadParameter("give exactly one of --sent ID, --not-sent and --done")
    if sent is not None and not sent.isdigit():
        raise typer.BadParameter("a post or message id is a number", param_hint="--sent")
    _, amender = _amender()
    step = amender.resolve(step_id, reviewer or settings().review.reviewer or "", sent=sent, not_sent=not_sent,
                           done=done)
    out.print(f"Step {step.id} is {step.state}.", highlight=False)
    if step.state == "queued":
        out.print(f"Run `tapewatch correct {step.draft_id[:12]} …` again, or the next `tapewatch publish` sends it.")
