"""``tapewatch llm check``: what the configured model server supports and how fast it is, remembered for runs."""

from __future__ import annotations

import typer
from rich.table import Table

from tapewatch.cli.root import app, out, settings

llm_app = typer.Typer(help="The language model server: what it supports and how fast it is.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")

_DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "ollama": "http://localhost:11434/v1",
                 "ollama_chat": "http://localhost:11434/v1", "hosted_vllm": "http://localhost:8000/v1"}


@llm_app.command("check")
def check() -> None:
    """Probe the researcher's model server: structured output, tools, prompt and generation speed."""
    import httpx

    from crew.servercheck import CheckFailed, check_server
    from sources.errors import ConfigError, LLMError
    from tapewatch.clients import NO_MODEL, crew_enabled, request_timeout, server_key, server_memory

    s = settings()
    if not crew_enabled(s):
        raise ConfigError(NO_MODEL)
    model = str(s.llm.model_for("researcher"))
    provider, _, name = model.partition("/") if "/" in model else ("openai", "", model)
    base_url = s.llm.base_url or _DEFAULT_URLS.get(provider.lower())
    if base_url is None:
        raise ConfigError(f"tapewatch llm check needs llm.base_url for a {provider}/… model")
    headers = {"authorization": f"Bearer {s.llm_api_key.get_secret_value()}"} if s.llm_api_key else {}
    timeout = s.llm.request_timeout().total_seconds()
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
            report = check_server(client, base_url, name, headers)
    except CheckFailed as exc:
        raise LLMError(f"tapewatch llm check: {exc}") from exc
    servers = server_memory(s)
    servers.update(server_key(s, model), model, structured=report.structured, tools=report.tools,
                   prompt_tps=report.prompt_tps, gen_tps=report.gen_tps,
                   note="; ".join(report.notes) or "checked: everything accepted")
    used = request_timeout(s, servers, model)
    table = Table(title=f"{model} at {base_url}", header_style="bold", show_header=False)
    table.add_column("what")
    table.add_column("found")
    table.add_row("structured output", report.structured + ("" if report.structured == "json_schema" else
                                                          " (json_schema refused)"))
    table.add_row("tools", "yes" if report.tools else "no: the researcher's lookups are pre-fetched")
    table.add_row("prompt speed", _rate(report.prompt_tps))
    table.add_row("generation speed", _rate(report.gen_tps))
    table.add_row("speed request", f"{report.prompt_tokens} prompt + {report.completion_tokens} completion tokens "
                  f"in {report.seconds:.1f}s")
    table.add_row("request timeout", f"{used:.0f}s" + (" (llm.timeout)" if s.llm.timeout is not None
                                                       else " (from the measured speed)" if report.gen_tps
                                                       else " (default)"))
    out.print(table)
    for note in report.notes:
        out.print(f"[dim]{note}[/dim]", highlight=False)
    from crew.llmserver import MODES

    wanted = s.llm.structured_output if s.llm.json_schema else "prompt"
    if wanted != "auto" and MODES.index(wanted) < MODES.index(report.structured):
        out.print(f"[yellow]llm.structured_output = {wanted!r} will be refused: set it to "
                  f"\"auto\" or {report.structured!r}[/yellow]", highlight=False)
    out.print("Remembered in the state DB: crew runs use these from now on.")


def _rate(tps: float | None) -> str:
    return f"{tps:,.1f} tokens/s" if tps else "not measured (the server did not stream)"
