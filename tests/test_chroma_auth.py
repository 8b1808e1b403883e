"""A Chroma server that requires a token (Chroma's own token auth, as compose runs it): tapewatch works with
``TAPEWATCH_CHROMA_TOKEN`` and fails with one clear line without it or with a wrong one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sources.errors import StoreError
from sources.item import Item, item_id_for_url
from tapewatch.clients import open_memory
from tapewatch.settings import load_settings, masked_dump
from tests.test_chroma_server import free_port
from tests.test_docker_files import chroma_serve_script

pytestmark = pytest.mark.slow

TOKEN = "chroma-test-token-7f3a9c"


def serve(tmp: Path, token: str, port: int) -> subprocess.Popen[str]:
    """The chroma-server image's own entry script (read from the Dockerfile), run here without Docker."""
    script = tmp / "chroma-serve"
    script.write_text(chroma_serve_script())
    token_file = tmp / "chroma_token"
    token_file.write_text(token)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAPEWATCH_", "CHROMA_"))} | {
        # What the Dockerfile's chroma-server stage sets, with loopback and a free port instead of 0.0.0.0:8000.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "IS_PERSISTENT": "TRUE", "PERSIST_DIRECTORY": str(tmp / "data"), "ANONYMIZED_TELEMETRY": "False",
        "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
        "CHROMA_TOKEN_FILE": str(token_file), "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port),
    }
    return subprocess.Popen(["sh", str(script)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture(scope="module")
def chroma_with_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Chroma's Python server (FastAPI under uvicorn) with TokenAuthenticationServerProvider on loopback."""
    pytest.importorskip("fastapi", reason="Chroma's auth-capable server needs fastapi (the dev extra has it)")
    port = free_port()
    # A secrets file as editors leave it, with a trailing newline: not part of the token.
    proc = serve(tmp_path_factory.mktemp("chroma-auth"), TOKEN + "\n", port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail(f"chroma server did not start: {proc.stderr.read() if proc.stderr else ''}")
        # The server really does refuse a request without the token.
        assert httpx.get(f"{url}/api/v2/tenants/default_tenant/databases/default_database/collections").status_code \
            in (401, 403)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_server_will_not_start_without_a_token(tmp_path: Path) -> None:
    proc = serve(tmp_path, "", free_port())
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "refusing to start without auth" in err


def test_memory_works_with_the_token(chroma_with_token: str, monkeypatch: pytest.MonkeyPatch,
                                     hash_embedder: object) -> None:
    monkeypatch.setenv("TAPEWATCH_MEMORY__CHROMA_URL", chroma_with_token)
    monkeypatch.setenv("TAPEWATCH_CHROMA_TOKEN", TOKEN)
    memory = open_memory(load_settings(None), embed=hash_embedder)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    item = Item(id=item_id_for_url("https://w.example/auth"), kind="news", source="w", url="https://w.example/auth",
                title="Bitcoin miners sell reserves", text="Bitcoin miners sell reserves", published_at=now,
                fetched_at=now, tickers=("BTC",))
    assert memory.add([item]).new == 1
    assert [h.title for h in memory.search("bitcoin miners", 1)] == ["Bitcoin miners sell reserves"]


@pytest.mark.parametrize("token", [None, "not-the-token-000"])
def test_without_the_right_token_it_is_one_clear_error(chroma_with_token: str, monkeypatch: pytest.MonkeyPatch,
                                                       hash_embedder: object, token: str | None) -> None:
    monkeypatch.setenv("TAPEWATCH_MEMORY__CHROMA_URL", chroma_with_token)
    if token:
        monkeypatch.setenv("TAPEWATCH_CHROMA_TOKEN", token)
    with pytest.raises(StoreError, match=r"the Chroma server at http://127\.0\.0\.1:\d+ refused .*set "
                                         r"TAPEWATCH_CHROMA_TOKEN") as caught:
        open_memory(load_settings(None), embed=hash_embedder)  # type: ignore[arg-type]
    assert "not-the-token" not in str(caught.value)


def test_the_cli_with_and_without_the_token(chroma_with_token: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {
        "TAPEWATCH_DATA_DIR": str(tmp_path / "data"), "TAPEWATCH_MEMORY__CHROMA_URL": chroma_with_token,
        "TAPEWATCH_MEMORY__COLLECTION": "cli-items",
        "COLUMNS": "60"}
    refused = subprocess.run([sys.executable, "-m", "tapewatch", "search", "bitcoin"], capture_output=True, text=True,
                             env=env, timeout=180, cwd=tmp_path)
    assert refused.returncode == 2
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith("error: the Chroma server at") and "TAPEWATCH_CHROMA_TOKEN" in refused.stderr
    ok = subprocess.run([sys.executable, "-m", "tapewatch", "search", "bitcoin"], capture_output=True, text=True,
                        env=env | {"TAPEWATCH_CHROMA_TOKEN": TOKEN}, timeout=180, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "No matching items" in ok.stdout


def test_config_check_masks_credentials_in_the_chroma_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPEWATCH_MEMORY__CHROMA_URL", "https://desk:s3cret-pass@chroma.example:8443/?token=abc123xyz")
    monkeypatch.setenv("TAPEWATCH_CHROMA_TOKEN", TOKEN)
    data = masked_dump(load_settings(None))
    assert data["memory"]["chroma_url"] == "https://desk:***@chroma.example:8443/?token=***"
    assert data["chroma_token"] == "********"
    env = {k: v for k, v in os.environ.items()}
    for args in (["config", "check"], ["config", "check", "--json"]):
        shown = subprocess.run([sys.executable, "-m", "tapewatch", *args], capture_output=True, text=True, env=env,
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout + shown.stderr
        assert "chroma.example" in text
        assert "s3cret-pass" not in text and "abc123xyz" not in text and TOKEN not in text
