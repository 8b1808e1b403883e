"""The feed client's transport: one deadline over the whole exchange, and no fetches turned on private addresses.

Real httpx over the loopback feed server; public-looking hosts come from an injected resolver (never
connected to) or an httpx ``MockTransport`` mounted for them, so nothing leaves the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from memory import schema
from sources.errors import FetchError
from sources.feed_transport import FeedTransport, is_public
from sources.rss import FeedSpec, fetch_feed
from sources.tickers import Watchlist
from tapewatch.clients import http_client
from tapewatch.ingest import Ingestor
from tapewatch.settings import DEFAULT_WATCHLIST, Settings
from tests.fakes.feed_server import FeedServer, Route

BODY = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>One</title>'
        b"<link>https://news.example/one</link><description>The first item.</description></item></channel></rss>")
PUBLIC = "93.184.215.14"  # a global address the resolver hands out; nothing ever connects to it


def settings(**fetch: Any) -> Settings:
    return Settings(fetch={"timeout": "1s", "connect_timeout": "1s", **fetch})


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


# --- item 7: the deadline covers connect, status line, headers and body ------------------------------------


def test_trickled_status_line_and_headers_end_at_the_deadline(feed_server: FeedServer) -> None:
    # ~120 header bytes at 30 ms each: every byte is well inside the 1 s read timeout, the whole takes ~4 s.
    feed_server.routes["/slowloris"] = Route(body=BODY, trickle_s=0.03, headers={"X-Padding": "p" * 40})
    started = time.monotonic()
    with http_client(settings()) as client, pytest.raises(FetchError, match=r"within the 0\.5s deadline") as info:
        fetch_feed(client, feed_server.url("/slowloris"), deadline_s=0.5)
    assert feed_server.trickled == []  # the client hung up during the headers, not after them
    assert time.monotonic() - started < 2.5  # loose: the trickle alone would take ~4 s
    assert info.value.unreachable is False


def test_deadline_holds_on_a_reused_keep_alive_connection(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(body=BODY)
    feed_server.routes["/slowloris"] = Route(body=BODY, trickle_s=0.03, headers={"X-Padding": "p" * 40})
    with http_client(settings()) as client:
        assert fetch_feed(client, feed_server.url("/feed"), deadline_s=5).body == BODY
        with pytest.raises(FetchError, match="deadline"):
            fetch_feed(client, feed_server.url("/slowloris"), deadline_s=0.5)
        assert feed_server.trickled == []
        # the pool stays usable for the next feed
        assert fetch_feed(client, feed_server.url("/feed"), deadline_s=5).body == BODY


def test_a_name_lookup_that_hangs_ends_at_the_deadline(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(body=BODY)

    def slow(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["127.0.0.1"]

    with http_client(settings(), resolver=slow) as client, pytest.raises(FetchError, match="deadline"):
        fetch_feed(client, f"http://slow-dns.example.test:{feed_server.port}/feed", deadline_s=0.4)


def test_a_feed_past_its_deadline_gets_an_error_row_and_the_others_are_stored(memory: Any,
                                                                              feed_server: FeedServer) -> None:
    feed_server.routes["/good"] = Route(body=BODY)
    feed_server.routes["/slowloris"] = Route(body=BODY, trickle_s=0.03, headers={"X-Padding": "p" * 40})
    feeds = [FeedSpec("good", feed_server.url("/good")), FeedSpec("slowloris", feed_server.url("/slowloris"))]
    with http_client(settings()) as client:
        ingestor = Ingestor(memory, client, Watchlist(DEFAULT_WATCHLIST), max_body_bytes=1_000_000, deadline_s=0.5)
        outcomes = {o.name: o for o in ingestor.run(feeds)}
    assert outcomes["good"].status == "ok" and outcomes["good"].new == 1
    assert outcomes["slowloris"].status == "error" and "deadline" in (outcomes["slowloris"].error or "")
    assert feed_server.trickled == []  # given up during the headers
    log = schema.fetch_log
    with memory.state.engine.connect() as conn:
        rows = conn.execute(select(log.c.status, log.c.error).where(log.c.source == "slowloris")).all()
    assert len(rows) == 1 and rows[0].status == "error" and "deadline" in rows[0].error
    health = {h.name: h for h in memory.state.source_health()}
    assert health["slowloris"].consecutive_errors == 1


# --- item 15: redirects to loopback, private, link-local or metadata addresses ----------------------------


def redirecting_client(target: str, table: dict[str, list[str]], **kwargs: Any) -> httpx.Client:
    """A client whose public-looking feed host (news.example.test) answers 302 → ``target``."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": target})

    return httpx.Client(transport=FeedTransport(resolver=resolver({"news.example.test": [PUBLIC], **table}),
                                                **kwargs),
                        mounts={"http://news.example.test": httpx.MockTransport(answer)},
                        follow_redirects=True, max_redirects=3, timeout=1.0)


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/feed",
    "http://[::1]:{port}/feed",
    "http://[::ffff:127.0.0.1]:{port}/feed",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.20.30.40/feed",
    "http://192.168.1.1/feed",
    "http://[fd00::1]/feed",
    "http://[fe80::1]/feed",
    "http://0.0.0.0:{port}/feed",
    "http://intranet.example.test:{port}/feed",  # a DNS name resolving to loopback
    "http://metadata.example.test/computeMetadata/v1/",  # … and one resolving to the metadata address
])
def test_a_public_feed_redirecting_to_a_private_address_is_refused(feed_server: FeedServer, target: str) -> None:
    feed_server.routes["/feed"] = Route(body=BODY)
    table = {"intranet.example.test": ["127.0.0.1"], "metadata.example.test": ["169.254.169.254"]}
    with (redirecting_client(target.format(port=feed_server.port), table) as client,
          pytest.raises(FetchError, match=r"refused to connect .*fetch\.allow_private") as info):
        fetch_feed(client, "http://news.example.test/rss")
    assert info.value.unreachable is False
    assert feed_server.hits == []


def test_allow_private_follows_the_same_redirect_to_the_address_it_checked(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(body=BODY)
    target = f"http://intranet.example.test:{feed_server.port}/feed"
    with redirecting_client(target, {"intranet.example.test": ["127.0.0.1"]}, allow_private=True) as client:
        result = fetch_feed(client, "http://news.example.test/rss")
    assert result.body == BODY and result.url == target
    assert feed_server.hits[0].headers["host"] == f"intranet.example.test:{feed_server.port}"


def test_a_public_feed_redirecting_to_another_public_host_is_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "news.example.test":
            return httpx.Response(301, headers={"Location": "https://cdn.example.test/rss.xml"})
        return httpx.Response(200, content=BODY, headers={"Content-Type": "application/rss+xml"})

    table = {"news.example.test": [PUBLIC], "cdn.example.test": [PUBLIC]}
    with httpx.Client(transport=FeedTransport(resolver=resolver(table)), follow_redirects=True,
                      mounts={"http://news.example.test": httpx.MockTransport(answer),
                              "https://cdn.example.test": httpx.MockTransport(answer)}) as client:
        result = fetch_feed(client, "http://news.example.test/rss")
    assert result.body == BODY and result.url == "https://cdn.example.test/rss.xml"


def test_a_feed_configured_on_loopback_may_redirect_on_loopback(feed_server: FeedServer) -> None:
    feed_server.routes["/old"] = Route(redirect_to=feed_server.url("/feed"), status=301)
    feed_server.routes["/feed"] = Route(body=BODY)
    with http_client(settings()) as client:
        result = fetch_feed(client, feed_server.url("/old"))
    assert result.body == BODY and result.url == feed_server.url("/feed")


def rebinding(port_host: str) -> Callable[[str, int], list[str]]:
    """news.example.test answers a public address first, loopback afterwards (DNS rebinding)."""
    answers: dict[str, Iterator[list[str]]] = {port_host: iter([[PUBLIC]] + [["127.0.0.1"]] * 10)}

    def resolve(host: str, port: int) -> list[str]:
        return next(answers[host])

    return resolve


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused(feed_server: FeedServer) -> None:
    feed_server.routes["/rss"] = Route(body=BODY)
    url = f"http://news.example.test:{feed_server.port}/rss"
    with (http_client(settings(), resolver=rebinding("news.example.test")) as client,
          pytest.raises(FetchError, match=r"refused to connect to news\.example\.test")):
        fetch_feed(client, url)
    assert feed_server.hits == []


def test_ingest_records_a_refused_redirect_against_its_feed(memory: Any, feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(body=BODY)
    with redirecting_client(feed_server.url("/feed"), {}) as client:
        ingestor = Ingestor(memory, client, Watchlist(DEFAULT_WATCHLIST), max_body_bytes=1_000_000, deadline_s=5)
        [outcome] = ingestor.run([FeedSpec("outlet", "http://news.example.test/rss")])
    assert outcome.status == "error" and "refused to connect to 127.0.0.1" in (outcome.error or "")
    assert outcome.unreachable is False  # a refusal is not "offline": samples must not stand in
    assert feed_server.hits == []


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.215.14", True), ("2606:4700::1111", True), ("127.0.0.53", False), ("10.0.0.1", False),
    ("172.16.5.4", False), ("192.168.0.10", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("0.0.0.0", False), ("::1", False), ("fd00::1", False), ("fe80::1%eth0", False), ("::ffff:10.0.0.1", False),
    ("::ffff:93.184.215.14", True), ("2002:7f00:1::", False), ("224.0.0.1", False),
])
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public
