"""``tapewatch memory``: what memory holds, whether every item is still searchable, ``memory repair`` and
``memory reembed``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sources.errors import StoreError
from tapewatch.cli.root import _ago, _memory, app, err, out, settings

if TYPE_CHECKING:
    from memory.state import StateDB

memory_app = typer.Typer(help="What memory holds; `memory repair` re-embeds items whose vectors are missing; "
                              "`memory reembed` re-embeds everything with the configured embedder.",
                         invoke_without_command=True)
app.add_typer(memory_app, name="memory")


def vector_health_line(state: StateDB) -> str | None:
    """A warning line when stored items lack vectors (or the store cannot be read), else None."""
    if state.stats().items == 0:
        return None
    from tapewatch.clients import open_memory

    try:
        health = open_memory(settings(), state=state).vector_health()
    except StoreError as exc:
        return f"[red]vector store unavailable:[/red] {exc}"
    return None if health.ok else f"[red]{health.summary()}[/red]"


@memory_app.callback()
def memory_show(
    ctx: typer.Context,
    latest: Annotated[int, typer.Option("--latest", help="How many recent stories to list.")] = 10,
) -> None:
    """What memory holds: totals, sources, top tickers of the last 24h and the latest stories."""
    if ctx.invoked_subcommand is not None:
        return
    from tapewatch.clients import open_state

    state = open_state(settings())
    day_ago = datetime.now(UTC) - timedelta(hours=24)
    stats = state.stats(ticker_since=day_ago)
    if stats.items == 0:
        out.print("Memory is empty. Run `tapewatch ingest` to fill it.")
        return
    out.print(
        f"[bold]{stats.items}[/bold] items in memory: {stats.stories} stories, "
        f"{stats.near_duplicates} near-duplicate reports linked to them; "
        f"published {_ago(stats.oldest)} to {_ago(stats.newest)}."
    )
    if warning := vector_health_line(state):
        out.print(warning)
    by = Table(title="by source", header_style="bold")
    by.add_column("source")
    by.add_column("items", justify="right")
    for name, n in sorted(stats.by_source.items(), key=lambda kv: -kv[1]):
        by.add_row(name, str(n))
    out.print(by)
    if stats.top_tickers:
        out.print("Most mentioned in the last 24h: " + ", ".join(f"{t} ({n})" for t, n in stats.top_tickers))
    rows = state.latest_stories(latest)
    sizes = state.story_sizes(r.id for r in rows)
    table = Table(title="latest stories", header_style="bold")
    for col in ("published", "source", "tickers", "title", "also reported by"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(_ago(r.published_at), r.source, r.tickers, r.title, str(sizes.get(r.id, 1) - 1 or ""))
    out.print(table)


@memory_app.command("repair")
def memory_repair() -> None:
    """Re-embed, from the stored rows' text, every item that has no vector (a lost or replaced vector store)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    memory = _memory()
    with Progress(
        TextColumn("[bold]re-embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as progress:
        task = progress.add_task("repair", total=None)
        result = memory.repair(lambda done, total: progress.update(task, completed=done, total=total))
    if result.missing == 0:
        out.print(f"All {result.checked} items have their vectors; nothing to repair.")
        return
    out.print(f"Re-embedded {result.restored} of {result.checked} items that had no vector; search finds them again.")


@memory_app.command("reembed")
def memory_reembed(
    batch: Annotated[int, typer.Option("--batch", min=1, max=4096, help="Items embedded and stored per step.")] = 256,
) -> None:
    """Re-embed every stored item with the configured memory.embedder; resumable after a kill (progress is in the
    state DB), and the collection switches to the new embedder only when every item is done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from memory.deadline import Deadline
    from memory.reembed import pending, reembed
    from tapewatch.clients import chroma_client, embedder, open_state

    s = settings()
    state = open_state(s)
    chosen = embedder(s)
    collection = s.memory.collection
    if (row := pending(state, collection)) is not None and row.embedder == chosen.name:
        out.print(f"Resuming the reembed of {collection!r} with {row.embedder}: {row.done} of {row.total} items "
                  "were done.")
    with Progress(
        TextColumn(f"[bold]re-embedding with {chosen.name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=err, transient=True,
    ) as progress:
        task = progress.add_task("reembed", total=None)
        result = reembed(chroma_client(s), state, collection, chosen, batch=batch,
                         deadline=Deadline(s.memory.store_timeout.total_seconds()),
                         progress=lambda done, total: progress.update(task, completed=done, total=total))
    if not result.needed:
        out.print(f"Memory ({result.items} items) is already embedded with {result.embedder}; nothing to do.")
        return
    out.print(f"Re-embedded {result.items} items with {result.embedder} (was {result.previous}); "
              f"{result.embedded} embedded by this run. The collection now records {result.embedder}.")
