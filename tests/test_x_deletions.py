"""The X deletion job: real tweepy Client → fake X API v2 (GET /2/tweets?ids=) → real Memory (Chroma + SQLite).

Posts are ingested the real way (XIngestor), then deleted or their authors suspended on the fake; the job
must forget exactly those, rows and vectors, in batches of 100 within the read budget.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from memory import schema
from memory.quotas import Quotas, month_of
from sources.item import item_id_for_post
from sources.tickers import Watchlist
from sources.x import XReader
from sources.x_deletions import post_id, unavailable
from tapewatch.cli import main
from tapewatch.clients import x_client
from tapewatch.daemon.specs import job_specs
from tapewatch.ingest_x import XIngestor
from tapewatch.jobs import Runtime, x_specs
from tapewatch.settings import DEFAULT_WATCHLIST, Settings
from tapewatch.x_deletions import SOURCE, XDeletions, last_run
from tests.fakes.x_api import FakeXAPI, serving_x


@pytest.fixture
def x() -> Any:
    with serving_x() as server:
        yield server


def _settings(x: FakeXAPI, **xs: Any) -> Settings:
    return Settings(x_bearer_token="t", x={"api_base_url": x.base_url, "timeout": "2s", "backoff": "0.01s",
                                           "accounts": [{"handle": "mira_onchain"}, {"handle": "rando"}], **xs})


def _reader(settings: Settings) -> XReader:
    return XReader(x_client(settings), attempts=settings.x.attempts, backoff_s=settings.x.backoff.total_seconds())


def _ingest(memory: Any, x: FakeXAPI, settings: Settings) -> None:
    report = XIngestor(memory, _reader(settings), Quotas(memory.state), Watchlist(DEFAULT_WATCHLIST),
                       settings.x).run(x_specs(settings))
    assert all(o.status == "ok" for o in report.outcomes), report.outcomes


def _job(memory: Any, settings: Settings) -> XDeletions:
    return XDeletions(memory, _reader(settings), Quotas(memory.state), settings.x)


def _rows(memory: Any) -> set[str]:
    with memory.state.engine.connect() as conn:
        return set(conn.execute(select(schema.items.c.id)).scalars())


def test_deleted_and_suspended_posts_leave_memory_rows_and_vectors_the_rest_stay(memory: Any, x: FakeXAPI) -> None:
    mira, rando = x.add_user("mira_onchain"), x.add_user("rando")
    kept = x.post(mira, "ETH exchange reserves at a multi-year low $ETH")
    deleted = x.post(mira, "SOL validators shipped a new client $SOL")
    suspended = x.post(rando, "DOGE miners merge pools $DOGE")
    settings = _settings(x)
    _ingest(memory, x, settings)
    ids = {t.id: item_id_for_post("x", t.id) for t in (kept, deleted, suspended)}
    assert set(ids.values()) <= _rows(memory) and memory.vectors.present(list(ids.values())) == set(ids.values())
    x.tweets.pop(deleted.id)  # deleted on X
    x.suspended.add(rando.id)  # its author suspended
    used_before = Quotas(memory.state).usage(month_of(datetime.now(UTC))).posts
    report = _job(memory, settings).run()
    assert report.deleted == {ids[deleted.id]: "deleted", ids[suspended.id]: "author suspended"}
    assert report.checked == 3 and report.returned == 1 and report.requests == 1
    assert _rows(memory) & set(ids.values()) == {ids[kept.id]}
    assert memory.vectors.present(list(ids.values())) == {ids[kept.id]}
    # Counted against the read budget: X bills the one post it returned.
    assert Quotas(memory.state).usage(month_of(datetime.now(UTC))).posts == used_before + 1
    [lookup] = x.calls("/2/tweets", "GET")
    assert sorted(lookup.query["ids"][0].split(",")) == sorted(ids)
    # Searching memory no longer finds what X deleted.
    assert not [h for h in memory.search("SOL validators shipped a new client", limit=5) if h.id == ids[deleted.id]]
    assert "deleted 2" in report.summary and "author suspended 1" in report.summary


def test_lookups_go_100_ids_at_a_time_and_only_for_posts_inside_the_window(memory: Any, x: FakeXAPI) -> None:
    mira = x.add_user("mira_onchain")
    x.add_user("rando")
    old = x.post(mira, "an old post about $BTC", at=datetime.now(UTC) - timedelta(days=40))
    posts = [x.post(mira, f"note {n} on $ETH flows") for n in range(149)]
    settings = _settings(x, max_pages=3, first_run_pages=3)
    _ingest(memory, x, settings)
    for post in posts[::10]:
        x.tweets.pop(post.id)
    report = _job(memory, settings).run()
    batches = [c.query["ids"][0].split(",") for c in x.calls("/2/tweets", "GET")]
    assert [len(b) for b in batches] == [100, 49] and old.id not in {i for b in batches for i in b}
    assert report.checked == 149 and len(report.deleted) == 15
    assert item_id_for_post("x", old.id) in _rows(memory)  # older than x.compliance_window: not looked up


def test_the_read_budget_bounds_the_job_and_a_429_pauses_it(memory: Any, x: FakeXAPI) -> None:
    mira = x.add_user("mira_onchain")
    x.add_user("rando")
    for n in range(30):
        x.post(mira, f"note {n} on $ETH flows")
    settings = _settings(x, monthly_read_budget=40)
    _ingest(memory, x, settings)  # 30 of the 40 reads this month
    report = _job(memory, settings).run()
    [lookup] = x.calls("/2/tweets", "GET")
    assert len(lookup.query["ids"][0].split(",")) == 10 and report.checked == 10
    assert "monthly X read budget reached" in (report.stopped or "")
    assert Quotas(memory.state).usage(month_of(datetime.now(UTC))).posts == 40
    roomy = _settings(x, monthly_read_budget=1000)
    reset = str(int(datetime.now(UTC).timestamp()) + 600)
    x.fail_next("/2/tweets", 429, method="GET", headers={"x-rate-limit-reset": reset})
    report = _job(memory, roomy).run()
    assert "429" in (report.stopped or "") and report.deleted == {}
    again = _job(memory, roomy).run()
    assert (again.stopped or "").startswith("paused until") and len(x.calls("/2/tweets", "GET")) == 2


def test_an_unreadable_answer_deletes_nothing_and_is_recorded_as_an_error(memory: Any, x: FakeXAPI) -> None:
    mira = x.add_user("mira_onchain")
    x.add_user("rando")
    x.post(mira, "ETH exchange reserves at a multi-year low $ETH")
    settings = _settings(x)
    _ingest(memory, x, settings)
    before = _rows(memory)
    x.fail_next("/2/tweets", 200, method="GET", raw=b"<html>not json</html>")
    report = _job(memory, settings).run()
    assert report.deleted == {} and _rows(memory) == before and report.stopped
    health = {h.name: h for h in memory.state.source_health()}[SOURCE]
    assert health.last_status == "error" and "malformed" in (health.last_error or "")


def test_unavailable_reads_x_answers_conservatively() -> None:
    asked = ["1", "2", "3"]
    assert unavailable({"data": [{"id": "1"}]}, asked).gone == {"2": "not returned", "3": "not returned"}
    # An error that names no post: only the posts X named are gone, an omission alone is not trusted.
    partial = unavailable({"data": [{"id": "1"}], "errors": [
        {"resource_id": "2", "type": "https://api.twitter.com/2/problems/resource-not-found"},
        {"title": "Service Unavailable", "detail": "try again"}]}, asked)
    assert partial.gone == {"2": "deleted"} and partial.returned == 1
    with pytest.raises(Exception, match="not a JSON object"):
        unavailable(["1"], asked)
    assert post_id("https://x.com/mira/status/1850000000000000001") == "1850000000000000001"
    assert post_id("https://x.com/i/web/status/42?s=20") == "42" and post_id("https://news.example/a") is None


def test_the_daemon_schedules_it_and_tapewatch_sources_shows_its_last_run(
        tmp_path: Path, x: FakeXAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        hash_embedder: Any) -> None:
    mira = x.add_user("mira_onchain")
    x.add_user("rando")
    gone = x.post(mira, "SOL validators shipped a new client $SOL")
    config = tmp_path / "tapewatch.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[x]\napi_base_url = "{x.base_url}"\ntimeout = "2s"\n'
                      'compliance_every = "6h"\naccounts = [{ handle = "mira_onchain" }]\n')
    monkeypatch.setenv("TAPEWATCH_X_BEARER_TOKEN", "t")
    from tapewatch.settings import load_settings

    settings = load_settings(config)
    runtime = Runtime(settings, embed=hash_embedder)
    [spec] = [j for j in job_specs(runtime) if j.kind == "x_deletions"]
    assert spec.interval == timedelta(hours=6) and spec.id == "x-deletions"
    runtime.ingest_x()
    x.tweets.pop(gone.id)
    report = runtime.x_deletions()
    assert list(report.deleted.values()) == ["deleted"]
    when, summary, error = last_run(runtime.state) or (None, "", "?")
    assert when is not None and error is None and "deleted 1" in summary
    runtime.close()
    monkeypatch.setattr(sys, "argv", ["tapewatch", "--config", str(config), "sources"])
    monkeypatch.setenv("COLUMNS", "250")
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    output = capsys.readouterr().out
    assert "X deletion check (x.compliance_every 6h): last ran" in output and "deleted 1 (deleted 1)" in output
    assert "x:compliance" in output
