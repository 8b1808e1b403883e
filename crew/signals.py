"""Deterministic signals for one window: attention per ticker, breadth first, and narratives."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from crew.model import Narrative, Signals, TickerSignal
from crew.narratives import DEFAULT_CLUSTERS, EmbeddingSource, cluster_of, find_narratives
from crew.sentiment import Sentiment
from memory.drafts import Draft

__all__ = ["DEFAULT_CLUSTERS", "PriceSource", "WindowReader", "author_of", "cluster_of", "compute_signals",
           "item_text", "item_tone", "mean_tones", "ticker_score"]


class PriceSource(Protocol):
    """Price moves over a window, from stored price snapshots."""

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        """Percent change of ``ticker`` between ``start`` and ``end``, or None when unknown."""
        ...


class WindowReader(Protocol):
    """The one state query signals need (``memory.state.StateDB`` implements it)."""

    def window_items(self, start: datetime, end: datetime) -> list[Any]:
        """Item rows published in [start, end)."""
        ...


def author_of(row: Any) -> str:
    """Who said it: the author, or the outlet when a feed names none."""
    return str(row.author or row.source)


def ticker_score(mentions: int, clusters: int, growth: float, baseline_clusters: float, novelty: float) -> float:
    """Ranking score of one ticker: breadth first, then growth, then volume (see the comment)."""
    # score = clusters² · log1p(mentions) · (1 + ½·ln growth⁺) · (1 + ln breadth_growth⁺) · (½ + ½·novelty)
    #  - clusters²: the same thing said in several independent circles (media, forums, traders,
    #    devs…) is the signal we want, and volume from one circle is how spam and shilling look.
    #    Squaring lets breadth dominate: a second circle quadruples the score, while ten times
    #    the stories from the same circle only about doubles it (via the log below).
    #  - log1p(mentions): volume matters, with diminishing returns (10 stories ≈ 2.4, 3 ≈ 1.4).
    #  - growth⁺ = max(growth, 1): rising attention adds at most a gentle factor; a quiet week
    #    is not punished, it just earns no bonus.
    #  - breadth_growth⁺ = max(clusters / max(baseline_clusters, 1), 1): a ticker whose story
    #    count is flat but which has spread from one circle to four is a classic early move.
    #  - novelty: what recent briefs already covered counts half, so briefs don't repeat.
    growth_bonus = 1.0 + 0.5 * math.log(max(growth, 1.0))
    breadth_growth = max(clusters / max(baseline_clusters, 1.0), 1.0)
    return (clusters**2 * math.log1p(mentions) * growth_bonus * (1.0 + math.log(breadth_growth))
            * (0.5 + 0.5 * novelty))


@dataclass
class _Tally:
    """What one ticker gathered in the window."""

    stories: set[str] = field(default_factory=set)
    reports: int = 0
    authors: set[str] = field(default_factory=set)
    clusters: set[str] = field(default_factory=set)
    sentiment: float = 0.0


def compute_signals(
    state: WindowReader,
    vectors: EmbeddingSource | None,
    *,
    now: datetime,
    window: timedelta = timedelta(hours=24),
    baseline_windows: int = 7,
    recent_drafts: Iterable[Draft] = (),
    prices: PriceSource | None = None,
    narratives: bool = True,
    max_narrative_stories: int = 1500,
    sentiment: bool = True,
) -> Signals:
    """Ticker signals and narratives for [now - window, now) against the windows before it.

    Only what was known at ``now`` is read: items published before it, price snapshots observed by then.
    ``sentiment=False`` skips scoring tone (0.0 for every ticker): a backtest ranks without it, and VADER is
    most of the cost of a window.
    """
    if window <= timedelta(0) or baseline_windows < 0:
        raise ValueError("window must be positive and baseline_windows non-negative")
    window_start = now - window
    baseline_start = window_start - window * baseline_windows
    # One query for window and baseline; everything else is bucketing in memory, linear in rows.
    rows = state.window_items(baseline_start, now)
    current = [r for r in rows if r.published_at >= window_start]
    previous = [r for r in rows if r.published_at < window_start]
    used = _used_story_ids(rows, recent_drafts)
    story_engagement, story_latest = _story_stats(current)
    tallies = _tally_window(current, sentiment)
    baseline, covered = _baseline_counts(previous, baseline_start, window, baseline_windows)

    tickers: list[TickerSignal] = []
    for ticker, tally in tallies.items():
        # A ticker absent from every baseline window has all-zero counts; mean, median and MAD of
        # zeros equal those of the empty default.
        counts, cluster_counts = baseline.get(ticker, ([], []))
        tickers.append(_ticker_signal(
            ticker, tally, counts, cluster_counts, story_engagement, story_latest, used,
            prices.change_pct(ticker, window_start, now) if prices is not None else None, covered,
        ))
    tickers.sort(key=lambda s: (-s.score, -s.mentions, s.ticker))

    found: tuple[Narrative, ...] = ()
    if narratives and vectors is not None and current:
        found = find_narratives(
            current, previous, vectors, window_start=window_start, now=now,
            max_stories=max_narrative_stories, recent_item_ids=frozenset(used),
        )
    return Signals(
        window_start=window_start, window_end=now, baseline_start=baseline_start,
        items=len(current), stories=len({r.story_id for r in current}),
        tickers=tuple(tickers), narratives=found, groups=len({cluster_of(r) for r in current}),
    )


def _used_story_ids(rows: Sequence[Any], drafts: Iterable[Draft]) -> set[str]:
    """Story ids recent drafts cited; a draft may cite a near-duplicate, which stands for its story."""
    cited: set[str] = set()
    for draft in drafts:
        cited.update(draft.item_ids)
    return cited | {r.story_id for r in rows if r.id in cited}


def _story_stats(rows: Sequence[Any]) -> tuple[dict[str, int], dict[str, datetime]]:
    """Per story in the window: the best engagement of any of its items, and its latest report."""
    engagement: dict[str, int] = {}
    latest: dict[str, datetime] = {}
    for r in rows:
        engagement[r.story_id] = max(engagement.get(r.story_id, 0), int(r.engagement or 0))
        if r.story_id not in latest or r.published_at > latest[r.story_id]:
            latest[r.story_id] = r.published_at
    return engagement, latest


def _tally_window(rows: Sequence[Any], score_tone: bool = True) -> dict[str, _Tally]:
    """Per ticker: stories, reports, authors, clusters and summed sentiment of the window's items."""
    sentiment = Sentiment() if score_tone else None
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for r in rows:
        tickers = r.tickers.split()
        if not tickers:
            continue
        tone = item_tone(r, sentiment) if sentiment is not None else 0.0
        for ticker in tickers:
            t = tallies[ticker]
            t.stories.add(r.story_id)
            t.reports += 1
            t.authors.add(author_of(r))
            t.clusters.add(cluster_of(r))
            t.sentiment += tone
    return dict(tallies)


def item_text(row: Any) -> str:
    """The text of a stored item whose tone is scored: its title and text."""
    # Feeds without a summary repeat the title as text; scoring it twice would double its tone.
    return row.title if row.text in ("", row.title) else f"{row.title} {row.text}"


def item_tone(row: Any, sentiment: Sentiment) -> float:
    """The compound tone of one stored item."""
    return sentiment.score(item_text(row))


def mean_tones(rows: Sequence[Any], tones: Sequence[float], tickers: Iterable[str]) -> dict[str, float]:
    """Per ticker of ``tickers``: the mean tone of the rows naming it (what ``compute_signals`` reports as its
    sentiment), ``tones`` being each row's."""
    wanted = set(tickers)
    sums: dict[str, float] = dict.fromkeys(wanted, 0.0)
    reports: dict[str, int] = dict.fromkeys(wanted, 0)
    for r, tone in zip(rows, tones, strict=True):
        for ticker in wanted.intersection(r.tickers.split()):
            sums[ticker] += tone
            reports[ticker] += 1
    return {t: sums[t] / reports[t] if reports[t] else 0.0 for t in wanted}


def _baseline_counts(rows: Sequence[Any], baseline_start: datetime, window: timedelta,
                     windows: int) -> tuple[dict[str, tuple[list[int], list[int]]], int]:
    """Per ticker: distinct stories and clusters in each baseline window memory covers; and how many it covers."""
    stories: dict[tuple[str, int], set[str]] = defaultdict(set)
    clusters: dict[tuple[str, int], set[str]] = defaultdict(set)
    covered: set[int] = set()
    for r in rows:
        index = min((r.published_at - baseline_start) // window, windows - 1)
        covered.add(index)
        tickers = r.tickers.split()
        if not tickers:
            continue
        story, cluster = r.story_id, cluster_of(r)
        for ticker in tickers:
            stories[ticker, index].add(story)
            clusters[ticker, index].add(cluster)
    # A baseline window with no items at all means memory was not collecting then (a fresh
    # install, or pruned history), not that nobody talked: it would fake growth, so it is left out.
    order = sorted(covered)
    out: dict[str, tuple[list[int], list[int]]] = {}
    for ticker in {t for t, _ in stories}:
        out[ticker] = (
            [len(stories.get((ticker, i), ())) for i in order],
            [len(clusters.get((ticker, i), ())) for i in order],
        )
    return out, len(order)


def _ticker_signal(ticker: str, tally: _Tally, counts: list[int], cluster_counts: list[int],
                   story_engagement: dict[str, int], story_latest: dict[str, datetime], used: set[str],
                   price_change_pct: float | None, covered: int = 0) -> TickerSignal:
    """One ticker's signal from its window tally and its baseline series."""
    mentions = len(tally.stories)
    baseline_mentions = statistics.fmean(counts) if counts else 0.0
    baseline_clusters = statistics.fmean(cluster_counts) if cluster_counts else 0.0
    growth = (mentions + 1) / (baseline_mentions + 1)
    # Median and MAD shrug off one loud baseline day; the +1 keeps a flat series from dividing by 0.
    median = statistics.median(counts) if counts else 0.0
    mad = statistics.median(abs(c - median) for c in counts) if counts else 0.0
    zscore = (mentions - median) / (1.4826 * mad + 1.0)
    # Each story counts once, plus a log bonus for attention, so one viral post outweighs a few
    # ignored ones without a single whale account drowning everything.
    engagement = sum(1.0 + math.log1p(story_engagement.get(s, 0)) for s in tally.stories)
    novelty = sum(1 for s in tally.stories if s not in used) / mentions
    clusters = len(tally.clusters)
    ordered = sorted(
        tally.stories,
        key=lambda s: (-story_engagement.get(s, 0), -story_latest[s].timestamp(), s),
    )
    return TickerSignal(
        ticker=ticker, mentions=mentions, reports=tally.reports, authors=len(tally.authors),
        clusters=clusters, cluster_names=tuple(sorted(tally.clusters)),
        baseline_mentions=baseline_mentions, baseline_clusters=baseline_clusters,
        growth=growth, zscore=zscore, engagement=engagement,
        sentiment=tally.sentiment / tally.reports if tally.reports else 0.0,
        price_change_pct=price_change_pct, novelty=novelty,
        score=ticker_score(mentions, clusters, growth, baseline_clusters, novelty),
        item_ids=tuple(ordered), baseline_windows=covered,
    )
