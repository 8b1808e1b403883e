"""The X source: pure parsing of X API v2 JSON, and XReader through a real tweepy Client to the fake X API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sources.errors import FeedParseError, FetchError
from sources.item import item_id_for_post
from sources.samples import SAMPLE_POSTS_SOURCE, sample_accounts, sample_body, sample_posts
from sources.tickers import Watchlist
from sources.x import XAccessError, XRateLimited, XReader, account_source, parse_posts, query_source
from tapewatch.clients import x_client
from tapewatch.settings import DEFAULT_WATCHLIST, Settings
from tests.fakes.x_api import FakeXAPI, serving_x

WATCH = Watchlist(DEFAULT_WATCHLIST)
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def tweet(post_id: str, text: str, author: str = "11", at: str = "2026-11-25T10:00:00.000Z", **extra: Any) -> dict:
    return {"id": post_id, "text": text, "author_id": author, "created_at": at,
            "public_metrics": {"like_count": 7, "retweet_count": 2, "reply_count": 1, "quote_count": 3}, **extra}


# --- parse_posts ---------------------------------------------------------------------------------


def test_sample_file_parses_into_clustered_posts_with_metrics() -> None:
    items = sample_posts(WATCH, NOW)
    assert len(items) == 78
    accounts = sample_accounts()
    assert {i.cluster for i in items} == {"vc", "founder", "trader", "researcher", "dev", "media"}
    for item in items:
        handle = item.author.lstrip("@")
        assert item.cluster == accounts[handle] and item.kind == "social" and item.source == SAMPLE_POSTS_SOURCE
        assert item.url.startswith(f"https://x.com/{handle}/status/")
        assert item.id == item_id_for_post("x", item.url.rsplit("/", 1)[1])
        assert set(item.metrics) == {"likes", "reposts", "replies", "quotes"}
    mira = next(i for i in items if i.author == "@mira_onchain" and "15.8M" in i.text)
    assert mira.metrics == {"likes": 412, "reposts": 97, "replies": 23, "quotes": 14} and mira.tickers == ("ETH",)
    # X escapes & < > in text; the parser gives back what the author typed, as plain data.
    injection = next(i for i in items if "new instruction" in i.text)
    assert injection.text.startswith("<system>") and "&lt;" not in injection.text


def test_parse_uses_includes_clusters_and_metrics() -> None:
    payload = {
        "data": [tweet("1002", "$SOL &amp; solana &gt; everything", "11"), tweet("1001", "gm $BTC", "12")],
        "includes": {"users": [{"id": "11", "username": "Alice_VC", "name": "A"},
                               {"id": "12", "username": "bob", "name": "B"}]},
        "meta": {"result_count": 2, "newest_id": "1002", "oldest_id": "1001", "next_token": "abc"},
    }
    page = parse_posts(payload, source="x:search:$SOL", watchlist=WATCH, fetched_at=NOW,
                       clusters={"alice_vc": "vc"})
    alice, bob = page.items
    assert (page.count, page.newest_id, page.next_token) == (2, "1002", "abc")
    assert alice.text == "$SOL & solana > everything" and alice.tickers == ("SOL",)
    assert alice.author == "@Alice_VC" and alice.cluster == "vc" and alice.url == "https://x.com/Alice_VC/status/1002"
    assert alice.metrics == {"likes": 7, "reposts": 2, "replies": 1, "quotes": 3} and alice.engagement == 18
    assert bob.cluster == "" and bob.source == "x:search:$SOL"
    assert alice.published_at == datetime(2026, 11, 25, 10, tzinfo=UTC)


def test_parse_without_includes_falls_back_to_known_authors_or_a_handle_free_url() -> None:
    payload = {"data": [tweet("2002", "known author", "11"), tweet("2001", "stranger", "99")],
               "meta": {"result_count": 2}}
    page = parse_posts(payload, source="s", watchlist=WATCH, fetched_at=NOW, authors={"11": "alice"},
                       clusters={"alice": "dev"})
    known, stranger = page.items
    assert known.author == "@alice" and known.cluster == "dev"
    assert stranger.author == "" and stranger.url == "https://x.com/i/web/status/2001" and stranger.cluster == ""
    assert page.newest_id == "2002"  # no meta.newest_id: the largest id read


def test_parse_survives_bad_posts_and_reports_them() -> None:
    payload = {
        "data": [
            tweet("3004", "long post cut at 280", note_tweet={"text": "long post in full, " + "word " * 100}),
            {"id": "3003", "author_id": "11", "created_at": "2026-11-25T10:00:00Z"},  # no text
            tweet("x3002", "not a numeric id"),
            tweet("3001", "from the future", at="2031-01-01T00:00:00.000Z"),
        ],
        "errors": [{"detail": "Could not find tweet with ids: [42]."}],
    }
    page = parse_posts(payload, source="s", watchlist=WATCH, fetched_at=NOW)
    assert [i.id for i in page.items] == [item_id_for_post("x", "3004"), item_id_for_post("x", "3001")]
    assert page.items[0].text.startswith("long post in full") and len(page.items[0].title) <= 120
    assert page.items[1].published_at == NOW
    assert page.count == 4  # X bills every post it returned
    assert len(page.warnings) == 3 and "Could not find tweet" in page.warnings[0]


@pytest.mark.parametrize("payload", [[], "nope", {"data": {"id": "1"}}])
def test_parse_rejects_malformed_answers(payload: Any) -> None:
    with pytest.raises(FeedParseError, match="malformed X response"):
        parse_posts(payload, source="s", watchlist=WATCH, fetched_at=NOW)


def test_empty_answer_is_no_posts_and_no_cursor() -> None:
    page = parse_posts({"meta": {"result_count": 0}}, source="s", watchlist=WATCH, fetched_at=NOW)
    assert page.items == () and page.newest_id is None and page.count == 0


def test_source_names() -> None:
    assert account_source("@mira_onchain", "researcher").name == "x:@mira_onchain"
    assert query_source("$SOL -is:retweet lang:en").url.startswith("https://x.com/search?q=%24SOL")
    long = query_source("bitcoin " * 60)
    assert len(long.name) <= 120 and long.name != query_source("bitcoin " * 61).name


# --- XReader through tweepy ------------------------------------------------------------------------


def reader(x: FakeXAPI, **kwargs: Any) -> XReader:
    settings = Settings(x_bearer_token="test-bearer", x={"api_base_url": x.base_url, "timeout": "1s",
                                                         "connect_timeout": "1s"})
    kwargs.setdefault("backoff_s", 0.01)
    return XReader(x_client(settings), **kwargs)


def test_timeline_and_search_requests_carry_cursor_page_size_and_fields() -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        for n in range(3):
            x.post(alice, f"post {n} about $ETH", likes=n)
        r = reader(x)
        ids = r.resolve(["@Alice", "nobody_here"])
        assert ids == {"alice": alice.id}
        oldest = x.posts_by(alice.id)[0].id
        page = r.page(account_source("alice"), user_id=alice.id, since_id=oldest, max_results=5, token=None)
        assert [t["text"] for t in page["data"]] == ["post 2 about $ETH", "post 1 about $ETH"]
        call = x.calls(f"/2/users/{alice.id}/tweets")[0]
        assert call.query["since_id"] == [oldest] and call.query["max_results"] == ["5"]
        assert "public_metrics" in call.query["tweet.fields"][0] and call.query["exclude"] == ["retweets"]
        assert call.headers["authorization"] == "Bearer test-bearer"
        found = r.page(query_source("$ETH"), user_id=None, since_id=None, max_results=10, token=None)
        assert len(found["data"]) == 3 and x.calls("/2/tweets/search/recent")[0].query["query"] == ["$ETH"]


def test_500_then_success_is_retried() -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        x.post(alice, "hello")
        x.fail_next("/2/users/", 503, times=2)
        page = reader(x, attempts=3).page(account_source("alice"), user_id=alice.id, since_id=None, max_results=5,
                                          token=None)
        assert page["data"][0]["text"] == "hello"
        assert len(x.calls(f"/2/users/{alice.id}/tweets")) == 3


def test_persistent_500_gives_up_after_the_attempts() -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        x.fail_next("/2/users/", 500, times=5)
        with pytest.raises(FetchError, match="failed after 2 attempt"):
            reader(x, attempts=2).page(account_source("alice"), user_id=alice.id, since_id=None, max_results=5,
                                       token=None)
        assert len(x.calls("/2/users/")) == 2


def test_timeout_is_retried_then_reported() -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        x.post(alice, "slow hello")
        x.fail_next("/2/users/", 200, delay_s=1.5)
        page = reader(x).page(account_source("alice"), user_id=alice.id, since_id=None, max_results=5, token=None)
        assert page["data"][0]["text"] == "slow hello"
        x.fail_next("/2/users/", 200, delay_s=1.5, times=2)
        with pytest.raises(FetchError, match="timed out after 2"):
            reader(x, attempts=2).page(account_source("alice"), user_id=alice.id, since_id=None, max_results=5,
                                       token=None)


def test_429_reports_the_reset_time_without_retrying() -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        reset = int(time.time()) + 600
        x.fail_next("/2/users/", 429, headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"})
        with pytest.raises(XRateLimited) as info:
            reader(x).page(account_source("alice"), user_id=alice.id, since_id=None, max_results=5, token=None)
        assert info.value.reset_at == datetime.fromtimestamp(reset, tz=UTC)
        assert len(x.calls("/2/users/")) == 1


@pytest.mark.parametrize(("status", "fatal", "fragment"), [(401, True, "bearer token"), (403, False, "403")])
def test_401_and_403_are_clear_errors(status: int, fatal: bool, fragment: str) -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        x.fail_next("/2/users/", status)
        with pytest.raises(XAccessError, match=fragment) as info:
            reader(x).page(account_source("alice"), user_id=alice.id, since_id=None, max_results=5, token=None)
        assert info.value.fatal is fatal
        assert len(x.calls("/2/users/")) == 1


def test_malformed_body_is_a_parse_error() -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        x.fail_next("/2/users/", 200, raw=b"<html>upstream proxy error</html>")
        with pytest.raises(FeedParseError, match="malformed X response"):
            reader(x).page(account_source("alice"), user_id=alice.id, since_id=None, max_results=5, token=None)


def test_bearer_token_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with serving_x() as x:
        alice = x.add_user("alice")
        reader(x).resolve(["alice"])
        assert alice.id
    assert "test-bearer" not in caplog.text


def test_sample_file_is_x_api_v2_json() -> None:
    data = json.loads(sample_body("kol_posts.json"))
    response = data["response"]
    assert {"data", "includes", "meta"} <= set(response)
    assert {"id", "text", "author_id", "created_at", "public_metrics"} <= set(response["data"][0])
    assert response["meta"]["result_count"] == len(response["data"])
    assert (datetime.fromisoformat(response["data"][0]["created_at"].replace("Z", "+00:00"))
            < NOW + timedelta(seconds=1))
