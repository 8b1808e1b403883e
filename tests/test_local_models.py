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
            return Reply.json({"title": "Solana soars", "take": {"text": "Solana is up.", "item_ids": ["id1"],
                                                                 "ticker": "SOL"}, "thread": [],
                               "sections": [{"heading": "What happened", "claims": [
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
