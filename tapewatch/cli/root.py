"""The ``tapewatch`` command line. Heavy libraries are imported inside commands so --help is instant."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from sources.errors import TapewatchError
from tapewatch.redaction import RedactingConsole, redact
from tapewatch.settings import Settings, format_duration, load_settings, masked_dump, parse_duration

if TYPE_CHECKING:
    from memory.store import Memory

app = typer.Typer(
    help="tapewatch: a self-hosted crypto market research bot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

# Both consoles redact configured secrets from everything they print (a library's error text may carry one).
out = RedactingConsole()
err = RedactingConsole(stderr=True)
# Piped output (logs, CI) gets room for URLs instead of rich's 80-column default.
if not out.is_terminal:
    out = RedactingConsole(width=160)
# How a source's (or a fetch's) status is coloured in `ingest`, `sources` and `status`.
STATUS_COLOURS = {"ok": "green", "not_modified": "cyan", "degraded": "yellow", "error": "red", "skipped": "white"}


class _State:
    config: Path | None = None
    secrets_dir: Path | None = None
    settings: Settings | None = None


_state = _State()


@app.callback()
def _main(
    config: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional at runtime on 3.11
        typer.Option("--config", "-c", envvar="TAPEWATCH_CONFIG", help="Path to tapewatch.toml."),
    ] = None,
    secrets_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--secrets-dir", envvar="TAPEWATCH_SECRETS_DIR", help="Directory of secret files."),
    ] = None,
) -> None:
    """tapewatch: ingest crypto news into memory and search it."""
    if config is None and Path("tapewatch.toml").is_file():
        config = Path("tapewatch.toml")
    _state.config = config
    _state.secrets_dir = secrets_dir
    _state.settings = None


def cli_actor(claimed: str | None = None) -> str:
    """Who runs this command, for the audit log: the OS account (uid, stable) plus any name claimed with --as."""
    import os
    import pwd

    uid = os.getuid()
    try:
        login = pwd.getpwuid(uid).pw_name
    except KeyError:  # a container's uid with no passwd entry
        login = "?"
    who = f"cli:{uid} ({login})"
    return (f"{who} as {claimed[:40]}" if claimed and claimed != login else who)[:100]


def settings() -> Settings:
    """The settings for this invocation, built once."""
    if _state.settings is None:
        from tapewatch import logs
        from tapewatch.redaction import secret_values

        _state.settings = load_settings(_state.config, _state.secrets_dir)
        logs.configure(_state.settings.log_level, _state.settings.log_json, secret_values(_state.settings))
    return _state.settings


def _memory() -> Memory:
    from tapewatch.clients import open_memory

    return open_memory(settings())


@config_app.command("check")
def config_check(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a summary.")] = False,
) -> None:
    """Validate the configuration and print the effective settings, secrets masked."""
    s = settings()
    data = masked_dump(s)
    if as_json:
        out.print_json(json.dumps(data))
        return
    source = str(_state.config) if _state.config else "built-in defaults (no tapewatch.toml)"
    out.print(f"[green]ok[/green] configuration from {source} + TAPEWATCH_* environment")
    table = Table(show_header=True, header_style="bold")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if key in ("feeds", "watchlist"):
            continue
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    table.add_row("watchlist", ", ".join(f"{t} ({'/'.join(a)})" for t, a in s.watchlist.items()))
    feeds = [f"{f.name} [{f.kind}{'' if f.enabled else ', disabled'}] {f.url}" for f in s.feeds]
    table.add_row("feeds", "\n".join(feeds))
    out.print(table)


@app.command()
def ingest(
    source: Annotated[list[str], typer.Option("--source", "-s", help="Only this feed (repeatable).")] = [],  # noqa: B006
    samples: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Bundled sample feeds: auto (when no feed is reachable), always, never."),
    ] = None,
) -> None:
    """Fetch the configured feeds into memory and show what each source added."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tapewatch.clients import feed_specs, http_client, watchlist
    from tapewatch.ingest import Ingestor
    from tapewatch.ingest import ingest as run_ingest

    s = settings()
    mode = samples or s.samples
    if mode not in ("auto", "always", "never"):
        raise typer.BadParameter("must be auto, always or never", param_hint="--samples")
    feeds = feed_specs(s, source or None)
    memory = _memory()
    with http_client(s) as client:
        ingestor = Ingestor(
            memory, client, watchlist(s), max_body_bytes=s.fetch.max_body_bytes,
            deadline_s=s.fetch.deadline.total_seconds(), concurrency=s.fetch.concurrency,
            retention=s.memory.retention,
        )
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True,
        ) as progress:
            task = progress.add_task("ingesting", total=len(feeds) if mode != "always" else 0)

            def done(outcome: object) -> None:
                progress.update(task, advance=1, description=f"ingesting ({getattr(outcome, 'name', '')})")

            report = run_ingest(ingestor, feeds, mode, done)
    if report.used_samples:
        reason = "as asked" if mode == "always" else "no configured feed was reachable"
        out.print(f"[yellow]Using the bundled sample feeds ({reason}).[/yellow]")
    table = Table(title="ingest", header_style="bold")
    for col in ("source", "kind", "status", "new", "duplicate", "near-dup", "skipped", "warnings", "error"):
        table.add_column(col, overflow="fold",
                         justify="right" if col in ("new", "duplicate", "near-dup", "skipped") else "left")
    for o in sorted(report.outcomes, key=lambda o: o.name):
        shown = o.shown_status
        colour = STATUS_COLOURS.get(shown, "white")
        table.add_row(o.name, o.kind, f"[{colour}]{shown}[/{colour}]", str(o.new), str(o.duplicate),
                      str(o.near_duplicate), str(o.skipped or ""), str(len(o.warnings)) if o.warnings else "",
                      (o.error or o.degraded or "")[:160])
    out.print(table)
    totals = [sum(getattr(o, f) for o in report.outcomes) for f in ("new", "duplicate", "near_duplicate")]
    errors = sum(o.status == "error" for o in report.outcomes)
    out.print(f"{totals[0]} new, {totals[1]} duplicate, {totals[2]} near-duplicate, {errors} source error(s)")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="What to look for.")],
    ticker: Annotated[list[str], typer.Option("--ticker", "-t", help="Only items about this ticker.")] = [],  # noqa: B006
    since: Annotated[Optional[str], typer.Option(help="Only items from the last 24h, 7d, …")] = None,  # noqa: UP045
    kind: Annotated[list[str], typer.Option("--kind", "-k", help="news, forum or social.")] = [],  # noqa: B006
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100)] = 10,
) -> None:
    """Semantic search over memory."""
    window = _duration(since, "--since") if since else None
    bad = [k for k in kind if k not in ("news", "forum", "social")]
    if bad:
        raise typer.BadParameter(f"unknown kind {bad[0]!r}", param_hint="--kind")
    memory = _memory()
    after = datetime.now(UTC) - window if window else None
    hits = memory.search(text, limit, since=after, tickers=ticker, kinds=kind)
    if not hits:
        health = memory.vector_health()
        if not health.ok:
            out.print(f"No matching items: {health.summary()}.")
            return
        out.print("No matching items. Try a wider --since, fewer filters, or run `tapewatch ingest` first.")
        return
    table = Table(header_style="bold")
    for col in ("score", "published", "source", "tickers", "title / url", "sources"):
        table.add_column(col, overflow="fold")
    for h in hits:
        table.add_row(f"{h.score:.2f}", _ago(h.published_at), h.source, " ".join(h.tickers),
                      f"{h.title}\n[dim]{h.url}[/dim]", str(h.sources))
    out.print(table)


@app.command()
def sources() -> None:
    """Health of each configured source: last fetch, status (ok, degraded, error), items, skips, last problem."""
    from tapewatch.clients import open_state

    s = settings()
    state = open_state(s)
    health = {h.name: h for h in state.source_health()}
    table = Table(header_style="bold")
    for col in ("source", "kind", "last fetch", "status", "items", "skipped", "errors in a row", "last problem"):
        table.add_column(col, overflow="fold")
    names = [f.name for f in s.feeds] + sorted(set(health) - {f.name for f in s.feeds})
    for name in names:
        h = health.get(name)
        feed = next((f for f in s.feeds if f.name == name), None)
        kind = feed.kind if feed else (h.kind if h else "")
        if feed is not None and not feed.enabled:
            kind += " (disabled)"
        if h is None:
            table.add_row(name, kind, "never", "", "0", "", "", "")
            continue
        colour = STATUS_COLOURS.get(h.status or "", "white")
        table.add_row(name, kind, _ago(h.last_fetch_at), f"[{colour}]{h.status}[/{colour}]", str(h.items),
                      str(h.skipped or ""), str(h.consecutive_errors or ""), (h.last_error or h.degraded or "")[:200])
    out.print(table)
    from tapewatch.x_deletions import last_run

    run = last_run(state)
    out.print("X deletion check (x.compliance_every " + format_duration(s.x.compliance_every.total_seconds()) + "): "
              + (f"last ran {_ago(run[0])}: {run[1]}" + (f"; error: {run[2]}" if run[2] else "") if run
                 else "never run"), markup=False, highlight=False, soft_wrap=True)
    from tapewatch.cli.memory import vector_health_line

    if warning := vector_health_line(state):
        out.print(warning)
    from tapewatch.cli.daemon import print_schedule

    print_schedule(s, state)


@app.command()
def prune(
    older_than: Annotated[Optional[str], typer.Option(help="Default: memory.retention from settings.")] = None,  # noqa: UP045
) -> None:
    """Delete items older than the retention period from memory."""
    s = settings()
    age = _duration(older_than, "--older-than") if older_than else s.memory.retention
    removed = _memory().prune(age)
    out.print(f"Removed {removed} item(s) published more than {format_duration(age)} ago.")


def _duration(value: str, hint: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from exc


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = (datetime.now(UTC) - when).total_seconds()
    if seconds < 0:
        return when.strftime("%Y-%m-%d %H:%M")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


def main() -> None:
    """Console entry point: domain errors become one readable line and exit status 2."""
    try:
        app()
    except TapewatchError as exc:
        # Redacted before escaping (escaping could split a secret); never wrapped, so one error is one line.
        err.print(f"[red]error:[/red] {escape(redact(str(exc)))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
