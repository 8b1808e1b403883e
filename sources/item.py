"""The ``Item``: one piece of ingested content, with a stable id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ItemKind = Literal["news", "social", "forum"]
ITEM_KINDS: tuple[str, ...] = ("news", "social", "forum")

# Query parameters that identify a campaign or a click, never the content.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid",
        "_hsenc", "_hsmi", "mkt_tok", "cmpid", "ocid", "ref", "ref_src", "ref_url",
        "source", "src", "feature", "guccounter", "guce_referrer", "guce_referrer_sig",
        "spm", "share", "s_cid", "sr_share", "cid",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "itm_")


def canonical_url(url: str) -> str:
    """Normalise a URL so that the same article always yields the same string."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = f"[{host}]" if ":" in host else host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{netloc}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _TRACKING_PARAMS and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    query.sort()
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def item_id_for_url(url: str) -> str:
    """Stable id of an item known by its URL (hash of the canonical URL)."""
    return _digest("url", canonical_url(url))


def item_id_for_guid(feed_url: str, guid: str) -> str:
    """Stable id of a feed entry with no link, from its feed and its guid."""
    return _digest("guid", f"{canonical_url(feed_url)}\n{guid.strip()}")


def item_id_for_post(platform: str, post_id: str) -> str:
    """Stable id of a social post (e.g. a tweet id)."""
    return _digest(platform, post_id.strip())


def _digest(namespace: str, value: str) -> str:
    return hashlib.sha256(f"{namespace}:{value}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Item:
    """One ingested thing (article, post) after normalisation; text is untrusted data."""

    id: str
    kind: str
    source: str
    url: str
    title: str
    text: str
    published_at: datetime
    fetched_at: datetime
    author: str = ""
    tickers: tuple[str, ...] = ()
    cluster: str = ""
    metrics: dict[str, int] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.published_at.tzinfo is None or self.fetched_at.tzinfo is None:
            raise ValueError("Item datetimes must be timezone-aware (UTC)")
        if self.kind not in ITEM_KINDS:
            raise ValueError(f"unknown item kind {self.kind!r}; expected one of {ITEM_KINDS}")

    @property
    def engagement(self) -> int:
        """One number for how much attention a post got (reposts and quotes weigh double)."""
        m = self.metrics
        return int(m.get("likes", 0) + m.get("replies", 0) + 2 * (m.get("reposts", 0) + m.get("quotes", 0)))

    def embedding_text(self, limit: int = 1500) -> str:
        """The text that represents this item in vector memory."""
        body = self.text if self.text != self.title else ""
        return f"{self.title}\n{body}"[:limit].strip()
