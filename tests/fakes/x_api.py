"""A loopback fake of the X API v2 endpoints tapewatch uses, answering in X's real JSON shapes.

State: ``users`` and ``tweets`` (newest id = largest id). Behaviour is scripted with ``fail_next`` (a queue of
failures for a path prefix: status, headers, body, or a delay that outlasts the client's timeout, optionally
after performing the write) and ``omit_includes``. Every request is recorded in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer, send_body

ME_ID = "9000000000000000001"


@dataclass
class FakeUser:
    id: str
    username: str
    name: str
    verified: bool = False
    followers: int = 1000


@dataclass
class FakeTweet:
    id: str
    author_id: str
    text: str
    created_at: datetime
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    lang: str = "en"
    in_reply_to: str | None = None
    omit: tuple[str, ...] = ()  # fields left out of the JSON (a post the parser must default or skip)
    media: tuple[str, ...] = ()  # media ids attached (X appends the image's t.co link to the text)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "author_id": self.author_id,
            "created_at": self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "lang": self.lang,
            "edit_history_tweet_ids": [self.id],
            "public_metrics": {
                "retweet_count": self.reposts,
                "reply_count": self.replies,
                "like_count": self.likes,
                "quote_count": self.quotes,
                "bookmark_count": 0,
                "impression_count": 10 * (self.likes + 1),
            },
        }
        if self.media:
            body["attachments"] = {"media_keys": [f"3_{m}" for m in self.media]}
        if self.in_reply_to:
            body["referenced_tweets"] = [{"type": "replied_to", "id": self.in_reply_to}]
            body["conversation_id"] = self.in_reply_to
        for name in self.omit:
            body.pop(name, None)
        return body


@dataclass
class Failure:
    """One scripted failure for requests whose path starts with ``prefix`` (and ``method``, if given)."""

    prefix: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay_s: float = 0.0  # sleep before answering (longer than the client timeout → a client-side timeout)
    method: str | None = None
    after_effect: bool = False  # perform the request's effect (e.g. create the tweet) before failing
    raw: bytes | None = None  # send these bytes as the body instead of JSON (a malformed answer)
    pass_through: bool = False  # after the delay, answer normally (a slow but good answer)
    skip: int = 0  # let this many matching requests through before failing


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any


class FakeXAPI(LoopbackServer):
    """Serve a fake X API v2 on 127.0.0.1; point a tweepy client at ``base_url``."""

    def __init__(self) -> None:
        self.users: dict[str, FakeUser] = {ME_ID: FakeUser(ME_ID, "tapewatch_bot", "tapewatch")}
        self.tweets: dict[str, FakeTweet] = {}
        self.failures: list[Failure] = []
        self.requests: list[Request] = []
        self.omit_includes = False
        self.rate_limit_remaining = 900
        self.media: dict[str, dict[str, Any]] = {}  # uploaded through /1.1/media/upload: id → bytes, alt text
        self.suspended: set[str] = set()  # user ids whose posts the lookup refuses (X: not authorised)
        # Ids are snowflakes like X's (milliseconds since X's epoch << 22), so they encode a recent time.
        self._next_id = (int(time.time() * 1000) - 1_288_834_974_657) << 22
        self._lock = threading.Lock()
        super().__init__(self._handle, methods=("GET", "POST", "DELETE"))

    # -- state helpers ---------------------------------------------------------------------------
    def add_user(self, username: str, name: str | None = None, user_id: str | None = None) -> FakeUser:
        """Create an account; ids are numeric strings like X's."""
        with self._lock:
            uid = user_id or str(1000 + len(self.users))
            user = FakeUser(uid, username, name or username)
            self.users[uid] = user
            return user

    def post(self, author: FakeUser | str, text: str, *, at: datetime | None = None, likes: int = 0,
             reposts: int = 0, replies: int = 0, quotes: int = 0, in_reply_to: str | None = None,
             omit: tuple[str, ...] = ()) -> FakeTweet:
        """Add a post by ``author`` (a user or user id); ids grow with each post; ``omit`` drops JSON fields."""
        author_id = author.id if isinstance(author, FakeUser) else author
        with self._lock:
            self._next_id += 1
            tweet = FakeTweet(str(self._next_id), author_id, text, at or datetime.now(UTC), likes, reposts,
                              replies, quotes, in_reply_to=in_reply_to, omit=omit)
            self.tweets[tweet.id] = tweet
            return tweet

    def fail_next(self, prefix: str, status: int = 500, *, times: int = 1, **kwargs: Any) -> None:
        """Queue ``times`` failures for requests whose path starts with ``prefix``."""
        for _ in range(times):
            self.failures.append(Failure(prefix, status, **kwargs))

    def calls(self, prefix: str = "/2/", method: str | None = None) -> list[Request]:
        """Recorded requests whose path starts with ``prefix``."""
        return [r for r in self.requests if r.path.startswith(prefix) and (method is None or r.method == method)]

    def posts_by(self, user_id: str = ME_ID) -> list[FakeTweet]:
        """Posts by one account, oldest first."""
        return sorted((t for t in self.tweets.values() if t.author_id == user_id), key=lambda t: int(t.id))

    # -- request handling -----------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if parts.path == "/1.1/media/upload.json":  # multipart form: the image itself
            body = {"raw": raw, "content_type": handler.headers.get("Content-Type", "")}
        self.requests.append(Request(method, parts.path, query, {k.lower(): v for k, v in handler.headers.items()},
                                     body))
        failure = self._take_failure(method, parts.path)
        if failure is not None:
            if failure.after_effect:
                self._route(method, parts.path, query, body)
            if failure.delay_s:
                time.sleep(failure.delay_s)
            if failure.pass_through:
                status, payload = self._route(method, parts.path, query, body)
                self._send(handler, status, payload, failure.headers)
                return
            payload = failure.body or {"title": "Error", "detail": f"scripted {failure.status}",
                                       "type": "about:blank", "status": failure.status}
            self._send(handler, failure.status, payload, failure.headers, raw=failure.raw)
            return
        status, payload = self._route(method, parts.path, query, body)
        self._send(handler, status, payload, {})

    def _take_failure(self, method: str, path: str) -> Failure | None:
        with self._lock:
            for i, failure in enumerate(self.failures):
                if path.startswith(failure.prefix) and failure.method in (None, method):
                    if failure.skip > 0:
                        failure.skip -= 1
                        return None
                    return self.failures.pop(i)
        return None

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str],
              raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        base = {"x-rate-limit-limit": "900", "x-rate-limit-remaining": str(self.rate_limit_remaining),
                "x-rate-limit-reset": str(int(time.time()) + 900)}
        send_body(handler, status, data, {**base, **headers}, "application/json; charset=utf-8")

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        segments = path.strip("/").split("/")
        if method == "GET" and path == "/2/users/me":
            return 200, {"data": self._user_json(self.users[ME_ID])}
        if method == "GET" and path.startswith("/2/users/by/username/"):
            user = self._by_username(segments[-1])
            if user is None:
                return 200, {"errors": [{"value": segments[-1], "detail": f"Could not find user with username: "
                                         f"[{segments[-1]}].", "title": "Not Found Error",
                                         "resource_type": "user", "parameter": "username",
                                         "type": "https://api.twitter.com/2/problems/resource-not-found"}]}
            return 200, {"data": self._user_json(user)}
        if method == "GET" and path == "/2/users/by":
            names = ",".join(query.get("usernames", [""])).split(",")
            found = [u for n in names if (u := self._by_username(n))]
            answer: dict[str, Any] = {"data": [self._user_json(u) for u in found]}
            unknown = [n for n in names if self._by_username(n) is None]
            if unknown:  # X answers 200 with an error per unknown name
                answer["errors"] = [{"value": n, "detail": f"Could not find user with usernames: [{n}].",
                                     "title": "Not Found Error", "resource_type": "user", "parameter": "usernames",
                                     "type": "https://api.twitter.com/2/problems/resource-not-found"}
                                    for n in unknown]
            return 200, answer
        if method == "GET" and len(segments) == 4 and segments[1] == "users" and segments[3] == "tweets":
            if segments[2] not in self.users:
                return 404, {"title": "Not Found Error", "detail": "user not found", "status": 404}
            pool = [t for t in self.tweets.values() if t.author_id == segments[2]]
            return 200, self._page(pool, query, "pagination_token")
        if method == "GET" and path == "/2/tweets/search/recent":
            words = [w.lower() for w in query.get("query", [""])[0].split() if ":" not in w and not w.startswith("-")]
            pool = [t for t in self.tweets.values() if all(w in t.text.lower() for w in words)]
            cutoff = datetime.now(UTC) - timedelta(days=7)
            pool = [t for t in pool if t.created_at >= cutoff]
            return 200, self._page(pool, query, "next_token")
        if method == "POST" and path == "/1.1/media/upload.json":
            return self._upload(body)
        if method == "POST" and path == "/1.1/media/metadata/create.json":
            media_id = str((body or {}).get("media_id", ""))
            if media_id not in self.media:
                return 400, {"errors": [{"code": 324, "message": "Invalid media id"}]}
            self.media[media_id]["alt"] = ((body or {}).get("alt_text") or {}).get("text", "")
            return 200, {}
        if method == "GET" and path == "/2/tweets":
            return self._lookup(",".join(query.get("ids", [""])).split(","))
        if method == "POST" and path == "/2/tweets":
            if not isinstance(body, dict) or not isinstance(body.get("text"), str):
                return 400, {"title": "Invalid Request", "detail": "text is required", "status": 400}
            reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
            if reply_to is not None and reply_to not in self.tweets:
                return 400, {"title": "Invalid Request", "detail": "reply target not found", "status": 400}
            media_ids = tuple(str(m) for m in (body.get("media") or {}).get("media_ids") or ())
            if any(m not in self.media for m in media_ids):
                return 400, {"title": "Invalid Request", "detail": "media not found", "status": 400}
            if media_ids:
                tweet = self.post(ME_ID, f"{body['text']} https://t.co/{media_ids[0][-10:]}", in_reply_to=reply_to)
                tweet.media = media_ids
                return 201, {"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}}
            tweet = self.post(ME_ID, body["text"], in_reply_to=reply_to)
            return 201, {"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}}
        if method == "DELETE" and len(segments) == 3 and segments[1] == "tweets":
            deleted = self.tweets.pop(segments[2], None) is not None
            return 200, {"data": {"deleted": deleted}}
        return 404, {"title": "Not Found Error", "detail": f"no route {method} {path}", "status": 404}

    def _upload(self, body: Any) -> tuple[int, Any]:
        """v1.1 media upload (simple, multipart): store the file, answer with its id as X does."""
        raw, ctype = (body or {}).get("raw", b""), (body or {}).get("content_type", "")
        boundary = ctype.split("boundary=", 1)[1].strip('"') if "boundary=" in ctype else ""
        part = next((p for p in raw.split(b"--" + boundary.encode()) if b'name="media"' in p), b"") if boundary else b""
        data = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0] if b"\r\n\r\n" in part else b""
        if not data:
            return 400, {"errors": [{"code": 38, "message": "media parameter is missing."}]}
        with self._lock:
            self._next_id += 1
            media_id = str(self._next_id)
            self.media[media_id] = {"bytes": data, "alt": ""}
        return 200, {"media_id": int(media_id), "media_id_string": media_id, "size": len(data),
                     "expires_after_secs": 86400, "image": {"image_type": "image/png", "w": 1200, "h": 675}}
    def _lookup(self, ids: list[str]) -> tuple[int, Any]:
        """GET /2/tweets?ids=: present posts in data, one error per deleted or suspended one, like X."""
        ids = [i for i in ids if i]
        if not 0 < len(ids) <= 100:
            return 400, {"title": "Invalid Request", "detail": "ids must hold 1 to 100 ids", "status": 400}
        data, errors = [], []
        for ident in ids:
            tweet = self.tweets.get(ident)
            if tweet is None:
                errors.append({"value": ident, "detail": f"Could not find tweet with ids: [{ident}].",
                               "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                               "resource_id": ident, "type": "https://api.twitter.com/2/problems/resource-not-found"})
            elif tweet.author_id in self.suspended:
                errors.append({"value": ident, "detail": f"User has been suspended: [{tweet.author_id}].",
                               "title": "Forbidden", "resource_type": "tweet", "parameter": "ids",
                               "resource_id": ident,
                               "type": "https://api.twitter.com/2/problems/not-authorized-for-resource"})
            else:
                data.append(tweet.as_json())
        answer: dict[str, Any] = {"data": data} if data else {}
        if errors:
            answer["errors"] = errors
        return 200, answer

    def _by_username(self, name: str) -> FakeUser | None:
        return next((u for u in self.users.values() if u.username.lower() == name.lower()), None)

    @staticmethod
    def _user_json(user: FakeUser) -> dict[str, Any]:
        return {"id": user.id, "username": user.username, "name": user.name, "verified": user.verified,
                "public_metrics": {"followers_count": user.followers, "following_count": 10,
                                   "tweet_count": 100, "listed_count": 1}}

    def _page(self, pool: list[FakeTweet], query: dict[str, list[str]], token_param: str) -> dict[str, Any]:
        since = int(query.get("since_id", ["0"])[0])
        until = int(query["until_id"][0]) if "until_id" in query else None
        pool = sorted((t for t in pool if int(t.id) > since and (until is None or int(t.id) < until)),
                      key=lambda t: int(t.id), reverse=True)
        if "start_time" in query:  # like X: only posts created at or after it
            start = datetime.fromisoformat(query["start_time"][0].replace("Z", "+00:00"))
            pool = [t for t in pool if t.created_at >= start]
        size = max(5, min(100, int(query.get("max_results", ["10"])[0])))
        offset = int(query.get(token_param, ["0"])[0] or 0)
        page = pool[offset : offset + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"] = page[0].id
            meta["oldest_id"] = page[-1].id
        if offset + size < len(pool):
            meta["next_token"] = str(offset + size)
        out: dict[str, Any] = {"meta": meta}
        if page:
            out["data"] = [t.as_json() for t in page]
            if not self.omit_includes:
                authors = {t.author_id for t in page}
                out["includes"] = {"users": [self._user_json(self.users[a]) for a in authors if a in self.users]}
        return out


@contextmanager
def serving_x() -> Iterator[FakeXAPI]:
    """A started ``FakeXAPI`` for the duration of a ``with`` block."""
    with FakeXAPI() as server:
        yield server
