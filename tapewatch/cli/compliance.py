"""CLI: ``tapewatch compliance check`` and ``tapewatch compliance profiles``: the compliance profiles as data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sources.errors import ConfigError
from tapewatch.cli.root import app, out, settings

compliance_app = typer.Typer(help="Compliance profiles per channel and jurisdiction.", no_args_is_help=True)
app.add_typer(compliance_app, name="compliance")
MAX_FILE = 1_000_000  # characters; a brief is a few thousand


@compliance_app.command("check")
def compliance_check(
    profile: Annotated[list[str], typer.Option("--profile", "-p", help="A profile to check against (repeatable).")],
    text: Annotated[Optional[str], typer.Option("--text", "-t", help="The text to check.")] = None,  # noqa: UP045
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="A file holding the text.")] = None,  # noqa: UP045
) -> None:
    """Print each problem the profiles find in a text, with its rule and source; exit 1 if there is any."""
    from crew.profiles import check_profiles, resolve

    if (text is None) == (file is None):
        raise typer.BadParameter("give exactly one of --text or --file", param_hint="--text / --file")
    body = text if text is not None else _read(file)  # type: ignore[arg-type]
    chosen = resolve(profile, settings().compliance.profiles_dir)
    problems = check_profiles(body, "text", chosen)
    for p in problems:
        out.print(f"[red]{p.action}[/red] {p.profile}/{p.rule}: {_plain(p.message)}", highlight=False, soft_wrap=True)
        out.print(f"  source: {_plain(p.source)}", highlight=False, soft_wrap=True)
    names = ", ".join(p.name for p in chosen)
    if problems:
        blocks = sum(p.blocks for p in problems)
        out.print(f"{len(problems)} problem(s) under {names}: {blocks} block the channel, "
                  f"{len(problems) - blocks} need an override", highlight=False)
        raise typer.Exit(1)
    out.print(f"[green]ok[/green]: nothing under {names}", highlight=False)


@compliance_app.command("profiles")
def compliance_profiles(
    name: Annotated[Optional[str], typer.Argument(help="Show one profile's rules only.")] = None,  # noqa: UP045
) -> None:
    """List the profiles, which channel uses each, and their rules with action and source."""
    from crew.profiles import profiles, resolve

    s = settings()
    known = profiles(s.compliance.profiles_dir)
    chosen = resolve([name], s.compliance.profiles_dir) if name else tuple(known.values())
    for prof in chosen:
        used = [c for c, names in s.compliance.channels.items() if prof.name in names]
        out.print(f"[bold]{prof.name}[/bold] · {_plain(prof.title)} · {prof.path} · channels: "
                  f"{', '.join(used) or 'none'}", highlight=False, soft_wrap=True)
        if prof.notes:
            out.print(f"  {_plain(prof.notes)}", highlight=False, soft_wrap=True)
        table = Table(header_style="bold", show_lines=False)
        for col in ("rule", "kind", "action", "source", "examples"):
            table.add_column(col, overflow="fold")
        for w in prof.required:
            table.add_row(w.id, "required wording", w.action, w.source.cite(), ", ".join(sorted(w.texts)))
        for f in prof.rules:
            table.add_row(f.id, f.kind, f.action, f.source.cite(),
                          f"{len(f.must_catch)} catch / {len(f.must_not_catch)} pass")
        out.print(table)
    out.print("These profiles are starting points, not legal advice.", highlight=False)


def _read(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as fh:
            body = fh.read(MAX_FILE + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if len(body) > MAX_FILE:
        raise ConfigError(f"{path} is over {MAX_FILE:,} characters; a brief is far shorter")
    return body


def _plain(text: str) -> str:
    from rich.markup import escape

    return escape(" ".join(text.split()))
