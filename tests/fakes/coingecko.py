"""A loopback fake of CoinGecko's ``/api/v3/simple/price``, answering in its real JSON shape.

State: ``coins`` (CoinGecko id → price, 24h change, volume, market cap, last update). Behaviour is scripted
with ``fail_next`` (status, headers, a raw body, a delay). Every request is recorded in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer, send_body


@dataclass
class FakeCoin:
    price: float
    change_24h: float | None = None
    volume_24h: float | None = None
    market_cap: float | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Failure:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # raw body; default is CoinGecko's error JSON
    delay_s: float = 0.0


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class FakeCoinGecko(LoopbackServer):
    """Serve a fake CoinGecko API on 127.0.0.1; point ``market.base_url`` at ``base_url``."""

    def __init__(self) -> None:
        self.coins: dict[str, FakeCoin] = {}
        self.failures: list[Failure] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        # base_url is what ``market.base_url`` should be: http://127.0.0.1:PORT/api/v3
        super().__init__(self._handle, methods=("GET",), path="/api/v3")

    def set(self, coin_id: str, price: float, *, change: float | None = None, volume: float | None = None,
            cap: float | None = None, at: datetime | None = None) -> None:
        """Set a coin's market; ``at`` is what CoinGecko reports as last_updated_at."""
        with self._lock:
            self.coins[coin_id] = FakeCoin(price, change, volume, cap, at or datetime.now(UTC))

    def fail_next(self, status: int = 500, *, times: int = 1, **kwargs: object) -> None:
        """Queue ``times`` scripted answers."""
        for _ in range(times):
            self.failures.append(Failure(status, **kwargs))  # type: ignore[arg-type]

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        self.requests.append(Request(parts.path, query, {k.lower(): v for k, v in handler.headers.items()}))
        with self._lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            if failure.delay_s:
                time.sleep(failure.delay_s)
            body = failure.body if failure.body is not None else json.dumps(
                {"status": {"error_code": failure.status, "error_message": "scripted failure"}}).encode()
            self._send(handler, failure.status, body, failure.headers)
            return
        if parts.path != "/api/v3/simple/price":
            self._send(handler, 404, b'{"error":"Not Found"}', {})
            return
        if query.get("vs_currencies") != ["usd"]:
            self._send(handler, 400, b'{"error":"Missing parameter vs_currencies"}', {})
            return
        out: dict[str, dict[str, float | int | None]] = {}
        for coin_id in ",".join(query.get("ids", [""])).split(","):
            coin = self.coins.get(coin_id)
            if coin is None:
                continue  # CoinGecko leaves unknown ids out of the answer
            entry: dict[str, float | int | None] = {"usd": coin.price}
            if query.get("include_market_cap") == ["true"]:
                entry["usd_market_cap"] = coin.market_cap
            if query.get("include_24hr_vol") == ["true"]:
                entry["usd_24h_vol"] = coin.volume_24h
            if query.get("include_24hr_change") == ["true"]:
                entry["usd_24h_change"] = coin.change_24h
            if query.get("include_last_updated_at") == ["true"]:
                entry["last_updated_at"] = int(coin.updated_at.timestamp())
            out[coin_id] = entry
        self._send(handler, 200, json.dumps(out).encode(), {})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        send_body(handler, status, body, headers, "application/json; charset=utf-8")


@contextmanager
def serving_coingecko() -> Iterator[FakeCoinGecko]:
    """A started ``FakeCoinGecko`` for the duration of a ``with`` block."""
    with FakeCoinGecko() as server:
        yield server
