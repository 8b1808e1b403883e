"""CLI for publishing: ``tapewatch publish [--dry-run]``, ``publish outbox``, ``publish resolve``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from tapewatch.cli.root import _ago, app, out, settings

if TYPE_CHECKING:
    from publish.delivery import RunReport

publish_app = typer.Typer(help="Publish approved drafts to X and Telegram, exactly once.")
app.add_typer(publish_app, name="publish")


@publish_app.callback(invoke_without_command=True)
def publish(
    ctx: typer.Context,
    dry_run: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--dry-run/--live", help="Record what would be posted without posting (default: "
                     "publish.dry_run)."),
    ] = None,
) -> None:
    """Publish due drafts (approved, or under the auto policy also those that passed grounding)."""
    if ctx.invoked_subcommand is not None:
        return
    from tapewatch.clients import delivery, open_state, publish_channels

    s = settings()
    dry = s.publish.dry_run if dry_run is None else dry_run
    state = open_state(s)
    channels = {} if dry else publish_channels(s)
    report = asyncio.run(delivery(s, state, channels).run(dry_run=dry))
    _print_report(report)
    if report.failed:
        raise typer.Exit(1)


def _print_report(r: RunReport) -> None:
    if r.dry_run:
        out.print("[yellow]Dry run: nothing was posted.[/yellow]")
        for row in r.would_post:
            out.print(f"[bold]{row.channel} {row.draft_id[:12]} part {row.part + 1}/{row.parts}[/bold]")
            out.print(row.text, markup=False, highlight=False)
    for draft_id, channel, like, score in r.blocked:
        out.print(f"[red]duplicate[/red] {draft_id[:12]} on {channel}: {score:.0%} like {like[:12]}, sent recently")
    for draft_id, why in r.skipped:
        out.print(f"not yet: {draft_id[:12]} ({why})", highlight=False)
    if r.expired:
        out.print(f"expired {len(r.expired)} stale draft(s)")
    if not r.dry_run:
        out.print(f"{len(r.published)} published, {len(r.failed)} failed, {len(r.waiting)} waiting; "
                  f"{r.parts_sent} part(s) sent, {r.reconciled} reconciled, {r.resent} resent after a check, "
                  f"{r.needs_check} need a person to check")
    if r.needs_check:
        out.print("A part may or may not have gone out: see `tapewatch publish outbox`, then "
                  "`tapewatch publish resolve ROW --sent MESSAGE_ID` or `--not-sent`.")
    for draft_id, why in r.errors:
        out.print(f"[yellow]set aside[/yellow] draft {draft_id[:12]}: {escape(why)}", highlight=False)
    if r.stopped:
        out.print(f"[yellow]stopped early:[/yellow] {r.stopped}")
    for name, why in r.unavailable.items():
        out.print(f"[yellow]{name} unavailable, its parts wait for the next run:[/yellow] {why}", highlight=False)


@publish_app.command("outbox")
def outbox_list(
    state_filter: Annotated[
        list[str], typer.Option("--state", help="Only rows in this state (repeatable).")
    ] = ["needs_check", "unknown", "intent", "queued", "failed"],  # noqa: B006
) -> None:
    """Outbox rows that are not settled (or in the given states)."""
    from publish.outbox import Outbox
    from tapewatch.clients import open_state

    rows = Outbox(open_state(settings()).engine).in_states(*state_filter)
    if not rows:
        out.print("Nothing in the outbox in those states.")
        return
    table = Table(header_style="bold")
    for col in ("row", "draft", "channel", "part", "state", "attempts", "since", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r.id), r.draft_id[:12], r.channel, f"{r.part + 1}/{r.parts}", r.state, str(r.attempts),
                      _ago(r.intent_at or r.created_at), (r.error or "")[:160])
    out.print(table)


@publish_app.command("resolve")
def resolve(
    row_id: Annotated[int, typer.Argument(help="Outbox row (see `tapewatch publish outbox`).")],
    sent: Annotated[Optional[str], typer.Option(help="It did go out: its message / post id.")] = None,  # noqa: UP045
    not_sent: Annotated[bool, typer.Option("--not-sent", help="It did not go out: send it next run.")] = False,
    reviewer: Annotated[Optional[str], typer.Option("--as", help="Reviewer name.")] = None,  # noqa: UP045
) -> None:
    """Settle a part that a person had to check (Telegram after a timeout or a crash)."""
    from publish.outbox import NEEDS_CHECK, UNKNOWN, Outbox
    from publish.telegram_publisher import message_link
    from sources.errors import PublishError
    from tapewatch.clients import open_state, review_queue

    if (sent is None) == (not not_sent):
        raise typer.BadParameter("give exactly one of --sent ID and --not-sent")
    s = settings()
    state = open_state(s)
    name = review_queue(s, state).check_reviewer(reviewer or s.review.reviewer)
    outbox = Outbox(state.engine, actor=name)
    row = outbox.get(row_id)
    if row.state not in (NEEDS_CHECK, UNKNOWN):
        raise PublishError(f"outbox row {row_id} is {row.state}; only needs_check or unknown rows are resolved by hand")
    if sent is not None:
        if not sent.isdigit():
            raise typer.BadParameter("a message id is a number", param_hint="--sent")
        url = (message_link(s.publish.telegram_chat_id or "", int(sent)) if row.channel == "telegram"
               else f"https://x.com/i/web/status/{sent}")
        outbox.mark_sent(row, sent, url, action="resolved", reason=f"{name} confirmed it went out")
        out.print(f"Row {row_id} recorded as sent ({sent}); the next `tapewatch publish` continues the draft.")
    else:
        outbox.requeue(row, f"{name} confirmed it did not go out", actor=name)
        out.print(f"Row {row_id} queued again; the next `tapewatch publish` sends it.")
