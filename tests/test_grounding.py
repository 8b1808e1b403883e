"""The grounding validator on crew-written, data-brief and hand-edited drafts: every rule, both ways."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crew.claims import canonical_link, links_in_text, sentences, tickers_in
from crew.databrief import build, to_draft
from crew.entities import Entities
from crew.grounding import GroundingContext, validate_draft
from crew.model import BriefLine, BriefSection, DataBrief, Signals, SourceRef, ValidationReport
from crew.numbers import numbers_in_sentence
from crew.trust import policy_from
from memory.drafts import Draft, DraftStore
from sources.item import Item, item_id_for_url
from sources.tickers import Watchlist
from tapewatch.settings import DEFAULT_WATCHLIST, ComplianceSettings
from tests.crew_support import Prices, fill_with_samples

NOW = datetime.now(UTC).replace(microsecond=0)
WATCH = Watchlist(DEFAULT_WATCHLIST)
DISCLAIMER = "Not financial advice."
FEEDS = [("wire", "https://wire.example/feed.xml", "media", ())]


def news(n: int, title: str, text: str, tickers: tuple[str, ...], url: str | None = None) -> Item:
    url = url or f"https://wire.example/story/{n}?utm_source=feed"
    return Item(id=item_id_for_url(url), kind="news", source="wire", url=url, title=title, text=text,
                published_at=NOW - timedelta(hours=n), fetched_at=NOW, tickers=tickers)


@pytest.fixture
def stored(memory: Any) -> dict[str, Item]:
    items = {
        "etf": news(1, "Spot bitcoin ETFs took in a net $1.38B on Tuesday", "The largest fund alone took $612M.",
                    ("BTC",)),
        "eth": news(2, "ETH holds near $3,300 before the vote", "ETH/BTC is down 4.2% on the week.", ("ETH",)),
        "sol": news(3, "Solana validators finish the Halcyon upgrade", "Failed transactions fell to 12%.", ("SOL",),
                    url="https://wire.example/solana-news/halcyon"),
    }
    memory.add(list(items.values()))
    return items


def context(memory: Any, prices: Prices | None = None, **overrides: Any) -> GroundingContext:
    compliance = ComplianceSettings()
    values: dict[str, Any] = {"lookup": memory.state.items_by_ids, "watchlist": WATCH, "prices": prices,
                              "disclaimer": DISCLAIMER, "banned_phrases": tuple(compliance.banned_phrases),
                              "clock": lambda: NOW,
                              # The test feed, plus every source stored so far (the bundled samples).
                              "policy": policy_from(FEEDS, {}, {h.name: h.url for h in memory.state.source_health()})}
    values.update(overrides)
    return GroundingContext(**values)


def signals() -> Signals:
    return Signals(window_start=NOW - timedelta(hours=24), window_end=NOW, baseline_start=NOW - timedelta(days=8),
                   items=3, stories=3, tickers=(), narratives=())


def draft_of(lines: list[tuple[str, list[Item]]], footer: str = f"AI-written from stored sources. {DISCLAIMER}",
             extra_ids: tuple[str, ...] = ()) -> Draft:
    brief = DataBrief(title="Brief", window_label="last 24h", generated_at=NOW, footer=footer, sections=(
        BriefSection("What happened", tuple(
            BriefLine(text, tuple(SourceRef(i.id, i.title, i.url, i.source) for i in items)) for text, items in lines
        )),))
    draft = to_draft(brief, signals())
    # The window's signals back the three watchlist tickers the stored items are about.
    backed = {"items": 3, "stories": 3, "tickers": [{"ticker": t} for t in ("BTC", "ETH", "SOL")]}
    return replace(draft, mode="crew", item_ids=(*draft.item_ids, *extra_ids), signals=backed)


def codes(draft: Draft, ctx: GroundingContext) -> dict[str, str]:
    return {p.code: p.message for p in validate_draft(draft, ctx).problems}


def test_a_grounded_draft_passes(memory: Any, stored: dict[str, Item]) -> None:
    draft = draft_of([
        ("Spot bitcoin ETFs took in a net $1.38B on Tuesday, $612M of it in one fund.", [stored["etf"]]),
        ("ETH held near $3.3K; ETH/BTC fell 4.2% on the week.", [stored["eth"]]),
        ("$SOL validators finished Halcyon; failed transactions fell to 12%.", [stored["sol"]]),
    ])
    prices = Prices()
    prices.add("ETH", 3_310.0, NOW - timedelta(minutes=5), change_24h_pct=0.4)
    report = validate_draft(draft, context(memory, prices))
    assert report.ok, report.problems
    assert report.checked_at == NOW and report.to_dict()["ok"] is True
    # Per claim, what grounded it: the ETF line two numbers from one outlet, ETH's price from its snapshot.
    assert [c.standing for c in report.claims] == ["single-source (media)"] * 3
    assert report.summary == "3 claims: 3 single-source (media)"
    assert ValidationReport.from_dict(report.to_dict()) == report


@pytest.mark.parametrize(("text", "source", "code", "message"), [
    ("$FROG is the next big thing.", "etf", "uncorroborated_ticker", "$FROG is named by 0 independent source"),
    ("Cardano is quiet.", "etf", "uncorroborated_ticker", "$ADA is named by 0 independent source group(s)"),
    ("Inflows reached $2.5B this week.", "etf", "unverified_number", "$2.5B is stated by none"),
    ("ETH jumped 9% today.", "eth", "unverified_price", "$ETH move 9% has no stored price snapshot"),
    ("Read more at https://evil.example/eth", "eth", "foreign_link", "evil.example: not the trusted link"),
    ("Read more at wire.example.com/other", "eth", "foreign_link", "wire.example.com: not the trusted link"),
    ("ETF flows are a guaranteed tailwind.", "etf", "banned_phrase", "'guaranteed'"),
    ("Our price target for ETH is higher.", "eth", "banned_phrase", "price target: 'Our price target'"),
])
def test_each_ungrounded_claim_is_a_named_problem(memory: Any, stored: dict[str, Item], text: str, source: str,
                                                  code: str, message: str) -> None:
    found = codes(draft_of([(text, [stored[source]])]), context(memory))
    assert code in found and message in found[code]


def test_prices_are_checked_against_snapshots_whatever_the_items_say(memory: Any, stored: dict[str, Item]) -> None:
    prices = Prices()
    prices.add("ETH", 3_250.0, NOW - timedelta(hours=25))
    prices.add("ETH", 3_300.0, NOW - timedelta(minutes=3), change_24h_pct=1.54)
    prices.add("ADA", 0.41, NOW - timedelta(minutes=3))
    ctx = context(memory, prices)
    eth = stored["eth"]
    assert codes(draft_of([("ETH trades at $3,340.", [eth])]), ctx) == {}  # 1.2% off: within 2%
    assert codes(draft_of([("ETH is up 1.2% on the day.", [eth])]), ctx) == {}  # 0.34 pp off the snapshot
    assert codes(draft_of([("ETH is up 1.5% since yesterday.", [eth])]), ctx) == {}  # the window's change
    wrong = codes(draft_of([("ETH at $33K after the vote.", [eth])]), ctx)
    assert wrong == {"price_mismatch": wrong["price_mismatch"]}
    assert "$ETH price given as $33K but the stored price is $3,300.00" in wrong["price_mismatch"]
    moved = codes(draft_of([("ETH rallied 6% on the vote.", [eth])]), ctx)
    assert "stored changes are +1.54% or +1.54%" in moved["price_mismatch"]
    assert "wrong_direction" in codes(draft_of([("ETH fell 1.5% on the day.", [eth])]), ctx)
    # The cited item says "near $3,300", but with the snapshot moved to $98K its figure is no authority.
    prices.add("ETH", 98_000.0, NOW - timedelta(minutes=1), change_24h_pct=1.0)
    assert "price_mismatch" in codes(draft_of([("ETH holds near $3,300.", [eth])]), ctx)
    # A snapshot alone no longer grounds a watchlist ticker that no cited item names and no signal backs.
    assert "uncorroborated_ticker" in codes(draft_of([("Cardano sits at $0.41.", [eth])]), ctx)


def test_sources_must_exist_and_the_disclaimer_must_be_everywhere(memory: Any, stored: dict[str, Item]) -> None:
    ctx = context(memory)
    unknown = codes(draft_of([("ETH/BTC is down 4.2% on the week.", [stored["eth"]])], extra_ids=("f" * 32,)), ctx)
    assert unknown == {"unknown_source": f"cited item {'f' * 32} is not in memory"}
    bare = replace(draft_of([("ETH/BTC is down 4.2% on the week.", [stored["eth"]])]), item_ids=())
    assert "no_sources" in codes(bare, ctx)
    report = validate_draft(draft_of([("ETH/BTC is down 4.2% on the week.", [stored["eth"]])],
                                     footer="AI-written."), ctx)
    assert [(p.code, p.where) for p in report.problems] == [("missing_disclaimer", "x, telegram, markdown")]
    no_rule = context(memory, require_disclaimer=False)
    assert validate_draft(draft_of([("x", [stored["eth"]])], footer="AI."), no_rule).ok


def test_format_limits_and_telegram_markup(memory: Any, stored: dict[str, Item]) -> None:
    ctx = context(memory)
    good = draft_of([("ETH/BTC is down 4.2% on the week.", [stored["eth"]])])
    long_post = replace(good, x_thread=(good.x_thread[0] + " " + "word " * 60,))
    assert "too_long" in codes(long_post, ctx)
    many = replace(good, x_thread=good.x_thread * 13)
    assert codes(many, ctx)["too_many_posts"] == "the X thread has 13 posts (at most 12)"
    script = replace(good, telegram_html=good.telegram_html + "<script>alert(1)</script>")
    assert codes(script, ctx)["bad_html"] == "<script> is not a Telegram tag"
    unclosed = replace(good, telegram_html=good.telegram_html + "<b>oops")
    assert codes(unclosed, ctx)["bad_html"] == "<b> is never closed"
    huge = replace(good, telegram_html=good.telegram_html + "x" * 4100)
    assert "too_long" in codes(huge, ctx)


def test_a_hand_edited_format_is_checked_on_its_own(memory: Any, stored: dict[str, Item]) -> None:
    good = draft_of([("ETH/BTC is down 4.2% on the week.", [stored["eth"]])])
    edited = replace(good, telegram_html=good.telegram_html.replace(
        "</b>", '</b> <a href="https://evil.example/promo">promo</a>', 1), version=2, parent_id=good.id)
    problems = validate_draft(edited, context(memory)).problems
    assert [(p.code, p.where) for p in problems] == [("foreign_link", "telegram")]
    # A cited item's own link is fine in any form: tracking parameters and all.
    cited = replace(good, markdown=good.markdown + "\nSee https://wire.example/story/2?utm_source=x\n")
    assert validate_draft(cited, context(memory)).ok


def test_the_same_draft_always_gets_the_same_report(memory: Any, stored: dict[str, Item]) -> None:
    draft = draft_of([("$FROG at $33K, guaranteed: https://evil.example", [stored["eth"]])])
    first, second = validate_draft(draft, context(memory)), validate_draft(draft, context(memory))
    assert first == second
    assert {p.code for p in first.problems} == {"uncorroborated_ticker", "unverified_price", "foreign_link",
                                                 "banned_phrase", "unsupported_claim"}


def test_the_data_brief_of_the_sample_day_passes_with_and_without_prices(memory: Any) -> None:
    fill_with_samples(memory)
    drafts = DraftStore(memory.state)
    prices = Prices()
    for ticker, (old, new) in {"BTC": (95_000.0, 97_400.0), "ETH": (3_350.0, 3_300.0), "SOL": (180.0, 183.6)}.items():
        prices.add(ticker, old, NOW - timedelta(hours=30))
        prices.add(ticker, new, NOW - timedelta(minutes=1), change_24h_pct=(new - old) / old * 100)
    for kwargs in ({}, {"ticker": "SOL"}, {"ticker": "BTC"}, {"ticker": "ETH"}):
        for with_prices in (None, prices):
            ctx = context(memory, with_prices)
            _, draft = build(memory, drafts, now=NOW, prices=with_prices,
                             validate=lambda d, c=ctx: validate_draft(d, c), link_of=ctx.policy.link, **kwargs)
            assert draft is not None
            assert draft.status == "pending" and draft.validation["ok"], (kwargs, draft.validation)
            if with_prices is not None and kwargs.get("ticker") == "SOL":
                assert "$SOL +2.0% over 24h" in draft.markdown


def test_claims_read_numbers_tickers_and_links_as_a_reader_would() -> None:
    entities = Entities(WATCH)

    def read(text: str) -> list[tuple[str, float, str, str | None, int]]:
        return [(n.kind, n.value, n.role, n.entity, n.direction)
                for n in numbers_in_sentence(text, entities.mentions(text))]

    assert read("BTC ~$97,400 while ETH fell 3.1% and $1.2B left.") == [
        ("usd", 97_400.0, "price", "BTC", 0), ("pct", 3.1, "move", "ETH", -1), ("usd", 1.2e9, "flow", "ETH", -1)]
    assert read("SOL and ETH rose 3.6% and 1.2% respectively") == [
        ("pct", 3.6, "move", "SOL", 1), ("pct", 1.2, "move", "ETH", 1)]
    assert read("BTC $97.9K (+0.8%), ETH $3,452 (+1.2%)") == [
        ("usd", 97_900.0, "price", "BTC", 0), ("pct", 0.8, "move", "BTC", 1),
        ("usd", 3_452.0, "price", "ETH", 0), ("pct", 1.2, "move", "ETH", 1)]
    # A share stated about something else in the sentence is not the asset's price move.
    assert read("Solana's failed transactions fell to 12%") == [("pct", 12.0, "share", "SOL", -1)]
    assert read("Blob transactions on Ethereum climbed 25%") == [("pct", 25.0, "share", "ETH", 1)]
    assert read("5% of stake on SOL") == [("pct", 5.0, "share", None, 0)] or read("5% of stake on SOL")[0][2] == "share"
    assert read("SOL's market cap is $80B and volume hit $3.2B") == [
        ("usd", 8e10, "mcap", "SOL", 0), ("usd", 3.2e9, "volume", "SOL", 0)]
    assert read("12 validators went offline") == [("count", 12.0, "count", None, 0)]
    assert read("The streak now runs 7 days") == [("count", 7.0, "count", None, 0)]
    assert read("On 2026-11-25 at 14:00 UTC, in 2025") == []  # dates and years are not counts
    first = numbers_in_sentence("$64.3K", [])[0]
    assert first.matches(64_260.0) and not first.matches(64_400.0)  # the rounding of the written digits
    assert tickers_in("Read https://wire.example/solana-news and $DOGE", WATCH) == {"DOGE"}
    assert canonical_link("wire.example/a?utm_source=x") == canonical_link("https://WIRE.example/a")


def test_links_are_found_the_way_readers_clients_find_them() -> None:
    found = links_in_text("Claim at pump-claim.fun/sol, or pump-claim[.]fun, see https://x.com/a/status/1. "
                          "U.S. regulators, e.g. node.js and ETH/BTC at 3.6%; full-width ｅvil.com too")
    assert found == ["https://x.com/a/status/1", "pump-claim.fun/sol", "evil.com", "pump-claim[.]fun"]
    assert sentences("BTC rose 3.6% today. U.S. regulators met. ETH fell to $3,300! Next") == [
        "BTC rose 3.6% today.", "U.S. regulators met.", "ETH fell to $3,300!", "Next"]


def test_coin_names_and_symbols_without_a_cashtag_are_tickers() -> None:
    from sources.coins import CoinDirectory, bundled_coins

    entities = Entities(WATCH, CoinDirectory(bundled_coins()))
    assert entities.tickers("PEPE jumped while Uniswap and the Bonk rally held") == {"PEPE", "UNI", "BONK"}
    # Everyday words are not coins; a symbol counts in capitals only.
    assert entities.tickers("One near miss: the sand and gas were not moved. It is new.") == set()
    # A symbol a cited item writes as a cashtag is recognised in any spelling.
    cited = entities.with_symbols({"PWNED"})
    assert cited.tickers("Pwned token and PWNED and the pwned coin") == {"PWNED"}
    assert cited.tickers("we got pwned") == set()
