"""Failures inside a crew run, from crewAI and the openai SDK, as one readable ``LLMError``."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sources.errors import LLMError


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def llm_error(exc: BaseException, where: str, timeout_s: float, last_error: str = "") -> LLMError:
    """The first cause in ``exc``'s chain that explains the failure, worded for the person running tapewatch."""
    if isinstance(exc, LLMError):
        return exc
    import openai

    server = f" at {where}" if where else ""
    for cause in _chain(exc):
        if isinstance(cause, openai.APITimeoutError):
            return LLMError(f"the model server{server} did not answer within {timeout_s:g}s, retries included "
                            "(llm.timeout, llm.max_retries)")
        if isinstance(cause, openai.AuthenticationError | openai.PermissionDeniedError):
            return LLMError(f"the model server{server} refused the API key (HTTP {cause.status_code}); set "
                            "TAPEWATCH_LLM_API_KEY")
        if isinstance(cause, openai.RateLimitError):
            return LLMError(f"the model server{server} kept rate-limiting (HTTP 429) after the retries in "
                            "llm.max_retries; try again later")
        if isinstance(cause, openai.APIStatusError):
            return LLMError(f"the model server{server} failed with HTTP {cause.status_code} after the retries in "
                            f"llm.max_retries: {_short(cause.message)}")
        if isinstance(cause, openai.APIConnectionError):
            return LLMError(f"cannot reach the model server{server}: {_short(str(cause))}")
        if isinstance(cause, TimeoutError):
            return LLMError(f"an agent ran past llm.agent_timeout: {_short(str(cause))}")
        if isinstance(cause, json.JSONDecodeError):
            return LLMError(f"the model server{server} sent a reply that is not JSON; is llm.base_url an "
                            "OpenAI-compatible endpoint (usually ending in /v1)?")
    text = str(exc)
    if "guardrail validation" in text:
        detail = last_error or text
        return LLMError(f"a reply was not the expected shape after every allowed retry ({_short(detail)})")
    if "not found" in text.lower() and "model" in text.lower():
        return LLMError(f"the model server{server} does not know the model: {_short(text)}")
    # crewAI wraps an agent's failure as RuntimeError("Task execution failed: …"); the inner cause says more.
    inner = list(_chain(exc))[-1]
    return LLMError(f"the crew run failed: {type(inner).__name__}: {_short(str(inner) or text)}")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
