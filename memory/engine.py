"""The state DB's engine on each backend: SQLite (one file, one writer at a time) or PostgreSQL (a pool).

How the guarantees hold on each backend:

- SQLite: every transaction starts with ``BEGIN IMMEDIATE``, so writers queue on the database's write lock
  (for up to ``busy_timeout``, 30 s) and a transaction that reads and then writes always sees the latest commit.
  Pure readers can opt out through ``reading_engine`` (a plain deferred ``BEGIN``): under WAL they read a
  snapshot beside a writer instead of queueing for its lock, which only writers need.
- PostgreSQL: transactions run at READ COMMITTED (the server's default) and every read-then-write takes a
  row lock first: the draft compare-and-set (``ReviewQueue._try_move``) and each outbox move
  (``Outbox._move``) lock their row with an ``UPDATE … SET x = x`` before reading it (what ``SELECT … FOR
  UPDATE`` does, written so SQLite runs it too) and then update with the status they read in the ``WHERE``,
  so a second writer waits on the row, re-reads the committed status and loses the compare-and-set cleanly;
  planning a draft's outbox rows (``Outbox.plan``) locks the draft's row, so a second planner finds the rows.
  The leases (``publish.lease``) update with the owner they read in the ``WHERE`` and insert against the
  primary key (a duplicate is a lost race, not an error); job runs insert against ``(kind, slot)``; counters
  (X reads, switches) update in place. No transaction here runs at SERIALIZABLE, so no serialization
  failures need retrying; a lock held past ``lock_timeout`` (30 s, like SQLite's busy timeout) or a deadlock
  raises ``OperationalError``, which the review queue retries and every daemon job reports and retries.
  Migrations take a transaction-scoped advisory lock (:func:`serialize_migrations`), so two processes
  starting at once apply each step once.
- The pool (PostgreSQL): ``pool_size`` 5 + ``max_overflow`` 10 connections per process, ``pool_timeout``
  30 s, ``pool_pre_ping`` (a connection the server dropped, e.g. on a restart, is replaced before use),
  ``pool_recycle`` 30 min, ``connect_timeout`` 10 s, TCP keepalives, and
  ``idle_in_transaction_session_timeout`` 10 min so a client that hangs mid-transaction cannot hold row
  locks for ever (a client that dies outright drops its connection and the server rolls it back at once).
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

# Per process: the daemon's scheduler threads, the bot and a publish run rarely need more than a few at once.
POOL_SIZE = 5
MAX_OVERFLOW = 10
POOL_TIMEOUT = 30
POOL_RECYCLE = 1800
CONNECT_TIMEOUT = 10
LOCK_TIMEOUT = "30s"
IDLE_IN_TRANSACTION_TIMEOUT = "10min"
# pg_advisory_xact_lock key of schema migrations ("tapewatch" as a number; any constant shared by all versions).
MIGRATION_LOCK = 0x7461706577617463
# Execution option marking a SQLite engine's transactions as deferred (``reading_engine``).
DEFERRED = "tapewatch_deferred"


def _create_private(url: str) -> None:
    """Create a new SQLite file owner-only (0600) before SQLite does (it would use 0644 less the umask); its
    -wal and -shm files take the main file's permissions."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:") or not os.path.isdir(os.path.dirname(path) or "."):
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    os.chmod(path, 0o600)


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite with WAL, a busy timeout and truly transactional DDL; PostgreSQL pooled."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if make_url(url).get_backend_name() == "postgresql":
        return _postgres_engine(url)
    return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    _create_private(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # The sqlite3 driver would commit DDL on its own; we issue BEGIN ourselves so a
        # failed migration rolls back whole.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # WAL lets the CLI read while the daemon writes; NORMAL sync is crash-safe under WAL. Switching a new
        # file to WAL needs it to itself, and SQLite answers "locked" at once rather than waiting (no busy
        # handler), when another process opens the same new file at that moment: wait our turn.
        deadline = time.monotonic() + 30
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front (waiting up to busy_timeout). A plain deferred BEGIN
        # that reads and then writes fails at once with "database is locked" when another writer
        # (a daemon job, the job store, the CLI) committed in between, which the busy timeout can't fix.
        # Straight to the driver: through exec_driver_sql this one statement cost as much as a page's query.
        driver = conn.connection.driver_connection
        driver.execute("BEGIN" if conn.get_execution_options().get(DEFERRED) else "BEGIN IMMEDIATE")

    return engine


def reading_engine(engine: Engine) -> Engine:
    """``engine`` for reads that need not queue behind writers: on SQLite its transactions begin deferred, so
    they take WAL snapshots beside a writer rather than waiting for the write lock (the pool is shared).

    A deferred transaction that reads and then writes can fail at once with "database is locked" when another
    writer commits in between, so read-then-write code keeps the plain engine; a lone write is safe on either.
    On other backends this is ``engine`` itself (PostgreSQL's readers never wait for writers).
    """
    return engine.execution_options(**{DEFERRED: True}) if engine.dialect.name == "sqlite" else engine


def _postgres_engine(url: str) -> Engine:
    parsed = make_url(url)
    # Settings given in the URL win; these fill in what it leaves out.
    extra: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "application_name": "tapewatch", "keepalives": 1,
                             "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    connect_args = {k: v for k, v in extra.items() if k not in parsed.query}
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_timeout=POOL_TIMEOUT,
                           pool_recycle=POOL_RECYCLE, pool_pre_ping=True, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _session(dbapi_conn: Any, _record: Any) -> None:
        # Set per session rather than through the URL's `options`, which a deployment may use for its own
        # settings (search_path); committed at once so a later rollback keeps them.
        cursor = dbapi_conn.cursor()
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'")
        cursor.close()
        dbapi_conn.commit()

    return engine


def serialize_migrations(conn: Connection) -> None:
    """Make concurrent migrators take turns for the rest of ``conn``'s transaction (SQLite: BEGIN IMMEDIATE
    already does; PostgreSQL: a transaction-scoped advisory lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def redact_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
