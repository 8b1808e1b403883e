"""X API v2: account timelines and recent search, read through tweepy and parsed into ``Item``s.

Fetching (``XReader``, over an injected ``tweepy.Client``) and parsing (``parse_posts``, pure, tested on
plain dicts) are separate, as in ``sources.rss``. The bundled sample posts go through the same parser.
"""

from __future__ import annotations

import hashlib
import html
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sources.errors import FeedParseError, FetchError
from sources.item import Item, item_id_for_post
from sources.plaintext import clean_text
from sources.tickers import Watchlist

TWEET_FIELDS = ["created_at", "public_metrics", "author_id", "lang", "note_tweet"]
USER_FIELDS = ["username", "name"]
EXPANSIONS = ["author_id"]
# X refuses smaller pages: 5 for timelines, 10 for recent search.
MIN_RESULTS = {"timeline": 5, "search": 10}
FUTURE_TOLERANCE = timedelta(minutes=15)
_METRICS = {"like_count": "likes", "retweet_count": "reposts", "reply_count": "replies", "quote_count": "quotes"}


@dataclass(frozen=True, slots=True)
class XSourceSpec:
    """One thing read on X: an account's timeline or a recent-search query."""

    name: str  # "x:@handle" or "x:search:<query>"; the source name items and health are filed under
    endpoint: str  # "timeline" | "search"
    target: str  # the handle (no @) or the query
    cluster: str = ""

    @property
    def url(self) -> str:
        """Where a person would look at the same thing."""
        if self.endpoint == "timeline":
            return f"https://x.com/{self.target}"
        return f"https://x.com/search?q={quote(self.target)}&f=live"


def account_source(handle: str, cluster: str = "") -> XSourceSpec:
    """The timeline of ``@handle``, whose posts carry ``cluster``."""
    handle = handle.lstrip("@")
    return XSourceSpec(name=f"x:@{handle}", endpoint="timeline", target=handle, cluster=cluster)


def query_source(query: str) -> XSourceSpec:
    """A recent-search query; long queries get a shortened, still unique, source name."""
    name = f"x:search:{query}"
    if len(name) > 120:
        name = name[:110] + "…" + hashlib.sha256(query.encode()).hexdigest()[:8]
    return XSourceSpec(name=name, endpoint="search", target=query)


@dataclass(frozen=True, slots=True)
class XPage:
    """One response of a timeline or search, parsed."""

    items: tuple[Item, ...]
    count: int  # posts X returned, which is what X bills as reads
    newest_id: str | None
    next_token: str | None
    warnings: tuple[str, ...] = ()
    skipped: int = 0  # posts X returned (and billed) that could not become items


def parse_posts(
    payload: Any,
    *,
    source: str,
    watchlist: Watchlist,
    fetched_at: datetime,
    clusters: Mapping[str, str] | None = None,
    authors: Mapping[str, str] | None = None,
    account: str | None = None,
) -> XPage:
    """X API v2 JSON (``data``, ``includes.users``, ``meta``) → items.

    ``clusters`` maps lower-case handles to their configured cluster (others get none); ``authors`` maps
    user ids to handles for responses that come without ``includes``; ``account`` is the handle whose
    timeline this is, the author of every post in it. A field that can be defaulted is; a post with no id
    or no text is skipped and counted.
    """
    if not isinstance(payload, Mapping):
        raise FeedParseError(f"malformed X response: expected a JSON object, got {type(payload).__name__}")
    data = payload.get("data") or []
    meta = payload.get("meta") or {}
    if not isinstance(data, list) or not isinstance(meta, Mapping):
        raise FeedParseError("malformed X response: 'data' is not a list of posts")
    handles = dict(authors or {})
    includes = payload.get("includes")
    for user in (includes.get("users") if isinstance(includes, Mapping) else None) or []:
        if isinstance(user, Mapping) and user.get("id") and user.get("username"):
            handles[str(user["id"])] = str(user["username"])
    wanted = {k.lower(): v for k, v in (clusters or {}).items()}
    items: list[Item] = []
    warnings = [f"X reported: {_error_text(e)}" for e in payload.get("errors") or [] if isinstance(e, Mapping)]
    ids: list[int] = []
    skipped = 0
    for index, post in enumerate(data):
        # Every post read counts for the cursor, used or not: X has billed it, and reading it again would not help.
        if isinstance(post, Mapping) and str(post.get("id") or "").isdigit():
            ids.append(int(post["id"]))
        notes: list[str] = []
        try:
            item = _post_to_item(post, source, watchlist, fetched_at, handles, wanted, account, notes)
        except (KeyError, TypeError, ValueError) as exc:
            skipped += 1
            warnings.append(f"post {index + 1}: skipped ({type(exc).__name__}: {exc})")
            continue
        warnings += [f"post {index + 1} ({item.url.rsplit('/', 1)[-1]}): {note}" for note in notes]
        items.append(item)
    newest = meta.get("newest_id")
    if ids and (newest is None or not str(newest).isdigit() or int(newest) < max(ids)):
        newest = str(max(ids))
    token = meta.get("next_token")
    return XPage(items=tuple(items), count=len(data), newest_id=str(newest) if newest else None,
                 next_token=str(token) if token else None, warnings=tuple(warnings), skipped=skipped)


def _post_to_item(post: Any, source: str, watchlist: Watchlist, fetched_at: datetime,
                  handles: Mapping[str, str], clusters: Mapping[str, str], account: str | None,
                  notes: list[str]) -> Item:
    if not isinstance(post, Mapping):
        raise TypeError(f"a post is a JSON object, not {type(post).__name__}")
    post_id = str(post.get("id") or "")
    if not post_id.isdigit():
        raise ValueError(f"post id {post_id[:40]!r} is not numeric" if post_id else "no post id")
    # X sends text with &amp; &lt; &gt; escaped; long posts carry their full text in note_tweet.
    note = post.get("note_tweet")
    raw = (note.get("text") if isinstance(note, Mapping) else None) or post.get("text")
    text = clean_text(html.unescape(str(raw)), 4000) if raw else ""
    if not text:
        raise ValueError("no text")
    published = _published(post, post_id, fetched_at, notes)
    author_id = str(post.get("author_id") or "")
    handle = handles.get(author_id, "") if author_id else ""
    if not author_id and account:
        handle = account  # a timeline holds its own account's posts
        notes.append(f"no author_id; attributed to @{account}, whose timeline it is")
    url = f"https://x.com/{handle}/status/{post_id}" if handle else f"https://x.com/i/web/status/{post_id}"
    return Item(
        id=item_id_for_post("x", post_id), kind="social", source=source, url=url, title=headline(text),
        text=text, published_at=published, fetched_at=fetched_at, author=f"@{handle}" if handle else "",
        tickers=watchlist.extract(text), cluster=clusters.get(handle.lower(), "") if handle else "",
        metrics=_metrics(post.get("public_metrics"), notes),
    )


def _published(post: Mapping[str, Any], post_id: str, fetched_at: datetime, notes: list[str]) -> datetime:
    """When the post was made: its created_at, else the time in its (snowflake) id, else the fetch time."""
    try:
        published = datetime.fromisoformat(str(post["created_at"]).replace("Z", "+00:00"))
        if published.tzinfo is None:
            raise ValueError("created_at has no time zone")
        published = published.astimezone(UTC)
    except (KeyError, ValueError) as exc:
        published = post_time(post_id) or fetched_at
        notes.append(f"no usable created_at ({exc}); dated {'by its id' if post_time(post_id) else 'now'}")
    # A wrong clock must not put a post ahead of everything.
    return fetched_at if published > fetched_at + FUTURE_TOLERANCE else published


def _metrics(raw: Any, notes: list[str]) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        notes.append("public_metrics is not an object; no metrics")
        return {}
    metrics: dict[str, int] = {}
    for theirs, ours in _METRICS.items():
        if theirs in raw:
            try:
                metrics[ours] = int(raw[theirs])
            except (TypeError, ValueError):
                notes.append(f"{theirs} {str(raw[theirs])[:20]!r} is not a number; left out")
    return metrics


def _error_text(error: Mapping[str, Any]) -> str:
    return str(error.get("detail") or error.get("message") or error.get("title") or "unknown error")[:300]


def headline(text: str, limit: int = 120) -> str:
    """A post's first words as its title, cut at a word boundary."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


# X's post ids are snowflakes: milliseconds since this epoch, shifted left by 22 bits.
_SNOWFLAKE_EPOCH_MS = 1_288_834_974_657
# Recent search only covers the last 7 days and refuses a since_id older than that.
SEARCH_WINDOW = timedelta(days=7)


def post_time(post_id: str) -> datetime | None:
    """When an X post was created, read from its (snowflake) id; None for an id that isn't one."""
    if not post_id.isdigit() or int(post_id) < (1 << 22):
        return None
    return datetime.fromtimestamp(((int(post_id) >> 22) + _SNOWFLAKE_EPOCH_MS) / 1000, tz=UTC)


class XRateLimited(FetchError):
    """X answered 429; nothing more should be asked of that endpoint until ``reset_at``."""

    def __init__(self, message: str, reset_at: datetime) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class XAccessError(FetchError):
    """X refused the request (401/403); ``fatal`` when the credentials themselves were refused."""

    def __init__(self, message: str, *, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


Sleep = Callable[[float], None]


class XReader:
    """Timelines, searches and handle lookups through a tweepy ``Client`` (bearer token, API v2).

    5xx answers, timeouts and dropped connections are retried ``attempts`` times with exponential
    backoff; 429, 401, 403 and other 4xx are not retried but raised as ``FetchError`` subclasses.
    """

    def __init__(self, client: Any, *, attempts: int = 3, backoff_s: float = 2.0,
                 exclude: Sequence[str] = ("retweets",), sleep: Sleep | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.client = client
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.exclude = list(exclude)
        self.sleep: Sleep = sleep or time.sleep
        self.clock = clock or (lambda: datetime.now(UTC))

    def resolve(self, handles: Iterable[str]) -> dict[str, str]:
        """User ids of ``handles`` (lower-case handle → id); handles X doesn't know are left out."""
        wanted = sorted({h.lstrip("@").lower() for h in handles})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 100):
            chunk = wanted[start : start + 100]

            def lookup(chunk: list[str] = chunk) -> Any:
                return self.client.get_users(usernames=chunk, user_fields=USER_FIELDS)

            payload = self._call("users", lookup)
            for user in payload.get("data") or []:
                if isinstance(user, Mapping) and user.get("id") and user.get("username"):
                    found[str(user["username"]).lower()] = str(user["id"])
        return found

    def page(self, spec: XSourceSpec, *, user_id: str | None, since_id: str | None, max_results: int,
             token: str | None) -> dict[str, Any]:
        """One page of new posts (newest first) for ``spec``, as X API v2 JSON."""
        common: dict[str, Any] = {
            "since_id": since_id, "max_results": max_results, "tweet_fields": TWEET_FIELDS,
            "expansions": EXPANSIONS, "user_fields": USER_FIELDS,
        }
        if spec.endpoint == "timeline":
            if not user_id:
                raise FetchError(f"no user id for @{spec.target}")
            return self._call("timeline", lambda: self.client.get_users_tweets(
                user_id, pagination_token=token, exclude=self.exclude or None, **common))
        return self._call("search", lambda: self.client.search_recent_tweets(spec.target, next_token=token, **common))

    def lookup(self, ids: Sequence[str]) -> dict[str, Any]:
        """GET /2/tweets?ids=: which of up to 100 post ids X still returns (``sources.x_deletions`` reads it)."""
        if not 0 < len(ids) <= 100:
            raise ValueError(f"X looks up 1-100 post ids at a time, not {len(ids)}")
        return self._call("lookup", lambda: self.client.get_tweets(list(ids), tweet_fields=["created_at"]))

    def _call(self, endpoint: str, request: Callable[[], Any]) -> dict[str, Any]:
        import requests
        import tweepy
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        transient = (tweepy.TwitterServerError, requests.exceptions.Timeout, requests.exceptions.ConnectionError)
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts), retry=retry_if_exception_type(transient), reraise=True,
            wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_s * 8), sleep=self.sleep,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return _as_payload(request())
        except tweepy.TooManyRequests as exc:
            reset = _reset_time(exc, self.clock())
            raise XRateLimited(f"X rate limit on {endpoint} (429); paused until {reset:%Y-%m-%d %H:%M:%S} UTC",
                               reset) from exc
        except tweepy.Unauthorized as exc:
            raise XAccessError("X refused the bearer token (401 Unauthorized): check TAPEWATCH_X_BEARER_TOKEN",
                               fatal=True) from exc
        except tweepy.Forbidden as exc:
            raise XAccessError(f"X refused access to {endpoint} (403 Forbidden: {_messages(exc)}); the account "
                               "may be protected or suspended, or your API tier may not include this endpoint",
                               fatal=False) from exc
        except tweepy.TwitterServerError as exc:
            raise FetchError(f"X API {endpoint} failed after {self.attempts} attempt(s): "
                             f"HTTP {exc.response.status_code} {_messages(exc)}") from exc
        except tweepy.HTTPException as exc:
            raise FetchError(f"X API {endpoint}: HTTP {exc.response.status_code} {_messages(exc)}") from exc
        except requests.exceptions.Timeout as exc:
            raise FetchError(f"X API {endpoint} timed out after {self.attempts} attempt(s)") from exc
        except requests.exceptions.ConnectionError as exc:
            raise FetchError(f"could not connect to the X API: {exc}", unreachable=True) from exc
        except ValueError as exc:  # a body that is not JSON
            raise FeedParseError(f"malformed X response from {endpoint}: {exc}") from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


def _as_payload(response: Any) -> dict[str, Any]:
    """The JSON body of a tweepy answer, whatever ``return_type`` the client was built with."""
    if isinstance(response, dict):
        return response
    if hasattr(response, "json") and callable(response.json):  # requests.Response
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError("body is not a JSON object")
        return body
    # tweepy.Response(data, includes, errors, meta) with model objects that keep their raw dicts
    data = response.data
    rows = [d.data for d in data] if isinstance(data, list) else (data.data if data is not None else None)
    includes = {k: [m.data for m in v] for k, v in (response.includes or {}).items()}
    return {"data": rows, "includes": includes, "errors": response.errors, "meta": response.meta}


def _reset_time(exc: Any, now: datetime) -> datetime:
    reset = getattr(exc, "reset_time", None)
    if reset is None:
        header = exc.response.headers.get("x-rate-limit-reset") if exc.response is not None else None
        reset = int(header) if header and str(header).isdigit() else None
    if reset is None:  # no header: back off for X's usual 15-minute window
        return now + timedelta(minutes=15)
    return max(datetime.fromtimestamp(int(reset), tz=UTC), now)


def _messages(exc: Any) -> str:
    messages = [str(m) for m in getattr(exc, "api_messages", []) if m]
    return "; ".join(messages)[:300] or str(getattr(exc.response, "reason", "") or "")
