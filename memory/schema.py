"""Tables of the relational state store (SQLAlchemy Core, any SQLAlchemy database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database (SQLite drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)

# One row per configured source: conditional-GET validators and health.
sources = Table(
    "sources",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("url", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_fetch_at", UTCDateTime()),
    Column("last_ok_at", UTCDateTime()),
    Column("last_status", String(20)),
    Column("last_error", Text),
    Column("consecutive_errors", Integer, nullable=False, default=0),
    # Added in schema version 40: why the last good fetch was degraded, and entries or posts skipped so far.
    Column("degraded", Text),
    Column("skipped", Integer, nullable=False, server_default="0"),
)

fetch_log = Table(
    "fetch_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("http_status", Integer),
    Column("new", Integer, nullable=False, default=0),
    Column("duplicate", Integer, nullable=False, default=0),
    Column("near_duplicate", Integer, nullable=False, default=0),
    Column("warnings", Text),
    Column("error", Text),
    # Added in schema version 40.
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("degraded", Text),
    Index("ix_fetch_log_source_started", "source", "started_at"),
)

# Every stored item; ``story_id`` is its own id for a story, or the id of the
# first item of the same story for a near-duplicate (which has no vector).
items = Table(
    "items",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("story_id", String(64), nullable=False),
    Column("similarity", Float),
    Column("kind", String(20), nullable=False),
    Column("source", String(200), nullable=False),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("author", Text, nullable=False, default=""),
    Column("tickers", Text, nullable=False, default=""),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False),
    # Added in schema version 3 (see migrations): what signals read without the vector store.
    Column("text", Text, nullable=False, server_default=""),
    Column("cluster", String(50), nullable=False, server_default=""),
    Column("engagement", Integer, nullable=False, server_default="0"),
    # Added in schema version 9: the item reads as instructions to an AI (sources.injection); such an item is
    # counted in signals but never quoted, linked or used as a claim's only support.
    Column("suspect", Integer, nullable=False, server_default="0"),
    Index("ix_items_published", "published_at"),
    Index("ix_items_story", "story_id"),
    Index("ix_items_source", "source"),
)

# Briefs, stored as drafts; the review workflow (publish/) moves their status later.
drafts = Table(
    "drafts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("mode", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("topic", Text, nullable=False, server_default=""),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("x_thread", Text, nullable=False),
    Column("telegram_html", Text, nullable=False),
    Column("markdown", Text, nullable=False),
    Column("item_ids", Text, nullable=False),
    Column("tickers", Text, nullable=False, server_default=""),
    Column("signals", Text, nullable=False),
    # v4: versions (an edit is a new row whose parent is the edited draft), provenance and the validation
    # report. JSON in text columns so any SQLAlchemy backend stores them.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("parent_id", String(32)),
    Column("meta", Text, nullable=False, server_default="{}"),
    Column("validation", Text, nullable=False, server_default="{}"),
    Index("ix_drafts_created", "created_at"),
    Index("ix_drafts_status", "status"),
    # v122: the desk's queue reads the newest drafts of one status without sorting them all.
    Index("ix_drafts_status_created", "status", "created_at"),
)

item_tickers = Table(
    "item_tickers",
    metadata,
    Column("item_id", String(64), primary_key=True),
    Column("ticker", String(20), primary_key=True),
    Column("published_at", UTCDateTime(), nullable=False),
    Index("ix_item_tickers_ticker_published", "ticker", "published_at"),
)

# --- issue 3: X and market sources, the scheduler daemon (schema version 5) ---------------------------

# Where an incremental source resumes (X: the newest post id stored, used as since_id). Written in the
# same transaction as the items it follows, so it never runs ahead of what is stored.
source_cursors = Table(
    "source_cursors",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("cursor", String(100), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# X handles resolved to user ids once (a handle lookup is a request; the id never changes).
x_users = Table(
    "x_users",
    metadata,
    Column("handle", String(20), primary_key=True),  # lower case, no @
    Column("user_id", String(32), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=False),
)

# Posts read from X per UTC month ("2026-11"): X bills reads per post returned, against a monthly cap.
x_reads = Table(
    "x_reads",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("posts", Integer, nullable=False, server_default="0"),
    Column("requests", Integer, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# An API that said "not before": X endpoints after a 429 (x-rate-limit-reset), CoinGecko (Retry-After).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("name", String(100), primary_key=True),  # "x:timeline", "x:search", "x:users", "coingecko"
    Column("until", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
)

# Market snapshots (not vector items): one row per ticker per observation time and source.
price_snapshots = Table(
    "price_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticker", String(20), nullable=False),
    Column("observed_at", UTCDateTime(), nullable=False),
    Column("price_usd", Float, nullable=False),
    Column("change_24h_pct", Float),
    Column("volume_24h_usd", Float),
    Column("market_cap_usd", Float),
    Column("source", String(50), nullable=False),
    Column("source_id", String(100), nullable=False, server_default=""),
    Column("fetched_at", UTCDateTime(), nullable=False),
    UniqueConstraint("ticker", "source", "observed_at", name="uq_price_snapshots_observation"),
    Index("ix_price_snapshots_ticker_observed", "ticker", "observed_at"),
)


# --- issue 5: the analyst crew ------------------------------------------------------------------

# What each crew run cost: one row per agent and run (failed runs too: their tokens were paid for).
cost_ledger = Table(
    "cost_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("draft_id", String(32)),
    Column("agent", String(20), nullable=False),
    Column("model", String(200), nullable=False),
    Column("calls", Integer, nullable=False, server_default="0"),
    Column("prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("completion_tokens", Integer, nullable=False, server_default="0"),
    Column("cost_usd", Float, nullable=False, server_default="0"),
    Column("status", String(20), nullable=False),  # ok | failed
    Index("ix_cost_ledger_at", "at"),
)


# --- issue 6: review queue and exactly-once publishing (schema version 7) ---------------------------------

# Append-only: every draft transition and every publishing step, with who did it and through what.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("draft_id", String(32), nullable=False),
    Column("actor", String(100), nullable=False),  # a reviewer's name, or "publisher" / "policy" / "system"
    Column("via", String(20), nullable=False),  # cli, telegram, web, daemon
    Column("action", String(30), nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20)),
    Column("channel", String(20)),  # x / telegram for publishing steps
    Column("reason", Text),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON
    Index("ix_audit_draft", "draft_id", "id"),
)

# One row per (draft, channel, part): intent is committed before the remote call, the remote id right after.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draft_id", String(32), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("part", Integer, nullable=False),  # 0-based position in the thread
    Column("parts", Integer, nullable=False),
    Column("dry_run", Integer, nullable=False, server_default="0"),
    Column("text", Text, nullable=False),
    # queued → intent → sent | unknown | failed | needs_check | blocked; dry_run rows stay "dry_run"
    Column("state", String(20), nullable=False),
    Column("remote_id", String(64)),
    Column("url", Text),
    Column("reply_to", String(64)),  # remote id of the part this one answers (X threads)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("intent_at", UTCDateTime()),
    Column("sent_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("draft_id", "channel", "part", "dry_run", name="uq_outbox_part"),
    Index("ix_outbox_state", "state"),
    Index("ix_outbox_channel_sent", "channel", "sent_at"),
)

# When a reviewer wants a draft out no earlier than a given time.
draft_schedule = Table(
    "draft_schedule",
    metadata,
    Column("draft_id", String(32), primary_key=True),
    Column("publish_at", UTCDateTime(), nullable=False),
    Column("set_by", String(100), nullable=False),
    Column("set_at", UTCDateTime(), nullable=False),
)

# At most one publish run at a time: a lease with an owner and an expiry.
publish_lease = Table(
    "publish_lease",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# Issue 7 (bot and schedule): named on/off switches that operators flip at run time (e.g. posting paused),
# and which drafts were already put in front of reviewers in Telegram (so a restart doesn't repost cards).
switches = Table(
    "switches",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("on", Boolean, nullable=False),
    Column("changed_at", UTCDateTime(), nullable=False),
    Column("changed_by", String(100), nullable=False),
)

review_cards = Table(
    "review_cards",
    metadata,
    Column("draft_id", String(32), primary_key=True),
    Column("chat_id", String(40), nullable=False),
    Column("message_id", Integer, nullable=False),
    Column("posted_at", UTCDateTime(), nullable=False),
)

# Issue 17 (hardening): a draft whose review card Telegram refused, so one poison card never blocks the rest
# and is not retried forever.
review_card_failures = Table(
    "review_card_failures",
    metadata,
    Column("draft_id", String(32), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
)

# Issue 17 (daemon hardening): each run of a once-per-slot job (a scheduled brief) for its scheduled slot,
# recorded before the work starts and finished with it, so a restart retries a run that was killed mid-way
# (once) and never runs a slot twice.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(100), nullable=False),
    Column("slot", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False),  # running | done | failed | lost
    Column("attempts", Integer, nullable=False),
    Column("owner", String(200), nullable=False),  # the daemon lease owner running it
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("summary", Text, nullable=False, default=""),
    Column("draft_id", String(32)),
    UniqueConstraint("kind", "slot", name="uq_job_runs_kind_slot"),
)

# Issue 16 (the web desk): accounts, their sessions, failed-login counters, the cookie signing key, and the
# public archive's index (published drafts by their public id).
web_users = Table(
    "web_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(10), nullable=False),  # viewer | reviewer | admin
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("changed_at", UTCDateTime(), nullable=False),
)

# A session is a random token; only its sha256 is stored, so a copy of the database signs nobody in.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("ip", String(64), nullable=False, server_default=""),
    Index("ix_web_sessions_user", "user_id"),
)

# Failed logins per key ("user:alice", "ip:203.0.113.7") within a window, and until when the key is locked.
web_login_failures = Table(
    "web_login_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime()),
)

web_keys = Table(
    "web_keys",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# The public archive: each published brief under its public id (never the internal draft id).
archive = Table(
    "archive",
    metadata,
    Column("public_id", String(40), primary_key=True),
    Column("draft_id", String(32), nullable=False, unique=True),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("tickers", Text, nullable=False, server_default=""),
    Index("ix_archive_published", "published_at"),
)

# Issue 15 (track record): what each published brief featured, recorded when it was published and kept
# forever (retention never touches it), so calls are scored against what was known then, not rescored.
calls = Table(
    "calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draft_id", String(32), nullable=False),
    Column("ticker", String(20), nullable=False),
    Column("rank", Integer, nullable=False),  # 1 = the brief's lead ticker
    Column("published_at", UTCDateTime(), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("mentions", Integer, nullable=False, server_default="0"),
    Column("breadth", Integer, nullable=False, server_default="0"),  # distinct groups of accounts
    Column("growth", Float),
    Column("sentiment", Float),
    Column("price_change_pct", Float),
    Column("score", Float),
    Column("framing", String(10)),  # positive | negative | neutral, where the writer gave one
    Column("recorded_at", UTCDateTime(), nullable=False),
    UniqueConstraint("draft_id", "ticker", name="uq_calls_draft_ticker"),
    Index("ix_calls_published", "published_at"),
)

# Corrections and retractions of published drafts: one row per request (a correction's text, or the
# retraction), unique so a repeated command resumes the same one instead of posting twice.
amendments = Table(
    "amendments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draft_id", String(32), nullable=False),
    Column("kind", String(12), nullable=False),  # correction | retraction
    Column("key", String(64), nullable=False),  # sha256 of a correction's text; "retraction" for a retraction
    Column("text", Text, nullable=False),  # what is posted (a correction), or the reason (a retraction)
    Column("requested_by", String(100), nullable=False),
    Column("via", String(20), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("validation", Text, nullable=False, server_default="{}"),
    Column("finished_at", UTCDateTime()),
    UniqueConstraint("draft_id", "kind", "key", name="uq_amendments_request"),
    Index("ix_amendments_draft", "draft_id"),
)

# The outbox work of an amendment: a reply to (or the deletion of) one remote post, moved like an outbox part
# (queued → intent → sent, or unknown / needs_check / failed), the intent committed before the remote call.
amendment_steps = Table(
    "amendment_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("amendment_id", Integer, nullable=False),
    Column("draft_id", String(32), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("op", String(10), nullable=False),  # reply | delete
    Column("target", String(64), nullable=False),  # the remote id replied to or deleted
    Column("text", Text, nullable=False, server_default=""),
    Column("state", String(20), nullable=False),
    Column("remote_id", String(64)),
    Column("url", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("intent_at", UTCDateTime()),
    Column("sent_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("amendment_id", "channel", "op", "target", name="uq_amendment_steps_target"),
    Index("ix_amendment_steps_state", "state"),
)

# Issue 12 (embeddings on ONNX Runtime): a `tapewatch memory reembed` under way, per collection. Vectors of the
# new embedder go into a staging collection in batches by item id; ``cursor`` is the last id whose vector is
# stored there, so a killed run resumes after it. ``phase`` "switching": every item is staged, the staging
# collection is replacing the old one.
reembed_progress = Table(
    "reembed_progress",
    metadata,
    Column("collection", String(100), primary_key=True),
    Column("embedder", String(100), nullable=False),  # the embedder the vectors are being made with
    Column("previous", String(100), nullable=False, default=""),  # the one the collection was built with
    Column("cursor", String(64), nullable=False, default=""),
    Column("done", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("phase", String(20), nullable=False),  # embedding | switching
    Column("started_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Issue 18 (local models): what each model server was found to support, so a refusal is met once, not every run:
# the structured-output mode that works, whether tools are honoured, and the speeds `tapewatch llm check` measured.
llm_servers = Table(
    "llm_servers",
    metadata,
    Column("base_url", String(500), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("structured", String(20)),  # json_schema | json_object | prompt; NULL: not found out yet
    Column("tools", Boolean),  # NULL: not found out yet
    Column("prompt_tps", Float),  # prompt tokens per second, measured
    Column("gen_tps", Float),  # generated tokens per second, measured
    Column("note", Text, nullable=False, default=""),  # why (the refusal, the probe)
    Column("updated_at", UTCDateTime(), nullable=False),
)
