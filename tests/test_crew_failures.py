"""The crew's failure paths against the fake LLM server: grounding retries, malformed replies, 429, 500,
timeouts, budgets and runaway loops, each bounded and ending in a flagged draft or one clear error."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crew.costs import BudgetExceeded
from memory.costs import CostEntry, CostLedger
from memory.drafts import DraftStore
from sources.errors import LLMError
from tapewatch.briefs import write_brief
from tapewatch.cli import main
from tests.crew_support import (  # noqa: F401  (fixtures)
    Prices,
    crew_settings,
    llm_server_fixture,
    run_brief,
    sample_memory_fixture,
)
from tests.fakes import crew_replies
from tests.fakes.llm_server import LLMServer, Reply


def writer_requests(server: LLMServer) -> list[Any]:
    return [r for r in server.requests if crew_replies.role_of(r.body) == "writer"]


def test_made_up_ticker_wrong_price_and_foreign_link_are_sent_back_then_flagged(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server, guardrail_retries="2")
    prices = Prices()
    now = datetime.now(UTC)
    prices.add("ETH", 3_310.0, now - timedelta(hours=30), change_24h_pct=-1.0)
    prices.add("ETH", 3_300.0, now - timedelta(minutes=5), change_24h_pct=-0.3)

    def careless_writer(body: dict[str, Any]) -> Reply:
        if crew_replies.role_of(body) != "writer":
            return crew_replies.well_behaved(body)
        facts = crew_replies.facts_of(crew_replies.all_text(body))
        return crew_replies.brief(body, extra=[
            {"text": "$PEPEX is the breakout of the week.", "item_ids": facts[0]["item_ids"], "ticker": "PEPEX"},
            {"text": "ETH is trading at $33K after the vote.", "item_ids": facts[1]["item_ids"], "ticker": "ETH"},
            {"text": "Details at https://evil.example/eth-news", "item_ids": facts[2]["item_ids"], "ticker": ""},
        ])

    llm_server.responder = careless_writer
    outcome = run_brief(settings, sample_memory, prices=prices)

    draft = outcome.draft
    assert draft is not None and draft.status == "flagged"
    problems = {p["code"]: p for p in draft.validation["problems"]}
    assert {"uncorroborated_ticker", "price_mismatch", "foreign_link"} <= set(problems)
    assert "$PEPEX" in problems["uncorroborated_ticker"]["message"]
    assert "$3,300.00" in problems["price_mismatch"]["message"]
    assert "evil.example" in problems["foreign_link"]["message"]
    # The take (X) carries the writer's first claim; the full brief (Telegram, Markdown) carries them all.
    assert problems["price_mismatch"]["where"] in ("telegram, markdown", "x, telegram, markdown")
    # One revision with the specific problems (and the facts again); the writer sent the same brief back, so a
    # second revision would have been the very same prompt: it is not sent, and the draft is stored as flagged.
    attempts = writer_requests(llm_server)
    assert len(attempts) == 2 and draft.meta["attempts"]["writer"] == 2
    # Feedback names each problem by code and claim number; the stored price is ours to quote, the made-up
    # ticker and the foreign link are not repeated, not even in the previous answer crewAI shows again.
    text = attempts[1].text
    assert "[price_mismatch] in claim 2.2: $ETH price given as $33K but the stored price is $3,300.00" in text
    assert "[uncorroborated_ticker] in claim 2.1: a ticker is named by 0 independent source group(s)" in text
    assert "[foreign_link] in claim 2.3: a link: not the trusted link of any cited item" in text
    assert "PEPEX" not in text and "evil.example" not in text
    assert "Researcher's output" in text
    assert DraftStore(sample_memory.state).list(status="flagged")[0].id == draft.id


def test_a_wrong_claim_fixed_on_retry_gives_a_pending_draft(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server)
    calls = {"writer": 0}

    def learns(body: dict[str, Any]) -> Reply:
        if crew_replies.role_of(body) != "writer":
            return crew_replies.well_behaved(body)
        calls["writer"] += 1
        facts = crew_replies.facts_of(crew_replies.all_text(body))
        extra = [{"text": "$DOGE will 10x, price target $5.", "item_ids": facts[0]["item_ids"], "ticker": "DOGE"}]
        return crew_replies.brief(body, extra=extra if calls["writer"] == 1 else None)

    llm_server.responder = learns
    outcome = run_brief(settings, sample_memory)
    assert outcome.draft is not None and outcome.draft.status == "pending"
    assert outcome.attempts["writer"] == 2
    retry = writer_requests(llm_server)[1].text
    assert "[banned_phrase] in claim 2.1:" in retry and "price target" in retry.split("[banned_phrase]", 1)[1][:80]


def test_malformed_structured_output_gets_feedback_and_a_second_chance(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server)
    llm_server.script("Brief Writer", Reply(content="Sure! Here is your brief: **BTC is up**"),
                      Reply(content='{"title": "x", "sections": [{"heading": "h", "claims": [{"text": 1}]}]}'))
    llm_server.responder = crew_replies.well_behaved
    outcome = run_brief(settings, sample_memory)
    assert outcome.draft is not None and outcome.draft.status == "pending"
    assert outcome.attempts["writer"] == 3
    retries = writer_requests(llm_server)[1:]
    assert "the reply contains no JSON object" in retries[0].text
    assert "sections.0.claims.0.text" in retries[1].text


def test_persistently_malformed_output_is_a_clear_error_and_its_cost_is_recorded(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server, guardrail_retries="1")
    llm_server.script("Brief Writer", Reply(content="no"), Reply(content="still no"))
    llm_server.responder = crew_replies.well_behaved
    with pytest.raises(LLMError, match=r"not the expected shape after every allowed retry.*no JSON object"):
        run_brief(settings, sample_memory)
    assert DraftStore(sample_memory.state).list() == []
    entries = _ledger_rows(sample_memory)
    assert {e.agent for e in entries} == {"researcher", "analyst", "writer"}
    assert {e.status for e in entries} == {"failed"} and sum(e.calls for e in entries) == 4


def test_rate_limit_then_success_is_retried_by_the_client(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server, max_retries="2")
    llm_server.script("Market Analyst", Reply.fail(429, "slow down", retry_after_ms="20"))
    llm_server.responder = crew_replies.well_behaved
    outcome = run_brief(settings, sample_memory)
    assert outcome.draft is not None and outcome.draft.status == "pending"
    roles = [crew_replies.role_of(r.body) for r in llm_server.requests]
    assert roles == ["researcher", "analyst", "analyst", "writer"]
    assert outcome.llm_calls == 3  # the 429 was not a completed call


@pytest.mark.parametrize(("status", "expected"), [(500, "failed with HTTP 500"), (429, "rate-limiting")])
def test_persistent_server_errors_end_in_a_clear_llm_error_after_bounded_retries(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch, status: int,
        expected: str) -> None:
    settings = crew_settings(monkeypatch, llm_server, max_retries="2")
    llm_server.script("Brief Writer", *[Reply.fail(status, "upstream exploded", retry_after_ms="5")] * 10)
    llm_server.responder = crew_replies.well_behaved
    with pytest.raises(LLMError, match=expected):
        run_brief(settings, sample_memory)
    # Exactly llm.max_retries + 1 attempts: neither crewAI's own 429 retry nor an agent-level re-run adds any.
    assert len(writer_requests(llm_server)) == 3
    failed = {e.agent: e for e in _ledger_rows(sample_memory)}
    assert set(failed) == {"researcher", "analyst"} and all(e.status == "failed" for e in failed.values())


def test_a_model_server_that_does_not_answer_in_time_is_a_clear_timeout(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server, timeout="0.3s", max_retries="1")
    llm_server.script("Market Researcher", Reply(delay_s=1.0, content="late"), Reply(delay_s=1.0, content="late"))
    llm_server.responder = crew_replies.well_behaved
    started = datetime.now(UTC)
    with pytest.raises(LLMError, match=r"did not answer a request within the 0.3s request timeout; the run gave "
                                       r"up after \d+s"):
        run_brief(settings, sample_memory)
    assert datetime.now(UTC) - started < timedelta(seconds=5)
    # A loopback server is still working on the request that timed out: its retry is not queued behind it.
    assert len(llm_server.requests) == 1


def test_budget_used_up_stops_the_crew_before_any_call(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = crew_settings(monkeypatch, llm_server, daily_budget_usd="0.50")
    now = datetime.now(UTC)
    CostLedger(sample_memory.state).record([CostEntry(at=now - timedelta(minutes=1), run_id="r0", agent="writer",
                                                      model="openai/fake-model", calls=3, prompt_tokens=100_000,
                                                      completion_tokens=20_000, cost_usd=0.52)])
    llm_server.responder = crew_replies.well_behaved
    with pytest.raises(BudgetExceeded, match=r"daily LLM budget is used up: \$0.5200 spent today of \$0.50"):
        run_brief(settings, sample_memory)
    assert llm_server.requests == []

    # A scheduled brief falls back to the data brief and says why.
    result = write_brief(settings, sample_memory, now=now, scheduled=True)
    assert result.mode == "data" and result.draft is not None and "budget is used up" in result.note
    assert llm_server.requests == []

    # An explicit `tapewatch brief` refuses with one line and exit status 2.
    monkeypatch.setattr("tapewatch.cli.analysis._memory", lambda: sample_memory)
    monkeypatch.setattr(sys, "argv", ["tapewatch", "brief"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    output = capsys.readouterr()
    assert exit_info.value.code == 2
    assert "daily LLM budget is used up" in output.err and "Traceback" not in output.err + output.out


def test_a_runaway_tool_loop_is_capped(llm_server: LLMServer, sample_memory: Any,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server, max_iter="2")

    def obsessed(body: dict[str, Any]) -> Reply:
        if crew_replies.role_of(body) == "researcher" and body.get("tools"):
            return Reply.tool("search_memory", query="more about bitcoin")
        return crew_replies.well_behaved(body)

    llm_server.responder = obsessed
    outcome = run_brief(settings, sample_memory)
    researcher = [r for r in llm_server.requests if crew_replies.role_of(r.body) == "researcher"]
    # max_iter tool rounds, then crewAI forces a final answer: at most max_iter + 1 calls.
    assert 2 <= len(researcher) <= 3
    assert outcome.draft is not None


def test_unknown_citations_from_the_researcher_are_sent_back(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server)
    llm_server.script("Market Researcher", Reply.json({"focus": "x", "facts": [
        {"text": "Something big happened.", "item_ids": ["deadbeef00"], "tickers": []}]}))
    llm_server.responder = crew_replies.well_behaved
    outcome = run_brief(settings, sample_memory)
    assert outcome.attempts["researcher"] == 2 and outcome.draft is not None
    second = [r for r in llm_server.requests if crew_replies.role_of(r.body) == "researcher"][1]
    assert "not data blocks of this brief: deadbeef00" in second.text


def _ledger_rows(memory: Any) -> list[CostEntry]:
    from sqlalchemy import select

    from memory import schema

    with memory.state.engine.connect() as conn:
        rows = conn.execute(select(schema.cost_ledger)).all()
    return [CostEntry(at=r.at, run_id=r.run_id, agent=r.agent, model=r.model, calls=r.calls,
                      prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, cost_usd=r.cost_usd,
                      status=r.status, draft_id=r.draft_id) for r in rows]


@pytest.mark.parametrize(("body", "expected"), [(b"<html>502 Bad Gateway</html>", "not JSON"),
                                               (b'{"id": "x", "choices": []}', "no choices"), (b"", "not JSON")])
def test_a_malformed_http_body_from_the_server_is_a_clear_error(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch, body: bytes,
        expected: str) -> None:
    settings = crew_settings(monkeypatch, llm_server, max_retries="0")
    llm_server.script("Market Researcher", Reply(raw_body=body))
    llm_server.responder = crew_replies.well_behaved
    with pytest.raises(LLMError, match=expected) as caught:
        run_brief(settings, sample_memory)
    assert "Traceback" not in str(caught.value) and len(str(caught.value)) < 500
    assert len(llm_server.requests) == 1 and DraftStore(sample_memory.state).list() == []
