"""What the loopback fake servers share: an HTTP server on 127.0.0.1 (a free port), served from a daemon thread.

A fake subclasses ``LoopbackServer`` and passes either a request handler class or a dispatch callable
``dispatch(handler, method)`` answering the HTTP ``methods`` it lists. ``send_body`` / ``send_json`` answer
a request and ignore a client that has already hung up (a timeout test).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Dispatch = Callable[[BaseHTTPRequestHandler, str], None]


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) and no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass


def dispatching_handler(dispatch: Dispatch, methods: Iterable[str]) -> type[BaseHTTPRequestHandler]:
    """A handler class whose ``do_<METHOD>`` for each of ``methods`` calls ``dispatch(handler, METHOD)``."""

    def answer(method: str) -> Callable[[BaseHTTPRequestHandler], None]:
        def do(handler: BaseHTTPRequestHandler) -> None:
            dispatch(handler, method)

        return do

    return type("Handler", (QuietHandler,), {f"do_{m}": answer(m) for m in methods})


class LoopbackServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 with daemon threads; ``base_url`` ends with ``path``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler] | Dispatch, *, methods: Iterable[str] = ("GET",),
                 path: str = "", server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer) -> None:
        handler_class = handler if isinstance(handler, type) else dispatching_handler(handler, methods)
        self._path = path
        self._httpd = server_class(("127.0.0.1", 0), handler_class)
        self._httpd.daemon_threads = True
        # A short poll interval makes stop() take milliseconds instead of serve_forever's 0.5 s default.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT followed by the fake's path."""
        return f"http://{self.host}:{self.port}{self._path}"

    def start(self) -> Self:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send_body(handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: Mapping[str, str] | None = None,
              content_type: str = "application/json") -> None:
    """Answer with ``data``; a client that gave up (a timeout) is not worth an error."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: Mapping[str, str] | None = None,
              content_type: str = "application/json") -> None:
    """Answer with ``payload`` as JSON."""
    send_body(handler, status, json.dumps(payload).encode(), headers, content_type)
