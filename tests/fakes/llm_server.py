"""A loopback OpenAI-compatible chat-completions server with scripted replies.

Replies are queued per *matcher*: a request goes to the first matcher whose text occurs in its
messages (e.g. an agent's role, which crewAI puts in the system prompt), else to the default
queue, else to ``responder`` (a function of the request body), else it gets a loud 500. Each
reply is content, tool calls, an HTTP error with headers, a delay (to outlast the client's
timeout), a raw malformed body, or the completion as a server-sent event stream even when the request did
not ask to stream (``sse``, as some proxies and local servers do). ``always_call_tool`` makes a model that
answers every request, even one offering no tools, with a tool call. Every request is recorded with its
JSON body; responses carry ``usage`` counted by ``count_tokens`` (whitespace words unless a real tokenizer
is passed in).

A ``Profile`` makes the server behave like a real server family (``PROFILES``): llama-cpp-python's refuses a
``json_schema`` response format with HTTP 500 and ignores tools, and a CPU server takes one request at a time
at its prompt and generation speeds (modelled latency, scaled by ``time_scale`` for benchmarks).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.fakes.loopback import LoopbackServer, QuietHandler, send_body, send_json


@dataclass
class Reply:
    """One scripted answer."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name": ..., "arguments": {...}}]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""  # message of an error body for status >= 400
    delay_s: float = 0.0  # sleep before answering
    raw_body: bytes | None = None  # sent as-is (malformed responses)
    sse: bool = False  # answer as text/event-stream chunks whatever the request's "stream" says

    @classmethod
    def json(cls, data: Any) -> Reply:
        """A reply whose content is ``data`` as JSON text."""
        return cls(content=json.dumps(data))

    @classmethod
    def tool(cls, name: str, **arguments: Any) -> Reply:
        """A reply asking to call one tool."""
        return cls(tool_calls=[{"name": name, "arguments": arguments}])

    @classmethod
    def fail(cls, status: int, error: str = "scripted failure", **headers: str) -> Reply:
        """An HTTP error; header names use underscores for dashes (retry_after_ms → retry-after-ms)."""
        return cls(status=status, error=error, headers={k.replace("_", "-"): v for k, v in headers.items()})


@dataclass
class Request:
    """One chat-completions request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    matched: str | None  # the matcher that answered, "" for the default queue, None for the responder

    @property
    def text(self) -> str:
        """All message contents joined (what the model was shown)."""
        parts = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)

    @property
    def system(self) -> str:
        """The system message, if any."""
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []) if m.get("role") == "system")


LLAMA_CPP_REFUSAL = ("1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be "
                     "'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]")


@dataclass(frozen=True)
class Profile:
    """How one family of model servers behaves on the wire, and how fast it is."""

    name: str
    refuses_json_schema: bool = False  # HTTP 500 naming the response format, as llama-cpp-python's server does
    ignores_tools: bool = False  # answers as if no tools had been offered, whatever tool_choice says
    one_at_a_time: bool = False  # a single slot: a second request waits until the first is answered
    prompt_tps: float = 0.0  # prompt tokens per second (0: no modelled latency)
    gen_tps: float = 0.0  # generated tokens per second
    overhead_s: float = 0.0  # per request (network, queueing at a hosted API)
    time_scale: float = 1.0  # the share of the modelled time actually slept

    def latency(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, float]:
        """Modelled seconds to read the prompt and to generate the answer."""
        read = prompt_tokens / self.prompt_tps if self.prompt_tps else 0.0
        write = completion_tokens / self.gen_tps if self.gen_tps else 0.0
        return self.overhead_s + read, write


# Speeds as measured or published for the setups the README names (see its "Local models" section).
PROFILES = {
    # A hosted API: quick to read, ~80 tokens/s out, requests in parallel.
    "openai": Profile("openai", prompt_tps=20_000, gen_tps=80, overhead_s=0.4),
    # Ollama with a 7–8B Q4 model on a consumer GPU; one request at a time (OLLAMA_NUM_PARALLEL=1).
    "ollama": Profile("ollama", one_at_a_time=True, prompt_tps=1_500, gen_tps=40, overhead_s=0.05),
    # llama-cpp-python's server with a small Q4_K_M model on 2 CPU cores: json_schema refused, tools ignored.
    "llama-cpp": Profile("llama-cpp", refuses_json_schema=True, ignores_tools=True, one_at_a_time=True,
                         prompt_tps=60, gen_tps=12, overhead_s=0.05),
}


def words(text: str) -> int:
    """The default token count: whitespace-separated words."""
    return len(text.split())


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) resets its connection: expected, not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LLMServer(LoopbackServer):
    """Serve /v1/chat/completions on 127.0.0.1 with scripted replies; see ``requests`` afterwards."""

    def __init__(self, count_tokens: Callable[[str], int] = words, profile: Profile | None = None) -> None:
        self.count_tokens = count_tokens
        self.profile = profile
        self.modelled_s = 0.0  # what the profile's latency added up to at full speed
        self._slot = threading.Lock()  # the single slot of a one-at-a-time profile
        self.queues: dict[str, deque[Reply]] = {}
        self.default: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[Request] = []
        self.errors: list[str] = []  # exceptions raised by scripted responders
        self.served_s = 0.0  # wall time spent inside the handler (what "the LLM" cost)
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                started = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    send_json(self, 404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                profile = server.profile
                if profile is not None and profile.one_at_a_time:
                    with server._slot:
                        self._answer(body, started)
                else:
                    self._answer(body, started)

            def _answer(self, body: dict[str, Any], started: float) -> None:
                refused = server._refusal(body)
                try:
                    reply, matched = (refused, None) if refused is not None else server._pick(body)
                except Exception as exc:  # a broken script must fail loudly, not look like a network error
                    server.errors.append(f"{type(exc).__name__}: {exc}")
                    reply, matched = Reply.fail(500, f"fake LLM responder raised {type(exc).__name__}: {exc}"), None
                server.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                               body, matched))
                profile = server.profile
                if profile is not None:
                    reply = server._as_profile(profile, body, reply)
                    if reply.status == 200 and reply.raw_body is None:
                        if body.get("stream"):
                            server._stream(self, body, reply, profile)
                            return
                        usage = server._completion(body, reply)["usage"]
                        read, write = profile.latency(usage["prompt_tokens"], usage["completion_tokens"])
                        with server._lock:
                            server.modelled_s += read + write
                        time.sleep((read + write) * profile.time_scale)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    if reply.raw_body is not None:
                        send_body(self, reply.status, reply.raw_body, reply.headers)
                    elif reply.sse:
                        send_body(self, 200, server._event_stream(body, reply), reply.headers,
                                  content_type="text/event-stream")
                    elif reply.status >= 400:
                        send_json(self, reply.status, {"error": {"message": reply.error, "type": "scripted",
                                                                 "code": str(reply.status)}}, reply.headers)
                    else:
                        send_json(self, 200, server._completion(body, reply), reply.headers)
                finally:
                    with server._lock:
                        server.served_s += time.perf_counter() - started

        # base_url is the OpenAI-style base URL, http://127.0.0.1:PORT/v1.
        super().__init__(Handler, path="/v1", server_class=_QuietServer)

    # --- profiles ------------------------------------------------------------------------------------

    def _refusal(self, body: dict[str, Any]) -> Reply | None:
        """The error a profile answers a request it cannot take with, before any scripted reply is used."""
        fmt = body.get("response_format")
        if self.profile is not None and self.profile.refuses_json_schema and isinstance(fmt, dict) and \
                fmt.get("type") == "json_schema":
            return Reply.fail(500, LLAMA_CPP_REFUSAL)
        return None

    def _as_profile(self, profile: Profile, body: dict[str, Any], reply: Reply) -> Reply:
        """The reply as this server family would give it."""
        if profile.ignores_tools and reply.tool_calls:
            # The model never saw the tools: it answers the messages as they are.
            without = {k: v for k, v in body.items() if k not in ("tools", "tool_choice")}
            return self.responder(without) if self.responder is not None else Reply(content="")
        return reply

    def _stream(self, handler: Any, body: dict[str, Any], reply: Reply, profile: Profile) -> None:
        """Stream the completion with the profile's timing: the first token after the prompt is read."""
        usage = self._completion(body, reply)["usage"]
        read, write = profile.latency(usage["prompt_tokens"], usage["completion_tokens"])
        with self._lock:
            self.modelled_s += read + write
        events = self._event_stream(body, reply).split(b"\n\n")
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        time.sleep(read * profile.time_scale)
        handler.wfile.write(events[0] + b"\n\n")
        handler.wfile.flush()
        time.sleep(write * profile.time_scale)
        handler.wfile.write(b"\n\n".join(events[1:]))
        handler.wfile.flush()
        handler.close_connection = True

    # --- scripting ---------------------------------------------------------------------------------

    def script(self, match: str | None, *replies: Reply) -> LLMServer:
        """Queue replies for requests whose messages contain ``match`` (None: the default queue)."""
        with self._lock:
            queue = self.default if match is None else self.queues.setdefault(match, deque())
            queue.extend(replies)
        return self

    def always_call_tool(self, name: str, **arguments: Any) -> LLMServer:
        """Answer every request that no script matches with a call to tool ``name``, tools offered or not."""
        self.responder = lambda body: Reply.tool(name, **arguments)
        return self

    def pending(self) -> int:
        """Replies scripted but not used yet."""
        return len(self.default) + sum(len(q) for q in self.queues.values())

    def _pick(self, body: dict[str, Any]) -> tuple[Reply, str | None]:
        # Match on the system prompt first (where crewAI puts the role); the user message may quote
        # other agents' outputs.
        system = Request("", {}, body, None).system
        text = Request("", {}, body, None).text
        with self._lock:
            for haystack in (system, text):
                for key, queue in self.queues.items():
                    if queue and key in haystack:
                        return queue.popleft(), key
            if self.default:
                return self.default.popleft(), ""
        if self.responder is not None:
            return self.responder(body), None
        return Reply.fail(500, "fake LLM server: no scripted reply left for this request"), None

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        prompt = Request("", {}, body, None).text
        if body.get("tools"):
            prompt += json.dumps(body["tools"])
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        completion_text = reply.content or ""
        finish = "stop"
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
                for call in reply.tool_calls
            ]
            completion_text += json.dumps(message["tool_calls"])
            finish = "tool_calls"
        prompt_tokens = self.count_tokens(prompt)
        completion_tokens = self.count_tokens(completion_text)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _event_stream(self, body: dict[str, Any], reply: Reply) -> bytes:
        """The completion as OpenAI-style ``chat.completion.chunk`` events ending in ``[DONE]``."""
        completion = self._completion(body, reply)
        choice = completion["choices"][0]
        delta = {k: v for k, v in choice["message"].items() if v is not None}
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(delta["tool_calls"])]
        head = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        events = [head | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                  head | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
                          "usage": completion["usage"]}]
        return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


@contextmanager
def serving_llm(count_tokens: Callable[[str], int] = words, profile: Profile | None = None) -> Iterator[LLMServer]:
    """A started ``LLMServer`` (behaving as ``profile``, if given) for the duration of a ``with`` block."""
    with LLMServer(count_tokens, profile) as server:
        yield server
