"""CLI commands for the analysis stage: signals, narratives and briefs (drafts: ``cli.review``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

if TYPE_CHECKING:
    from memory.drafts import Draft

from tapewatch.cli.root import _ago, _duration, _memory, app, out, settings
from tapewatch.settings import format_duration

WindowOpt = Annotated[str, typer.Option("--window", "-w", help="Time window: 24h, 6h, 7d, …")]


def _window(value: str) -> timedelta:
    window = _duration(value, "--window")
    if window < timedelta(minutes=10) or window > timedelta(days=30):
        raise typer.BadParameter("must be between 10m and 30d", param_hint="--window")
    return window


def _nothing(window: timedelta) -> None:
    out.print(f"Nothing to report: memory holds no items from the last {format_duration(window)}. "
              "Run `tapewatch ingest` first, or widen --window.")


@app.command()
def signals(window: WindowOpt = "24h",
            limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200)] = 15) -> None:
    """Per-ticker attention: stories, breadth across groups, growth, sentiment, price move."""
    from crew.signals import compute_signals
    from memory.prices import PriceStore

    span = _window(window)
    memory = _memory()
    result = compute_signals(memory.state, memory.vectors, now=datetime.now(UTC), window=span, narratives=False,
                             prices=PriceStore(memory.state))
    if result.items == 0:
        _nothing(span)
        return
    table = Table(title=f"signals, last {window} ({result.items} items, {result.stories} stories)",
                  header_style="bold")
    for col in ("ticker", "stories", "reports", "breadth", "groups", "growth", "z", "sentiment", "price",
                "novelty", "score"):
        table.add_column(col, justify="left" if col in ("ticker", "groups") else "right")
    for t in result.tickers[:limit]:
        price = f"{t.price_change_pct:+.1f}%" if t.price_change_pct is not None else "—"
        table.add_row(t.ticker, str(t.mentions), str(t.reports), str(t.clusters), ", ".join(t.cluster_names),
                      f"×{t.growth:.1f}", f"{t.zscore:+.1f}", f"{t.sentiment:+.2f}", price,
                      f"{t.novelty:.0%}", f"{t.score:.1f}")
    out.print(table)


@app.command()
def narratives(window: WindowOpt = "24h") -> None:
    """Clusters of recent stories: label, size, breadth, growth, status."""
    from crew.signals import compute_signals

    span = _window(window)
    memory = _memory()
    result = compute_signals(memory.state, memory.vectors, now=datetime.now(UTC), window=span)
    if result.items == 0:
        _nothing(span)
        return
    if not result.narratives:
        out.print(f"No narrative (two or more related stories) in the last {window}.")
        return
    rows = {r.id: r for r in memory.state.window_items(result.window_start, result.window_end)}
    table = Table(title=f"narratives, last {window}", header_style="bold")
    for col in ("status", "label", "stories", "reports", "breadth", "growth", "first seen", "lead story"):
        table.add_column(col, overflow="fold")
    for n in result.narratives:
        lead = rows.get(n.id)
        table.add_row(n.status, n.label, str(n.size), str(n.reports), str(n.clusters), f"×{n.growth:.1f}",
                      _ago(n.first_seen), f"{lead.title}\n[dim]{lead.url}[/dim]" if lead else n.id)
    out.print(table)


@app.command()
def brief(
    topic: Annotated[Optional[str], typer.Option(help="Focus on stories about this.")] = None,  # noqa: UP045
    ticker: Annotated[Optional[str], typer.Option(help="Focus on one ticker, e.g. SOL.")] = None,  # noqa: UP045
    window: WindowOpt = "24h",
    fmt: Annotated[str, typer.Option("--format", "-f", help="x, telegram, markdown or all.")] = "markdown",
    shape: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--shape", help="X form: take (one post) or thread (publish.x_shape by default).")] = None,
) -> None:
    """Write a brief for the window (the analyst crew, or a data brief without a model); save it as a draft."""
    from tapewatch.briefs import write_brief

    if fmt not in ("x", "telegram", "markdown", "all"):
        raise typer.BadParameter("must be x, telegram, markdown or all", param_hint="--format")
    if topic and ticker:
        raise typer.BadParameter("give --topic or --ticker, not both", param_hint="--topic")
    if shape is not None and shape not in ("take", "thread"):
        raise typer.BadParameter("must be take or thread", param_hint="--shape")
    if ticker is not None and not re.fullmatch(r"\$?[A-Za-z][A-Za-z0-9]{0,9}", ticker):
        raise typer.BadParameter("a ticker is 1-10 letters/digits, e.g. SOL", param_hint="--ticker")
    span = _window(window)
    memory = _memory()
    result = write_brief(settings(), memory, now=datetime.now(UTC), window=span,
                         ticker=ticker.lstrip("$") if ticker else None, topic=topic, shape=shape)
    if result.note:
        out.print(f"[yellow]{result.note}[/yellow]", highlight=False)
    draft = result.draft
    if draft is None:
        if result.signals.items == 0:
            _nothing(span)
        else:
            focus = f" about {topic or ticker}" if (topic or ticker) else ""
            out.print(f"Nothing to report{focus} in the last {window} ({result.signals.items} items looked at).")
        return
    _print_draft(draft, fmt)
    if result.crew is not None:
        c = result.crew
        models = ", ".join(sorted(set(draft.meta["models"].values())))
        out.print(f"\nWritten by the analyst crew ({models}): {c.llm_calls} LLM calls, "
                  f"{sum(u.prompt_tokens for u in c.usage):,} prompt + {sum(u.completion_tokens for u in c.usage):,} "
                  f"completion tokens, ${c.cost_usd:.4f}.", highlight=False)
    chart = draft.meta.get("chart")
    if isinstance(chart, dict):
        from tapewatch.charts import chart_file

        out.print(f"\nChart of ${chart.get('ticker')}: {chart_file(settings(), draft.id)} "
                  f"({int(chart.get('bytes', 0)) // 1024} KB)", highlight=False)
    _print_problems(draft)
    out.print(f"\nSaved as draft [bold]{draft.id[:12]}[/bold] ({draft.status}): "
              f"`tapewatch drafts show {draft.id[:12]}`")


def _print_problems(draft: Draft) -> None:
    problems = draft.validation.get("problems") or []
    if draft.validation.get("summary"):
        out.print(f"\ngrounding: {draft.validation['summary']}", highlight=False)
    if not problems:
        return
    out.print(f"\n[red]Flagged: {len(problems)} grounding problem(s); this draft will not be published as is.[/red]")
    for p in problems:
        where = f" ({p.get('where')})" if p.get("where") else ""
        out.print(f"  [red]{p.get('code')}[/red] {p.get('message')}{where}", highlight=False)


def _print_draft(draft: Draft, fmt: str) -> None:
    if fmt in ("markdown", "all"):
        out.print(draft.markdown, markup=False, highlight=False)
    if fmt in ("x", "all"):
        out.print(f"\n[bold]X {draft.meta.get('shape', 'thread')}[/bold]")
        for post in draft.x_thread:
            out.print(post, markup=False, highlight=False)
            out.print("[dim]---[/dim]")
    if fmt in ("telegram", "all"):
        out.print("\n[bold]Telegram (HTML)[/bold]")
        out.print(draft.telegram_html, markup=False, highlight=False)


@app.command()
def chart(
    ticker: Annotated[str, typer.Argument(help="The ticker, e.g. SOL.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where to write the PNG.")] = Path("chart.png"),
    window: WindowOpt = "24h",
) -> None:
    """Draw a ticker's stories and account groups per hour (per 4 h past 2 days) with its stored price line."""
    from crew.chart import draw
    from crew.signals import compute_signals
    from tapewatch.clients import price_history

    if not re.fullmatch(r"\$?[A-Za-z][A-Za-z0-9]{0,9}", ticker):
        raise typer.BadParameter("a ticker is 1-10 letters/digits, e.g. SOL", param_hint="TICKER")
    if out_file.suffix.lower() != ".png":
        raise typer.BadParameter("the chart is a PNG: give a file ending in .png", param_hint="--out")
    span = _window(window)
    memory = _memory()
    now = datetime.now(UTC)
    signals = compute_signals(memory.state, memory.vectors, now=now, window=span)
    data, png, alt = draw(memory.state, price_history(settings(), memory.state), ticker, now=now, window=span,
                          narratives=signals.narratives)
    try:
        out_file.write_bytes(png)
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {out_file}: {exc.strerror}", param_hint="--out") from None
    out.print(f"Wrote {out_file} ({len(png) / 1024:.0f} KB, {data.distinct} stories, "
              f"{len(data.prices)} price snapshots).", highlight=False)
    out.print(f"Alt text: {alt}", markup=False, highlight=False)
