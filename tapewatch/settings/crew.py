"""Settings of the crew: the language model, compliance and grounding."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tapewatch.settings.durations import Duration


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


AGENTS = ("researcher", "analyst", "writer")
# Servers that run on your own machine cost nothing unless the price table says otherwise.
FREE_MODEL_PREFIXES = ("ollama/", "ollama_chat/", "hosted_vllm/")
REMOTE_TIMEOUT = timedelta(seconds=60)
# A model on a CPU can need minutes for one long prompt (188 s measured for a 270M model on 2 cores).
LOCAL_TIMEOUT = timedelta(seconds=600)


class LLMSettings(BaseModel):
    """The language model behind the analyst crew, its limits and its budget (issue 5)."""

    model_config = ConfigDict(extra="forbid")

    # A crewAI model string: "openai/gpt-4o-mini", "ollama/llama3.1", or "openai/NAME" with base_url for
    # any OpenAI-compatible server. None: no LLM, `tapewatch brief` writes the deterministic data brief.
    model: str | None = None
    researcher_model: str | None = None  # per-agent overrides of `model`
    analyst_model: str | None = None
    writer_model: str | None = None
    base_url: str | None = None
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    # Per HTTP request. Unset: from `tapewatch llm check`'s measured speed when there is one, else 600 s for a
    # loopback or private server and 60 s for any other.
    timeout: Duration | None = None
    max_retries: int = Field(default=2, ge=0, le=10)  # per request, on 408/409/429/5xx/timeouts, with backoff
    max_tokens: int = Field(default=2000, ge=64, le=32000)  # completion tokens per call
    max_iter: int = Field(default=3, ge=1, le=10)  # reasoning/tool steps per agent and task
    # Wall time per agent and task. Unset: 300 s, or three request timeouts when that is longer (a slow server).
    agent_timeout: Duration | None = None
    guardrail_retries: int = Field(default=2, ge=0, le=5)  # writer revisions after failed grounding checks
    json_schema: bool = True  # false: never send a response_format (as structured_output = "prompt")
    # How each agent's answer is constrained: "json_schema" (strict structured outputs), "json_object" (JSON mode
    # with the schema, as llama.cpp's server takes it), "prompt" (the shape in the prompt only), or "auto":
    # json_schema first, one step down when the server refuses it, remembered per server in the state DB.
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    # The researcher's read-only tools: "auto" (used unless the server refused them or `tapewatch llm check`
    # found it ignores them), "on", or "off" (the lookups are pre-fetched into the prompt instead).
    tools: Literal["auto", "on", "off"] = "auto"
    context_items: int = Field(default=12, ge=1, le=50)  # stored items shown to the researcher
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # Unlisted models are charged at this (deliberately high) rate so budgets still bind.
    default_price: ModelPrice = ModelPrice(prompt=5.0, completion=15.0)
    daily_budget_usd: float | None = Field(default=1.0, ge=0.0)  # UTC days; None: no limit
    monthly_budget_usd: float | None = Field(default=20.0, ge=0.0)

    @field_validator("model", "researcher_model", "analyst_model", "writer_model")
    @classmethod
    def _model_string(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ValueError("a model is a string like openai/gpt-4o-mini or ollama/llama3.1")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    def model_for(self, agent: str) -> str | None:
        """The model one agent uses: its override, else the default."""
        override: str | None = getattr(self, f"{agent}_model")
        return override or self.model

    def price_of(self, model: str) -> ModelPrice:
        """The price table entry for a model (local servers are free unless listed)."""
        if model in self.prices:
            return self.prices[model]
        if self.is_local(model):
            return ModelPrice(prompt=0.0, completion=0.0)
        return self.default_price

    def is_local(self, model: str) -> bool:
        """Whether ``model`` runs on a server of your own: a loopback or private base_url, or Ollama/vLLM."""
        from crew.costs import is_local_server

        if self.base_url:
            return is_local_server(self.base_url)
        return model.startswith(FREE_MODEL_PREFIXES)

    def agent_time_limit(self, request_timeout_s: float) -> float:
        """Seconds an agent may take on one task."""
        if self.agent_timeout is not None:
            return self.agent_timeout.total_seconds()
        return max(300.0, 3 * request_timeout_s)

    def request_timeout(self, measured_s: float | None = None) -> timedelta:
        """The per-request timeout: as set, else from a measured estimate, else by where the server is."""
        if self.timeout is not None:
            return self.timeout
        if measured_s is not None:
            return timedelta(seconds=min(1800.0, max(60.0, measured_s)))
        local = self.is_local(self.model or "")
        return LOCAL_TIMEOUT if local else REMOTE_TIMEOUT


Channel = Literal["x", "telegram"]


def _default_channels() -> dict[Channel, list[str]]:
    return {"x": ["global"], "telegram": ["global"]}


class ComplianceSettings(BaseModel):
    """Rules every brief must follow before it can be published, and the compliance profiles per channel."""

    model_config = ConfigDict(extra="forbid")

    disclaimer: str = Field(default="Not financial advice.", max_length=300)
    require_disclaimer: bool = True
    # Literal phrases of your own, on top of the profiles' phrasing families (prompts/compliance/*.yaml).
    banned_phrases: list[str] = Field(default_factory=list)
    # [compliance.channels] x = ["global", "us"], telegram = ["global", "cn"]: the profiles each channel's
    # text must pass (shipped: global, eu, uk, us, cn; more, or replacements, from profiles_dir).
    channels: dict[Channel, list[str]] = Field(default_factory=_default_channels)
    profiles_dir: Path | None = None  # a directory of your own profile YAML files

    @field_validator("channels")
    @classmethod
    def _every_channel(cls, value: dict[Channel, list[str]]) -> dict[Channel, list[str]]:
        return {**_default_channels(), **value}

    @model_validator(mode="after")
    def _profiles_compile(self) -> ComplianceSettings:
        # At start-up: a profile with a bad pattern or an unknown profile name stops here, in one line
        # (a ConfigError, which the CLI and the daemon print as it is).
        from crew.profiles import resolve

        for names in self.channels.values():
            resolve(names, self.profiles_dir)
        return self


class GroundingSettings(BaseModel):
    """How close a number in a brief must be to what tapewatch stored."""

    model_config = ConfigDict(extra="forbid")

    price_tolerance_pct: float = Field(default=2.0, ge=0.0, le=50.0)  # relative, against a price snapshot
    percent_tolerance_pp: float = Field(default=0.5, ge=0.0, le=20.0)  # percentage points, against a change
    max_x_posts: int = Field(default=12, ge=2, le=25)
    # A claim resting only on one social or forum item: "attribute" (publishable only when worded as a
    # claim of its source, "a post by @x says ...") or "block" (never publishable without an override).
    single_source_policy: Literal["attribute", "block"] = "attribute"
    # A ticker off the watchlist (or without signals) needs this many sources from different outlets or
    # account groups before a draft may feature it.
    min_independent_sources: int = Field(default=2, ge=1, le=10)
    # With a model configured: a cheap model that labels each claim supported / unsupported / contradicted
    # by its cited excerpts in one batched call (a crewAI model string; unset: no verifier step).
    verifier_model: str | None = None
