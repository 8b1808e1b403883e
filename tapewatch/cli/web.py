"""CLI for the web desk: ``tapewatch web [--host] [--port]``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tapewatch.cli.root import app, out, settings


@app.command()
def web(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default: web.host).")] = None,  # noqa: UP045
    port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="Port (default: web.port).")] = None,  # noqa: UP045
) -> None:
    """Serve the public archive and the review desk (put a TLS reverse proxy in front of it)."""
    import asyncio

    from memory.accounts import Accounts
    from tapewatch.clients import open_memory, open_state
    from tapewatch.web.app import build_app
    from tapewatch.web.service import serve_until_signalled, server, standalone_deps

    s = settings()
    state = open_state(s)
    opened: list[object] = []

    def memory() -> object:
        if not opened:
            opened.append(open_memory(s))
        return opened[0]

    if not Accounts(state).list():
        out.print("[yellow]No desk accounts yet: create the first admin with[/yellow] "
                  "tapewatch users add NAME --role admin --password-stdin", highlight=False)
    srv = server(build_app(standalone_deps(s, state, memory)), s, host=host, port=port)
    out.print(f"Serving on http://{srv.config.host}:{srv.config.port}/ (the desk at /desk); Ctrl-C stops.",
              highlight=False)
    asyncio.run(serve_until_signalled(srv))
    out.print("Stopped.")
