"""Local model servers (issue 18): every answer constrained, server quirks found and remembered, CPU-sized limits,
weak models failing fast with one line, and no phantom costs. Real crewAI against fakes that behave like
llama-cpp-python, Ollama and a slow one-at-a-time CPU server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crew.guardrails import NO_BRIEF, NO_FACTS
from memory.costs import CostLedger
from memory.drafts import DraftStore
from memory.llmservers import ServerMemory
from sources.errors import LLMError
from tests.crew_support import (  # noqa: F401  (fixtures)
    Prices,
    crew_settings,
    run_brief,
    sample_memory_fixture,
)
from tests.fakes import crew_replies
from tests.fakes.llm_server import PROFILES, LLMServer, Profile, Reply, serving_llm


def _instant(name: str) -> Profile:
    """A profile's behaviour without its latency (tests check what is sent, not how long it takes)."""
    from dataclasses import replace

    return replace(PROFILES[name], time_scale=0.0)


@pytest.fixture
def llama_cpp() -> Iterator[LLMServer]:
    with serving_llm(profile=_instant("llama-cpp")) as server:
        yield server


def _by_role(server: LLMServer, role: str) -> list[Any]:
    return [r for r in server.requests if crew_replies.role_of(r.body) == role]


def _formats(server: LLMServer) -> list[str | None]:
    return [(r.body.get("response_format") or {}).get("type") for r in server.requests]


def test_llama_cpp_refusing_json_schema_falls_back_once_and_the_server_is_remembered(
        llama_cpp: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llama_cpp)
    llama_cpp.responder = crew_replies.well_behaved
    first = run_brief(settings, sample_memory)
    assert first.draft is not None and first.draft.status == "pending"
    # One refused json_schema request (HTTP 500, not retried by the client), then json_object with the schema.
    assert _formats(llama_cpp).count("json_schema") == 1
    constrained = [r for r in llama_cpp.requests if (r.body.get("response_format") or {}).get("type") == "json_object"]
    assert constrained and all(r.body["response_format"]["schema"]["type"] == "object" for r in constrained)
    known = ServerMemory(sample_memory.state).get(settings.llm.base_url or "", "openai/fake-model")
    assert known.structured == "json_object" and "Input should be 'text' or 'json_object'" in known.note
    assert first.llm_calls <= 4

    # The next run never sends json_schema again.
    llama_cpp.requests.clear()
    second = run_brief(settings, sample_memory)
    assert second.draft is not None and "json_schema" not in _formats(llama_cpp)
    assert second.llm_calls == len(llama_cpp.requests) <= 4


def test_an_explicit_json_schema_on_llama_cpp_is_one_line_naming_the_setting(
        llama_cpp: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llama_cpp, structured_output="json_schema", max_retries="2")
    llama_cpp.responder = crew_replies.well_behaved
    with pytest.raises(LLMError) as caught:
        run_brief(settings, sample_memory)
    message = str(caught.value)
    assert "llm.structured_output" in message and '"auto"' in message and "HTTP 500" in message
    assert "\n" not in message
    assert _formats(llama_cpp).count("json_schema") == 1  # a refusal is not retried for nothing
    assert DraftStore(sample_memory.state).list() == []


def test_the_researcher_answer_is_constrained_after_its_tool_phase(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving_llm(profile=_instant("ollama")) as server:
        settings = crew_settings(monkeypatch, server)
        server.script("Market Researcher", Reply.tool("search_memory", query="ETF inflows"))
        server.responder = crew_replies.well_behaved
        outcome = run_brief(settings, sample_memory)
    researcher = _by_role(server, "researcher")
    assert len(researcher) == 2
    assert researcher[0].body.get("tools") and "response_format" not in researcher[0].body
    assert "tools" not in researcher[1].body
    assert researcher[1].body["response_format"]["json_schema"]["name"] == "FactSheet"
    assert outcome.draft is not None and outcome.draft.status == "pending" and outcome.llm_calls == 4
    known = ServerMemory(sample_memory.state).get(settings.llm.base_url or "", "openai/fake-model")
    assert known.tools is True  # it called a tool: tools work on this server


def test_a_server_that_ignores_tools_gets_one_constrained_answer_call(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def weak(body: dict[str, Any]) -> Reply:
        # Offered tools, a small model rambles; given a response format, it writes the JSON.
        if crew_replies.role_of(body) == "researcher" and "response_format" not in body:
            return Reply(content="Sure! The market is busy today. Bitcoin funds took in money.")
        return crew_replies.well_behaved(body)

    with serving_llm(profile=Profile("ignores-tools", ignores_tools=True)) as server:
        settings = crew_settings(monkeypatch, server)
        server.script("Market Researcher", Reply.tool("latest_price", ticker="BTC"))  # never seen by that server
        server.responder = weak
        outcome = run_brief(settings, sample_memory)
    researcher = _by_role(server, "researcher")
    assert [bool(r.body.get("tools")) for r in researcher] == [True, False]
    assert researcher[1].body["response_format"]["json_schema"]["name"] == "FactSheet"
    assert outcome.draft is not None and outcome.draft.status == "pending"
    usage = next(u for u in outcome.usage if u.agent == "researcher")
    assert usage.prompt_tokens > sum(server.count_tokens(r.text) for r in researcher[:1])  # both calls counted


@pytest.mark.parametrize("how", ["setting", "remembered"])
def test_without_tools_the_prompt_never_mentions_them_and_prices_are_pre_fetched(
        how: str, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = Prices()
    prices.add("BTC", 97_250.0, datetime.now(UTC) - timedelta(minutes=5), change_24h_pct=1.8)
    with serving_llm(profile=_instant("llama-cpp")) as server:
        settings = crew_settings(monkeypatch, server, **({"tools": "off"} if how == "setting" else {}))
        if how == "remembered":  # as `tapewatch llm check` records it
            ServerMemory(sample_memory.state).update(settings.llm.base_url or "", "openai/fake-model", tools=False)
        server.responder = crew_replies.well_behaved
        outcome = run_brief(settings, sample_memory, prices=prices)
    assert outcome.draft is not None
    assert all("tools" not in r.body for r in server.requests)
    prompt = _by_role(server, "researcher")[0].text
    assert "tool" not in prompt.lower()
    assert "Latest stored prices" in prompt and "$BTC: $97,250.00" in prompt
    assert outcome.llm_calls == 3


def test_a_slow_one_at_a_time_server_times_out_once_and_the_message_states_the_real_time(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = Profile("slow-cpu", one_at_a_time=True, overhead_s=1.5)
    with serving_llm(profile=slow) as server:
        settings = crew_settings(monkeypatch, server, timeout="0.5s", max_retries="2")
        server.responder = crew_replies.well_behaved
        started = datetime.now(UTC)
        with pytest.raises(LLMError, match=r"within the 0\.5s request timeout; the run gave up after \d+s") as caught:
            run_brief(settings, sample_memory)
        elapsed = (datetime.now(UTC) - started).total_seconds()
    # The server was still busy with the first request: no retry was queued behind it.
    assert len(server.requests) == 1
    assert elapsed < 10 and "within 60s" not in str(caught.value)


def test_local_servers_get_a_longer_timeout_and_measured_speed_sizes_it(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tapewatch import clients

    with serving_llm() as server:
        settings = crew_settings(monkeypatch, server)
        monkeypatch.delenv("TAPEWATCH_LLM__TIMEOUT")
        from tapewatch.settings import load_settings

        settings = load_settings(None)
        servers = ServerMemory(sample_memory.state)
        assert clients.request_timeout(settings, servers, "openai/fake-model") == 600.0
        servers.update(server.base_url, "openai/fake-model", prompt_tps=60.0, gen_tps=12.0)
        # 2 × (6,000 prompt tokens / 60 + 2,000 tokens / 12) ≈ 533 s
        assert clients.request_timeout(settings, servers, "openai/fake-model") == pytest.approx(533.3, abs=1)
        llms = clients.crew_llms(settings, sample_memory.state)
        assert llms["writer"].timeout == pytest.approx(533.3, abs=1)
    monkeypatch.setenv("TAPEWATCH_LLM__BASE_URL", "https://api.example.com/v1")
    assert load_settings(None).llm.request_timeout() == timedelta(seconds=60)


def test_echoed_examples_are_rejected_and_the_run_stops_with_one_clear_line(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving_llm(profile=_instant("llama-cpp")) as server:
        settings = crew_settings(monkeypatch, server)
        server.responder = crew_replies.echo_example
        with pytest.raises(LLMError) as caught:
            run_brief(settings, sample_memory)
    assert str(caught.value).startswith(NO_FACTS)
    researcher = _by_role(server, "researcher")
    assert len(researcher) == 2
    assert "copies the example's placeholders" in researcher[1].text
    # Nothing after the researcher: no analyst or writer call on facts that cite nothing, and no draft.
    assert not _by_role(server, "analyst") and not _by_role(server, "writer")
    assert DraftStore(sample_memory.state).list() == []
    assert {e for e in _statuses(sample_memory)} == {"failed"}


def test_a_prompt_echo_is_retried_with_a_short_excerpt_not_the_whole_reply(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving_llm() as server:
        settings = crew_settings(monkeypatch, server, tools="off")
        server.responder = crew_replies.echo_prompt
        with pytest.raises(LLMError, match=NO_FACTS):
            run_brief(settings, sample_memory)
    first, second = _by_role(server, "researcher")
    reply = crew_replies.echo_prompt(first.body).content or ""
    assert len(reply) > 3000
    assert "characters in all, the rest not shown" in second.text
    # The retry carries the problem and at most a few hundred characters of the bad reply.
    assert len(second.text) < len(first.text) + 1500


def test_a_researcher_citing_no_item_of_the_run_stops_before_the_analyst(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    invented = Reply.json({"focus": "markets", "facts": [
        {"text": "Something big happened.", "item_ids": ["deadbeef00"], "tickers": []}]})
    with serving_llm() as server:
        settings = crew_settings(monkeypatch, server)
        server.script("Market Researcher", invented, invented)
        server.responder = crew_replies.well_behaved
        with pytest.raises(LLMError) as caught:
            run_brief(settings, sample_memory)
    assert str(caught.value).startswith(NO_FACTS) and "\n" not in str(caught.value)
    assert len(_by_role(server, "researcher")) == 2 and not _by_role(server, "analyst")
    assert DraftStore(sample_memory.state).list() == []


def test_a_brief_citing_nothing_is_never_stored_as_nothing_to_report(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def uncited(body: dict[str, Any]) -> Reply:
        if crew_replies.role_of(body) == "writer":
            return Reply.json({"title": "Solana soars", "sections": [{"heading": "What happened", "claims": [
                {"text": "Solana is up.", "item_ids": ["id1", "id2"], "ticker": "SOL"}]}]})
        return crew_replies.well_behaved(body)

    with serving_llm() as server:
        settings = crew_settings(monkeypatch, server, guardrail_retries="2")
        server.responder = uncited
        with pytest.raises(LLMError, match=NO_BRIEF.replace("(", r"\(").replace(")", r"\)")):
            run_brief(settings, sample_memory)
    # The writer's second attempt got the problems; a third would have been the same prompt, so it was not sent.
    assert len(_by_role(server, "writer")) == 2
    assert DraftStore(sample_memory.state).list() == []


def test_a_model_on_a_local_server_is_free_unless_priced(sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving_llm(profile=_instant("llama-cpp")) as server:
        settings = crew_settings(monkeypatch, server)
        monkeypatch.setenv("TAPEWATCH_LLM__PRICES", "{}")
        monkeypatch.setenv("TAPEWATCH_LLM__DAILY_BUDGET_USD", "0.000001")
        from tapewatch.settings import load_settings

        settings = load_settings(None)
        server.responder = crew_replies.well_behaved
        for _ in range(3):  # a budget of a millionth of a dollar never binds: the runs cost nothing
            outcome = run_brief(settings, sample_memory)
            assert outcome.draft is not None and outcome.cost_usd == 0.0
    assert CostLedger(sample_memory.state).spent(datetime(2000, 1, 1, tzinfo=UTC)) == 0.0


def _statuses(memory: Any) -> set[str]:
    from sqlalchemy import select

    from memory import schema

    with memory.state.engine.connect() as conn:
        return {r.status for r in conn.execute(select(schema.cost_ledger)).all()}


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

    profile = replace(PROFILES[name], time_scale=0.05, overhead_s=0.0)
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
    # The fake sleeps time_scale of the modelled time, so it serves at speed / time_scale.
    assert known.prompt_tps == pytest.approx(profile.prompt_tps / profile.time_scale, rel=0.5)
    assert known.gen_tps == pytest.approx(profile.gen_tps / profile.time_scale, rel=0.5)
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


def test_a_writer_echoing_its_example_is_not_asked_the_same_thing_twice(
        sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def parrot_writer(body: dict[str, Any]) -> Reply:
        if crew_replies.role_of(body) == "writer":
            return crew_replies.echo_example(body)
        return crew_replies.well_behaved(body)

    with serving_llm() as server:
        settings = crew_settings(monkeypatch, server, guardrail_retries="3")
        server.responder = parrot_writer
        with pytest.raises(LLMError, match="retry would repeat the same prompt") as caught:
            run_brief(settings, sample_memory)
    writer = _by_role(server, "writer")
    assert len(writer) == 2 and "copies the example's placeholders" in writer[1].text
    assert "try a larger model" in str(caught.value)
    assert DraftStore(sample_memory.state).list() == []
