"""CLI for market data: ``tapewatch prices``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tapewatch.cli.root import _ago, app, out, settings
from tapewatch.settings import format_duration


@app.command()
def prices(
    tickers: Annotated[list[str], typer.Argument(help="Tickers to show (default: the whole watchlist).")] = [],  # noqa: B006
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch fresh prices from CoinGecko first.")] = False,
) -> None:
    """The latest stored price snapshot of each ticker, and how old it is."""
    from tapewatch.jobs import Runtime

    s = settings()
    runtime = Runtime(s)
    try:
        if refresh:
            outcome = runtime.ingest_prices()
            if outcome.status != "ok":
                out.print(f"[yellow]CoinGecko: {outcome.status}: {outcome.error}[/yellow]", highlight=False)
        wanted = [t.upper().lstrip("$") for t in tickers] or list(s.watchlist)
        latest = runtime.prices.latest_all(wanted)
    finally:
        runtime.close()
    if not latest:
        out.print("No price snapshots yet. `tapewatch run` fetches them every "
                  f"{format_duration(s.market.interval)}, `tapewatch prices --refresh` once now.")
        return
    table = Table(header_style="bold")
    for col in ("ticker", "price", "24h", "volume 24h", "market cap", "observed", "source"):
        table.add_column(col, justify="left" if col in ("ticker", "observed", "source") else "right")
    for ticker in wanted:
        snap = latest.get(ticker)
        if snap is None:
            table.add_row(ticker, "—", "", "", "", "no snapshot", "")
            continue
        change = f"{snap.change_24h_pct:+.2f}%" if snap.change_24h_pct is not None else "—"
        table.add_row(ticker, usd(snap.price_usd), change, _big(snap.volume_24h_usd), _big(snap.market_cap_usd),
                      _ago(snap.observed_at), snap.source)
    out.print(table)


@app.command("coins")
def coins(
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch CoinGecko's coin list and cache it.")] = False,
) -> None:
    """The coin list grounding uses to recognise tickers written without $ (cached, or the bundled snapshot)."""
    from sources.coins import CoinDirectory, fetch_coin_list, load_coins
    from tapewatch.clients import coin_list_path, coingecko_client

    s = settings()
    cache = coin_list_path(s)
    if refresh:
        with coingecko_client(s) as client:
            count = fetch_coin_list(client, cache)
        out.print(f"Fetched CoinGecko's coin list: {count} coins, cached at {cache}.", highlight=False)
    directory = CoinDirectory(load_coins(cache))
    where = (f"cached at {cache}" if cache.is_file()
             else "the bundled snapshot (`tapewatch coins --refresh` fetches the full list)")
    out.print(f"{len(directory.symbols)} symbols and {len(directory.names)} names, from {where}.", highlight=False)


def usd(value: float) -> str:
    """$97,950 / $213.20 / $0.3800: more digits for cheaper coins."""
    if value >= 1000:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.4g}" if value < 0.0001 else f"${value:.4f}"


def _big(value: float | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if value >= size:
            return f"${value / size:.2f}{unit}"
    return f"${value:,.0f}"
