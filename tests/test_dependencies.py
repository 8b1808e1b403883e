"""The dependency set resolves as pyproject intends: a current tweepy next to crewAI (see the oauthlib note)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest


def _tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".")[:3] if p.isdigit())


@pytest.mark.slow
def test_tweepy_with_x_api_v2_and_crewai_import_together() -> None:
    # crewAI 1.15.27+ wants oauthlib>=4 and tweepy 4.16+ wants oauthlib<4; an unpinned resolver quietly
    # picks tweepy 4.5 (2022), whose Client lacks parts of API v2. Both must import in one interpreter.
    code = ("import tweepy, crewai, oauthlib; "
            "print(tweepy.__version__, crewai.__version__, oauthlib.__version__, hasattr(tweepy, 'Client'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true",
                                 "CREWAI_TRACING_ENABLED": "false"})
    assert result.returncode == 0, result.stderr[-2000:]
    tweepy_v, crewai_v, oauthlib_v, has_client = result.stdout.split()
    assert _tuple(tweepy_v) >= (4, 16) and has_client == "True"
    assert _tuple(oauthlib_v) < (4,)
    assert (1, 15) <= _tuple(crewai_v) < (1, 15, 27)
    assert _tuple(version("tweepy")) == _tuple(tweepy_v)


def _unused_modules() -> list[str]:
    """Top-level modules of the distributions the lock leaves out (the Makefile's UNUSED_DEPS, UNUSED_PULLED)."""
    import re
    from importlib.metadata import packages_distributions
    from pathlib import Path

    from packaging.utils import canonicalize_name

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    names: set[str] = set()
    for var in ("UNUSED_DEPS", "UNUSED_PULLED"):
        match = re.search(rf"^{var} := ((?:.*\\\n)*.*)$", makefile, re.M)
        assert match, var
        names |= {canonicalize_name(n) for n in match[1].replace("\\\n", " ").split()}
    # Installed here or not (`make install` removes them), these are the modules they would provide.
    modules = {"lancedb", "pyarrow", "pdfplumber", "pdfminer", "pypdfium2", "openpyxl", "crewai_cli", "kubernetes",
               "uv", "textual", "lance_namespace", "deprecation", "websocket"}
    modules |= {m for m, dists in packages_distributions().items()
                if any(canonicalize_name(d) in names for d in dists) and not m.startswith("_")}
    return sorted(modules)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ingest_and_a_crew_brief_run_without_what_the_lock_leaves_out(tmp_path: Any, minilm_models: Any) -> None:
    # As in the image, where crewAI's LanceDB, PDF and Excel readers and CLI, and Chroma's kubernetes client are
    # not installed: any import of them fails in the child, and ingest plus a real crewAI brief still succeed.
    import json

    from tests.fakes import crew_replies
    from tests.fakes.llm_server import serving_llm

    blocked = _unused_modules()
    script = (
        "import json, sys\n"
        f"blocked = {blocked!r}\n"
        "for name in blocked:\n"
        "    sys.modules[name] = None\n"
        "from tapewatch.cli import app\n"
        "for args in (['ingest', '--samples', 'always'], ['brief', '--format', 'all']):\n"
        "    try:\n"
        "        app(['--config', sys.argv[1], *args], standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (args, exc.code)\n"
        "print('LOADED=' + json.dumps(['crewai' in sys.modules, 'chromadb' in sys.modules]))\n"
    )
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[memory]\nmodel_dir = "{minilm_models}"\n')
    with serving_llm() as server:
        server.responder = crew_replies.well_behaved
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {
            "COLUMNS": "200", "TAPEWATCH_LLM__MODEL": "openai/fake-model", "TAPEWATCH_LLM__BASE_URL": server.base_url,
            "TAPEWATCH_LLM__TIMEOUT": "5s", "TAPEWATCH_LLM__MAX_RETRIES": "1", "CREWAI_DISABLE_TELEMETRY": "true",
            "OTEL_SDK_DISABLED": "true", "CREWAI_TRACING_ENABLED": "false",
            "CREWAI_STORAGE_DIR": str(tmp_path / "data" / "crewai")}
        done = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True,
                              timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert {"lancedb", "pyarrow", "kubernetes", "crewai_cli"} <= set(blocked)
    assert "Written by the analyst crew (openai/fake-model)" in done.stdout
    assert json.loads(done.stdout.rsplit("LOADED=", 1)[1]) == [True, True]
