"""The HTTP transport under the feed client: one deadline for the whole exchange, and no private addresses.

httpx applies its timeouts to each socket operation, so a server that trickles its status line and headers
one byte at a time keeps a request alive for as long as it likes. Inside ``exchange(url, deadline_s)`` the
network backend here gives every name lookup, connect, TLS handshake, read and write only the time left
before that exchange's deadline.

It also resolves every host itself, refuses a loopback, private, link-local, metadata or otherwise
non-public address unless the feed's own URL resolves to one (or ``allow_private`` is set), and connects to
the very address it checked: neither a redirect nor a DNS answer that changes between check and connect
can turn a fetch on the deployment's own network.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

# host, port → the addresses to try, in order (what socket.getaddrinfo gives, as strings).
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The system's addresses for ``host`` (IPv4 and IPv6, duplicates removed)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local, metadata etc."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host: judge that one.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return is_public(str(embedded))
    return ip.is_global and not ip.is_multicast


@dataclass
class Exchange:
    """One fetch in progress on this thread: when it must be over, and the feed's own URL."""

    url: str
    deadline: float | None  # a time.monotonic() value
    private_ok: bool | None = None  # decided at the first connect
    refused: str | None = None  # why a connection was refused, for the caller's error
    expired: bool = False  # the deadline (not a per-operation timeout) ended the exchange

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout`` cut to the time left; raises ``error`` when none is."""
        if self.deadline is None:
            return timeout
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.expired = True
            raise error("the fetch deadline passed")
        return remaining if timeout is None else min(timeout, remaining)


_CURRENT: ContextVar[Exchange | None] = ContextVar("tapewatch_fetch_exchange", default=None)


@contextmanager
def exchange(url: str, deadline_s: float | None) -> Iterator[Exchange]:
    """Run the requests in this block (in this thread) as one fetch of ``url`` bounded by ``deadline_s``."""
    current = Exchange(url=url, deadline=None if deadline_s is None else time.monotonic() + deadline_s)
    token = _CURRENT.set(current)
    try:
        yield current
    finally:
        _CURRENT.reset(token)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    current = _CURRENT.get()
    return timeout if current is None else current.left(timeout, error)


class _Stream(httpcore.NetworkStream):
    """A socket stream whose every operation ends by the current exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@dataclass
class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's blocking backend, with the deadline and the address policy of the current exchange."""

    allow_private: bool = False
    resolver: Resolver = system_resolver
    _inner: httpcore.SyncBackend = field(default_factory=httpcore.SyncBackend, repr=False)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        current = _CURRENT.get()
        if current is None:  # not a feed fetch: plain behaviour
            return _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))
        private_ok = self._private_ok(current)  # first: the feed's own host is judged by its first answer
        addresses = self._resolve(current, host, port)
        if not private_ok:
            blocked = [a for a in addresses if not is_public(a)]
            if blocked:
                current.refused = (f"refused to connect to {host} ({blocked[0]}): a loopback, private or link-local "
                                   "address, and the feed's own URL is not one (fetch.allow_private allows it)")
                raise httpcore.ConnectError(current.refused)
        last: Exception | None = None
        for address in addresses:  # connect to exactly what was checked
            try:
                return _Stream(self._inner.connect_tcp(address, port, current.left(timeout, httpcore.ConnectTimeout),
                                                       local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def _private_ok(self, current: Exchange) -> bool:
        if self.allow_private:
            return True
        if current.private_ok is None:
            parts = urlsplit(current.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                own = self._resolve(current, parts.hostname or "", port)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                own = []
            # A feed configured on a private address (a self-hosted bridge, a test server) may stay there.
            current.private_ok = any(not is_public(a) for a in own)
        return current.private_ok

    def _resolve(self, current: Exchange, host: str, port: int) -> list[str]:
        """``host``'s addresses, within the time the exchange has left."""
        try:
            return [str(ipaddress.ip_address(host.split("%", 1)[0]))]
        except ValueError:
            pass
        box: dict[str, Any] = {}

        def lookup() -> None:
            try:
                box["addresses"] = self.resolver(host, port)
            except Exception as exc:  # handed to the fetching thread below
                box["error"] = exc

        # getaddrinfo has no timeout of its own; a daemon thread lets the deadline win without blocking exit.
        worker = threading.Thread(target=lookup, name="resolve", daemon=True)
        worker.start()
        worker.join(current.left(None, httpcore.ConnectTimeout))
        if worker.is_alive():
            current.expired = True
            raise httpcore.ConnectTimeout(f"looking up {host} outlasted the fetch deadline")
        if "error" in box:
            raise httpcore.ConnectError(f"could not resolve {host}: {box['error']}") from box["error"]
        if not box.get("addresses"):
            raise httpcore.ConnectError(f"could not resolve {host}: no addresses")
        return list(box["addresses"])


class FeedTransport(httpx.HTTPTransport):
    """httpx's transport over a ``GuardedBackend``; use it for every feed client."""

    def __init__(self, *, allow_private: bool = False, resolver: Resolver | None = None,
                 limits: httpx.Limits | None = None, verify: bool = True) -> None:
        super().__init__(verify=verify)
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        # httpx has no public way to give HTTPTransport a network backend; its pool is the one thing it holds.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private=allow_private, resolver=resolver or system_resolver),
        )
