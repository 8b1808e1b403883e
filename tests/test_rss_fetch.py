"""fetch_feed against the loopback feed server: validators, errors, timeouts, caps, redirects."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from sources.errors import FetchError
from sources.rss import Validators, fetch_feed
from tests.fakes.feed_server import FeedServer, Route

BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
ETAG = '"v1-abc"'
LAST_MODIFIED = "Tue, 17 Nov 2026 16:00:00 GMT"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(1.0, connect=1.0), follow_redirects=True, max_redirects=3) as c:
        yield c


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_200_returns_body_content_type_and_validators(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/feed"] = Route(body=BODY, etag=ETAG, last_modified=LAST_MODIFIED)
    result = fetch_feed(client, feed_server.url("/feed"))
    assert result.status_code == 200
    assert result.body == BODY
    assert result.not_modified is False
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.validators == Validators(etag=ETAG, last_modified=LAST_MODIFIED)
    assert result.url == feed_server.url("/feed")


def test_no_validators_when_server_sends_none(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/feed"] = Route(body=BODY)
    assert fetch_feed(client, feed_server.url("/feed")).validators == Validators()


def test_request_prefers_feed_types(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/feed"] = Route(body=BODY)
    fetch_feed(client, feed_server.url("/feed"))
    accept = feed_server.hits[0].headers["accept"]
    assert accept.startswith("application/rss+xml, application/atom+xml")
    assert "*/*;q=0.1" in accept
    assert "if-none-match" not in feed_server.hits[0].headers
    assert "if-modified-since" not in feed_server.hits[0].headers


def test_etag_round_trip_gives_not_modified(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/feed"] = Route(body=BODY, etag=ETAG)
    first = fetch_feed(client, feed_server.url("/feed"))
    second = fetch_feed(client, feed_server.url("/feed"), first.validators)
    assert feed_server.hits[1].headers["if-none-match"] == ETAG
    assert second.not_modified is True
    assert second.status_code == 304
    assert second.body == b""
    assert second.validators == first.validators


def test_stale_etag_gets_a_fresh_body(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/feed"] = Route(body=BODY, etag='"v2"')
    result = fetch_feed(client, feed_server.url("/feed"), Validators(etag='"v1"'))
    assert result.not_modified is False
    assert result.body == BODY
    assert result.validators.etag == '"v2"'


def test_last_modified_round_trip_gives_not_modified(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/feed"] = Route(body=BODY, last_modified=LAST_MODIFIED)
    first = fetch_feed(client, feed_server.url("/feed"))
    assert first.validators == Validators(last_modified=LAST_MODIFIED)
    second = fetch_feed(client, feed_server.url("/feed"), first.validators)
    assert feed_server.hits[1].headers["if-modified-since"] == LAST_MODIFIED
    assert "if-none-match" not in feed_server.hits[1].headers
    assert second.not_modified is True
    assert second.validators == first.validators


@pytest.mark.parametrize("status", [500, 404, 429, 403, 503])
def test_error_status_raises_fetch_error_naming_the_status(
    feed_server: FeedServer, client: httpx.Client, status: int
) -> None:
    feed_server.routes["/feed"] = Route(body=b"nope", status=status, content_type="text/plain")
    with pytest.raises(FetchError, match=str(status)) as info:
        fetch_feed(client, feed_server.url("/feed"))
    assert info.value.unreachable is False


def test_unknown_path_is_404(feed_server: FeedServer, client: httpx.Client) -> None:
    with pytest.raises(FetchError, match="404"):
        fetch_feed(client, feed_server.url("/missing"))


def test_read_timeout_raises_quickly(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/slow"] = Route(body=BODY, delay_s=1.3)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out") as info:
        fetch_feed(client, feed_server.url("/slow"))
    assert time.monotonic() - started < 1.25
    assert info.value.unreachable is False


def test_slow_drip_past_deadline_raises(feed_server: FeedServer, client: httpx.Client) -> None:
    # every chunk arrives well within the read timeout, but the whole body takes ~1.6 s
    feed_server.routes["/drip"] = Route(body=b"x" * 8 * 1024, drip_s=0.2)
    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetch_feed(client, feed_server.url("/drip"), deadline_s=0.3)
    assert time.monotonic() - started < 0.9


def test_slow_drip_within_deadline_succeeds(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/drip"] = Route(body=b"x" * 3 * 1024, drip_s=0.05)
    assert len(fetch_feed(client, feed_server.url("/drip"), deadline_s=5).body) == 3 * 1024


def test_declared_oversize_body_is_refused(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/big"] = Route(body=b"x" * 5000)
    with pytest.raises(FetchError, match="1000-byte cap"):
        fetch_feed(client, feed_server.url("/big"), max_bytes=1000)


def test_undeclared_oversize_body_is_cut_off_while_streaming(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/big"] = Route(body=b"x" * 5000, lie_about_length=True)
    with pytest.raises(FetchError, match="1000-byte cap"):
        fetch_feed(client, feed_server.url("/big"), max_bytes=1000)


def test_body_exactly_at_cap_is_accepted(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/edge"] = Route(body=b"x" * 1000, lie_about_length=True)
    assert len(fetch_feed(client, feed_server.url("/edge"), max_bytes=1000).body) == 1000


def test_redirect_is_followed_to_final_url(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/old"] = Route(redirect_to=feed_server.url("/moved"), status=301)
    feed_server.routes["/moved"] = Route(redirect_to=feed_server.url("/feed"))
    feed_server.routes["/feed"] = Route(body=BODY, etag=ETAG)
    result = fetch_feed(client, feed_server.url("/old"))
    assert result.url == feed_server.url("/feed")
    assert result.body == BODY
    assert result.validators.etag == ETAG
    assert [h.path for h in feed_server.hits] == ["/old", "/moved", "/feed"]


def test_redirect_loop_raises(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.routes["/a"] = Route(redirect_to=feed_server.url("/b"))
    feed_server.routes["/b"] = Route(redirect_to=feed_server.url("/a"))
    with pytest.raises(FetchError, match="redirect") as info:
        fetch_feed(client, feed_server.url("/a"))
    assert info.value.unreachable is False
    assert len(feed_server.hits) == 4  # the first request plus max_redirects=3


def test_connection_refused_is_unreachable(client: httpx.Client) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="could not connect") as info:
        fetch_feed(client, f"http://127.0.0.1:{closed_port()}/feed.xml")
    assert info.value.unreachable is True
    assert time.monotonic() - started < 1.0


def test_blocked_name_lookup_is_unreachable(client: httpx.Client) -> None:
    # the autouse no_network guard makes DNS fail, like being offline
    with pytest.raises(FetchError) as info:
        fetch_feed(client, "https://feeds.example/rss")
    assert info.value.unreachable is True
