"""The HTTP transport under a tweepy ``Client``: a timeout on every call and an optional base URL.

tweepy 4.x sends every API v2 request to the hard-coded ``https://api.twitter.com`` through a plain
``requests.Session`` with no timeout, so a stalled connection would hang a worker forever. Mounting this
adapter on the client's session bounds every call and, when a base URL is configured (a proxy, or a
loopback fake X API in tests), sends the same path there instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

X_API_HOST = "https://api.twitter.com"


class XTransport(HTTPAdapter):
    """Rewrite ``https://api.twitter.com/...`` to ``base_url`` and apply a default timeout."""

    def __init__(self, timeout: tuple[float, float], base_url: str | None = None) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout
        self.base_url = base_url.rstrip("/") if base_url else None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with the default timeout unless one was given, to the configured base URL."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.base_url and request.url:
            target = urlsplit(self.base_url)
            parts = urlsplit(request.url)
            prefix = target.path.rstrip("/")
            request.url = urlunsplit((target.scheme, target.netloc, prefix + parts.path, parts.query, ""))
        return super().send(request, **kwargs)


def mount_transport(session: requests.Session, timeout: tuple[float, float], base_url: str | None = None) -> None:
    """Route the X API host of ``session`` through an ``XTransport``."""
    adapter = XTransport(timeout, base_url)
    session.mount(X_API_HOST + "/", adapter)
    if base_url:
        # The rewritten request is sent by this same adapter, so no other mount is consulted.
        session.mount(base_url.rstrip("/") + "/", adapter)
