"""Shared fixtures. No test may reach the network: non-loopback connections fail loudly."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.embedder import HashEmbedder
from tests.fakes.feed_server import FeedServer, serving

FIXTURES = Path(__file__).parent / "fixtures"
FEEDS = FIXTURES / "feeds"

_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise ConnectionRefusedError(f"tests may not connect to {address!r} (only loopback)")
    return _real_connect(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {host!r} (only loopback)")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection or name lookup that is not loopback."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's TAPEWATCH_* variables or tapewatch.toml."""
    import os

    for key in list(os.environ):
        if key.startswith("TAPEWATCH_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TAPEWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A loopback feed server."""
    with serving() as server:
        yield server


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    """The fast embedding stand-in."""
    return HashEmbedder()


@pytest.fixture
def memory(tmp_path: Path, hash_embedder: HashEmbedder) -> Any:
    """A real Memory: embedded Chroma and SQLite in a temp dir, with the fast embedder."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.state import StateDB
    from memory.store import Memory, NearDuplicatePolicy

    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    vectors = ChromaVectors(client, "test-items", hash_embedder.name, hash_embedder.dimension)
    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield Memory(vectors, state, hash_embedder, NearDuplicatePolicy(threshold=0.6))
    state.close()


@pytest.fixture
def cli_memory(tmp_path: Path, hash_embedder: Any) -> Iterator[Any]:
    """A real Memory on the state DB the CLI opens (``TAPEWATCH_DATA_DIR``/state.db)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.state import StateDB
    from memory.store import Memory, NearDuplicatePolicy

    (tmp_path / "data").mkdir(exist_ok=True)
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    state = StateDB(f"sqlite:///{tmp_path / 'data' / 'state.db'}")
    yield Memory(ChromaVectors(client, "content", hash_embedder.name, hash_embedder.dimension), state, hash_embedder,
                 NearDuplicatePolicy(threshold=0.6))
    state.close()
