"""The backtest on SYNTHETIC history (tests/synthetic_history.py): it finds a planted effect, claims none in the
null version, and nothing dated after a window end reaches that window."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crew.backtest import BacktestResult, csv_rows
from crew.scorecard import TrackOptions, backtest
from crew.signals import compute_signals
from crew.track import Benchmark
from memory.prices import PriceSnapshot, PriceStore
from memory.state import StateDB
from sources.item import Item
from tests.synthetic_history import GROUPS, SyntheticHistory, generate, store
from tests.test_publish_cli import cli

DAY = timedelta(days=1)
HORIZONS = (DAY, 5 * DAY, 10 * DAY, 30 * DAY)
LATER = datetime(2027, 6, 1, tzinfo=UTC)  # "now" for scoring: every horizon has come due


def opts(bench: str, history: SyntheticHistory) -> TrackOptions:
    return TrackOptions(HORIZONS, Benchmark(bench, history.tickers), timedelta(hours=3), min_calls=10,
                        resamples=1000, seed=15)


def run(state: StateDB, history: SyntheticHistory, bench: str = "BTC", **kw: Any) -> BacktestResult:
    return backtest(state, opts(bench, history), start=kw.pop("start", history.start),
                    end=kw.pop("end", history.end), every=DAY, top=5, rankings=("breadth", "mentions"), now=LATER,
                    **kw)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[StateDB, SyntheticHistory]:
    history = generate(seed=7, effect_pct=3.0)
    state = StateDB(f"sqlite:///{tmp_path_factory.mktemp('planted') / 'state.db'}")
    store(state, history)
    yield state, history
    state.close()


@pytest.fixture(scope="module")
def null(tmp_path_factory: pytest.TempPathFactory) -> tuple[StateDB, SyntheticHistory]:
    history = generate(seed=7, effect_pct=0.0)
    state = StateDB(f"sqlite:///{tmp_path_factory.mktemp('null') / 'state.db'}")
    store(state, history)
    yield state, history
    state.close()


def test_planted_effect_is_found_by_breadth_and_less_by_mentions(planted: tuple[StateDB, SyntheticHistory]) -> None:
    state, history = planted
    result = run(state, history)
    assert len(result.windows) == 40 and len(result.picks) == 40 * 5 * 2
    breadth, mentions = (result.stats[r][0] for r in ("breadth", "mentions"))  # 1-day horizon
    assert breadth.enough and breadth.n == 200 and breadth.unscorable == 0
    # What the data were built to show: boosted picks gain effect_pct on the next day, the others nothing.
    picks = [p for p in result.picks if p.ranking == "breadth"]
    share = sum((p.signal.ticker, p.window_end) in history.boosted for p in picks) / len(picks)
    expected = share * history.effect_pct
    assert breadth.mean_ci is not None and breadth.mean_ci.low > 0 and breadth.mean_ci.covers(expected)
    assert breadth.mean == pytest.approx(expected, abs=0.5)
    assert breadth.hit_rate is not None and breadth.hit_rate > 0.6
    assert mentions.mean is not None and breadth.mean > mentions.mean + 0.5
    # The loud one-group tickers top the mentions ranking and never the breadth ranking.
    loud = set(history.tickers[:2])
    assert sum(p.signal.ticker in loud for p in result.picks if p.ranking == "mentions" and p.rank <= 2) > 60
    assert all(p.signal.ticker not in loud for p in picks if p.rank == 1)


@pytest.mark.parametrize("bench", ["BTC", "basket"])
def test_null_history_claims_no_effect(null: tuple[StateDB, SyntheticHistory], bench: str) -> None:
    state, history = null
    result = run(state, history, bench)
    for ranking, stats in result.stats.items():
        for s in stats:
            if s.enough:
                assert s.mean_ci is not None and s.mean_ci.covers(0.0), (ranking, s)
            else:  # 40 daily windows hold too few independent 5-, 10- or 30-day spans to say anything
                assert s.horizon >= 5 * DAY and s.mean is None and s.spans < 10, (ranking, s)
        assert stats[0].enough  # the 1-day horizon is judged, and found to be nothing


def test_nothing_after_a_window_end_reaches_that_window(tmp_path: Path) -> None:
    history = generate(seed=11, days=14, items_per_day=80, tickers=8)
    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    store(state, history)
    cut = history.start + 10 * DAY
    before = csv_rows(run(state, history, end=cut), HORIZONS)
    # After the cut: a new ticker talked about by every group, more posts about a known one, wild prices.
    late = [Item(id=f"late-{g}-{n}", kind="social", source="late", url=f"https://late.example/{g}/{n}",
                 title=f"$SYZZ and ${history.tickers[3]} news", text="later", cluster=g, author=f"{g}-{n}",
                 published_at=cut + timedelta(minutes=n), fetched_at=cut + timedelta(minutes=n),
                 tickers=("SYZZ", history.tickers[3]))
            for g in GROUPS for n in range(1, 4)]
    state.commit_batch(late, [], None)
    PriceStore(state).add([PriceSnapshot(t, cut + timedelta(minutes=30), 1e6, source="late")
                           for t in ("BTC", *history.tickers)], cut)
    after = csv_rows(run(state, history, end=cut), HORIZONS)
    assert after == before
    # The same replay one window later does see them, so the data were really there to be seen.
    assert any(row[3] == "SYZZ" for row in csv_rows(run(state, history, end=cut + DAY), HORIZONS)[1])
    state.close()


def test_stored_signals_read_prices_as_of_the_window_end(tmp_path: Path) -> None:
    """compute_signals over the real stores: a snapshot observed after ``now`` does not change its price move."""
    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    now = datetime(2026, 10, 1, 12, tzinfo=UTC)
    state.commit_batch([Item(id="a", kind="news", source="wire", url="https://w.example/a", title="$SOL upgrade",
                             text="$SOL upgrade", published_at=now - timedelta(hours=3), fetched_at=now,
                             tickers=("SOL",))], [], None)
    prices = PriceStore(state)
    prices.add([PriceSnapshot("SOL", now - DAY, 100.0), PriceSnapshot("SOL", now - timedelta(hours=1), 104.0)], now)

    def move() -> float | None:
        [sol] = compute_signals(state, None, now=now, prices=prices, narratives=False).tickers
        return sol.price_change_pct

    assert move() == pytest.approx(4.0)
    prices.add([PriceSnapshot("SOL", now + timedelta(minutes=30), 150.0)], now + timedelta(minutes=30))
    state.commit_batch([Item(id="b", kind="news", source="wire2", url="https://w2.example/b", title="$SOL later",
                             text="$SOL later", published_at=now, fetched_at=now, tickers=("SOL",))], [], None)
    assert move() == pytest.approx(4.0)
    [sol] = compute_signals(state, None, now=now, prices=prices, narratives=False).tickers
    assert sol.mentions == 1 and sol.reports == 1
    state.close()


def test_backtest_cli_writes_one_csv_row_per_window_and_ticker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    history = generate(seed=5, days=12, items_per_day=60, tickers=6)
    (tmp_path / "data").mkdir(exist_ok=True)
    state = StateDB(f"sqlite:///{tmp_path / 'data' / 'state.db'}")
    store(state, history)
    state.close()
    out = tmp_path / "bt.csv"
    code, output = cli(["backtest", "--from", history.start.date().isoformat(), "--to",
                        history.end.date().isoformat(), "--top", "3", "--rank", "both", "--horizon", "1d,5d",
                        "--benchmark", "basket", "--out", str(out)], monkeypatch, capsys)
    assert code == 0, output
    assert "12 window(s) of 24h" in output and "ranked by breadth" in output and "ranked by mentions" in output
    assert "Wrote 72 row(s)" in output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 * 3 * 2 and {r["ranking"] for r in rows} == {"breadth", "mentions"}
    first = rows[0]
    assert first["status_1d"] == "scored" and not math.isnan(float(first["excess_1d_pct"]))
    ret, bench = float(first["return_1d_pct"]), float(first["benchmark_1d_pct"])
    assert float(first["excess_1d_pct"]) == pytest.approx(ret - bench, abs=1e-3)
    code, output = cli(["backtest", "--from", "2026-09-10", "--to", "2026-09-01"], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in output
    code, output = cli(["backtest", "--from", "2026-09-01", "--to", "2026-09-10", "--rank", "vibes"], monkeypatch,
                       capsys)
    assert code == 2 and "breadth, mentions or both" in output




@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "worker-processes"])
def test_sentiment_of_the_picks_is_what_live_signals_report(planted: tuple[StateDB, SyntheticHistory], pool: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """--sentiment scores only the picked tickers' items (in worker processes when there are many), and gives each
    pick the tone compute_signals gives it."""
    from crew import sentiment

    if pool:
        monkeypatch.setattr(sentiment, "POOL_MIN_TEXTS", 1)
        monkeypatch.setattr(sentiment.os, "sched_getaffinity", lambda _pid: {0, 1})
    state, history = planted
    end = history.start + 12 * DAY
    toned = run(state, history, end=end, sentiment=True)
    plain = run(state, history, end=end)
    assert [(p.window_end, p.ranking, p.signal.ticker) for p in toned.picks] == [
        (p.window_end, p.ranking, p.signal.ticker) for p in plain.picks]  # no ranking uses it
    live = {at: {s.ticker: s.sentiment for s in compute_signals(state, None, now=at, window=DAY, narratives=False)
                 .tickers} for at in toned.windows}
    assert any(p.signal.sentiment != 0 for p in toned.picks) and all(p.signal.sentiment == 0 for p in plain.picks)
    for p in toned.picks:
        assert p.signal.sentiment == pytest.approx(live[p.window_end][p.signal.ticker], abs=1e-12), p
