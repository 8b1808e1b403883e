"""The model server adapter and `tapewatch llm check` (issue 18): what counts as a local server, refusals met once,
no retry queued behind a one-at-a-time server, capabilities and speed probed and remembered, "local" costs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from memory.costs import CostLedger
from memory.llmservers import ServerMemory
from tests.fakes.llm_server import PROFILES, Reply, serving_llm


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:8080/v1", True), ("http://localhost:11434", True), ("http://[::1]:8000/v1", True),
    ("http://192.168.1.20:8000/v1", True), ("http://10.0.0.5/v1", True), ("http://172.20.0.3:8080/v1", True),
    ("http://ollama:11434/v1", True), ("http://gpu-box.local:8000/v1", True), ("http://vllm.internal/v1", True),
    ("https://api.openai.com/v1", False), ("https://openrouter.ai/api/v1", False), ("http://8.8.8.8/v1", False),
    ("https://llm.example.com/v1", False),
])
def test_what_counts_as_a_local_server(url: str, local: bool) -> None:
    from crew.costs import is_local_server

    assert is_local_server(url) is local


def test_costs_says_local_for_a_free_local_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from memory.costs import CostEntry
    from memory.state import StateDB
    from tapewatch.cli import app

    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    CostLedger(state).record([CostEntry(at=datetime.now(UTC), run_id="r1", agent="writer", model="openai/gemma-3",
                                        calls=3, prompt_tokens=9000, completion_tokens=700, cost_usd=0.0)])
    monkeypatch.setattr("tapewatch.clients.open_state", lambda _settings: state)
    monkeypatch.setenv("TAPEWATCH_LLM__MODEL", "openai/gemma-3")
    monkeypatch.setenv("TAPEWATCH_LLM__BASE_URL", "http://127.0.0.1:8080/v1")
    result = CliRunner().invoke(app, ["costs"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "openai/gemma-3" in line and "9,000" in line)
    assert "local" in row and "0.0000" not in row
    assert "runs on a local server" in result.output and "llm.default_price" not in result.output
    # Priced in llm.prices, the same model is charged and shown in dollars.
    monkeypatch.setenv("TAPEWATCH_LLM__PRICES", '{"openai/gemma-3": {"prompt": 0.1, "completion": 0.1}}')
    from tapewatch.settings import load_settings

    assert load_settings(None).llm.price_of("openai/gemma-3").prompt == 0.1


def _check_responder(body: dict[str, Any]) -> Reply:
    """A model answering `tapewatch llm check`'s probes: a sentence, the JSON asked for, the tool call named."""
    if body.get("tools"):
        return Reply.tool("record_word", word="tape")
    if body.get("response_format"):
        return Reply.json({"ok": True})
    return Reply(content=" ".join(["Funds took in money while ether traded flat."] * 6))


@pytest.mark.parametrize(("name", "structured", "tools"), [("llama-cpp", "json_object", False),
                                                         ("ollama", "json_schema", True)])
def test_llm_check_reports_what_the_server_supports_and_runs_use_it(
        name: str, structured: str, tools: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from typer.testing import CliRunner

    from tapewatch import clients
    from tapewatch.cli import app
    from tapewatch.settings import load_settings

    # Behaviour from the family's profile; speeds slow enough that the two phases take ~0.4 s each to time.
    profile = replace(PROFILES[name], prompt_tps=600.0, gen_tps=100.0, time_scale=1.0, overhead_s=0.0)
    with serving_llm(profile=profile) as server:
        server.responder = _check_responder
        monkeypatch.setenv("TAPEWATCH_LLM__MODEL", "openai/gemma-3-270m")
        monkeypatch.setenv("TAPEWATCH_LLM__BASE_URL", server.base_url)
        result = CliRunner().invoke(app, ["llm", "check"])
    assert result.exit_code == 0, result.output
    assert structured in result.output and "prompt speed" in result.output
    assert ("pre-fetched" in result.output) is not tools
    settings = load_settings(None)
    known = clients.server_memory(settings).get(server.base_url, "openai/gemma-3-270m")
    assert known.structured == structured and known.tools is tools
    # Time to the first token is the prompt's; the rest is the generation's (a loaded machine adds a little).
    assert known.prompt_tps == pytest.approx(profile.prompt_tps, rel=0.5)
    assert known.gen_tps == pytest.approx(profile.gen_tps, rel=0.5)
    assert len(server.requests) == 3 + (structured == "json_object")  # speed, format(s), tools
    setup = clients.crew_setup(settings, clients.crew_llms(settings))
    assert setup.tools is tools


def test_llm_check_on_an_unreachable_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    with serving_llm() as server:
        url = server.base_url
    env = {"TAPEWATCH_LLM__MODEL": "openai/gemma", "TAPEWATCH_LLM__BASE_URL": url, "TAPEWATCH_LLM__TIMEOUT": "2s"}
    import os

    done = subprocess.run([sys.executable, "-m", "tapewatch", "llm", "check"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "tapewatch llm check: cannot reach" in lines[0]


def _adapter(tmp_path: Any, handler: Any, *, local: bool) -> tuple[Any, Any, ServerMemory]:
    import httpx

    from crew.llmserver import ServerAdapter
    from crew.outputs import FactSheet
    from memory.state import StateDB

    servers = ServerMemory(StateDB(f"sqlite:///{tmp_path / 'state.db'}"))
    adapter = ServerAdapter(httpx.MockTransport(handler), base_url="http://10.0.0.5:8080/v1", model="openai/m",
                            schema=FactSheet, store=servers, local=local)
    return adapter, httpx.Client(transport=adapter), servers


@pytest.mark.parametrize("local", [True, False])
def test_a_timed_out_request_is_resent_only_to_a_remote_server(local: bool, tmp_path: Any) -> None:
    import httpx

    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(int(request.headers.get("x-stainless-retry-count", "0")))
        if len(sent) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "{}"}}]})

    _, client, _ = _adapter(tmp_path, handler, local=local)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(httpx.ReadTimeout):
        client.post("http://10.0.0.5:8080/v1/chat/completions", json=body)
    retry = {"x-stainless-retry-count": "1"}
    if local:  # the server is still on the first request: the retry is not queued behind it
        with pytest.raises(httpx.ReadTimeout, match="still working"):
            client.post("http://10.0.0.5:8080/v1/chat/completions", json=body, headers=retry)
        assert sent == [0]
    else:
        assert client.post("http://10.0.0.5:8080/v1/chat/completions", json=body, headers=retry).status_code == 200
        assert sent == [0, 1]


@pytest.mark.parametrize("refusal", [
    "tools are not supported by this model",
    "registry.ollama.ai/library/gemma:2b does not support tools",
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
])
def test_a_refused_tool_list_is_dropped_once_and_remembered(refusal: str, tmp_path: Any) -> None:
    import json

    import httpx

    bodies: list[dict[str, Any]] = []
    facts = {"focus": "f", "facts": [{"text": "t", "item_ids": ["abcd1234"], "tickers": []}]}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if body.get("tools"):
            return httpx.Response(400, json={"error": {"message": refusal}})
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": json.dumps(facts)}}],
                                         "usage": {"prompt_tokens": 10, "completion_tokens": 5}})

    _, client, servers = _adapter(tmp_path, handler, local=True)
    tool = {"type": "function", "function": {"name": "search_memory", "parameters": {"type": "object"}}}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool], "tool_choice": "auto"}
    response = client.post("http://10.0.0.5:8080/v1/chat/completions", json=body)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    assert [bool(b.get("tools")) for b in bodies] == [True, False]
    assert bodies[1]["response_format"]["json_schema"]["name"] == "FactSheet"
    assert servers.get("http://10.0.0.5:8080/v1", "openai/m").tools is False
    bodies.clear()
    client.post("http://10.0.0.5:8080/v1/chat/completions", json=body)
    assert [bool(b.get("tools")) for b in bodies] == [False]  # remembered: not offered again
