"""The track record: calls recorded at publish time, scored from stored snapshots, and the retention they need."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from crew.scorecard import TrackOptions, track_record
from crew.track import Benchmark, PriceIndex, Scored, summarise
from memory import schema
from memory.calls import CallStore, record_calls
from memory.drafts import DraftStore
from memory.prices import PriceSnapshot, PriceStore
from memory.state import StateDB
from publish.review import ReviewQueue
from tests.fakes.publishing import add_draft
from tests.fakes.telegram_api import serving_telegram
from tests.fakes.x_api import serving_x
from tests.test_publish_cli import SECRETS, cli, write_config

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAY = timedelta(days=1)


def snap(ticker: str, at: datetime, price: float) -> PriceSnapshot:
    return PriceSnapshot(ticker, at, price, source="test")


@pytest.fixture
def state(tmp_path: Path) -> StateDB:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.close()


def publish_draft(state: StateDB, tag: str, at: datetime, tickers: tuple[str, ...], **meta: Any) -> str:
    """A draft featuring ``tickers`` marked published at ``at`` with its calls recorded (as the hook does)."""
    draft = add_draft(state, tag, created_at=at - timedelta(minutes=5))
    d = schema.drafts
    signals = {"tickers": [{"ticker": t, "mentions": 3 + i, "clusters": 4 - i, "growth": 2.0, "sentiment": 0.1,
                            "price_change_pct": 1.5, "score": 9.0 - i} for i, t in enumerate(tickers)]}
    with state.engine.begin() as conn:
        conn.execute(update(d).where(d.c.id == draft.id).values(
            status="published", tickers=" ".join(tickers), signals=json.dumps(signals), meta=json.dumps(meta)))
    published = DraftStore(state).get(draft.id)
    with state.engine.begin() as conn:
        record_calls(conn, published, at)
    return draft.id


def options(**kw: Any) -> TrackOptions:
    return TrackOptions(kw.pop("horizons", (DAY, 5 * DAY)), kw.pop("benchmark", Benchmark("BTC")),
                        timedelta(hours=3), min_calls=kw.pop("min_calls", 2), resamples=500)


def test_scoring_with_known_snapshots_and_missing_ends(state: StateDB) -> None:
    t0 = NOW - 10 * DAY
    prices = PriceStore(state)
    prices.add([snap("SOL", t0, 100.0), snap("SOL", t0 + DAY + timedelta(hours=1), 110.0),
                snap("BTC", t0 - timedelta(hours=2), 90_000.0), snap("BTC", t0 + DAY, 91_800.0),
                snap("ETH", t0, 3000.0),  # no snapshot near t0 + 1d: unscorable, not dropped
                snap("DOGE", t0 + DAY, 0.2)],  # no snapshot near t0: unscorable
               NOW)
    draft_id = publish_draft(state, "a", t0, ("SOL", "ETH", "DOGE"), framing={"SOL": "positive", "ETH": "bullish"})
    fresh = publish_draft(state, "b", NOW - timedelta(hours=2), ("SOL",))  # not a day old yet: waiting

    record = track_record(state, options(horizons=(DAY,), min_calls=1), NOW)
    by = {(c.draft_id, c.ticker): s for c, s in record.scored}
    sol = by[(draft_id, "SOL")]
    assert sol.status == "scored" and sol.ret == pytest.approx(10.0) and sol.bench == pytest.approx(2.0)
    assert sol.excess == pytest.approx(8.0) and sol.framing == "positive"
    assert by[(draft_id, "ETH")].status == "unscorable" and by[(draft_id, "ETH")].framing is None  # not a framing
    assert by[(draft_id, "DOGE")].status == "unscorable" and by[(fresh, "SOL")].status == "waiting"
    [stats] = record.stats
    assert (stats.n, stats.unscorable, stats.waiting) == (1, 2, 1)
    calls = {c.ticker: c for c in record.calls if c.draft_id == draft_id}
    assert [calls[t].rank for t in ("SOL", "ETH", "DOGE")] == [1, 2, 3] and calls["SOL"].breadth == 4

    # The basket benchmark: equal weight of the watchlist tickers priced at both ends (here SOL and BTC).
    basket = track_record(state, options(horizons=(DAY,), benchmark=Benchmark("basket", ["SOL", "BTC", "ETH"]),
                                         min_calls=1), NOW)
    sol_b = {(c.draft_id, c.ticker): s for c, s in basket.scored}[(draft_id, "SOL")]
    assert sol_b.bench == pytest.approx(6.0) and sol_b.excess == pytest.approx(4.0)


def test_too_few_calls_says_so_and_enough_gives_rates(state: StateDB) -> None:
    rows = [Scored("SOL", NOW - i * DAY, DAY, f"d{i}", "scored", 1.0 + i, 0.0, 1.0 + i) for i in range(9)]
    few = summarise(rows, DAY, min_calls=10)
    assert not few.enough and few.n == 9 and few.mean is None and few.hit_rate is None and few.mean_ci is None
    rows += [Scored("ETH", NOW, DAY, "d9", "scored", -2.0, 0.0, -2.0, framing="negative"),
             Scored("ETH", NOW, DAY, "d9", "unscorable")]
    stats = summarise(rows, DAY, min_calls=10, resamples=500, seed=3)
    assert stats.enough and stats.n == 10 and stats.unscorable == 1 and stats.hit_rate == pytest.approx(0.9)
    assert stats.mean == pytest.approx((sum(1.0 + i for i in range(9)) - 2.0) / 10)
    assert stats.mean_ci is not None and stats.mean_ci.low < stats.mean < stats.mean_ci.high
    assert stats.median_ci is not None and stats.median_ci.covers(stats.median or 0.0)
    assert stats.framed == 1 and stats.direction_matched is None  # one framed call is too few for a rate
    again = summarise(rows, DAY, min_calls=10, resamples=500, seed=3)
    assert again.mean_ci == stats.mean_ci  # seeded: the same calls give the same interval
    # Daily calls on a 5-day horizon overlap: 10 of them cover 2 independent spans, too few for a rate.
    long = [Scored("SOL", NOW - i * DAY, 5 * DAY, f"d{i}", "scored", 1.0, 0.0, float(i)) for i in range(10)]
    overlapping = summarise(long, 5 * DAY, min_calls=10, block=5)
    assert not overlapping.enough and overlapping.spans == pytest.approx(2.0)


def test_price_index_nearest_within_tolerance() -> None:
    index = PriceIndex({"SOL": [(NOW, 100.0), (NOW + timedelta(hours=5), 120.0)]})
    tol = timedelta(hours=2)
    assert index.nearest("sol", NOW + timedelta(hours=1), tol) == 100.0
    assert index.nearest("SOL", NOW + timedelta(hours=4), tol) == 120.0
    assert index.nearest("SOL", NOW + timedelta(hours=4), tol, as_of=True) is None  # as of then: 100 is 4h old
    assert index.nearest("SOL", NOW + timedelta(hours=2, minutes=30), tol) is None
    assert index.nearest("X", NOW, tol) is None
    assert index.forward_pct("SOL", NOW, timedelta(hours=5), tol) == pytest.approx(20.0)


def test_publish_records_calls_once_and_backfills_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    with serving_x() as x, serving_telegram() as tg:
        write_config(tmp_path / "tapewatch.toml", tmp_path / "data", x, tg)
        (tmp_path / "data").mkdir()
        state = StateDB(f"sqlite:///{tmp_path / 'data' / 'state.db'}")
        draft = add_draft(state, "a", posts=2)
        ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
        assert cli(["publish"], monkeypatch, capsys)[0] == 0
        [call] = CallStore(state.engine).all()
        assert call.draft_id == draft.id and call.ticker == "SOL" and call.rank == 1 and call.breadth == 1
        first_sent = min(r.sent_at for r in _outbox(state, draft.id))
        assert call.published_at == first_sent
        # A process that died between publishing and recording: the calls come from the stored draft later.
        with state.engine.begin() as conn:
            conn.execute(schema.calls.delete())
        assert CallStore(state.engine).backfill() == 1 and CallStore(state.engine).backfill() == 0
        code, output = cli(["track", "--horizon", "1d,5d"], monkeypatch, capsys)
        assert code == 0 and "1 call(s) from 1 published brief(s)" in output, output
        assert "too few calls (0 of 10 needed)" in output
        code, output = cli(["track", "--json"], monkeypatch, capsys)
        data = json.loads(output)
        assert data["calls"] == 1 and {h["horizon"] for h in data["horizons"]} == {"1d", "5d", "10d", "30d"}
        assert all(s["status"] == "waiting" for s in data["scored"])
        code, output = cli(["track", "--horizon", "soon"], monkeypatch, capsys)
        assert code == 2 and "Traceback" not in output
        state.close()


def test_retention_keeps_prices_and_calls_longer_than_items(tmp_path: Path, hash_embedder: Any) -> None:
    from tapewatch.jobs import Runtime
    from tapewatch.settings import Settings
    from tests.test_daemon import make_runtime

    settings = Settings(data_dir=tmp_path / "data", memory={"retention": "30d"}, track={"price_retention": "200d"})
    runtime: Runtime = make_runtime(settings, tmp_path, hash_embedder)
    try:
        prices = PriceStore(runtime.state)
        prices.add([snap("SOL", NOW - 100 * DAY, 90.0), snap("SOL", NOW - 300 * DAY, 50.0)], NOW)
        old = publish_draft(runtime.state, "a", NOW - 100 * DAY, ("SOL",))
        items, snapshots = runtime.retention()
        assert snapshots == 1 and prices.count() == 1  # 100 days old: kept; 300 days: gone
        assert [c.draft_id for c in CallStore(runtime.state.engine).all()] == [old]  # calls are never pruned
        with runtime.state.engine.connect() as conn:  # the draft's cited item is past memory.retention
            assert items >= 1 and conn.execute(select(func.count()).select_from(schema.items)).scalar() == 0
    finally:
        runtime.close()


def _outbox(state: StateDB, draft_id: str) -> list[Any]:
    from publish.outbox import Outbox

    return [r for r in Outbox(state.engine).rows(draft_id) if r.sent_at is not None]


