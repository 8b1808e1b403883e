"""Ticker signals from a real Memory: breadth, story counting, baselines, engagement, tone, novelty."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crew.model import TickerSignal
from crew.sentiment import Sentiment
from crew.signals import compute_signals, ticker_score
from memory.drafts import Draft
from memory.store import NearDuplicatePolicy
from sources.item import Item, item_id_for_url

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
_serial = itertools.count()
# Words for titles whose wording does not matter (tests using them switch near-duplicate linking off).
_WORDS = ("amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kelp",
          "lagoon", "meadow", "nectar", "onyx", "prairie", "quartz", "reef", "sierra", "tundra", "umber", "valley")


def make_item(title: str, *, at: datetime, tickers: tuple[str, ...] = (), kind: str = "news",
              source: str = "outlet", author: str = "", cluster: str = "", text: str = "",
              metrics: dict[str, int] | None = None) -> Item:
    """An item with a unique URL."""
    url = f"https://{source}.example/{next(_serial)}"
    return Item(id=item_id_for_url(url), kind=kind, source=source, url=url, title=title, text=text or title,
                published_at=at, fetched_at=at, author=author, tickers=tickers, cluster=cluster,
                metrics=metrics or {})


def filler(n: int) -> str:
    """A title nothing else shares words with."""
    words = [_WORDS[(n * 7 + k * 3) % len(_WORDS)] for k in range(4)]
    return f"{' '.join(words)} {n}"


def by_ticker(signals: Any) -> dict[str, TickerSignal]:
    return {s.ticker: s for s in signals.tickers}


@pytest.fixture
def mem(memory: Any) -> Any:
    """Memory with near-duplicate linking off: every generated item is its own story."""
    memory.policy = NearDuplicatePolicy(threshold=0.6, kinds=())
    return memory


def series(ticker: str, counts: list[int], *, cluster: str = "media", kind: str = "news") -> list[Item]:
    """``counts[k]`` stories in the k-th baseline window (oldest first), mid-window."""
    items = []
    for k, n in enumerate(counts):
        start = NOW - DAY * (len(counts) + 1 - k)
        items += [make_item(filler(next(_serial)), at=start + timedelta(hours=1 + j), tickers=(ticker,),
                            cluster=cluster, kind=kind, source=f"src{j}") for j in range(n)]
    return items


def test_breadth_across_clusters_beats_single_cluster_spam(mem: Any) -> None:
    items = series("WIDE", [4] * 7) + series("SPAM", [4] * 7, cluster="shillers", kind="social")
    # WIDE: as many stories as usual, but now from four different circles.
    items += [make_item(filler(next(_serial)), at=NOW - timedelta(hours=5 + k), tickers=("WIDE",), cluster=c)
              for k, c in enumerate(("media", "forum", "traders", "devs"))]
    # SPAM: ten times its usual count, all from the one circle.
    items += [make_item(filler(next(_serial)), at=NOW - timedelta(hours=1, minutes=k), tickers=("SPAM",),
                        kind="social", source="x", author=f"bot{k}", cluster="shillers") for k in range(40)]
    mem.add(items)
    signals = compute_signals(mem.state, mem.vectors, now=NOW, narratives=False)
    wide, spam = by_ticker(signals)["WIDE"], by_ticker(signals)["SPAM"]
    assert [s.ticker for s in signals.tickers] == ["WIDE", "SPAM"]
    assert (wide.mentions, wide.baseline_mentions, wide.growth) == (4, 4.0, 1.0)
    assert (wide.clusters, wide.baseline_clusters) == (4, 1.0)
    assert wide.cluster_names == ("devs", "forum", "media", "traders")
    assert (spam.mentions, spam.clusters, spam.authors) == (40, 1, 40)
    assert spam.growth > wide.growth and spam.zscore > wide.zscore
    assert wide.score > 5 * spam.score


def test_score_formula_is_the_documented_one() -> None:
    assert ticker_score(4, 4, 1.0, 1.0, 1.0) == pytest.approx(16 * math.log(5) * (1 + math.log(4)))
    assert ticker_score(10, 1, 5.5, 1.0, 0.0) == pytest.approx(math.log(11) * (1 + 0.5 * math.log(5.5)) * 0.5)
    # Falling attention earns no bonus but no penalty either.
    assert ticker_score(2, 2, 0.2, 3.0, 1.0) == pytest.approx(4 * math.log(3))


def test_one_story_from_many_outlets_counts_once(memory: Any) -> None:
    base = "Korvex exchange pauses withdrawals after hot wallet drained in hack, BTC deposits frozen"
    reports = [
        make_item(base + suffix, at=NOW - timedelta(hours=6 - k), tickers=("BTC",), source=f"outlet{k}",
                  text=base + ". The exchange said the hot wallet was drained.")
        for k, suffix in enumerate(("", " overnight", " on Monday", " says CEO", " — updated"))
    ]
    other = make_item("Lightning network capacity climbs to a new high of 6,100 BTC", at=NOW - timedelta(hours=2),
                      tickers=("BTC",), source="outlet9")
    memory.add([*reports, other])
    signals = compute_signals(memory.state, memory.vectors, now=NOW, narratives=False)
    btc = by_ticker(signals)["BTC"]
    assert (btc.mentions, btc.reports, btc.authors) == (2, 6, 6)
    assert set(btc.item_ids) == {reports[0].id, other.id}
    assert (signals.items, signals.stories) == (6, 2)


def test_growth_and_robust_zscore_on_a_known_series(mem: Any) -> None:
    counts = [1, 2, 3, 2, 2, 4, 1]
    items = series("CCC", counts)
    items += [make_item(filler(next(_serial)), at=NOW - timedelta(hours=k + 1), tickers=("CCC",)) for k in range(6)]
    mem.add(items)
    ccc = by_ticker(compute_signals(mem.state, mem.vectors, now=NOW, narratives=False))["CCC"]
    mean = sum(counts) / 7
    # median 2; absolute deviations 1 0 1 0 0 2 1 → MAD 1.
    assert ccc.baseline_mentions == pytest.approx(mean)
    assert ccc.growth == pytest.approx(7 / (mean + 1))
    assert ccc.zscore == pytest.approx((6 - 2) / (1.4826 * 1 + 1))
    assert ccc.baseline_clusters == 1.0


def test_baseline_windows_memory_did_not_cover_are_left_out(mem: Any) -> None:
    # Memory only reaches back two windows: five empty windows must not read as five quiet days.
    items = series("CCC", [2, 2])
    items += [make_item(filler(next(_serial)), at=NOW - timedelta(hours=k + 1), tickers=("CCC",)) for k in range(2)]
    mem.add(items)
    ccc = by_ticker(compute_signals(mem.state, mem.vectors, now=NOW, narratives=False))["CCC"]
    assert (ccc.baseline_mentions, ccc.growth, ccc.zscore) == (2.0, 1.0, 0.0)
    fresh = by_ticker(compute_signals(mem.state, mem.vectors, now=NOW, baseline_windows=0, narratives=False))["CCC"]
    assert (fresh.baseline_mentions, fresh.growth, fresh.zscore) == (0.0, 3.0, 2.0)


def test_engagement_weights_stories_and_orders_item_ids(mem: Any) -> None:
    viral = make_item("one post everybody saw", at=NOW - timedelta(hours=9), tickers=("HOT",), kind="social",
                      metrics={"likes": 4000, "reposts": 500})
    quiet = [make_item(filler(next(_serial)), at=NOW - timedelta(hours=k + 1), tickers=("COLD",)) for k in range(3)]
    small = make_item("a smaller post", at=NOW - timedelta(hours=3), tickers=("HOT",), kind="social",
                      metrics={"likes": 10})
    older = make_item(filler(next(_serial)), at=NOW - timedelta(hours=8), tickers=("HOT",))
    newer = make_item(filler(next(_serial)), at=NOW - timedelta(hours=2), tickers=("HOT",))
    mem.add([viral, *quiet, small, older, newer])
    signals = by_ticker(compute_signals(mem.state, mem.vectors, now=NOW, narratives=False))
    hot, cold = signals["HOT"], signals["COLD"]
    assert cold.engagement == pytest.approx(3.0)
    assert hot.engagement == pytest.approx(4 + math.log1p(5000) + math.log1p(10))
    assert 1 + math.log1p(5000) > cold.engagement
    # Most engaged first, then the most recent of the unengaged.
    assert hot.item_ids == (viral.id, small.id, newer.id, older.id)


def test_sentiment_knows_crypto_terms() -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    stock = SentimentIntensityAnalyzer()
    ours = Sentiment()
    for text in ("Leverage traders got rekt overnight", "Another rugpull: the devs vanished"):
        assert stock.polarity_scores(text)["compound"] == 0.0
        assert ours.score(text) < -0.3
    assert ours.score("Bullish breakout: SOL mooning toward a new ATH on record inflows") > 0.5
    assert ours.score("Bridge exploit: $40M drained by hackers, protocol hacked") < -0.5
    assert ours.score("") == 0.0
    assert -1.0 <= ours.score("crash " * 500) <= 1.0


def test_ticker_sentiment_has_the_right_sign(mem: Any) -> None:
    mem.add([
        make_item("Bullish breakout as UPP rallies to a new ATH", at=NOW - timedelta(hours=3), tickers=("UPP",)),
        make_item("UPP inflows surge, traders bullish", at=NOW - timedelta(hours=2), tickers=("UPP",)),
        make_item("DWN bridge hacked, exploit drained the treasury", at=NOW - timedelta(hours=3), tickers=("DWN",)),
        make_item("DWN holders rekt after rugpull", at=NOW - timedelta(hours=2), tickers=("DWN",)),
        make_item("Quiet day", at=NOW - timedelta(hours=2)),
    ])
    signals = by_ticker(compute_signals(mem.state, mem.vectors, now=NOW, narratives=False))
    assert signals["UPP"].sentiment > 0.4
    assert signals["DWN"].sentiment < -0.4


def test_novelty_drops_for_stories_a_recent_draft_used(memory: Any) -> None:
    a = make_item("Korvex exchange pauses withdrawals after hot wallet hack", at=NOW - timedelta(hours=5),
                  tickers=("BTC",), source="one")
    a_dup = make_item("Korvex exchange pauses withdrawals after hot wallet hack overnight",
                      at=NOW - timedelta(hours=4), tickers=("BTC",), source="two")
    b = make_item("Lightning network capacity climbs to a new high", at=NOW - timedelta(hours=3), tickers=("BTC",))
    memory.add([a, a_dup, b])
    fresh = by_ticker(compute_signals(memory.state, memory.vectors, now=NOW, narratives=False))["BTC"]

    def draft(*ids: str) -> Draft:
        return Draft(created_at=NOW - timedelta(hours=1), mode="data", window_start=NOW - DAY, window_end=NOW,
                     x_thread=("t",), telegram_html="t", markdown="t", item_ids=ids)

    used = by_ticker(compute_signals(memory.state, memory.vectors, now=NOW, narratives=False,
                                     recent_drafts=[draft(a.id)]))["BTC"]
    # A draft that cited the near-duplicate has used the story too.
    via_dup = by_ticker(compute_signals(memory.state, memory.vectors, now=NOW, narratives=False,
                                        recent_drafts=[draft(a_dup.id)]))["BTC"]
    both = by_ticker(compute_signals(memory.state, memory.vectors, now=NOW, narratives=False,
                                     recent_drafts=[draft(a.id), draft("unrelated", b.id)]))["BTC"]
    assert fresh.mentions == 2
    assert (fresh.novelty, used.novelty, via_dup.novelty, both.novelty) == (1.0, 0.5, 0.5, 0.0)
    assert fresh.score > used.score > both.score > 0


class FakePrices:
    """A PriceSource that knows one ticker and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime, datetime]] = []

    def change_pct(self, ticker: str, start: datetime, end: datetime) -> float | None:
        self.calls.append((ticker, start, end))
        return 4.2 if ticker == "BTC" else None


def test_prices_are_asked_for_each_ticker_over_the_window(mem: Any) -> None:
    mem.add([make_item(filler(1), at=NOW - timedelta(hours=2), tickers=("BTC", "ETH"))])
    prices = FakePrices()
    signals = by_ticker(compute_signals(mem.state, mem.vectors, now=NOW, prices=prices, narratives=False))
    assert (signals["BTC"].price_change_pct, signals["ETH"].price_change_pct) == (4.2, None)
    assert sorted(prices.calls) == [("BTC", NOW - DAY, NOW), ("ETH", NOW - DAY, NOW)]
    without = compute_signals(mem.state, mem.vectors, now=NOW, narratives=False)
    assert all(s.price_change_pct is None for s in without.tickers)


def test_empty_memory_gives_empty_signals(memory: Any) -> None:
    signals = compute_signals(memory.state, memory.vectors, now=NOW)
    assert (signals.items, signals.stories, signals.tickers, signals.narratives) == (0, 0, (), ())
    assert (signals.window_start, signals.window_end, signals.baseline_start) == (NOW - DAY, NOW, NOW - 8 * DAY)


def test_items_outside_the_window_are_ignored(mem: Any) -> None:
    inside = make_item(filler(1), at=NOW - DAY, tickers=("IN",))
    mem.add([
        inside,
        make_item(filler(2), at=NOW, tickers=("OUT",)),  # the window is half-open
        make_item(filler(3), at=NOW + timedelta(hours=1), tickers=("OUT",)),
        make_item(filler(4), at=NOW - DAY - timedelta(seconds=1), tickers=("OUT",)),  # baseline only
        make_item(filler(5), at=NOW - 9 * DAY, tickers=("OUT", "IN")),  # before the baseline
    ])
    signals = compute_signals(mem.state, mem.vectors, now=NOW, narratives=False)
    assert [s.ticker for s in signals.tickers] == ["IN"]
    assert (signals.items, signals.stories) == (1, 1)
    assert signals.tickers[0].baseline_mentions == 0.0
    assert signals.tickers[0].item_ids == (inside.id,)


def test_window_and_baseline_are_read_in_one_query(mem: Any) -> None:
    mem.add([*series("CCC", [1] * 7), make_item(filler(9), at=NOW - timedelta(hours=1), tickers=("CCC",))])
    calls: list[tuple[datetime, datetime]] = []

    class Counting:
        def window_items(self, start: datetime, end: datetime) -> list[Any]:
            calls.append((start, end))
            return mem.state.window_items(start, end)

    signals = compute_signals(Counting(), mem.vectors, now=NOW, window=timedelta(hours=12), baseline_windows=3)
    assert calls == [(NOW - 4 * timedelta(hours=12), NOW)]
    assert signals.baseline_start == NOW - timedelta(hours=48)


def test_a_non_positive_window_is_refused(memory: Any) -> None:
    with pytest.raises(ValueError, match="window"):
        compute_signals(memory.state, None, now=NOW, window=timedelta(0))
