"""CLI for the web desk: ``tapewatch web [--host] [--port]``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tapewatch.cli.root import app, out, settings


@app.command()
def web(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default: web.host).")] = None,  # noqa: UP045
    port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="Port (default: web.port).")] = None,  # noqa: UP045
    workers: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, max=64, help="Processes serving the port (default: web.workers; one per core for a busy desk).")] = None,
) -> None:
    """Serve the public archive and the review desk (put a TLS reverse proxy in front of it)."""
    import asyncio

    from memory.accounts import Accounts
    from tapewatch.clients import open_state
    from tapewatch.web.service import serve_until_signalled, server
    from tapewatch.web.workers import bind, serve_workers, standalone_app

    s = settings()
    count = workers or s.web.workers
    if not Accounts(open_state(s)).list():
        out.print("[yellow]No desk accounts yet: create the first admin with[/yellow] "
                  "tapewatch users add NAME --role admin --password-stdin", highlight=False)
    if count == 1:
        srv = server(standalone_app(s), s, host=host, port=port)
        out.print(f"Serving on http://{srv.config.host}:{srv.config.port}/ (the desk at /desk); Ctrl-C stops.",
                  highlight=False)
        asyncio.run(serve_until_signalled(srv))
    else:
        sock = bind(s, host, port)
        where = sock.getsockname()
        out.print(f"Serving on http://{where[0]}:{where[1]}/ (the desk at /desk) with {count} worker processes; "
                  "Ctrl-C stops.", highlight=False)
        serve_workers(s, sock, count)
    out.print("Stopped.")
