"""Item identity (canonical URLs, stable ids), ticker extraction and HTML-to-text sanitising."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sources.item import Item, canonical_url, item_id_for_guid, item_id_for_post, item_id_for_url
from sources.plaintext import clean_text, html_to_text
from sources.tickers import Watchlist

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def make_item(**overrides: object) -> Item:
    fields: dict[str, object] = {
        "id": "i1", "kind": "news", "source": "wire", "url": "https://a.example/1", "title": "Title",
        "text": "Body", "published_at": NOW, "fetched_at": NOW,
    }
    fields.update(overrides)
    return Item(**fields)  # type: ignore[arg-type]


# --- canonical_url -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://news.example/a?utm_source=rss&utm_medium=feed&utm_campaign=x", "https://news.example/a"),
        ("https://news.example/a?fbclid=abc&gclid=def&id=7", "https://news.example/a?id=7"),
        ("https://news.example/a?UTM_Source=x&mc_cid=1&ref=home&page=2", "https://news.example/a?page=2"),
        ("https://news.example/a#comments", "https://news.example/a"),
        ("HTTPS://News.EXAMPLE.com/Path/Case", "https://news.example.com/Path/Case"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example:8443/a", "https://news.example:8443/a"),
        ("https://news.example/a?z=1&b=2&a=3", "https://news.example/a?a=3&b=2&z=1"),
        ("https://news.example/a/b/c/", "https://news.example/a/b/c/"),
        ("https://news.example", "https://news.example/"),
        ("  https://news.example./a  ", "https://news.example/a"),
    ],
)
def test_canonical_url_normalises(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected


def test_canonical_url_keeps_meaningful_query_and_path_together() -> None:
    url = "HTTPS://Markets.Example:443/btc/price?utm_source=x&range=1d&asset=btc#chart"
    assert canonical_url(url) == "https://markets.example/btc/price?asset=btc&range=1d"


def test_canonical_url_keeps_ipv6_brackets() -> None:
    assert canonical_url("https://[2001:DB8::1]:8443/feed?utm_source=x") == "https://[2001:db8::1]:8443/feed"


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("https://News.example:443/x?b=2&utm_term=t&a=1#f")
    assert canonical_url(once) == once


# --- ids -----------------------------------------------------------------------------------------


def test_url_id_is_stable_and_ignores_tracking_and_fragment() -> None:
    plain = "https://news.example/story/42?page=2"
    noisy = "https://NEWS.example:443/story/42?utm_source=tw&page=2&fbclid=zz#top"
    assert item_id_for_url(plain) == item_id_for_url(plain)
    assert item_id_for_url(plain) == item_id_for_url(noisy)
    assert len(item_id_for_url(plain)) == 32


def test_url_id_differs_for_different_content() -> None:
    assert item_id_for_url("https://news.example/story/42") != item_id_for_url("https://news.example/story/43")
    assert item_id_for_url("https://news.example/a?page=1") != item_id_for_url("https://news.example/a?page=2")


def test_guid_id_depends_on_feed_and_guid() -> None:
    feed = "https://news.example/feed.xml"
    assert item_id_for_guid(feed, "g-1") == item_id_for_guid(feed + "?utm_source=x", " g-1 ")
    assert item_id_for_guid(feed, "g-1") != item_id_for_guid(feed, "g-2")
    assert item_id_for_guid(feed, "g-1") != item_id_for_guid("https://other.example/feed.xml", "g-1")


def test_id_namespaces_do_not_collide() -> None:
    assert item_id_for_post("x", "123") != item_id_for_post("reddit", "123")
    assert item_id_for_post("x", "123") == item_id_for_post("x", " 123 ")


# --- Item ----------------------------------------------------------------------------------------


def test_item_accepts_aware_datetimes_in_any_zone() -> None:
    item = make_item(published_at=datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=-5))))
    assert item.published_at.utcoffset() == timedelta(hours=-5)


@pytest.mark.parametrize("field", ["published_at", "fetched_at"])
def test_item_rejects_naive_datetimes(field: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_item(**{field: datetime(2026, 11, 20, 12, 0)})


def test_item_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown item kind"):
        make_item(kind="tweet")


@pytest.mark.parametrize("kind", ["news", "social", "forum"])
def test_item_accepts_known_kinds(kind: str) -> None:
    assert make_item(kind=kind).kind == kind


def test_embedding_text_does_not_repeat_title_when_text_is_the_title() -> None:
    assert make_item(title="Same", text="Same").embedding_text() == "Same"
    assert make_item(title="Head", text="Body").embedding_text() == "Head\nBody"


# --- Watchlist.extract ---------------------------------------------------------------------------

WATCH = Watchlist({"BTC": ["bitcoin"], "ETH": ["ethereum", "ether"], "SOL": ["solana"], "ARB": ["Arbitrum One"]})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$SOL breaks out", ("SOL",)),
        ("watching $sol and $PEPE", ("PEPE", "SOL")),
        ("$BTC. $ETH, $LINK!", ("BTC", "ETH", "LINK")),
        ("it trades at $100 today", ()),
        ("a US$5 coffee", ()),
        ("price$SOL glued", ()),
        ("$ABCDEFGHIJK is too long to be a ticker", ()),
    ],
)
def test_cashtags(text: str, expected: tuple[str, ...]) -> None:
    assert WATCH.extract(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bitcoin rallies", ("BTC",)),
        ("BITCOIN and Ether", ("BTC", "ETH")),
        ("a bitcoiner speaks", ()),
        ("ethers.js release", ()),
        ("Solana's validators", ("SOL",)),
        ("growth on arbitrum one continues", ("ARB",)),
        ("arbitrum alone", ()),
    ],
)
def test_aliases_are_whole_words_case_insensitive(text: str, expected: tuple[str, ...]) -> None:
    assert WATCH.extract(text) == expected


def test_extract_is_sorted_and_unique() -> None:
    text = "$SOL and solana, then Ethereum, ether, $ETH and bitcoin, $BTC, $AVAX"
    assert WATCH.extract(text) == ("AVAX", "BTC", "ETH", "SOL")


def test_watchlist_normalises_tickers_and_aliases() -> None:
    wl = Watchlist({"btc": [" Bitcoin ", "", "BITCOIN"], "xyz": []})
    assert wl.tickers == ("BTC", "XYZ")
    assert wl.aliases["BTC"] == ("bitcoin",)
    assert wl.extract("bitcoin") == ("BTC",)


# --- html_to_text --------------------------------------------------------------------------------


def test_html_to_text_drops_scripts_and_styles() -> None:
    markup = "<style>.x{color:red}</style><p>Hello <b>world</b></p><script>alert('xss')</script><noscript>n</noscript>"
    assert html_to_text(markup) == "Hello world"


def test_html_to_text_decodes_entities() -> None:
    assert html_to_text("<p>France &amp; Germany &#8364;1bn &lt;tag&gt; it&#8217;s</p>") == (
        "France & Germany €1bn <tag> it’s"
    )


def test_html_to_text_folds_whitespace_and_nbsp() -> None:
    assert html_to_text("<p>  a\n\n\tb&nbsp;&nbsp;c  </p><p>d</p>") == "a b c d"


def test_html_to_text_removes_invisible_and_bidi_characters() -> None:
    sneaky = "buy\u200b now\u202e evil\u202c \u2066x\u2069\ufeff"
    assert html_to_text(sneaky) == "buy now evil x"
    assert clean_text("a\x00b\x07c") == "abc"


def test_html_to_text_caps_length_with_ellipsis() -> None:
    out = html_to_text("<p>" + "word " * 100 + "</p>", limit=20)
    assert len(out) <= 20
    assert out.endswith("…")
    assert html_to_text("short", limit=20) == "short"


def test_html_to_text_plain_text_passes_through() -> None:
    assert html_to_text("") == ""
    assert html_to_text("no markup here") == "no markup here"
    assert html_to_text("a < b and c > d") == "a < b and c > d"


@pytest.mark.parametrize("text", ["Coinbase partners with AT&T", "R&D", "added to the S&P"])
def test_html_to_text_keeps_bare_ampersand_at_end(text: str) -> None:
    assert html_to_text(text) == text
