"""A crew run that fails ends in the project's one-line ``LLMError`` with a hint, and nothing else on stderr:
no crewAI ERROR line for a 401, no pydantic ValidationError or serializer warnings for a model that keeps
calling tools, no ``AttributeError … 'choices'`` for an event-stream body. Real crewAI, the fake LLM server."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sources.errors import LLMError
from tests.crew_support import crew_settings, llm_server_fixture, run_brief, sample_memory_fixture  # noqa: F401
from tests.fakes import crew_replies
from tests.fakes.llm_server import LLMServer, Reply
from tests.test_secret_redaction import restore_logging  # noqa: F401  (fixture)


def unauthorised(server: LLMServer) -> None:
    server.script(None, *[Reply.fail(401, "Incorrect API key provided: sk-wrong")] * 5)


def tool_obsessed(server: LLMServer) -> None:
    server.always_call_tool("search_memory", query="more about bitcoin")


def event_stream(server: LLMServer) -> None:
    server.responder = lambda body: Reply(sse=True, content=crew_replies.well_behaved(body).content)


CASES: dict[str, tuple[Callable[[LLMServer], None], str]] = {
    "401": (unauthorised, r"refused the API key \(HTTP 401\); set TAPEWATCH_LLM_API_KEY"),
    "tool-loop": (tool_obsessed, r"an agent kept calling tools after llm.max_iter \(2\) rounds and never wrote its "
                                 r"answer; use a model that follows tool-use instructions, or raise llm.max_iter"),
    "sse": (event_stream, r"answered with something that is not a chat completion \(such as a text/event-stream "
                          r"body .*OpenAI-compatible /v1 endpoint"),
}


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["WARNING", "DEBUG"])
def test_crewai_log_records_show_only_when_debugging(level: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tapewatch import logs

    logs.configure(level)
    for name in ("crewai.flow.runtime", "crewai_core.settings"):
        logging.getLogger(name).error("Error executing listener call_llm_native_tools: Error code: 401")
    logging.getLogger("tapewatch.briefs").error("a line of our own")
    err = capsys.readouterr().err
    assert "a line of our own" in err
    assert err.count("Error executing listener") == (2 if level == "DEBUG" else 0)


def test_the_event_stream_mode_answers_a_plain_request_with_chunks(llm_server: LLMServer) -> None:
    import httpx

    llm_server.script(None, Reply(sse=True, content="hello"))
    answer = httpx.post(llm_server.base_url + "/chat/completions", json={"model": "m", "messages": []})
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.text.startswith("data: {") and answer.text.endswith("data: [DONE]\n\n")
    assert '"delta": {"role": "assistant", "content": "hello"}' in answer.text


@pytest.mark.parametrize("case", list(CASES))
def test_each_failure_is_one_llm_error_with_a_hint(case: str, llm_server: LLMServer, sample_memory: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    script, expected = CASES[case]
    settings = crew_settings(monkeypatch, llm_server, max_retries="0", max_iter="2")
    script(llm_server)
    with pytest.raises(LLMError, match=expected) as caught:
        run_brief(settings, sample_memory)
    assert "\n" not in str(caught.value) and "Error:" not in str(caught.value)  # no raw exception text


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the bundled sample day, ingested once by the real CLI (real MiniLM)."""
    data = tmp_path_factory.mktemp("ingested") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {"TAPEWATCH_DATA_DIR": str(data)}
    proc = subprocess.run([sys.executable, "-m", "tapewatch", "ingest", "--samples", "always"], capture_output=True,
                          text=True, env=env, timeout=240, cwd=data.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return data


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_cli_prints_exactly_one_line(case: str, ingested: Path, llm_server: LLMServer, tmp_path: Path) -> None:
    script, expected = CASES[case]
    data = tmp_path / "data"
    shutil.copytree(ingested, data)
    script(llm_server)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {
        "TAPEWATCH_DATA_DIR": str(data), "TAPEWATCH_LLM__MODEL": "openai/fake-model",
        "TAPEWATCH_LLM__BASE_URL": llm_server.base_url, "TAPEWATCH_LLM_API_KEY": "sk-test-key-0123456789",
        "TAPEWATCH_LLM__MAX_RETRIES": "0", "TAPEWATCH_LLM__MAX_ITER": "2", "TAPEWATCH_LLM__TIMEOUT": "5s",
        # Narrow: a long error must not be wrapped onto a second line.
        "COLUMNS": "60", "HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "tapewatch", "brief"], capture_output=True, text=True, env=env,
                          timeout=240, cwd=tmp_path)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in proc.stdout and "ERROR" not in proc.stdout
    # crewAI keeps its task log under the data dir (CREWAI_STORAGE_DIR) and its settings under $HOME: the
    # image sets HOME=/data/home so both stay on the data volume.
    assert (data / "crewai").is_dir() and (home / ".config" / "crewai").is_dir()
