"""RSS 1.0/2.0 and Atom feeds: fetch bytes with httpx, parse them with feedparser into ``Item``s.

Fetching and parsing are separate: ``parse_feed`` is pure and tested on files.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx

from sources.errors import FeedParseError, FetchError
from sources.feed_transport import exchange
from sources.item import Item, canonical_url, item_id_for_guid, item_id_for_post, item_id_for_url
from sources.plaintext import clean_text, html_to_text
from sources.tickers import Watchlist

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
# A publisher's clock may run a little fast; beyond this a date is treated as wrong.
FUTURE_TOLERANCE = timedelta(minutes=15)
# UTF-8 read as Latin-1/Windows-1252: a lead byte shown as Â/Ã (or â€ for punctuation) followed by what were
# its continuation bytes ("Ã©" for "é", "â€™" for "’"). Real text almost never has these pairs.
_CONTINUATION = "\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_MOJIBAKE = re.compile(f"[ÂÃ][{_CONTINUATION}]|â€[{_CONTINUATION}]")
_X_STATUS = re.compile(r"^https://(?:www\.|mobile\.)?(?:x|twitter)\.com/(?:[A-Za-z0-9_]{1,15}|i/web)/status/(\d{1,25})(?:[/?]|$)")


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One configured feed."""

    name: str
    url: str
    kind: str = "news"


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators remembered per feed for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch produced: a body, or ``not_modified`` after a 304."""

    url: str
    status_code: int
    body: bytes = b""
    content_type: str | None = None
    validators: Validators = field(default_factory=Validators)
    not_modified: bool = False
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """Items from one feed body plus survivable problems worth showing the user."""

    title: str
    items: tuple[Item, ...]
    warnings: tuple[str, ...] = ()
    # Problems that make the feed's items untrustworthy (ill-formed XML, a wrong encoding, mojibake).
    degraded: tuple[str, ...] = ()
    skipped: int = 0  # entries that could not become items


def fetch_feed(
    client: httpx.Client,
    url: str,
    validators: Validators | None = None,
    *,
    max_bytes: int = 5_000_000,
    deadline_s: float = 60.0,
) -> FetchResult:
    """GET a feed with conditional headers and a body size cap, all of it (connect to body) within ``deadline_s``.

    The deadline and the refusal of private addresses are enforced on a client built over a ``FeedTransport``.
    """
    headers = {"Accept": ACCEPT}
    if validators and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    started = time.monotonic()
    with exchange(url, deadline_s) as current:
        try:
            return _exchange(client, url, headers, validators, max_bytes, started, deadline_s)
        except httpx.TimeoutException as exc:
            if current.expired or time.monotonic() - started >= deadline_s:
                raise FetchError(f"no complete answer from {url} within the {deadline_s:g}s deadline") from exc
            if isinstance(exc, httpx.ConnectTimeout):
                raise FetchError(f"could not connect to {url}: timed out", unreachable=True) from exc
            raise FetchError(f"timed out fetching {url} ({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            if current.refused:
                raise FetchError(f"{url}: {current.refused}") from exc
            raise FetchError(f"could not connect to {url}: {exc}", unreachable=True) from exc
        except httpx.TooManyRedirects as exc:
            raise FetchError(f"too many redirects fetching {url}") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"could not fetch {url}: {exc}") from exc


def _exchange(client: httpx.Client, url: str, headers: dict[str, str], validators: Validators | None,
              max_bytes: int, started: float, deadline_s: float) -> FetchResult:
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 304:
            return FetchResult(
                url=str(response.url), status_code=304, not_modified=True,
                validators=validators or Validators(), elapsed_s=time.monotonic() - started,
            )
        if response.status_code >= 400:
            raise FetchError(f"HTTP {response.status_code} {response.reason_phrase} from {url}")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"body of {declared} bytes exceeds the {max_bytes}-byte cap")
        body = read_capped(response, max_bytes, started=started, deadline_s=deadline_s)
        return FetchResult(
            url=str(response.url),
            status_code=response.status_code,
            body=body,
            content_type=response.headers.get("content-type"),
            validators=Validators(
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            ),
            elapsed_s=time.monotonic() - started,
        )


def read_capped(response: httpx.Response, max_bytes: int, *, started: float | None = None,
                deadline_s: float | None = None) -> bytes:
    """A streamed body, refused past ``max_bytes`` or (when given) ``deadline_s`` after ``started``."""
    # Counting decoded bytes also caps a compressed body that inflates past the limit.
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"body exceeds the {max_bytes}-byte cap")
        if started is not None and deadline_s is not None and time.monotonic() - started > deadline_s:
            raise FetchError(f"body still arriving after the {deadline_s:g}s deadline")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_feed(
    body: bytes,
    feed: FeedSpec,
    watchlist: Watchlist,
    *,
    fetched_at: datetime,
    content_type: str | None = None,
) -> ParsedFeed:
    """Parse feed bytes into normalised items; raise ``FeedParseError`` if nothing usable is there."""
    # The feed's own URL is the base that relative links resolve against.
    # application/xml (unlike text/xml) lets the document's own encoding declaration decide.
    headers = {"content-location": feed.url, "content-type": content_type or "application/xml"}
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    problems: list[str] = []
    degraded: list[str] = []
    if parsed.get("bozo"):
        problem = f"malformed feed: {_describe(parsed.get('bozo_exception'))}"
        problems.append(problem)
        if _degrades(parsed):
            degraded.append(problem)
    if not parsed.entries:
        if not parsed.get("version"):
            detail = problems[0] if problems else "no RSS, Atom or RDF document found"
            raise FeedParseError(f"not a feed ({detail})")
        return ParsedFeed(title=_feed_title(parsed, feed), items=(), warnings=tuple(problems),
                          degraded=tuple(degraded))
    items: list[Item] = []
    seen: set[str] = set()
    skipped = 0
    for index, entry in enumerate(parsed.entries):
        item, entry_problems = _entry_to_item(entry, feed, watchlist, fetched_at)
        problems.extend(f"entry {index + 1}: {p}" for p in entry_problems)
        if item is None:
            skipped += 1
        elif item.id not in seen:
            seen.add(item.id)
            items.append(item)
    garbled = [m.group(0) for i in items if (m := _MOJIBAKE.search(f"{i.title} {i.text}"))]
    if garbled:
        degraded.append(f"{len(garbled)} of {len(items)} item(s) look mis-decoded (e.g. {garbled[0]!r}): "
                        "the publisher's text or declared encoding is wrong")
    problems.extend(p for p in degraded if p not in problems)
    return ParsedFeed(title=_feed_title(parsed, feed), items=tuple(items), warnings=tuple(problems),
                      degraded=tuple(degraded), skipped=skipped)


def _degrades(parsed: Any) -> bool:
    """Whether feedparser's complaint puts the items in doubt (most do; two are only HTTP-header pedantry)."""
    exc = parsed.get("bozo_exception")
    if isinstance(exc, feedparser.NonXMLContentType):  # a feed served as text/html still parses the same
        return False
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        # Bytes that decode as UTF-8 are UTF-8 whatever a text/* header implied; any other guess may be wrong.
        return str(parsed.get("encoding", "")).lower().replace("_", "-") not in ("utf-8", "utf8")
    return True


def _describe(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}" if exc else "unknown problem"


def _feed_title(parsed: Any, feed: FeedSpec) -> str:
    return clean_text(parsed.feed.get("title", ""), 200) or feed.name


def _entry_to_item(
    entry: Any, feed: FeedSpec, watchlist: Watchlist, fetched_at: datetime
) -> tuple[Item | None, list[str]]:
    problems: list[str] = []
    link = (entry.get("link") or "").strip()
    guid = (entry.get("id") or "").strip()
    title = _entry_title(entry)
    url = item_id = ""
    if link and not _is_web(link):
        # javascript:, data:, mailto:, a tag: URI… is never a place to send a reader.
        problems.append(f"link {link[:80]!r} is not http(s); stored without a link")
    elif link:
        try:
            url, item_id = canonical_url(link), item_id_for_url(link)
        except ValueError:
            problems.append(f"unusable link {link[:200]!r}")
        # An X post bridged by RSS (e.g. RSSHub) gets the id the X API source gives it, so the two never
        # store the same post twice.
        if post := _X_STATUS.match(url):
            item_id = item_id_for_post("x", post.group(1))
    if not item_id:
        if not guid:
            return None, [*problems, "skipped: no usable link and no id"]
        # No link of its own: the item has none, rather than the feed's URL (which is not the article).
        url = ""
        item_id = item_id_for_guid(feed.url, guid)
    text = _entry_text(entry)
    if not text:
        text = title
    if not title:
        title = text[:120]
    if not title:
        return None, ["skipped: no title and no text"]
    published, date_problem = _entry_date(entry, fetched_at)
    if date_problem:
        problems.append(date_problem)
    # RSS authors are often "desk@example.com (Ana Ruiz)"; feedparser splits out the name.
    author = clean_text((entry.get("author_detail") or {}).get("name") or entry.get("author", ""), 120)
    item = Item(
        id=item_id,
        kind=feed.kind,
        source=feed.name,
        url=url,
        title=title,
        text=text,
        published_at=published,
        fetched_at=fetched_at,
        author=author,
        tickers=watchlist.extract(f"{title}\n{text}"),
    )
    return item, problems


def _entry_title(entry: Any) -> str:
    # A plain-text title may legitimately contain "<" or "&": only HTML titles get parsed as HTML.
    raw = entry.get("title", "")
    if (entry.get("title_detail") or {}).get("type") == "text/plain":
        return clean_text(raw, 300)
    return html_to_text(raw, 300)


def _entry_text(entry: Any) -> str:
    # Feeds repeat the text in several fields (description, dc:description, content:encoded, media:description)
    # and often leave one empty, a stub or the title again: the longest candidate is the real text.
    candidates = [_as_text(entry.get("summary", ""), (entry.get("summary_detail") or {}).get("type"))]
    candidates += [_as_text(c.get("value", ""), c.get("type")) for c in entry.get("content", []) or []]
    return max(candidates, key=len, default="")


def _as_text(value: str, content_type: str | None) -> str:
    return clean_text(value) if content_type == "text/plain" else html_to_text(value)


def _is_web(link: str) -> bool:
    return urlsplit(link).scheme.lower() in ("http", "https")


def _entry_date(entry: Any, fetched_at: datetime) -> tuple[datetime, str | None]:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        struct = entry.get(key)
        if struct:
            when = datetime.fromtimestamp(calendar.timegm(struct), tz=UTC)
            if when > fetched_at + FUTURE_TOLERANCE:
                return fetched_at, f"date {when.isoformat()} is in the future; using fetch time"
            return when, None
    return fetched_at, "no date; using fetch time"
