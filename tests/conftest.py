"""Shared fixtures. No test may reach the network: non-loopback connections fail loudly.

The state DB: every test that touches it takes ``state_url``, which runs it once on SQLite and, when
``TAPEWATCH_TEST_DATABASE_URL`` names a PostgreSQL database (``make test`` starts a throwaway cluster for it
when PostgreSQL is installed), once more on a fresh schema of that database, dropped afterwards.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import BACKENDS, TEST_DATABASE_URL, pg_schema_url
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


@pytest.fixture(scope="session")
def minilm_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model dir with both MiniLM graphs, prepared the way a first use without `tapewatch model prepare` does."""
    from memory.minilm_onnx import OnnxMiniLMEmbedder

    where = tmp_path_factory.mktemp("models")
    for variant in ("fp32", "int8"):
        OnnxMiniLMEmbedder(where, variant).embed(["prepared on first use"])  # type: ignore[arg-type]
    return where


def torch_or_skip() -> None:
    """Skip a test of the torch path when the torch extra is not installed (`make install WITH_TORCH=1`)."""
    pytest.importorskip("sentence_transformers", reason="the torch extra is not installed (make install WITH_TORCH=1)")


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
def memory(tmp_path: Path, hash_embedder: HashEmbedder, state_url: str) -> Any:
    """A real Memory: embedded Chroma in a temp dir and the state DB of ``state_url``, with the fast embedder."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.state import StateDB
    from memory.store import Memory, NearDuplicatePolicy

    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    vectors = ChromaVectors(client, "test-items", hash_embedder.name, hash_embedder.dimension)
    state = StateDB(state_url)
    yield Memory(vectors, state, hash_embedder, NearDuplicatePolicy(threshold=0.6))
    state.close()


@pytest.fixture
def cli_memory(tmp_path: Path, hash_embedder: Any, state_url: str) -> Iterator[Any]:
    """A real Memory on the state DB the CLI opens (``TAPEWATCH_DATA_DIR``/state.db, or the test schema)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.state import StateDB
    from memory.store import Memory, NearDuplicatePolicy

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    state = StateDB(state_url)
    yield Memory(ChromaVectors(client, "content", hash_embedder.name, hash_embedder.dimension), state, hash_embedder,
                 NearDuplicatePolicy(threshold=0.6))
    state.close()


_admin: Any = None


def _admin_engine() -> Any:
    """One engine on the test database for creating and dropping schemas (no pool: nothing stays open)."""
    global _admin
    if _admin is None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        _admin = create_engine(TEST_DATABASE_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    return _admin


@pytest.fixture
def fresh_pg_schema() -> Iterator[str]:
    """A new, empty schema on the test PostgreSQL; dropped (with whatever is in it) afterwards."""
    from sqlalchemy import text

    if TEST_DATABASE_URL is None:
        pytest.skip("TAPEWATCH_TEST_DATABASE_URL is not set")
    name = f"t_{uuid.uuid4().hex[:16]}"
    with _admin_engine().connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    yield name
    with _admin_engine().connect() as conn:
        # Whatever the test left connected (a killed child's session, a leaked engine) must not block the drop.
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                     {"name": name})
        conn.execute(text(f"DROP SCHEMA {name} CASCADE"))


@pytest.fixture(params=BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The state DB's URL, once per backend: SQLite at ``TAPEWATCH_DATA_DIR``/state.db (where the CLI looks),
    PostgreSQL a fresh schema (also set as TAPEWATCH_DATABASE_URL, for the CLI run in-process)."""
    if request.param == "sqlite":
        (tmp_path / "data").mkdir(exist_ok=True)
        yield f"sqlite:///{tmp_path / 'data' / 'state.db'}"
        return
    schema_name = request.getfixturevalue("fresh_pg_schema")
    url = pg_schema_url(schema_name)
    monkeypatch.setenv("TAPEWATCH_DATABASE_URL", url)
    yield url

