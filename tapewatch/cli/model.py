"""``tapewatch model prepare``: the ONNX graphs of all-MiniLM-L6-v2, made once from the verified weights."""

from __future__ import annotations

from typing import Annotated

import typer

from tapewatch.cli.root import app, out, settings

model_app = typer.Typer(help="The local embedding model: prepare its ONNX graphs.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("prepare")
def prepare(
    all_: Annotated[bool, typer.Option("--all", help="Prepare fp32 and int8, not just the configured one.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Export again even when a prepared graph checks out.")]
    = False,
) -> None:
    """Export the verified safetensors to ONNX (torch, this once), record its sha256 and check it on the probes."""
    from memory.minilm_export import prepare as prepare_variant
    from memory.minilm_onnx import VARIANTS, Variant
    from tapewatch.clients import model_dir

    s = settings()
    where = model_dir(s)
    if all_:
        variants: tuple[Variant, ...] = VARIANTS
    elif s.memory.embedder == "minilm-int8":
        variants = ("int8",)
    else:  # the torch path needs no graph, but a switch to "minilm" should find one ready
        variants = ("fp32",)
    for variant in variants:
        prepared = prepare_variant(where, variant, force=force)
        out.print(f"[green]ok[/green] {variant}: {prepared.path} (sha256 {prepared.sha256[:16]}…), "
                  "checked on the probe texts")
