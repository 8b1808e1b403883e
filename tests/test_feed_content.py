"""Feed content, not just feed syntax: real text over empty fields, retention, degraded feeds, links, typography.

Parsing is tested on the fixture files; retention and degraded sources through a real ``Ingestor`` (loopback
feed server, real Chroma and SQLite) and the ``sources`` / ``status`` commands.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memory.store import Memory
from sources.plaintext import clean_text
from sources.rss import FeedSpec, ParsedFeed, parse_feed
from sources.tickers import Watchlist
from tapewatch.clients import http_client
from tapewatch.ingest import Ingestor, SourceOutcome
from tapewatch.settings import DEFAULT_WATCHLIST, Settings
from tests.conftest import FEEDS
from tests.fakes.feed_server import FeedServer, Route
from tests.test_publish_cli import cli

WATCH = Watchlist(DEFAULT_WATCHLIST)
FETCHED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FEED_URL = "https://feeds.example/f.xml"


def parse(name: str, content_type: str | None = None) -> ParsedFeed:
    return parse_feed((FEEDS / name).read_bytes(), FeedSpec("t", FEED_URL), WATCH, fetched_at=FETCHED,
                      content_type=content_type)


def ingest(memory: Memory, server: FeedServer, feeds: dict[str, tuple[str, str]], *,
           retention: timedelta | None = None) -> dict[str, SourceOutcome]:
    """Serve each fixture (name → (file, content type)) and ingest them all once."""
    for name, (filename, content_type) in feeds.items():
        server.routes[f"/{name}"] = Route(body=(FEEDS / filename).read_bytes(), content_type=content_type)
    with http_client(Settings()) as client:
        ingestor = Ingestor(memory, client, WATCH, max_body_bytes=1_000_000, deadline_s=5, clock=lambda: FETCHED,
                            retention=retention)
        return {o.name: o for o in ingestor.run([FeedSpec(n, server.url(f"/{n}")) for n in feeds])}


# --- present-but-empty fields ------------------------------------------------------------------------------


def test_an_empty_stub_or_title_only_field_does_not_hide_the_real_text() -> None:
    texts = {i.url.rsplit("/", 1)[-1]: i.text for i in parse("empty_fields.xml").items}
    # empty dc:description and content:encoded beside a full description (either order)
    assert texts["solana-fee-patch"].startswith("Two thirds of staked SOL now runs the patch")
    assert texts["base-sequencer-outage"].startswith("Blocks stopped at 03:12 UTC")
    # description = the title again, or a "Read more…" stub; the body is in content:encoded
    assert texts["ether-etf-inflows-sixth-day"].startswith("US spot ether funds took in $212 million on Tuesday")
    assert "ETH traded near $3,480" in texts["ether-etf-inflows-sixth-day"]
    assert texts["reserve-proof-standard"].startswith("The revised standard asks exchanges to publish liabilities")
    # an empty HTML description beside media:description
    assert texts["tether-mint-tron"].startswith("The mint follows a week of heavy redemptions")
    items = parse("empty_fields.xml").items
    assert all(i.text != i.title for i in items)


# --- retention -----------------------------------------------------------------------------------------


def test_items_older_than_retention_are_not_stored_so_prune_does_not_fight_the_next_fetch(
        memory: Memory, feed_server: FeedServer) -> None:
    feeds = {"archive": ("old_items.xml", "application/rss+xml")}
    first = ingest(memory, feed_server, feeds, retention=timedelta(days=90))["archive"]
    assert (first.status, first.new, first.too_old) == ("ok", 1, 2)
    assert set(memory.state.stats().by_source.values()) == {1}
    assert memory.prune(timedelta(days=90), now=FETCHED) == 0
    again = ingest(memory, feed_server, feeds, retention=timedelta(days=90))["archive"]
    assert (again.new, again.duplicate, again.too_old) == (0, 1, 2)
    assert memory.state.stats().items == 1


# --- degraded feeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fragment"), [
    ("truncated.xml", "SAXParseException"),  # ill-formed XML: items salvaged, but the feed is broken
    ("wrong_encoding.xml", "declared as utf-8, but parsed as windows-1252"),  # wrong declared encoding
    ("undeclared_encoding.xml", "CharacterEncodingOverride"),  # none declared, and not UTF-8
    ("mojibake.xml", "item(s) look mis-decoded (e.g. '"),  # double-encoded text in well-formed XML
])
def test_feeds_that_parse_with_problems_are_degraded(name: str, fragment: str) -> None:
    parsed = parse(name)
    assert parsed.items
    assert any(fragment in d for d in parsed.degraded), parsed.degraded


@pytest.mark.parametrize(("name", "content_type"), [
    ("rss2.xml", None), ("latin1.xml", None), ("atom.xml", None),
    # a UTF-8 feed served as text/xml or text/html without a charset is only HTTP pedantry, not a problem
    ("typography.xml", "text/xml"), ("typography.xml", "text/html; charset=utf-8"),
])
def test_clean_feeds_are_not_degraded(name: str, content_type: str | None) -> None:
    assert parse(name, content_type).degraded == ()


def test_sources_and_status_show_degraded_feeds_not_ok(cli_memory: Memory, feed_server: FeedServer,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = ingest(cli_memory, feed_server, {
        "journalbloc": ("mojibake.xml", "application/rss+xml"),
        "mercado": ("wrong_encoding.xml", "application/rss+xml; charset=utf-8"),
        "truncated": ("truncated.xml", "application/rss+xml"),
        "wire": ("rss2.xml", "text/xml"),
    })
    assert {n: o.shown_status for n, o in outcomes.items()} == {
        "journalbloc": "degraded", "mercado": "degraded", "truncated": "degraded", "wire": "ok"}
    assert outcomes["truncated"].skipped == 1  # the cut-off fourth entry
    code, output = cli(["sources"], monkeypatch, capsys)
    assert code == 0, output
    rows = {line.split("│")[1].strip(): line for line in output.splitlines() if line.startswith("│ ")}
    for name in ("journalbloc", "mercado", "truncated"):
        assert "degraded" in rows[name], rows[name]
    assert "mis-decoded" in rows["journalbloc"] and "CharacterEncodingOverride" in rows["mercado"]
    assert " ok " in rows["wire"] and "degraded" not in rows["wire"]
    code, output = cli(["status"], monkeypatch, capsys)
    assert code == 0, output
    assert "Sources: 3 degraded, 1 ok" in output
    assert "source journalbloc: degraded: " in output and "of 2 item(s) look mis-decoded" in output
    assert "source truncated: degraded: malformed feed: SAXParseException" in output
    assert "1 entry(ies) or post(s) skipped so far" in output


def test_a_clean_fetch_clears_degraded_and_a_304_keeps_it(cli_memory: Memory, feed_server: FeedServer) -> None:
    ingest(cli_memory, feed_server, {"mercado": ("wrong_encoding.xml", "application/rss+xml")})
    [health] = cli_memory.state.source_health()
    assert health.status == "degraded"
    feed_server.routes["/mercado"] = Route(body=(FEEDS / "rss2.xml").read_bytes(), etag='"v2"')
    with http_client(Settings()) as client:
        ingestor = Ingestor(cli_memory, client, WATCH, max_body_bytes=1_000_000, deadline_s=5)
        ingestor.run([FeedSpec("mercado", feed_server.url("/mercado"))])
        [health] = cli_memory.state.source_health()
        assert (health.status, health.degraded) == ("ok", None)
        feed_server.routes["/mercado"] = Route(body=(FEEDS / "wrong_encoding.xml").read_bytes(), etag='"v3"')
        ingestor.run([FeedSpec("mercado", feed_server.url("/mercado"))])
        feed_server.routes["/mercado"].etag = '"v3"'
        [outcome] = ingestor.run([FeedSpec("mercado", feed_server.url("/mercado"))])
    assert outcome.status == "not_modified"
    [health] = cli_memory.state.source_health()
    assert health.status == "degraded"  # the unchanged body is still the broken one


# --- links ---------------------------------------------------------------------------------------------


def test_entries_whose_link_is_not_http_get_no_link_rather_than_the_feeds_url() -> None:
    parsed = parse("odd_links.xml")
    urls = {i.title: i.url for i in parsed.items}
    assert urls == {
        "Aave v4 testnet opens to the public": "",  # javascript:
        "Send us your tips": "",  # mailto:
        "Lido adds a second DVT module": "",  # only a tag: guid
        "Uniswap fee switch vote passes": "https://chainnotes.example/2026/11/uniswap-fee-switch",
    }
    assert any("javascript:" in w and "not http(s)" in w for w in parsed.warnings)


# --- typography ------------------------------------------------------------------------------------------


def test_normalisation_keeps_typography_and_folds_only_letter_variants() -> None:
    [item] = parse("typography.xml").items
    assert item.title == "ChainPay™ cuts fees by ½ … again"
    assert "The Caf\u00e9 Protocol™ team says fees fall ½ to 0.05%" in item.text  # é composed (NFC)
    assert "per m² of rack" in item.text
    assert "The BTC bridge is next." in item.text and item.tickers == ("BTC",)  # fullwidth letters folded


@pytest.mark.parametrize(("raw", "clean"), [
    ("Up 12%… then ™ and ½", "Up 12%… then ™ and ½"),
    ("10² nodes, H₂O, ① first", "10² nodes, H₂O, ① first"),
    ("$𝐁𝐓𝐂 and ＄ＥＴＨ", "$BTC and $ETH"),
    ("ﬁnal oﬀer", "final offer"),
    ("e\u0301te\u0301", "\u00e9t\u00e9"),
])
def test_clean_text_uses_nfc_plus_targeted_folding(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
