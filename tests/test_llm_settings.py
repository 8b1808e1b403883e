"""The `[llm]`, `[compliance]` and `[grounding]` settings, and how the shell turns them into crewAI clients."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sources.errors import ConfigError
from tapewatch import clients
from tapewatch.settings import load_settings
from tests.crew_support import (  # noqa: F401  (fixtures)
    crew_settings,
    llm_server_fixture,
    run_brief,
    sample_memory_fixture,
)
from tests.fakes import crew_replies
from tests.fakes.llm_server import LLMServer

EXAMPLE = Path(__file__).parents[1] / "tapewatch.example.toml"


def test_example_config_documents_the_crew_settings_at_their_defaults() -> None:
    from_file, defaults = load_settings(EXAMPLE), load_settings(None)
    assert from_file.llm == defaults.llm
    assert from_file.compliance == defaults.compliance and from_file.grounding == defaults.grounding
    assert defaults.llm.model is None  # no LLM until one is configured: the data brief


@pytest.mark.parametrize(("text", "message"), [
    ('[llm]\nmodel = "gpt 4"', "llm.model"),
    ('[llm]\nbase_url = "localhost:11434"', "llm.base_url"),
    ('[llm]\ndaily_budget = 3', "llm.daily_budget"),  # a typo is an error, not a silently ignored key
    ('[llm]\nmax_retries = 50', "llm.max_retries"),
    ('[llm.prices]\n"openai/x" = { prompt = -1, completion = 1 }', "prompt"),
    ('[grounding]\nprice_tolerance_pct = 90', "grounding.price_tolerance_pct"),
])
def test_invalid_crew_settings_are_readable_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tapewatch.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_per_agent_models_override_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPEWATCH_LLM__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("TAPEWATCH_LLM__WRITER_MODEL", "openai/gpt-4o")
    monkeypatch.setenv("TAPEWATCH_LLM_API_KEY", "sk-test")
    settings = load_settings(None)
    assert [settings.llm.model_for(a) for a in ("researcher", "analyst", "writer")] == [
        "openai/gpt-4o-mini", "openai/gpt-4o-mini", "openai/gpt-4o"]
    llms = clients.crew_llms(settings)
    assert llms["writer"].model == "gpt-4o" and llms["researcher"].model == "gpt-4o-mini"
    assert len({id(v) for v in llms.values()}) == 3  # one client per agent: usage is counted per client
    assert str(llms["writer"].base_url) == "https://api.openai.com/v1"  # pinned, whatever OPENAI_BASE_URL says
    assert llms["writer"].timeout == 60 and llms["writer"].max_retries == 2
    setup = clients.crew_setup(settings, llms)
    assert setup.limits.writer_retries == 2 and setup.budget.daily_usd == 1.0
    assert setup.prices["writer"].prompt == 5.0  # unlisted: the default price


def test_models_need_keys_and_installed_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPEWATCH_LLM__MODEL", "openai/gpt-4o-mini")
    with pytest.raises(ConfigError, match="TAPEWATCH_LLM_API_KEY"):
        clients.crew_llms(load_settings(None))
    for model, hint in (("anthropic/claude-sonnet-4-5", "crewai\\[anthropic\\]"), ("groq/llama-3.1-70b", "litellm")):
        monkeypatch.setenv("TAPEWATCH_LLM__MODEL", model)
        monkeypatch.setenv("TAPEWATCH_LLM_API_KEY", "k")
        with pytest.raises(ConfigError, match=hint):
            clients.crew_llms(load_settings(None))
    monkeypatch.delenv("TAPEWATCH_LLM__MODEL")
    with pytest.raises(ConfigError, match="no language model is configured"):
        clients.crew_llms(load_settings(None))


def test_crewai_never_phones_home_and_keeps_its_files_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CREWAI_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED", "CREWAI_TRACING_ENABLED", "CREWAI_STORAGE_DIR"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(None)
    clients.crewai_environment(settings)
    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true" and os.environ["OTEL_SDK_DISABLED"] == "true"
    assert os.environ["CREWAI_TRACING_ENABLED"] == "false"
    assert Path(os.environ["CREWAI_STORAGE_DIR"]) == settings.data_dir / "crewai"


def test_ollama_and_keyless_openai_compatible_servers_work(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server, model="ollama/llama3.1", writer_model="openai/local-writer")
    llm_server.responder = crew_replies.well_behaved
    outcome = run_brief(settings, sample_memory)
    assert outcome.draft is not None and outcome.draft.status == "pending"
    models = [r.body["model"] for r in llm_server.requests]
    assert models == ["llama3.1", "llama3.1", "local-writer"]
    auth = {r.headers["authorization"] for r in llm_server.requests}
    assert auth == {"Bearer ollama", "Bearer no-key"}  # no secret needed for local servers
    assert all(r.path == "/v1/chat/completions" for r in llm_server.requests)
    # Ollama is free, and so is the unlisted writer model: its base_url is a loopback server (issue 18).
    writer = next(u for u in outcome.usage if u.agent == "writer")
    assert writer.prompt_tokens > 0 and outcome.cost_usd == 0.0


def test_the_crew_reads_prices_from_the_stored_snapshots(state_url: str) -> None:
    from datetime import UTC, datetime

    from memory.prices import PriceSnapshot, PriceStore
    from memory.state import StateDB

    state = StateDB(state_url)
    prices = clients.price_history(load_settings(None), state)
    assert isinstance(prices, PriceStore)
    when = datetime(2026, 11, 26, 12, tzinfo=UTC)
    prices.add([PriceSnapshot("SOL", when, 213.2, 3.6)], when)
    latest = prices.latest("SOL", when)
    assert latest is not None and latest.price_usd == 213.2
