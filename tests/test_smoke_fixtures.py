from __future__ import annotations

import socket
from datetime import UTC, datetime

import httpx
import pytest

from sources.item import Item


def test_non_loopback_connections_are_refused() -> None:
    with pytest.raises(OSError):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(httpx.ConnectError):
        httpx.get("https://example.com/", timeout=1)


def test_feed_server_serves_and_memory_stores(feed_server, memory) -> None:
    from tests.fakes.feed_server import Route

    feed_server.routes["/x"] = Route(body=b"hello")
    assert httpx.get(feed_server.url("/x")).text == "hello"
    now = datetime.now(UTC)
    item = Item(id="a1", kind="news", source="s", url="https://a.example/1", title="Bitcoin rallies",
                text="Bitcoin rallies past resistance", published_at=now, fetched_at=now, tickers=("BTC",))
    assert memory.add([item]).new == 1
    assert memory.add([item]).duplicate == 1
    hits = memory.search("bitcoin rally", 5)
    assert [h.id for h in hits] == ["a1"]
