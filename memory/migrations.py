"""Schema migrations: an ordered list of steps, each applied once in its own transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, inspect, select
from sqlalchemy import func as sqlfunc

from memory import schema
from memory.engine import serialize_migrations
from sources.errors import StoreError


@dataclass(frozen=True)
class Migration:
    """One schema step; ``apply`` runs inside a transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create(*tables: str) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        for name in tables:
            schema.metadata.tables[name].create(conn, checkfirst=True)

    return apply


def _add_columns(table: str, *names: str) -> Callable[[Connection], None]:
    """Add columns (as declared in ``schema``) that a table created by an older version lacks."""

    def apply(conn: Connection) -> None:
        present = {c["name"] for c in inspect(conn).get_columns(table)}
        for name in names:
            if name in present:
                continue
            column = schema.metadata.tables[table].c[name]
            ddl = column.type.compile(dialect=conn.dialect)
            default = column.server_default.arg if column.server_default is not None else None  # type: ignore[attr-defined]
            clause = f" NOT NULL DEFAULT '{default}'" if default is not None else ""
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}{clause}")

    return apply


def _index(table: str, name: str) -> Callable[[Connection], None]:
    """Create an index (as declared in ``schema``) that a table made by an older version lacks."""

    def apply(conn: Connection) -> None:
        index = next(i for i in schema.metadata.tables[table].indexes if i.name == name)
        index.create(conn, checkfirst=True)

    return apply


def _steps(*steps: Callable[[Connection], None]) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        for step in steps:
            step(conn)

    return apply


# Append only. Never edit a released step: add a new one that changes the schema.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sources, fetch log and items", _create("sources", "fetch_log", "items")),
    Migration(2, "ticker index for items", _create("item_tickers")),
    Migration(3, "item text, cluster and engagement; drafts",
              _steps(_add_columns("items", "text", "cluster", "engagement"), _create("drafts"))),
    Migration(4, "draft versions, provenance and validation report",
              _add_columns("drafts", "version", "parent_id", "meta", "validation")),
    Migration(5, "X cursors, user ids and read ledger; rate limits; price snapshots",
              _create("source_cursors", "x_users", "x_reads", "rate_limits", "price_snapshots")),
    Migration(6, "cost ledger of crew runs", _create("cost_ledger")),
    Migration(7, "review audit log, publishing outbox, schedules, publish lease",
              _create("audit_log", "outbox", "draft_schedule", "publish_lease")),
    Migration(8, "run-time switches and review cards", _create("switches", "review_cards")),
    Migration(9, "items that read as instructions to an AI", _add_columns("items", "suspect")),
    Migration(20, "runs of once-per-slot jobs (scheduled briefs)", _create("job_runs")),
    Migration(30, "review cards Telegram refused", _create("review_card_failures")),
    Migration(40, "degraded sources and skipped entries",
              _steps(_add_columns("sources", "degraded", "skipped"), _add_columns("fetch_log", "skipped", "degraded"))),
    Migration(110, "progress of a memory reembed", _create("reembed_progress")),
    Migration(120, "web desk accounts, sessions, failed logins and signing key",
              _create("web_users", "web_sessions", "web_login_failures", "web_keys")),
    Migration(121, "public archive of published briefs", _create("archive")),
    Migration(122, "drafts by status, newest first (the desk's queue)", _index("drafts", "ix_drafts_status_created")),
    Migration(150, "what each model server supports (structured output, tools, speed)", _create("llm_servers")),
    Migration(160, "calls of published briefs (track record)", _create("calls")),
    Migration(161, "corrections and retractions, and their outbox steps", _create("amendments", "amendment_steps")),
)


def current_version(engine: Engine) -> int:
    """The schema version the database is at (0 for an empty database)."""
    if not inspect(engine).has_table("schema_version"):
        return 0
    with engine.connect() as conn:
        return int(conn.execute(select(sqlfunc.max(schema.schema_version.c.version))).scalar() or 0)


def applied_versions(engine: Engine) -> set[int]:
    """Every schema version recorded as applied."""
    with engine.connect() as conn:
        return {int(v) for v in conn.execute(select(schema.schema_version.c.version)).scalars()}


def migrate(engine: Engine, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Bring the database to the latest version; return the versions applied."""
    latest = max((m.version for m in migrations), default=0)  # the last step listed need not be the highest
    with engine.begin() as conn:
        serialize_migrations(conn)
        schema.schema_version.create(conn, checkfirst=True)
    at = current_version(engine)
    if at > latest:
        raise StoreError(
            f"state database is at schema version {at} but this tapewatch knows only up to {latest}; "
            "upgrade tapewatch"
        )
    # Apply every step not recorded yet, not only those above the newest: a database built by a build that had
    # a later step but not an earlier one (steps developed in parallel) still gets the earlier one.
    done = applied_versions(engine)
    applied: list[int] = []
    for step in migrations:
        if step.version in done:
            continue
        with engine.begin() as conn:
            serialize_migrations(conn)
            # Another process may have applied it while we waited for the lock.
            if conn.execute(select(schema.schema_version.c.version)
                            .where(schema.schema_version.c.version == step.version)).first() is not None:
                continue
            step.apply(conn)
            conn.execute(
                insert(schema.schema_version).values(
                    version=step.version, description=step.description, applied_at=datetime.now(UTC)
                )
            )
        applied.append(step.version)
    return applied
