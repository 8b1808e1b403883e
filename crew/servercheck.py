"""``tapewatch llm check``: what the configured model server supports and how fast it is, from a few tiny requests.

1. Speed: one small streamed request; the time to the first token is the prompt's, the rest the generation's.
2. Structured output: json_schema, then json_object, then none, until one is accepted.
3. Tools: one request that names a tool it must call; a reply without the call means tools are ignored.

Each request is tiny (a few hundred tokens at most) and bounded by the client's timeout.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from crew.llmserver import MODES, names_response_format, names_tools

# About 200 tokens of plain prose, so the prompt phase is long enough to time.
_FILLER = ("Bitcoin funds took in money on the day while ether traded flat and traders watched the rate decision. "
           * 8).strip()
_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
           "additionalProperties": False}
_TOOL = {"type": "function", "function": {
    "name": "record_word", "description": "Record one word.", "strict": True,
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"],
                   "additionalProperties": False}}}


@dataclass(frozen=True)
class CheckReport:
    """What one check found."""

    structured: str  # the best response format the server accepted (prompt: none)
    tools: bool
    prompt_tps: float | None
    gen_tps: float | None
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the speed request
    notes: tuple[str, ...] = ()


class CheckFailed(Exception):
    """The server could not be checked at all (unreachable, not a chat-completions endpoint, auth)."""


def check_server(client: httpx.Client, base_url: str, model: str, headers: dict[str, str] | None = None
                 ) -> CheckReport:
    """Probe ``model`` at ``base_url`` (an OpenAI-compatible /v1 URL) with ``client``."""
    url = base_url.rstrip("/") + "/chat/completions"
    notes: list[str] = []
    speed = _speed(client, url, model, headers or {})
    structured = "prompt"
    for mode in MODES[:-1]:
        fmt = ({"type": "json_schema", "json_schema": {"name": "Check", "strict": True, "schema": _SCHEMA}}
               if mode == "json_schema" else {"type": "json_object", "schema": _SCHEMA})
        response = _post(client, url, headers, {"model": model, "max_tokens": 16, "temperature": 0, "messages": [
            {"role": "user", "content": 'Answer with the JSON object {"ok": true}.'}], "response_format": fmt})
        if response.status_code == 200:
            structured = mode
            break
        message = _error(response)
        if not names_response_format(message):
            raise CheckFailed(f"HTTP {response.status_code} to a {mode} request: {message[:200]}")
        notes.append(f"{mode} refused (HTTP {response.status_code}): {' '.join(message.split())[:120]}")
    response = _post(client, url, headers, {
        "model": model, "max_tokens": 32, "temperature": 0, "tools": [_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "record_word"}},
        "messages": [{"role": "user", "content": "Call record_word with the word 'tape'."}]})
    tools = False
    if response.status_code == 200:
        reply = _message(response.json())
        tools = bool(reply.get("tool_calls"))
        if not tools:
            notes.append("tools ignored: the reply to a request naming a tool it must call had no tool call")
    elif names_tools(_error(response)):
        notes.append(f"tools refused (HTTP {response.status_code}): {_error(response)[:120]}")
    else:
        raise CheckFailed(f"HTTP {response.status_code} to a tool request: {_error(response)[:200]}")
    return CheckReport(structured, tools, *speed, notes=tuple(notes))


def _speed(client: httpx.Client, url: str, model: str, headers: dict[str, str]
           ) -> tuple[float | None, float | None, int, int, float]:
    question = f"{_FILLER}\n\nSummarise the text above in one sentence."
    body: dict[str, Any] = {"model": model, "max_tokens": 48, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": question}]}
    started = time.monotonic()
    first: float | None = None
    usage: dict[str, Any] = {}
    text = []
    try:
        with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise CheckFailed(f"HTTP {response.status_code}: {_error(response)[:200]}")
            if "json" in response.headers.get("content-type", ""):  # a server that does not stream
                data = json.loads(response.read())
                usage = data.get("usage") or {}
                text.append(str(_message(data).get("content") or ""))
            else:
                for line in response.iter_lines():
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    for choice in chunk.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            first = first if first is not None else time.monotonic()
                            text.append(piece)
                    usage = chunk.get("usage") or usage
    except httpx.HTTPError as exc:
        raise CheckFailed(f"cannot reach {url}: {exc}") from exc
    except ValueError as exc:
        raise CheckFailed(f"{url} is not an OpenAI-compatible chat-completions endpoint ({exc})") from exc
    total = time.monotonic() - started
    prompt_tokens = int(usage.get("prompt_tokens") or len(question.split()) * 4 // 3)
    completion_tokens = int(usage.get("completion_tokens") or len("".join(text).split()) * 4 // 3)
    if first is None:  # no timing of the first token: only the whole request's rate
        return None, (completion_tokens / total if total > 0 else None), prompt_tokens, completion_tokens, total
    read = max(first - started, 1e-3)
    write = max(total - read, 1e-3)
    return prompt_tokens / read, max(completion_tokens - 1, 1) / write, prompt_tokens, completion_tokens, total


def _post(client: httpx.Client, url: str, headers: dict[str, str] | None, body: dict[str, Any]) -> httpx.Response:
    try:
        return client.post(url, json=body, headers=headers or {})
    except httpx.HTTPError as exc:
        raise CheckFailed(f"cannot reach {url}: {exc}") from exc


def _message(data: Any) -> dict[str, Any]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        return message if isinstance(message, dict) else {}
    return {}


def _error(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or data)[:300]
