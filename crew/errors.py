"""Failures inside a crew run, from crewAI and the openai SDK, as one readable ``LLMError``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

from pydantic import ValidationError

from sources.errors import LLMError


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def quiet_crewai_warnings() -> None:
    """Silence pydantic's serializer warnings, which crewAI triggers when a reply is not the shape it expects.

    They print several lines to stderr for a failure that ends in one ``LLMError`` anyway. The filter is
    process-wide (``warnings.catch_warnings`` is not thread-safe, and crewAI runs agents in threads) but
    narrow: that one message from pydantic, which tapewatch's own models never cause on purpose.
    """
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning,
                            module=r"pydantic\.")


def llm_error(exc: BaseException, where: str, timeout_s: float, last_error: str = "",
              max_iter: int | None = None, elapsed_s: float | None = None) -> LLMError:
    """The first cause in ``exc``'s chain that explains the failure, worded for the person running tapewatch."""
    if isinstance(exc, LLMError):
        return exc
    import openai

    server = f" at {where}" if where else ""
    took = f"; the run gave up after {elapsed_s:.0f}s" if elapsed_s is not None else ""
    for cause in _chain(exc):
        if isinstance(cause, LLMError):
            return cause
        if isinstance(cause, openai.APITimeoutError):
            return LLMError(f"the model server{server} did not answer a request within the {timeout_s:g}s request "
                            f"timeout{took} (llm.timeout; `tapewatch llm check` measures the server's speed)")
        if isinstance(cause, openai.BadRequestError) and "llm.structured_output" in cause.message:
            return LLMError(f"the model server{server}: {_short(cause.message)}")
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
            return LLMError(f"an agent ran past llm.agent_timeout{took}: {_short(str(cause))}")
        if isinstance(cause, json.JSONDecodeError):
            return LLMError(f"the model server{server} sent a reply that is not JSON; is llm.base_url an "
                            "OpenAI-compatible endpoint (usually ending in /v1)?")
        if isinstance(cause, AttributeError) and "choices" in str(cause):
            # The openai SDK hands back the raw text when the body is not JSON: e.g. an SSE stream.
            return LLMError(f"the model server{server} answered with something that is not a chat completion "
                            "(such as a text/event-stream body to a request that did not ask to stream); point "
                            "llm.base_url at an OpenAI-compatible /v1 endpoint and turn off forced streaming in "
                            "the server or proxy in front of it")
        if isinstance(cause, ValidationError):
            return _shape_error(cause, max_iter)
    text = str(exc)
    if "guardrail validation" in text:
        detail = last_error or text
        return LLMError(f"a reply was not the expected shape after every allowed retry ({_short(detail)})")
    if "not found" in text.lower() and "model" in text.lower():
        return LLMError(f"the model server{server} does not know the model: {_short(text)}")
    # crewAI wraps an agent's failure as RuntimeError("Task execution failed: …"); the inner cause says more.
    inner = list(_chain(exc))[-1]
    return LLMError(f"the crew run failed: {type(inner).__name__}: {_short(str(inner) or text)}")


def _shape_error(exc: ValidationError, max_iter: int | None) -> LLMError:
    """A crewAI object that could not be built from a model's reply (most often: tool calls instead of text)."""
    errors = exc.errors()
    if any(isinstance(v, list) and v and "function" in repr(v[0]).lower() for v in (e.get("input") for e in errors)):
        rounds = f" after llm.max_iter ({max_iter}) rounds" if max_iter else ""
        return LLMError(f"an agent kept calling tools{rounds} and never wrote its answer; use a model that "
                        "follows tool-use instructions, or raise llm.max_iter")
    field = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
    detail = f"{field or '(root)'}: {errors[0]['msg']}" if errors else "invalid"
    return LLMError(f"a model reply could not be read as {exc.title or 'a crewAI object'} ({_short(detail, 120)}); "
                    "the model may not support the requested output or tool calls")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
