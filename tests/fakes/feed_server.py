"""A loopback HTTP server that serves feeds with scripted behaviour (errors, delays, ETags, redirects)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.fakes.loopback import LoopbackServer, QuietHandler


@dataclass
class Route:
    """How the server answers one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line
    drip_s: float = 0.0  # between body chunks of 1 KiB
    etag: str | None = None  # answer 304 when If-None-Match matches
    last_modified: str | None = None
    redirect_to: str | None = None
    lie_about_length: bool = False  # omit Content-Length (forces the streaming size cap)
    trickle_s: float = 0.0  # between single bytes of the status line and headers (a slowloris server)


@dataclass
class Hit:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]


class FeedServer(LoopbackServer):
    """Serve ``routes`` on 127.0.0.1; inspect ``hits`` afterwards."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.trickled: list[str] = []  # paths whose trickled status line and headers were sent in full
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if route.delay_s:
                    time.sleep(route.delay_s)
                if route.redirect_to:
                    self._send(route.status if route.status in (301, 302, 307, 308) else 302, b"", "text/plain",
                               {"Location": route.redirect_to})
                    return
                headers = dict(route.headers)
                if route.etag:
                    headers["ETag"] = route.etag
                    if self.headers.get("If-None-Match") == route.etag:
                        self._send(304, b"", None, headers)
                        return
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                    if self.headers.get("If-Modified-Since") == route.last_modified and not route.etag:
                        self._send(304, b"", None, headers)
                        return
                if route.trickle_s:
                    self._trickle(route, headers)
                    return
                self._send(route.status, route.body, route.content_type, headers, route.drip_s,
                           route.lie_about_length)

            def _trickle(self, route: Route, headers: dict[str, str]) -> None:
                lines = [f"HTTP/1.1 {route.status} OK", f"Content-Type: {route.content_type}",
                         *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(route.body)}"]
                head = ("\r\n".join(lines) + "\r\n\r\n").encode()
                try:
                    for index in range(len(head)):
                        self.wfile.write(head[index : index + 1])
                        self.wfile.flush()
                        time.sleep(route.trickle_s)
                    server.trickled.append(self.path)  # the client stayed for all of it
                    self.wfile.write(route.body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, body: bytes, ctype: str | None, headers: dict[str, str],
                      drip_s: float = 0.0, chunked: bool = False) -> None:
                try:
                    self.send_response(status)
                    if ctype:
                        self.send_header("Content-Type", ctype)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    if chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                    elif status != 304:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if status == 304:
                        return
                    step = 1024 if (drip_s or chunked) else max(len(body), 1)
                    for start in range(0, len(body), step):
                        piece = body[start : start + step]
                        if chunked:
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        else:
                            self.wfile.write(piece)
                        self.wfile.flush()
                        if drip_s:
                            time.sleep(drip_s)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        super().__init__(Handler)

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.base_url + path


@contextmanager
def serving() -> Iterator[FeedServer]:
    """A started ``FeedServer`` for the duration of a ``with`` block."""
    with FeedServer() as server:
        yield server
