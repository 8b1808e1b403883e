"""The model server as each agent meets it: an httpx transport under the openai SDK that crewAI drives.

Servers differ in what they accept, and a refusal must be met once, not on every run. Per request, for the
agent whose answer schema it holds, the adapter:

- constrains every final answer: a request without tools gets the schema as ``response_format`` in the mode the
  server takes (json_schema, json_object with the schema as llama.cpp's server wants it, or none: "prompt");
- lets the researcher's tool phase run unconstrained (a JSON grammar would forbid tool calls), then answers
  the call after tool results as a constrained call without tools; a tool-phase reply that is text but not a
  valid answer is followed by one constrained call on the same messages, its usage added to the reply's;
- under ``structured_output = "auto"`` falls back one step when the server refuses a response format by name
  (json_schema → json_object → prompt), and records what worked in the state DB (``memory.llmservers``);
  a refused tool list is dropped the same way and remembered;
- on a loopback or private server, does not resend a request that timed out: a one-at-a-time server is still
  working on it, and a retry would only queue behind it.

Explicit modes are sent as configured; a refusal then comes back as a non-retried 400 naming the setting to
change. The adapter holds no client of its own: the shell hands in the transport it wraps.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ValidationError

from memory.llmservers import ServerCapabilities

log = logging.getLogger(__name__)

MODES = ("json_schema", "json_object", "prompt")
_NEXT = {"json_schema": "json_object", "json_object": "prompt"}
_REFUSAL_STATUSES = (400, 404, 415, 422, 500, 501)
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "'text'")
# Ollama: "… does not support tools"; vLLM without its flags: "\"auto\" tool choice requires --enable-auto-tool-choice".
_TOOL_WORDS = ("tools", "tool_choice", "tool choice", "tool-call", "function calling", "tool calls")


class CapabilityStore(Protocol):
    """Where what a server supports is remembered (``memory.llmservers.ServerMemory``)."""

    def get(self, base_url: str, model: str) -> ServerCapabilities:
        """What is known of the server."""
        ...

    def update(self, base_url: str, model: str, **fields: object) -> ServerCapabilities:
        """Record some of what was found out."""
        ...


@dataclass
class AdapterStats:
    """What one adapter sent: HTTP requests, refusals met, constrained follow-ups, and time spent waiting."""

    requests: int = 0
    refusals: int = 0
    followups: int = 0
    seconds: float = 0.0


TYPICAL_PROMPT_TOKENS = 6000  # a researcher's prompt with 12 items (bench/brief.py measures 3–6k)


def estimated_request_s(caps: ServerCapabilities, max_tokens: int) -> float | None:
    """A generous bound on one request at the measured speed: a typical prompt and a full answer, doubled."""
    if not caps.prompt_tps or not caps.gen_tps:
        return None
    return 2.0 * (TYPICAL_PROMPT_TOKENS / caps.prompt_tps + max_tokens / caps.gen_tps)


def response_format(schema: type[BaseModel], mode: str) -> dict[str, Any] | None:
    """The ``response_format`` body for ``schema`` in ``mode`` (None for "prompt")."""
    if mode == "prompt":
        return None
    try:
        from crewai.utilities.pydantic_schema_utils import generate_model_description
    except ImportError:  # crewAI's strict-schema rewriting is a nicety; pydantic's schema is valid too
        strict: dict[str, Any] = {"type": "json_schema", "json_schema": {
            "name": schema.__name__, "strict": True, "schema": schema.model_json_schema()}}
    else:
        strict = dict(generate_model_description(schema))
    if mode == "json_schema":
        return strict
    return {"type": "json_object", "schema": strict["json_schema"]["schema"]}


def names_response_format(message: str) -> bool:
    """Whether an error message is a refusal of the response format (llama.cpp: "Input should be 'text' or …")."""
    text = message.lower()
    return any(word in text for word in _FORMAT_WORDS)


def names_tools(message: str) -> bool:
    """Whether an error message is a refusal of the tool list."""
    text = message.lower()
    return any(word in text for word in _TOOL_WORDS) and not names_response_format(text)


class ServerAdapter(httpx.BaseTransport):
    """One agent's view of the model server: constrained answers, remembered capabilities, no stacked retries."""

    def __init__(self, inner: httpx.BaseTransport, *, base_url: str, model: str, schema: type[BaseModel] | None,
                 structured: str = "auto", store: CapabilityStore | None = None, local: bool = False,
                 tools: str = "auto") -> None:
        if structured not in ("auto", *MODES):
            raise ValueError(f"structured output must be auto or one of {', '.join(MODES)}")
        self.inner = inner
        self.base_url = base_url
        self.model = model
        self.schema = schema
        self.structured = structured
        self.tools = tools
        self.store = store
        self.local = local
        self.stats = AdapterStats()
        self._timed_out = False

    # --- what the server is known to take ------------------------------------------------------------------

    def capabilities(self) -> ServerCapabilities:
        """What the store knows of this server (nothing without a store)."""
        return self.store.get(self.base_url, self.model) if self.store is not None else ServerCapabilities()

    def mode(self) -> str:
        """The structured-output mode to send now."""
        if self.structured != "auto":
            return self.structured
        return self.capabilities().structured or "json_schema"

    def _remember(self, **fields: object) -> None:
        if self.store is not None:
            self.store.update(self.base_url, self.model, **fields)

    # --- the transport ---------------------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send one chat completion the way this server takes it."""
        if request.method != "POST" or not request.url.path.rstrip("/").endswith("/chat/completions"):
            return self.inner.handle_request(request)
        retried = int(request.headers.get("x-stainless-retry-count") or 0) > 0
        if self.local and retried and self._timed_out:
            # The server has not given up on the request that timed out; another copy would wait behind it.
            raise httpx.ReadTimeout("not resent: the local model server is still working on the request that "
                                    "timed out", request=request)
        self._timed_out = False
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            return self.inner.handle_request(request)
        body.pop("response_format", None)  # the adapter alone decides the format
        tools = bool(body.get("tools"))
        after_tools = any(m.get("role") == "tool" for m in body.get("messages", []) if isinstance(m, dict))
        if tools and (after_tools or self.tools == "off" or self.capabilities().tools is False):
            tools = False
        if not tools:
            _drop_tools(body)
        if tools or self.schema is None:
            return self._send_refusable(request, body, constrained=False)
        return self._send_refusable(request, body, constrained=True)

    def _send_refusable(self, request: httpx.Request, body: dict[str, Any], *, constrained: bool) -> httpx.Response:
        """Send, stepping down the format (auto) or dropping refused tools, each at most once per step."""
        for _ in range(len(MODES) + 1):
            mode = self.mode()
            sent = dict(body)
            fmt = response_format(self.schema, mode) if constrained and self.schema is not None else None
            if fmt is not None:
                sent["response_format"] = fmt
            response = self._send(request, sent)
            if response.status_code not in _REFUSAL_STATUSES:
                if response.status_code == 200 and sent.get("tools"):
                    return self._after_tool_phase(request, body, response)
                return response
            message = _error_message(response)
            if fmt is not None and names_response_format(message):
                self.stats.refusals += 1
                if self.structured != "auto":
                    lower = _NEXT.get(mode, "prompt")
                    return _refusal(response, message, f"llm.structured_output = {mode!r} is refused by this "
                                    f"server; set llm.structured_output = \"auto\" (or \"{lower}\")")
                step = _NEXT.get(mode, "prompt")
                log.warning("the model server at %s refused response_format %s (HTTP %s); using %s from now on",
                            self.base_url, mode, response.status_code, step)
                self._remember(structured=step, note=f"refused {mode}: {message[:200]}")
                continue
            if sent.get("tools") and names_tools(message) and self.tools != "on":
                self.stats.refusals += 1
                log.warning("the model server at %s refused tools (HTTP %s); the researcher's lookups are "
                            "pre-fetched from now on", self.base_url, response.status_code)
                self._remember(tools=False, note=f"refused tools: {message[:200]}")
                _drop_tools(body)
                constrained = self.schema is not None
                continue
            return response
        return response

    def _after_tool_phase(self, request: httpx.Request, body: dict[str, Any],
                          response: httpx.Response) -> httpx.Response:
        """A tool-phase reply: tool calls go back to crewAI; text that is no valid answer gets a constrained call."""
        data = _json(response)
        message = _first_message(data)
        if message is None:
            return response
        if message.get("tool_calls"):
            if self.capabilities().tools is None and self.store is not None:
                self._remember(tools=True)
            return response
        if self.schema is None or self.mode() == "prompt" or _valid(self.schema, message.get("content")):
            # Without a response format to send, a second call could not constrain anything: the guardrail
            # sends its feedback instead.
            return response
        self.stats.followups += 1
        follow = dict(body)
        _drop_tools(follow)
        final = self._send_refusable(request, follow, constrained=True)
        if final.status_code != 200:
            return final
        merged = _json(final)
        if merged is None:
            return final
        usage = merged.setdefault("usage", {})
        first = (data or {}).get("usage") or {}
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            usage[key] = int(usage.get(key) or 0) + int(first.get(key) or 0)
        return _with_json(final, merged)

    def _send(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        content = json.dumps(body).encode()
        headers = httpx.Headers(request.headers)
        headers["content-length"] = str(len(content))
        out = httpx.Request(request.method, request.url, headers=headers, content=content,
                            extensions=request.extensions)
        started = time.monotonic()
        self.stats.requests += 1
        try:
            response = self.inner.handle_request(out)
            response.read()
        except httpx.TimeoutException:
            self._timed_out = self.local
            raise
        finally:
            self.stats.seconds += time.monotonic() - started
        return response


def _drop_tools(body: dict[str, Any]) -> None:
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        body.pop(key, None)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _first_message(data: dict[str, Any] | None) -> dict[str, Any] | None:
    choices = (data or {}).get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    return message if isinstance(message, dict) else None


def _valid(schema: type[BaseModel], content: Any) -> bool:
    from crew.outputs import MalformedOutput, parse_reply

    if not isinstance(content, str) or not content.strip():
        return False
    try:
        parse_reply(schema, content)
    except (MalformedOutput, ValidationError):
        return False
    return True


def _error_message(response: httpx.Response) -> str:
    data = _json(response)
    error = (data or {}).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance((data or {}).get("detail"), str | list):
        return json.dumps(data["detail"]) if isinstance(data, dict) else ""
    return response.content[:500].decode("utf-8", "replace")


def _with_json(response: httpx.Response, data: dict[str, Any]) -> httpx.Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
    return httpx.Response(response.status_code, headers=headers, content=json.dumps(data).encode(),
                          extensions=response.extensions)


def _refusal(response: httpx.Response, message: str, advice: str) -> httpx.Response:
    """A refusal as a 400 (the openai SDK does not retry it) whose message says what to change."""
    text = f"{advice} (HTTP {response.status_code}: {' '.join(message.split())[:200]})"
    body = {"error": {"message": text, "type": "invalid_request_error", "code": "response_format_refused"}}
    return httpx.Response(400, headers={"content-type": "application/json"}, content=json.dumps(body).encode())
