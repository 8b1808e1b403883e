"""The state database: migrations and the fetch/health records."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from memory import schema
from memory.migrations import MIGRATIONS, Migration, current_version, migrate
from memory.state import FetchRecord, StateDB, make_engine
from sources.errors import StoreError
from sources.rss import Validators

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_fresh_database_is_migrated_to_latest(state_url: str) -> None:
    db = StateDB(state_url)
    assert current_version(db.engine) == MIGRATIONS[-1].version
    assert {"sources", "fetch_log", "items", "item_tickers"} <= set(inspect(db.engine).get_table_names())


def test_old_database_is_upgraded_step_by_step_and_only_once(state_url: str) -> None:
    engine = make_engine(state_url)
    assert migrate(engine, MIGRATIONS[:1]) == [1]
    assert not inspect(engine).has_table("item_tickers")
    assert migrate(engine) == [m.version for m in MIGRATIONS[1:]]
    assert inspect(engine).has_table("item_tickers")
    assert migrate(engine) == []


def test_a_step_missing_below_the_newest_is_still_applied(state_url: str) -> None:
    engine = make_engine(state_url)
    without_second = (MIGRATIONS[0], *MIGRATIONS[2:])
    migrate(engine, without_second)  # a build whose list lacked step 2
    assert not inspect(engine).has_table("item_tickers")
    assert migrate(engine) == [2]
    assert inspect(engine).has_table("item_tickers")


def test_failed_migration_rolls_back_and_keeps_the_version(state_url: str) -> None:
    engine = make_engine(state_url)
    migrate(engine)

    def broken(conn) -> None:  # type: ignore[no-untyped-def]
        from sqlalchemy import text

        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("boom")

    step = Migration(MIGRATIONS[-1].version + 1, "broken", broken)
    with pytest.raises(RuntimeError):
        migrate(engine, (*MIGRATIONS, step))
    assert current_version(engine) == MIGRATIONS[-1].version
    assert not inspect(engine).has_table("half_done")


def test_database_newer_than_the_code_is_refused(state_url: str) -> None:
    engine = make_engine(state_url)
    migrate(engine)
    with pytest.raises(StoreError, match="upgrade tapewatch"):
        migrate(engine, MIGRATIONS[:1])


def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open state database"):
        StateDB(f"sqlite:///{tmp_path / 'missing-dir' / 'x' / 's.db'}")


def test_an_unreachable_postgresql_is_a_store_error_without_the_password() -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(StoreError, match="cannot open state database") as caught:
        StateDB("postgresql+psycopg://tw:s3cret-pw@127.0.0.1:9/tapewatch")
    assert "s3cret-pw" not in str(caught.value) and "127.0.0.1:9" in str(caught.value)


def test_processes_migrating_at_once_apply_each_step_once(state_url: str) -> None:
    # Separate engines, as a daemon and a CLI starting together would have.
    engines = [make_engine(state_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    outcomes: list[object] = []

    def run(engine: Any) -> None:
        barrier.wait()
        try:
            outcomes.append(migrate(engine))
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    applied = sorted(v for o in outcomes for v in o)  # type: ignore[union-attr]
    assert applied == sorted(m.version for m in MIGRATIONS)  # every step once, by whichever got there first
    with engines[0].connect() as conn:
        versions = list(conn.execute(select(schema.schema_version.c.version)).scalars())
    assert sorted(versions) == sorted(m.version for m in MIGRATIONS)
    for e in engines:
        e.dispose()


def _fetch(status: str, when: datetime, **kw: object) -> FetchRecord:
    return FetchRecord(source="wire", kind="news", url="https://wire.example/rss", started_at=when,
                       finished_at=when + timedelta(seconds=1), status=status, **kw)  # type: ignore[arg-type]


def test_health_tracks_errors_and_validators(state_url: str) -> None:
    db = StateDB(state_url)
    db.record_fetch(_fetch("ok", T0, http_status=200, validators=Validators(etag='"v1"', last_modified="Tue")))
    db.record_fetch(_fetch("error", T0 + timedelta(hours=1), error="HTTP 500"))
    db.record_fetch(_fetch("error", T0 + timedelta(hours=2), error="timed out"))
    (health,) = db.source_health()
    assert (health.last_status, health.consecutive_errors, health.last_error) == ("error", 2, "timed out")
    assert health.last_ok_at == T0 + timedelta(seconds=1)
    assert health.last_fetch_at.tzinfo is not None
    # Errors and 304s keep the validators a 200 gave us.
    db.record_fetch(_fetch("not_modified", T0 + timedelta(hours=3), http_status=304))
    assert db.validators("wire") == Validators(etag='"v1"', last_modified="Tue")
    (health,) = db.source_health()
    assert (health.last_status, health.consecutive_errors, health.last_error) == ("not_modified", 0, None)
    assert db.validators("unknown") == Validators()


def test_the_postgresql_pool_and_session_settings_are_the_documented_ones(state_url: str) -> None:
    from sqlalchemy import text

    from memory import engine as settings

    if not state_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = make_engine(state_url)
    try:
        assert (engine.pool.size(), engine.pool._max_overflow) == (settings.POOL_SIZE, settings.MAX_OVERFLOW)  # type: ignore[attr-defined]
        assert (settings.POOL_SIZE, settings.MAX_OVERFLOW) == (5, 10)
        with engine.connect() as conn:
            conn.rollback()  # the settings must survive a rollback (they were committed at connect)
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "30s"
            assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "10min"
            assert conn.execute(text("SHOW application_name")).scalar()  # the URL's, or "tapewatch"
            assert conn.execute(text("SHOW search_path")).scalar().startswith("t_")  # the URL's options are kept
    finally:
        engine.dispose()


def test_readers_do_not_queue_behind_a_writer_and_see_only_what_was_committed(state_url: str) -> None:
    db = StateDB(state_url)
    reads = db.reading()
    table = schema.source_cursors
    with db.engine.begin() as conn:
        conn.execute(table.insert().values(source="feed-a", cursor="1", updated_at=datetime.now(UTC)))
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:  # a long write transaction, as an ingest batch or a publish run holds one
        with db.engine.begin() as conn:
            conn.execute(table.update().where(table.c.source == "feed-a").values(cursor="2"))
            holding.set()
            release.wait(30)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(10)
    seen: list[str | None] = []
    reader = threading.Thread(target=lambda: seen.append(reads.cursor("feed-a")))
    reader.start()
    reader.join(5)  # a reader behind SQLite's write lock would wait out the 30 s busy timeout here
    finished = not reader.is_alive()
    release.set()
    thread.join(30)
    reader.join(30)
    assert finished and seen == ["1"] and done.is_set()
    assert reads.cursor("feed-a") == "2" == db.cursor("feed-a")
    with reads.engine.begin() as conn:  # a lone write through the reading view still lands
        conn.execute(table.insert().values(source="feed-b", cursor="7", updated_at=datetime.now(UTC)))
    assert db.cursor("feed-b") == "7"
