"""The tweepy transport: a real tweepy Client reaches the loopback fake X API, with a bounded timeout."""

from __future__ import annotations

import pytest
import requests
import tweepy

from sources.x_transport import mount_transport
from tests.fakes.x_api import ME_ID, serving_x


def _bearer_client(base_url: str, timeout: float = 2.0) -> tweepy.Client:
    client = tweepy.Client(bearer_token="test-bearer")
    mount_transport(client.session, (timeout, timeout), base_url)
    return client


def test_bearer_client_reads_timeline_through_base_url() -> None:
    with serving_x() as x:
        alice = x.add_user("alice")
        x.post(alice, "hello $SOL", likes=5)
        client = _bearer_client(x.base_url)
        user = client.get_user(username="alice").data
        page = client.get_users_tweets(user.id, tweet_fields=["public_metrics"])
        assert [t.text for t in page.data] == ["hello $SOL"]
        assert page.data[0].public_metrics["like_count"] == 5
        assert x.requests[0].headers["authorization"] == "Bearer test-bearer"


def test_user_context_client_posts_a_reply_chain() -> None:
    with serving_x() as x:
        client = tweepy.Client(consumer_key="ck", consumer_secret="cs", access_token="at",
                               access_token_secret="as")
        mount_transport(client.session, (2.0, 2.0), x.base_url)
        first = client.create_tweet(text="1/2 first")
        client.create_tweet(text="2/2 second", in_reply_to_tweet_id=first.data["id"])
        posts = x.posts_by(ME_ID)
        assert [p.text for p in posts] == ["1/2 first", "2/2 second"]
        assert posts[1].in_reply_to == posts[0].id
        assert x.calls("/2/tweets", "POST")[0].headers["authorization"].startswith("OAuth ")


def test_stalled_server_hits_the_transport_timeout() -> None:
    with serving_x() as x:
        x.fail_next("/2/users/by/username/", 200, delay_s=1.5)
        client = _bearer_client(x.base_url, timeout=0.3)
        with pytest.raises(requests.exceptions.Timeout):
            client.get_user(username="alice")
