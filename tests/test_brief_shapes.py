"""What readers get: the take, the short thread and the full brief of the sample day, in plain words, grounded."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crew.claims import markdown_plain, telegram_plain
from crew.databrief import build, compose
from crew.grounding import GroundingContext, validate_draft
from crew.model import ValidationReport
from crew.render import links_in, weighted_length
from crew.signals import compute_signals
from crew.trust import policy_from
from memory.drafts import Draft, DraftStore
from memory.public_ids import permalink
from sources.item import Item, item_id_for_url
from sources.tickers import Watchlist
from tapewatch.settings import DEFAULT_WATCHLIST
from tests.crew_support import Prices, fill_with_samples

NOW = datetime.now(UTC).replace(microsecond=0)
ARCHIVE = "https://briefs.example.com"
PID = "Pub1d-of-the-brief"  # the archive's public id, chosen before the text is written
# Words of tapewatch's own machinery: a reader should never meet them.
INTERNAL = re.compile(r"baseline|novelty|\bz\b|z-score|zscore|reports vs|\(\d+ reports\)|sentiment|\bclusters?\b|"
                      r"×|\bx\d|score|tf-?idf|signals block", re.IGNORECASE)
UNGRAMMATICAL = re.compile(r"\b1 (stories|sources|groups|account groups|reports|posts)\b")
TERM_LIST = re.compile(r"\b\w+ / \w+ / \w+")  # a narrative labelled by its TF-IDF terms


def context(memory: Any, prices: Prices | None = None, archive_url: str | None = None) -> GroundingContext:
    return GroundingContext(lookup=memory.state.items_by_ids, watchlist=Watchlist(DEFAULT_WATCHLIST), prices=prices,
                            clock=lambda: NOW, archive_url=archive_url,
                            policy=policy_from([], {}, {h.name: h.url for h in memory.state.source_health()}))


def sample_prices() -> Prices:
    prices = Prices()
    for ticker, (old, new) in {"BTC": (95_000.0, 97_400.0), "ETH": (3_350.0, 3_300.0), "SOL": (180.0, 183.6),
                               "AVAX": (40.0, 41.7), "DOGE": (0.40, 0.384), "SUI": (4.0, 4.06)}.items():
        prices.add(ticker, old, NOW - timedelta(hours=30))
        prices.add(ticker, new, NOW - timedelta(minutes=1), change_24h_pct=(new - old) / old * 100)
    return prices


def reader_texts(draft: Draft) -> dict[str, str]:
    return {"x": "\n".join(draft.x_thread), "telegram": telegram_plain(draft.telegram_html),
            "markdown": markdown_plain(draft.markdown)}


@pytest.fixture
def day(memory: Any) -> Any:
    fill_with_samples(memory)
    return memory


def brief_of(memory: Any, *, shape: str, archive_url: str | None = None, prices: Prices | None = None,
             **kwargs: Any) -> Draft:
    ctx = context(memory, prices, archive_url)
    _, draft = build(memory, DraftStore(memory.state), now=NOW, prices=prices, shape=shape, max_posts=4,
                     permalink=permalink(archive_url, PID) or "", public_id=PID,
                     validate=lambda d: validate_draft(d, ctx), link_of=ctx.policy.link,
                     **kwargs)
    assert draft is not None
    return draft


@pytest.mark.parametrize("archive_url", [None, ARCHIVE])
def test_the_take_is_one_grounded_post_with_the_lead_its_numbers_and_one_link(day: Any,
                                                                              archive_url: str | None) -> None:
    draft = brief_of(day, shape="take", archive_url=archive_url, prices=sample_prices())
    assert draft.status == "pending" and draft.validation["ok"], draft.validation
    (take,) = draft.x_thread
    assert weighted_length(take) <= 280
    (link,) = links_in(take)
    if archive_url:
        assert link == f"{ARCHIVE}/b/{PID}" == draft.meta["permalink"] and draft.meta["public_id"] == PID
    else:
        assert link in {r.url for r in day.state.items_by_ids(draft.item_ids).values()}
    # The development (a stored story's headline), its ticker and move from the price snapshots, and the breadth
    # behind it.
    titles = [" ".join(r.title.split()) for r in day.state.items_by_ids(draft.item_ids).values()]
    assert any(take.startswith(t[:40]) for t in titles), take
    lead = draft.meta["lead_ticker"]
    assert re.search(rf"\${lead} [+-]\d+\.\d% over 24h", take), take
    assert re.search(r"\d+ stories from \d+ of 7 account groups|reported by \d+ sources", take), take
    assert take.rstrip().endswith("Not financial advice.")
    assert draft.meta["shape"] == "take"


def test_the_thread_is_short_links_only_single_source_claims_and_points_to_the_full_brief(day: Any) -> None:
    draft = brief_of(day, shape="thread", archive_url=ARCHIVE, prices=sample_prices())
    assert draft.validation["ok"], draft.validation
    posts = draft.x_thread
    assert 2 <= len(posts) <= 4
    take = brief_of(day, shape="take", archive_url=ARCHIVE, prices=sample_prices()).x_thread[0]
    assert posts[0] == take.replace(f"\n\n{ARCHIVE}/b/{PID}\n", "\n\n")  # the take, its link left to the end
    assert all(weighted_length(p) <= 280 and len(links_in(p)) <= 1 for p in posts)
    assert posts[-1].endswith(f"Full brief with sources:\n{ARCHIVE}/b/{PID}")
    lines = {c["text"]: c["item_ids"] for c in draft.meta["claims"]}
    for post in posts[1:]:
        body = post.split("\n\nFull brief", 1)[0]
        found = links_in(body)
        claim = next(ids for text, ids in lines.items() if " ".join(text.split())[:40] in " ".join(body.split()))
        # A link only where one source carries the claim; several sources are the full brief's business.
        assert bool(found) == (len(claim) == 1), post


@pytest.mark.parametrize("shape", ["take", "thread"])
def test_no_reader_facing_text_carries_internal_vocabulary(day: Any, shape: str) -> None:
    for kwargs in ({}, {"ticker": "SOL"}, {"ticker": "BTC"}):
        for prices in (None, sample_prices()):
            draft = brief_of(day, shape=shape, prices=prices, **kwargs)
            assert draft.validation["ok"], (kwargs, draft.validation)
            for where, text in reader_texts(draft).items():
                assert not INTERNAL.search(text), (where, INTERNAL.search(text), text)
                assert not UNGRAMMATICAL.search(text), (where, text)
                assert not TERM_LIST.search(text), (where, text)


def test_narratives_are_titled_by_their_representative_story(day: Any) -> None:
    signals = compute_signals(day.state, day.vectors, now=NOW)
    rows = {r.id: r for r in day.state.window_items(signals.window_start, signals.window_end)}
    brief = compose(signals, rows, generated_at=NOW)
    titles = {" ".join(r.title.split()) for r in rows.values()}
    assert brief.take is not None
    named = [brief.take.text.split("\n")[0], *(line.text for s in brief.sections if s.heading == "Stories"
                                               for line in s.lines)]
    assert len(named) >= 2
    for text in named:
        head = re.split(r"\.\n|\.$|: \d+ stor|: reported by", text)[0].rstrip(".…")
        assert any(t.startswith(head) for t in titles), text


def test_the_full_brief_is_a_headline_a_lead_and_sections_of_cited_sentences(day: Any) -> None:
    draft = brief_of(day, shape="take", prices=sample_prices())
    html, md = draft.telegram_html, draft.markdown
    headline = md.splitlines()[0].removeprefix("# ")
    assert html.startswith(f"<b>{headline.replace(chr(39), '&#x27;')}</b>\n<i>last 24h</i>")
    assert [h for h in re.findall(r"^## (.+)$", md, re.M)] == ["Stories", "Tickers"] or \
        set(re.findall(r"^## (.+)$", md, re.M)) <= {"Stories", "Most reported", "Tickers"}
    # Every line cites its sources.
    for bullet in re.findall(r"^- .*$", md, re.M):
        assert re.search(r"\(\[[^\]]+\]\(https?://", bullet) or bullet.endswith(")"), bullet


def history(n: int, day_offset: float, ticker: str, cluster: str) -> Item:
    url = f"https://x.com/acct{n}/status/{5000 + n}"
    when = NOW - timedelta(days=day_offset)
    text = f"Notes on ${ticker} validator set, entry {n}"
    return Item(id=item_id_for_url(url), kind="social", source="x", url=url, title=text, text=text,
                published_at=when, fetched_at=when, author=f"@acct{n % 5}", tickers=(ticker,), cluster=cluster)


def test_growth_is_stated_only_when_earlier_windows_hold_data(memory: Any) -> None:
    today = [history(i, 0.1 + i * 0.05, "SOL", ["dev", "media", "vc", "trader"][i % 4]) for i in range(8)]
    memory.add(today)
    fresh = compose(compute_signals(memory.state, None, now=NOW),
                    {r.id: r for r in memory.state.window_items(NOW - timedelta(days=1), NOW)}, generated_at=NOW)
    text = " ".join(line.text for s in fresh.sections for line in s.lines) + (fresh.take.text if fresh.take else "")
    assert "SOL" in text
    assert not re.search(r"up from|down from|×|before", text), text  # a fresh install says nothing about growth
    # A week of one story a day: now the window's eight stories are growth worth stating.
    memory.add([history(100 + d, d + 0.5, "SOL", "dev") for d in range(1, 8)])
    signals = compute_signals(memory.state, None, now=NOW)
    (sol,) = [t for t in signals.tickers if t.ticker == "SOL"]
    assert sol.baseline_windows == 7
    rows = {r.id: r for r in memory.state.window_items(signals.window_start, signals.window_end)}
    grown = compose(signals, rows, generated_at=NOW)
    lines = [line.text for s in grown.sections for line in s.lines] + [grown.take.text if grown.take else ""]
    assert any("up from about 1 story a day before" in t for t in lines), lines


def test_growth_is_grounded_by_the_stored_signals(memory: Any) -> None:
    memory.add([history(i, 0.1 + i * 0.05, "SOL", ["dev", "media", "vc", "trader"][i % 4]) for i in range(8)])
    memory.add([history(100 + d, d + 0.5, "SOL", "dev") for d in range(1, 8)])
    draft = brief_of(memory, shape="thread")
    assert "up from about 1 story a day before" in draft.markdown
    assert draft.validation["ok"], (draft.validation["problems"], draft.markdown)


def test_a_permalink_is_trusted_only_for_the_draft_it_belongs_to(day: Any) -> None:
    draft = brief_of(day, shape="take", archive_url=ARCHIVE)
    assert draft.validation["ok"]
    # The same text under another brief's public id: the link is not its own.
    other = replace(draft, meta={**draft.meta, "public_id": "another-brief-id"})
    report = validate_draft(other, context(day, archive_url=ARCHIVE))
    assert [p.code for p in report.problems] == ["foreign_link"]
    # Without an archive configured no permalink is trusted at all.
    assert not validate_draft(draft, context(day)).ok


def test_a_reviewers_edit_keeps_the_brief_and_its_permalink(day: Any) -> None:
    from publish.review import ReviewQueue

    draft = brief_of(day, shape="take", archive_url=ARCHIVE)
    ctx = context(day, archive_url=ARCHIVE)
    queue = ReviewQueue(day.state, reviewers=["alice"], validator=lambda d: validate_draft(d, ctx))
    edited = queue.edit(draft.id, "alice", markdown=draft.markdown + "\n")
    edited = queue.edit(edited.id, "alice", telegram_html=draft.telegram_html.replace("\n\n", "\n\n\n", 1))
    assert edited.id != draft.id and edited.meta["public_id"] == PID
    assert edited.x_thread == draft.x_thread and ValidationReport.from_dict(edited.validation).ok
