"""Publish to X: a thread is a reply chain posted with a tweepy ``Client`` (OAuth 1.0a user context).

A part's image goes up first through v1.1 media upload (a tweepy ``API`` on the same OAuth 1.0a user
credentials), with its alt text, and is attached to the post by id. The upload happens after the part's intent
is committed: a crash between upload and post leaves the intent, which reconciliation settles by searching our
own posts, so the image may be uploaded again but the post never goes out twice (an unused upload expires).

tweepy is blocking, so every call runs in a worker thread (``asyncio.to_thread``) and never stalls the
event loop. The clients must come with a bounded transport (``sources.x_transport.mount_transport``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from publish.channel import Ambiguous, Lookup, Media, RateLimited, Rejected, Retryable, Sent, normalise_post

log = logging.getLogger(__name__)

# Our clock and X's differ a little; search a bit before the intent was written.
CLOCK_SLACK = timedelta(minutes=2)


class XPublisher:
    """The X channel over an injected ``tweepy.Client`` with user-context credentials."""

    name = "x"
    reconcilable = True

    def __init__(self, client: Any, *, pages: int = 5, media_api: Any = None,
                 on_read: Callable[[int], None] | None = None) -> None:
        self.client = client
        self.pages = pages
        self.media_api = media_api  # a tweepy ``API`` for media upload; None: posts go without images
        self.on_read = on_read  # told how many posts each reconciliation page read (X bills reads)
        self._me: tuple[str, str] | None = None

    async def open(self) -> None:
        """Check the credentials and learn our account (for reconciliation and links)."""
        try:
            await asyncio.to_thread(self._whoami)
        except Exception as exc:
            raise classify(exc) from exc

    async def close(self) -> None:
        """Close the HTTP sessions."""
        self.client.session.close()
        if self.media_api is not None:
            self.media_api.session.close()

    async def send(self, text: str, reply_to: str | None, media: Media | None = None) -> Sent:
        """Post one tweet (a reply when ``reply_to`` is set), with ``media`` uploaded and attached."""
        return await asyncio.to_thread(self._send, text, reply_to, media)

    async def reply(self, text: str, reply_to: str) -> Sent:
        """Post a reply to one of our posts (a correction under a thread's first post)."""
        return await asyncio.to_thread(self._send, text, reply_to)

    async def delete(self, remote_id: str) -> bool:
        """Delete one of our posts; False when X no longer has it (deleting twice is harmless)."""
        return await asyncio.to_thread(self._delete, remote_id)

    async def find(self, text: str, reply_to: str | None, since: datetime) -> Lookup:
        """Search our own recent posts for this text (and parent)."""
        return await asyncio.to_thread(self._find, text, reply_to, since)

    def _upload(self, media: Media) -> list[str] | None:
        """The media id of the uploaded image (alt text set), or None when X refuses the image for good."""
        if self.media_api is None:
            return None
        try:
            uploaded = self.media_api.media_upload(filename=media.name, file=io.BytesIO(media.png))
            media_id = str(uploaded.media_id_string)
            if media.alt:
                self.media_api.create_media_metadata(media_id, media.alt[:1000])
        except Exception as exc:
            problem = classify(exc)
            if isinstance(problem, Rejected):
                log.warning("X refused the chart (%s); posting without it", problem)
                return None
            # Nothing was posted yet: an upload that failed any other way is safe to try again.
            raise Retryable(f"media upload failed: {problem}", getattr(problem, "wait_s", None)) from exc
        return [media_id]

    def _send(self, text: str, reply_to: str | None, media: Media | None = None) -> Sent:
        media_ids = self._upload(media) if media is not None else None
        try:
            response = self.client.create_tweet(text=text, in_reply_to_tweet_id=reply_to, media_ids=media_ids,
                                                user_auth=True)
        except Exception as exc:
            raise classify(exc) from exc
        data = getattr(response, "data", None)
        if not isinstance(data, dict) or not data.get("id"):
            raise Ambiguous(f"X accepted the post but its answer has no id: {str(data)[:200]}")
        tweet_id = str(data["id"])
        return Sent(tweet_id, self._link(tweet_id))

    def _delete(self, remote_id: str) -> bool:
        import tweepy

        try:
            response = self.client.delete_tweet(remote_id, user_auth=True)
        except tweepy.NotFound:
            return False
        except Exception as exc:
            raise classify(exc) from exc
        data = getattr(response, "data", None)
        return bool(data.get("deleted")) if isinstance(data, dict) else True

    def _find(self, text: str, reply_to: str | None, since: datetime) -> Lookup:
        try:
            user_id, _ = self._whoami()
            want = normalise_post(text)
            start = since - CLOCK_SLACK
            token: str | None = None
            for _ in range(self.pages):
                # A reply is newer than its parent (ids grow with time), which narrows the search a lot.
                window: dict[str, Any] = {"since_id": reply_to} if reply_to else {"start_time": start}
                page = self.client.get_users_tweets(
                    user_id, max_results=100, pagination_token=token, user_auth=True,
                    tweet_fields=["created_at", "referenced_tweets", "attachments"], **window,
                )
                if self.on_read is not None:
                    self.on_read(len(page.data or []))
                for tweet in page.data or []:
                    # X appends an attached image's link to the post's text.
                    seen = normalise_post(tweet.text)
                    same = seen == want or (bool(getattr(tweet, "attachments", None)) and seen == f"{want} <url>")
                    if same and (reply_to is None or _parent(tweet) == reply_to):
                        return Lookup(Sent(str(tweet.id), self._link(str(tweet.id))), complete=True)
                    if tweet.created_at is not None and tweet.created_at < start:
                        return Lookup(None, complete=True)  # newest first: we have passed the window
                token = (page.meta or {}).get("next_token")
                if not token:
                    return Lookup(None, complete=True)
            return Lookup(None, complete=False)  # more posts than we may read: cannot say it is absent
        except Exception as exc:
            raise classify(exc) from exc

    def _whoami(self) -> tuple[str, str]:
        if self._me is None:
            me = self.client.get_me(user_auth=True).data
            self._me = (str(me.id), str(me.username))
        return self._me

    def _link(self, tweet_id: str) -> str:
        if self._me is not None:
            return f"https://x.com/{self._me[1]}/status/{tweet_id}"
        return f"https://x.com/i/web/status/{tweet_id}"


def _parent(tweet: Any) -> str | None:
    for ref in getattr(tweet, "referenced_tweets", None) or []:
        if getattr(ref, "type", None) == "replied_to":
            return str(ref.id)
    return None


def classify(exc: Exception) -> Exception:
    """Map a tweepy / requests failure to Retryable, Ambiguous or Rejected."""
    import requests
    import tweepy
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, tweepy.TooManyRequests):
        reset = exc.reset_time
        wait = max(1.0, reset - time.time() + 1) if reset else None
        return RateLimited(f"X rate limit (429); resets in {wait or '?'} s", wait)
    if isinstance(exc, tweepy.TwitterServerError):
        # X may have created the post before failing; only reconciliation can tell.
        return Ambiguous(f"X server error {exc.response.status_code}")
    if isinstance(exc, tweepy.HTTPException):
        status = getattr(exc.response, "status_code", "?")
        return Rejected(f"X refused the post ({status}): {'; '.join(exc.api_messages) or exc}"[:500])
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Retryable(f"could not connect to X: {exc}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NewConnectionError):
            return Retryable(f"could not connect to X: {reason}")
        return Ambiguous(f"connection to X broke: {exc}")
    if isinstance(exc, requests.exceptions.RequestException | ValueError):
        return Ambiguous(f"no usable answer from X: {exc}")
    return exc if isinstance(exc, Retryable | Ambiguous | Rejected) else Ambiguous(f"X call failed: {exc!r}")
