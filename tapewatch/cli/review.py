"""CLI for the review queue: ``tapewatch drafts list|show|edit|approve|reject|schedule``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from tapewatch.cli.analysis import _print_draft
from tapewatch.cli.root import _ago, _duration, app, cli_actor, out, settings

if TYPE_CHECKING:
    from memory.state import StateDB
    from publish.review import ReviewQueue

drafts_app = typer.Typer(help="Review drafts: list, show, edit, approve, reject, schedule.", no_args_is_help=True)
app.add_typer(drafts_app, name="drafts")

DraftArg = Annotated[str, typer.Argument(help="Draft id or a unique prefix of it.")]
AsOpt = Annotated[Optional[str], typer.Option("--as", help="Reviewer name (default: review.reviewer).")]  # noqa: UP045
FORMATS = ("x", "telegram", "markdown")
# An X thread is edited as plain text, one post per block, blocks separated by a line holding only this.
POST_BREAK = "---"


def _span(start: datetime, end: datetime) -> str:
    """The window's real start and end: '2026-11-25 12:00 to 2026-11-26 12:00 UTC (24h)'."""
    from tapewatch.settings import format_duration

    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC ({format_duration(end - start)})"


def _queue() -> tuple[ReviewQueue, StateDB]:
    from tapewatch.clients import open_state, review_queue

    state = open_state(settings())
    return review_queue(settings(), state, actor_label=cli_actor), state


def _reviewer(name: str | None) -> str:
    return name or settings().review.reviewer or ""


@contextmanager
def _audited(queue: ReviewQueue, draft_id: str, action: str, reviewer: str) -> Iterator[None]:
    """A refused review action goes to the audit log with who tried (OS account and claimed name), then on."""
    from publish.review import ReviewError

    try:
        yield
    except ReviewError as exc:
        queue.refused(draft_id, action, cli_actor(reviewer), str(exc))
        raise


@drafts_app.command("list")
def drafts_list(
    status: Annotated[Optional[str], typer.Option(help="pending, flagged, approved, …")] = None,  # noqa: UP045
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 20,
) -> None:
    """Newest drafts first."""
    from memory.drafts import DraftStore
    from tapewatch.clients import open_state

    rows = DraftStore(open_state(settings())).list(status, limit)
    if not rows:
        out.print("No drafts yet. `tapewatch brief` writes one." if not status else f"No {status} drafts.")
        return
    table = Table(header_style="bold")
    for col in ("id", "created", "mode", "status", "v", "topic", "tickers", "posts", "sources"):
        table.add_column(col)
    for d in rows:
        table.add_row(d.id[:12], _ago(d.created_at), d.mode, d.status, str(d.version), d.topic, " ".join(d.tickers),
                      str(len(d.x_thread)), str(len(d.item_ids)))
    out.print(table)


@drafts_app.command("show")
def drafts_show(
    draft_id: DraftArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="x, telegram, markdown, all or none.")] = "all",
) -> None:
    """One draft: its formats, grounding report, where each part went, and its audit trail."""
    from crew.model import ValidationReport
    from publish.audit import AuditLog
    from publish.outbox import Outbox

    if fmt not in (*FORMATS, "all", "none"):
        raise typer.BadParameter("must be x, telegram, markdown, all or none", param_hint="--format")
    queue, state = _queue()
    draft = queue.drafts.get(draft_id)
    out.print(f"draft {draft.id} · v{draft.version} · {draft.mode} · [bold]{draft.status}[/bold] · created "
              f"{_ago(draft.created_at)} · window {_span(draft.window_start, draft.window_end)} · "
              f"{len(draft.item_ids)} cited items", highlight=False)
    shape = draft.meta.get("shape")
    chart = draft.meta.get("chart") if isinstance(draft.meta.get("chart"), dict) else None
    if shape or chart:
        out.print(f"X: {shape or 'thread'} of {len(draft.x_thread)} post(s)"
                  + (f" · chart of ${chart['ticker']} ({int(chart.get('bytes', 0)) // 1024} KB)" if chart else ""),
                  highlight=False)
    if draft.parent_id:
        out.print(f"edited from {draft.parent_id}", highlight=False)
    if draft.meta.get("models"):
        meta = draft.meta
        out.print(f"crew: models {meta['models']}, prompt version {meta.get('prompt_version')}, "
                  f"{meta.get('llm_calls')} LLM calls, ${float(meta.get('cost_usd') or 0):.4f}, "
                  f"attempts {meta.get('attempts')}", highlight=False)
    framing = draft.meta.get("framing")
    if isinstance(framing, dict) and framing:  # what the track record will score as its direction
        out.print("framing: " + ", ".join(f"${t} {f}" for t, f in framing.items()), highlight=False)
    when = queue.scheduled([draft.id]).get(draft.id)
    if when:
        out.print(f"scheduled for {when:%Y-%m-%d %H:%M} UTC", highlight=False)
    report = ValidationReport.from_dict(draft.validation)
    if report.checked_at is None:
        out.print("grounding: not checked")
    else:
        verdict = "[green]ok[/green]" if report.ok else "[red]problems[/red]"
        out.print(f"grounding: {verdict} ({report.summary})", highlight=False)
        for p in report.problems:
            rule = f" [{p.profile}/{p.rule}: {p.source}]" if p.rule else ""
            out.print(f"  - {p.code}{f' ({p.where})' if p.where else ''}: {p.message}{rule}", markup=False)
        for channel, problems in sorted(report.blocked().items()):
            out.print(f"blocked on {channel} (a compliance profile refuses it; the other channels still go): "
                      + "; ".join(f"{p.profile}/{p.rule}" for p in problems), markup=False, highlight=False)
        if report.claims:
            table = Table(title="claims", header_style="bold")
            for col in ("claim", "standing", "grounded by"):
                table.add_column(col, overflow="fold")
            for claim in report.claims:
                table.add_row(claim.text, claim.standing, "; ".join(claim.basis))
            out.print(table)
    if fmt != "none":
        _print_draft(draft, fmt)
    rows = Outbox(state.engine).rows(draft.id, dry_run=None)
    if rows:
        table = Table(title="where it went", header_style="bold")
        for col in ("row", "channel", "part", "state", "remote id", "link", "note"):
            table.add_column(col, overflow="fold")
        for r in rows:
            state_label = f"{r.state} (dry run)" if r.dry_run and r.state != "dry_run" else r.state
            table.add_row(str(r.id), r.channel, f"{r.part + 1}/{r.parts}", state_label, r.remote_id or "",
                          r.url or "", (r.error or "")[:120])
        out.print(table)
    trail = AuditLog(state.engine).for_draft(draft.id)
    if trail:
        table = Table(title="audit trail", header_style="bold")
        for col in ("when", "who", "via", "action", "status", "channel", "reason"):
            table.add_column(col, overflow="fold")
        for e in trail:
            moved = f"{e.from_status or ''} → {e.to_status}" if e.to_status and e.from_status != e.to_status else ""
            part = f" part {e.detail['part']}" if "part" in e.detail else ""
            table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.via, e.action + part, moved, e.channel or "",
                          (e.reason or "")[:160])
        out.print(table)


@drafts_app.command("approve")
def drafts_approve(
    draft_id: DraftArg,
    reviewer: AsOpt = None,
    override: Annotated[Optional[str], typer.Option(help="Reason to approve a flagged draft anyway.")] = None,  # noqa: UP045
) -> None:
    """Approve a draft for publishing (a flagged one needs --override REASON)."""
    queue, _ = _queue()
    with _audited(queue, draft_id, "approve", _reviewer(reviewer)):
        t = queue.approve(draft_id, _reviewer(reviewer), override=override)
    if t.changed:
        out.print(f"Approved draft {t.draft_id[:12]} (was {t.from_status}). `tapewatch publish` sends it.")
    else:
        out.print(f"Draft {t.draft_id[:12]} was already approved; nothing changed.")


@drafts_app.command("reject")
def drafts_reject(
    draft_id: DraftArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the audit log).")] = "",
    reviewer: AsOpt = None,
) -> None:
    """Reject a draft; it will never be published."""
    queue, _ = _queue()
    with _audited(queue, draft_id, "reject", _reviewer(reviewer)):
        t = queue.reject(draft_id, _reviewer(reviewer), reason=reason)
    out.print(f"Rejected draft {t.draft_id[:12]}." if t.changed else f"Draft {t.draft_id[:12]} was already rejected.")


@drafts_app.command("edit")
def drafts_edit(
    draft_id: DraftArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="x, telegram or markdown.")] = "x",
    text: Annotated[Optional[str], typer.Option(help="The new text (X: posts separated by a --- line).")] = None,  # noqa: UP045
    file: Annotated[Optional[Path], typer.Option(help="Read the new text from this file.")] = None,  # noqa: UP045
    reviewer: AsOpt = None,
) -> None:
    """Edit one format in $EDITOR (or from --text / --file); saves a new version and re-validates it."""
    if fmt not in FORMATS:
        raise typer.BadParameter("must be x, telegram or markdown", param_hint="--format")
    queue, _ = _queue()
    with _audited(queue, draft_id, "edit", _reviewer(reviewer)):
        name = queue.check_reviewer(_reviewer(reviewer))
    draft = queue.drafts.get(draft_id)
    current = {"x": f"\n{POST_BREAK}\n".join(draft.x_thread), "telegram": draft.telegram_html,
               "markdown": draft.markdown}[fmt]
    if text is None and file is not None:
        text = file.read_text(encoding="utf-8")
    if text is None:
        import click

        text = click.edit(current, extension=".html" if fmt == "telegram" else ".txt", require_save=True)
        if text is None:
            out.print("No change saved; the draft stays as it is.")
            return
    with _audited(queue, draft.id, "edit", name):
        if fmt == "x":
            new = queue.edit(draft.id, name, x_thread=[p.strip() for p in _split_posts(text)])
        else:
            new = queue.edit(draft.id, name, **{"telegram_html" if fmt == "telegram" else "markdown": text})
    out.print(f"Saved version {new.version} as draft [bold]{new.id[:12]}[/bold] ({new.status}); "
              f"{draft.id[:12]} is superseded.")
    from crew.model import ValidationReport

    for p in ValidationReport.from_dict(new.validation).problems:
        out.print(f"  [red]problem[/red] {p.code}: {p.message}")


def _split_posts(text: str) -> list[str]:
    posts: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip() == POST_BREAK:
            posts.append("\n".join(current))
            current = []
        else:
            current.append(line)
    posts.append("\n".join(current))
    return [p for p in posts if p.strip()]


@drafts_app.command("schedule")
def drafts_schedule(
    draft_id: DraftArg,
    at: Annotated[Optional[str], typer.Option(help="When, e.g. 2025-06-01T14:00 (publish.timezone).")] = None,  # noqa: UP045
    after: Annotated[Optional[str], typer.Option("--in", help="Or how long from now: 2h, 30m.")] = None,  # noqa: UP045
    reviewer: AsOpt = None,
) -> None:
    """Publish a draft no earlier than a given time (it still needs approval)."""
    if (at is None) == (after is None):
        raise typer.BadParameter("give exactly one of --at and --in")
    if after is not None:
        when = datetime.now(UTC) + _duration(after, "--in")
    else:
        try:
            when = datetime.fromisoformat(str(at))
        except ValueError as exc:
            raise typer.BadParameter(f"{at!r} is not a date and time like 2025-06-01T14:00", param_hint="--at") from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(settings().publish.timezone))
    queue, _ = _queue()
    with _audited(queue, draft_id, "schedule", _reviewer(reviewer)):
        queue.schedule(draft_id, _reviewer(reviewer), when.astimezone(UTC))
    out.print(f"Draft {draft_id} scheduled for {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC.")
