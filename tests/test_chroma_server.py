"""The same memory code against a Chroma server (``chroma run`` on loopback) via HttpClient."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sources.errors import ConfigError, StoreError
from sources.item import Item, item_id_for_url
from tapewatch.clients import open_memory
from tapewatch.settings import load_settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("the chroma CLI should be installed with chromadb")
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "srv"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("chroma server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_memory_works_against_a_chroma_server(chroma_server: str, monkeypatch: pytest.MonkeyPatch,
                                              hash_embedder) -> None:
    monkeypatch.setenv("TAPEWATCH_MEMORY__CHROMA_URL", chroma_server)
    memory = open_memory(load_settings(None), embed=hash_embedder)
    now = datetime.now(UTC)
    items = [
        Item(id=item_id_for_url(f"https://w.example/{i}"), kind="news", source="w", url=f"https://w.example/{i}",
             title=title, text=title, published_at=now, fetched_at=now, tickers=tickers)
        for i, (title, tickers) in enumerate([("Bitcoin hashrate record", ("BTC",)),
                                              ("Solana fee market change", ("SOL",))])
    ]
    assert memory.add(items).new == 2
    assert memory.add(items).duplicate == 2
    assert [h.title for h in memory.search("solana fees", 1, tickers=["SOL"])] == ["Solana fee market change"]
    assert memory.vectors.count() == 2


def test_unreachable_or_malformed_server_urls_are_clear_errors(monkeypatch: pytest.MonkeyPatch,
                                                               hash_embedder) -> None:
    monkeypatch.setenv("TAPEWATCH_MEMORY__CHROMA_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreError, match="vector store"):
        open_memory(load_settings(None), embed=hash_embedder)
    monkeypatch.setenv("TAPEWATCH_MEMORY__CHROMA_URL", "chroma:8000")
    with pytest.raises(ConfigError, match="chroma_url"):
        open_memory(load_settings(None), embed=hash_embedder)
