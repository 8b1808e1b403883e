"""The coin list: parsed from CoinGecko's /coins/list, fetched over a real httpx client, cached, bundled offline."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from sources.coins import CoinDirectory, bundled_coins, fetch_coin_list, load_coins, parse_coin_list
from sources.errors import FeedParseError, FetchError

LIST = [{"id": "bitcoin", "symbol": "btc", "name": "Bitcoin"},
        {"id": "frogcoin-xyz", "symbol": "frogx", "name": "Frogcoin"},
        {"id": "broken", "symbol": "no spaces allowed", "name": "Broken"},
        "not an object"]


def client(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(base_url="https://api.coingecko.example/api/v3/", transport=handler)


def test_fetch_caches_the_list_and_a_failure_keeps_the_old_cache(tmp_path: Path) -> None:
    cache = tmp_path / "coin_list.json"
    ok = httpx.MockTransport(lambda r: httpx.Response(200, json=LIST) if r.url.path.endswith("/coins/list")
                             else httpx.Response(404))
    with client(ok) as c:
        assert fetch_coin_list(c, cache) == 2
    assert {c.symbol for c in load_coins(cache)} == {"BTC", "FROGX"}
    assert "FROGX" in CoinDirectory(load_coins(cache)).symbols
    for failure in (httpx.Response(429, text="slow down"), httpx.Response(200, text="<html>maintenance</html>")):
        with client(httpx.MockTransport(lambda r, f=failure: f)) as c, pytest.raises((FetchError, FeedParseError)):
            fetch_coin_list(c, cache)
        assert {c.symbol for c in load_coins(cache)} == {"BTC", "FROGX"}  # untouched
    big = httpx.MockTransport(lambda r: httpx.Response(200, content=b"[" + b" " * 2000 + b"]"))
    with client(big) as c, pytest.raises(FetchError, match="cap"):
        fetch_coin_list(c, cache, max_bytes=1000)


def test_a_damaged_cache_falls_back_to_the_bundled_snapshot(tmp_path: Path) -> None:
    cache = tmp_path / "coin_list.json"
    cache.write_text("{truncated")
    assert load_coins(cache) == bundled_coins()
    assert len(bundled_coins()) > 100
    with pytest.raises(FeedParseError, match="no usable coin"):
        parse_coin_list(json.dumps([{"id": "x"}]).encode())
