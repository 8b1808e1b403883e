"""Stories: one story told by several outlets is grouped; other days' reports and other news are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crew.databrief import compose
from crew.signals import compute_signals
from memory.store import NearDuplicatePolicy
from memory.stories import Evidence, Quantity, StoryRule, compare, facts_of
from tests.story_pairs import group, load, score
from tests.test_memory import NOW, make

TUESDAY = datetime(2026, 11, 17, 22, 0, tzinfo=UTC)


def quantities(text: str) -> tuple[Quantity, ...]:
    return facts_of(text, text, TUESDAY).quantities


def shared(a: str, b: str) -> float:
    return compare(facts_of(a, a, TUESDAY), facts_of(b, b, TUESDAY), 0.5, TUESDAY, TUESDAY, False).numbers


def test_figures_match_as_outlets_round_them_and_no_closer() -> None:
    assert shared("took in $412.3 million", "a $412 million day") == 1
    assert shared("close to $300 million into IBIT", "IBIT added $298 million") == 0.5  # as good as the vaguer
    assert shared("1,200 BTC", "1,200 more bitcoin") == 1
    assert shared("156 buys", "155 days") == 0  # exact counts are exact
    assert shared("ETH fell to $3,790", "ETH tops $4,000") == 0
    # A price level and a round figure say little: each counts half.
    assert shared("bitcoin near $93,000", "bitcoin around $93,000") == 0.5
    assert shared("minted 1 billion USDT", "a 1,000,000,000 USDT mint") == 0.5
    ranged = quantities("trimmed rates to 3.50%-3.75% after a 25 basis point cut")
    assert {(q.value, q.unit) for q in ranged} == {(3.5, "pct"), (3.75, "pct"), (25.0, "bp")}
    # Years, filings, quarters, layer numbers and dates are not figures of the story.
    assert quantities("filed an S-1 in 2026 for Q3 on layer-2, trading ends on November 24") == ()


def test_days_named_in_a_report_resolve_against_its_date() -> None:
    def dates(text: str) -> set[str]:
        return {d.isoformat() for d in facts_of(text, text, TUESDAY).dates}

    assert dates("inflows on Monday") == {"2026-11-16"}  # Tuesday's report about Monday
    assert dates("Tuesday's session, after yesterday's") == {"2026-11-17", "2026-11-16"}
    assert dates("delisting on Nov. 24 and 5th of December") == {"2026-11-24", "2026-12-05"}
    tue = facts_of("ETFs took $538 million on Tuesday", "", TUESDAY)
    wed = facts_of("ETFs added $127 million on Wednesday", "", TUESDAY + timedelta(days=1))
    evidence = compare(tue, wed, 0.81, TUESDAY, TUESDAY + timedelta(days=1), False)
    assert evidence.date_clash and evidence.number_clash and not evidence.date_shared


def test_names_are_distinctive_ones_and_one_institution_is_one_name() -> None:
    headline = facts_of("Bitcoin ETFs Pull In $412 Million As BlackRock's IBIT Leads The Week", "", TUESDAY)
    assert headline.entities == {"blackrock", "ibit"}  # a Title Case headline's ordinary words are not names
    fed = facts_of("Fed cuts by 25 bps", "The Federal Reserve and the FOMC", TUESDAY)
    assert fed.entities == {"fed"}


def test_the_score_prefers_other_outlets_and_recent_reports() -> None:
    rule = StoryRule()
    base = Evidence(cosine=0.6, entities=1, numbers=1, number_clash=False, date_shared=True, date_clash=False,
                    gap_hours=1, same_outlet=False)
    from dataclasses import replace

    assert rule.score(replace(base, same_outlet=True)) < rule.score(base)
    assert rule.score(replace(base, gap_hours=20)) < rule.score(base)
    assert rule.score(replace(base, cosine=rule.floor - 0.01, numbers=2, entities=3)) == -1.0
    assert StoryRule.cosine_only(0.7).score(replace(base, cosine=0.69, numbers=2)) < 0.7


def test_most_reported_never_shows_a_story_told_by_one_outlet(memory: Any) -> None:
    memory.policy = NearDuplicatePolicy(threshold=0.5, rule="cosine")
    memory.add([
        make("solo-1", "Solana validators adopt the Halcyon client after congestion", source="wire", hours_ago=5,
             tickers=("SOL",)),
        make("solo-2", "Solana validators adopt the Halcyon client after network congestion", source="wire",
             hours_ago=4, tickers=("SOL",)),
        make("pair-1", "Spot bitcoin ETFs record their biggest inflow day", source="alpha", hours_ago=3,
             tickers=("BTC",)),
        make("pair-2", "Spot bitcoin ETFs record the biggest inflow day ever", source="beta", hours_ago=2,
             tickers=("BTC",)),
    ])
    assert memory.state.stats().stories == 2  # both pairs were grouped, one by a single outlet
    signals = compute_signals(memory.state, memory.vectors, now=NOW)
    rows = {r.id: r for r in memory.state.window_items(signals.window_start, signals.window_end)}
    brief = compose(signals, rows, generated_at=NOW)
    # The only story two outlets told leads the brief; the single-outlet pair is no "most reported" story.
    assert brief.take is not None
    assert brief.take.text == "Spot bitcoin ETFs record their biggest inflow day: reported by 2 sources (alpha, beta)."
    assert not [s for s in brief.sections if s.heading == "Most reported"]


@pytest.fixture(scope="module")
def minilm(minilm_models: Path) -> Any:
    from memory.minilm_onnx import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(minilm_models)  # the default embedder


@pytest.mark.slow
@pytest.mark.parametrize("name", ["calibration", "holdout", "unseen"])
def test_real_embeddings_group_each_story_and_nothing_else(name: str, minilm: Any, tmp_path: Path) -> None:
    fixture = load(name)
    story_of = group(fixture, NearDuplicatePolicy(), minilm, tmp_path)  # the shipped defaults
    scores = score(fixture, story_of)
    assert scores.precision >= 0.95 and scores.recall >= 0.9, scores
    # Different days' recurring reports (ETF flows, stablecoin mints) never merge.
    assert scores.by_category["recurring report, other day"][0] == 0
    assert scores.by_category["same company, other news"][0] == 0


@pytest.mark.slow
def test_the_reported_cases(minilm: Any, tmp_path: Path) -> None:
    fixture = load("calibration")
    story_of = group(fixture, NearDuplicatePolicy(), minilm, tmp_path)
    groups: dict[str, set[str]] = {}
    for item in fixture.items:
        groups.setdefault(fixture.story[item.id], set()).add(story_of[item.id])
    # One ETF-streak day told by two outlets in different words (cosine 0.65) is one story …
    assert len(groups["btc-etf-wed"]) == 1 and len(groups["fed-cut"]) == 1 and len(groups["btc-etf-mon"]) == 1
    # … while consecutive days' ETF-flow reports (cosine up to 0.87) and four Coinbase developments stay apart.
    assert groups["btc-etf-tue"].isdisjoint(groups["btc-etf-wed"])
    assert groups["eth-etf-tue"].isdisjoint(groups["eth-etf-wed"])
    coinbase = [groups[s] for s in ("cb-listing", "cb-outage", "cb-court", "cb-earnings")]
    assert len(set().union(*coinbase)) == 4
