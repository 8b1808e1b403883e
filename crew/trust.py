"""Where a fact comes from decides what it can ground: each stored item's tier, its independence group and
the one link of it we may publish.

- Tier: ``official`` (a project's own feed or account, configured), ``media`` (news feeds, outlets'
  accounts), ``social`` (other X accounts) or ``forum`` (forum feeds).
- Group: what makes two sources independent. Two outlets are two groups; two X accounts in one cluster
  (a group of accounts that move together, the ``$FROG`` pattern) are one.
- Link: an item's canonical URL only when its host belongs to its source's own site (``link_domains``,
  by default the registrable domain of the feed's URL); an X post's is the x.com URL built from its
  id. Anything else, and any item that reads as instructions to an AI, is cited without a link: a feed
  controls its entries' links, so a hostile or compromised feed would otherwise choose what we publish.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from crew.claims import registrable_domain
from sources.injection import is_suspect_row

TIERS = ("official", "media", "social", "forum")
_X_STATUS = re.compile(r"^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/(?:(?P<handle>[A-Za-z0-9_]{1,15})|i/web|i)"
                       r"/status(?:es)?/(?P<id>\d{1,20})(?:[/?#]|$)", re.IGNORECASE)
_RESERVED_HANDLES = frozenset({"i", "home", "search", "intent", "share", "hashtag", "explore", "settings"})


def x_post_link(url: str) -> str | None:
    """The x.com URL of the post an X/Twitter status URL names, rebuilt from its id; None if it names none."""
    match = _X_STATUS.match(url.strip())
    if not match:
        return None
    handle = match.group("handle")
    if handle and handle.lower() not in _RESERVED_HANDLES:
        return f"https://x.com/{handle}/status/{match.group('id')}"
    return f"https://x.com/i/web/status/{match.group('id')}"


@dataclass(frozen=True)
class SourcePolicy:
    """Tiers, groups and publishable links, from the configured sources (``tapewatch.clients`` builds it)."""

    feed_urls: Mapping[str, str] = field(default_factory=dict)  # source name → its feed's URL
    link_domains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # source name → allowed domains
    feed_tiers: Mapping[str, str] = field(default_factory=dict)  # source name → tier
    account_tiers: Mapping[str, str] = field(default_factory=dict)  # X handle (lower case) → tier

    def tier(self, row: Any) -> str:
        """The tier of a stored item."""
        if row.kind == "social":
            return self.account_tiers.get(_handle(row), "social")
        return self.feed_tiers.get(row.source, "media" if row.kind == "news" else "forum")

    def group(self, row: Any) -> str:
        """The independence group of a stored item: its account cluster, or its outlet.

        Accounts nobody configured (found by a search) are one group together: anyone can open a hundred.
        """
        if row.kind == "social":
            return f"cluster:{row.cluster}" if row.cluster else "unvetted accounts"
        return f"outlet:{row.source}"

    def link(self, row: Any) -> str | None:
        """The link of a stored item we may publish, or None (cited without a link)."""
        url = (row.url or "").strip()
        if is_suspect_row(row) or not url.lower().startswith(("https://", "http://")):
            return None
        post = x_post_link(url)
        if post is not None:
            return post
        if row.kind == "social":
            return None  # a social item's only link is its post
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        allowed = self.link_domains.get(row.source) or self._feed_domain(row.source)
        if host and any(host == d or host.endswith(f".{d}") for d in allowed):
            return url
        return None

    def _feed_domain(self, source: str) -> tuple[str, ...]:
        feed = self.feed_urls.get(source)
        host = (urlsplit(feed).hostname or "") if feed else ""
        return (registrable_domain(host),) if host else ()


def _handle(row: Any) -> str:
    author = (row.author or "").strip().lstrip("@").lower()
    if author:
        return author
    match = _X_STATUS.match((row.url or "").strip())
    return (match.group("handle") or "").lower() if match else ""


class _Layered(Mapping[str, str]):
    """Configured feed URLs first, then whatever the state DB knows (read when asked)."""

    def __init__(self, first: Mapping[str, str], then: Mapping[str, str]) -> None:
        self.first, self.then = first, then

    def __getitem__(self, name: str) -> str:
        return self.first[name] if name in self.first else self.then[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**self.then, **self.first})

    def __len__(self) -> int:
        return len({**self.then, **self.first})


def policy_from(feeds: Iterable[tuple[str, str, str, Iterable[str]]], accounts: Mapping[str, str],
                stored_urls: Mapping[str, str] | None = None) -> SourcePolicy:
    """A policy from (name, url, tier, link_domains) per feed and handle → tier per X account.

    ``stored_urls`` (the state DB's source rows) covers sources no longer configured, such as the bundled
    samples, so their items keep their links.
    """
    configured: dict[str, str] = {}
    tiers: dict[str, str] = {}
    domains: dict[str, tuple[str, ...]] = {}
    for name, url, tier, link_domains in feeds:
        configured[name] = url
        tiers[name] = tier
        cleaned = tuple(d.strip().lower().lstrip(".") for d in link_domains if d.strip())
        if cleaned:
            domains[name] = cleaned
    stored = stored_urls if stored_urls is not None else {}
    return SourcePolicy(feed_urls=_Layered(configured, stored), link_domains=domains, feed_tiers=tiers,
                        account_tiers={h.lower().lstrip("@"): t for h, t in accounts.items()})
