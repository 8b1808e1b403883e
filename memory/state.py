"""The relational state store: source validators and health, fetch log, item index."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from memory import schema
from memory.engine import make_engine, reading_engine, redact_url
from memory.migrations import migrate
from sources.errors import StoreError
from sources.injection import looks_like_instructions
from sources.item import Item
from sources.rss import Validators

_CHUNK = 500


@dataclass(frozen=True)
class FetchRecord:
    """The outcome of one fetch of one source, written with the items it produced."""

    source: str
    kind: str
    url: str
    started_at: datetime
    finished_at: datetime
    status: str  # ok | not_modified | error
    http_status: int | None = None
    new: int = 0
    duplicate: int = 0
    near_duplicate: int = 0
    warnings: tuple[str, ...] = ()
    error: str | None = None
    validators: Validators | None = None
    # Where an incremental source resumes next time (X: newest stored post id); stored with the items.
    cursor: str | None = None
    # Entries or posts the source sent that could not be used (counted on the source, never silently lost).
    skipped: int = 0
    # Why a fetch that still produced items is not fully trustworthy (malformed XML, a wrong encoding…).
    degraded: str | None = None


@dataclass(frozen=True)
class Link:
    """A near-duplicate item attached to the story it repeats."""

    item: Item
    story_id: str
    similarity: float


@dataclass(frozen=True)
class SourceHealth:
    """What ``tapewatch sources`` shows for one source."""

    name: str
    kind: str
    url: str
    last_fetch_at: datetime | None
    last_ok_at: datetime | None
    last_status: str | None
    last_error: str | None
    consecutive_errors: int
    items: int
    degraded: str | None = None  # set while the last good fetch had problems
    skipped: int = 0  # entries or posts skipped over all fetches

    @property
    def status(self) -> str | None:
        """The last status as shown: ``degraded`` for a good fetch with problems (or a 304 repeating it)."""
        return "degraded" if self.last_status in ("ok", "not_modified") and self.degraded else self.last_status


@dataclass(frozen=True)
class MemoryStats:
    """Counts describing what memory holds."""

    items: int
    stories: int
    near_duplicates: int
    by_source: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    top_tickers: list[tuple[str, int]] = field(default_factory=list)
    oldest: datetime | None = None
    newest: datetime | None = None


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class StateDB:
    """SQLAlchemy-backed state; SQLite file by default, any SQLAlchemy URL works."""

    def __init__(self, url: str) -> None:
        try:
            self.engine: Engine = make_engine(url)
            migrate(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open state database {redact_url(url)}: {exc}") from exc

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def reading(self) -> StateDB:
        """This database for pages and reports that only read: their transactions do not queue behind writers
        (``memory.engine.reading_engine``); the pool and the schema are the same."""
        view = copy.copy(self)
        view.engine = reading_engine(self.engine)
        return view

    def validators(self, source: str) -> Validators:
        """The ETag / Last-Modified remembered for a source."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.sources.c.etag, schema.sources.c.last_modified).where(schema.sources.c.name == source)
            ).first()
        return Validators(etag=row.etag, last_modified=row.last_modified) if row else Validators()

    def cursor(self, source: str) -> str | None:
        """Where an incremental source resumes (committed together with the items it follows)."""
        table = schema.source_cursors
        with self.engine.connect() as conn:
            value = conn.execute(select(table.c.cursor).where(table.c.source == source)).scalar()
        return str(value) if value is not None else None

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are already stored."""
        with self.engine.connect() as conn:
            return self._existing_in(conn, ids)

    def item_ids(self) -> list[str]:
        """Every stored item id."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(schema.items.c.id).order_by(schema.items.c.id)).scalars())

    def story_ids_among(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored stories (not near-duplicates)."""
        wanted = sorted(set(ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(wanted):
                found.update(
                    conn.execute(
                        select(schema.items.c.id).where(
                            schema.items.c.id.in_(chunk), schema.items.c.story_id == schema.items.c.id
                        )
                    ).scalars()
                )
        return found

    def commit_batch(self, stories: Sequence[Item], links: Sequence[Link], fetch: FetchRecord | None) -> None:
        """Store items and the fetch that produced them in one transaction."""
        try:
            with self.engine.begin() as conn:
                already = self._existing_in(conn, [i.id for i in stories] + [lk.item.id for lk in links])
                rows = [_item_row(i, i.id, None) for i in stories if i.id not in already]
                rows += [_item_row(lk.item, lk.story_id, lk.similarity) for lk in links if lk.item.id not in already]
                if rows:
                    conn.execute(insert(schema.items), rows)
                    tickers = [
                        {"item_id": r["id"], "ticker": t, "published_at": r["published_at"]}
                        for r in rows
                        for t in r["tickers"].split()
                    ]
                    if tickers:
                        conn.execute(insert(schema.item_tickers), tickers)
                if fetch is not None:
                    self._record_fetch(conn, fetch)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store batch: {exc}") from exc

    def record_fetch(self, fetch: FetchRecord) -> None:
        """Record a fetch that stored nothing (an error or a 304)."""
        self.commit_batch((), (), fetch)

    def _existing_in(self, conn: Connection, ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(set(ids))):
            found.update(conn.execute(select(schema.items.c.id).where(schema.items.c.id.in_(chunk))).scalars())
        return found

    def _record_fetch(self, conn: Connection, fetch: FetchRecord) -> None:
        src = schema.sources
        values: dict[str, Any] = {
            "kind": fetch.kind,
            "url": fetch.url,
            "last_fetch_at": fetch.finished_at,
            "last_status": fetch.status,
        }
        if fetch.status == "ok":  # a 304 or an error says nothing new about the body's quality
            values["degraded"] = fetch.degraded
        if fetch.status == "error":
            values["last_error"] = fetch.error
        else:
            values["last_ok_at"] = fetch.finished_at
            values["last_error"] = None
            values["consecutive_errors"] = 0
            # A 304 keeps the validators it was answered with.
            if fetch.validators is not None and fetch.status == "ok":
                values["etag"] = fetch.validators.etag
                values["last_modified"] = fetch.validators.last_modified
            if fetch.cursor is not None and fetch.status == "ok":
                self._store_cursor(conn, fetch.source, fetch.cursor, fetch.finished_at)
        exists = conn.execute(select(src.c.name).where(src.c.name == fetch.source)).first()
        if exists:
            if fetch.status == "error":
                values["consecutive_errors"] = src.c.consecutive_errors + 1
            if fetch.skipped:
                values["skipped"] = src.c.skipped + fetch.skipped
            conn.execute(update(src).where(src.c.name == fetch.source).values(**values))
        else:
            values.setdefault("consecutive_errors", 1 if fetch.status == "error" else 0)
            conn.execute(insert(src).values(name=fetch.source, skipped=fetch.skipped, **values))
        conn.execute(
            insert(schema.fetch_log).values(
                source=fetch.source,
                started_at=fetch.started_at,
                finished_at=fetch.finished_at,
                status=fetch.status,
                http_status=fetch.http_status,
                new=fetch.new,
                duplicate=fetch.duplicate,
                near_duplicate=fetch.near_duplicate,
                warnings="\n".join(fetch.warnings) or None,
                error=fetch.error,
                skipped=fetch.skipped,
                degraded=fetch.degraded,
            )
        )

    @staticmethod
    def _store_cursor(conn: Connection, source: str, cursor: str, when: datetime) -> None:
        table = schema.source_cursors
        done = conn.execute(update(table).where(table.c.source == source).values(cursor=cursor, updated_at=when))
        if not done.rowcount:
            conn.execute(insert(table).values(source=source, cursor=cursor, updated_at=when))

    def source_urls(self) -> dict[str, str]:
        """Every recorded source's URL, by name (cheap: no item counts)."""
        with self.engine.connect() as conn:
            return {r.name: r.url for r in conn.execute(select(schema.sources.c.name, schema.sources.c.url))}

    def source_health(self) -> list[SourceHealth]:
        """Health of every source that has been fetched at least once."""
        src, it = schema.sources, schema.items
        counts = select(it.c.source, func.count().label("n")).group_by(it.c.source).subquery()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(src, func.coalesce(counts.c.n, 0).label("n"))
                .outerjoin(counts, counts.c.source == src.c.name)
                .order_by(src.c.name)
            ).all()
        return [
            SourceHealth(
                name=r.name, kind=r.kind, url=r.url, last_fetch_at=r.last_fetch_at, last_ok_at=r.last_ok_at,
                last_status=r.last_status, last_error=r.last_error,
                consecutive_errors=r.consecutive_errors or 0, items=r.n, degraded=r.degraded, skipped=r.skipped or 0,
            )
            for r in rows
        ]

    def items_by_ids(self, ids: Iterable[str]) -> dict[str, Any]:
        """Item rows keyed by id."""
        out: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(ids))):
                for row in conn.execute(select(schema.items).where(schema.items.c.id.in_(chunk))):
                    out[row.id] = row
        return out

    def candidate_ids(self, since: datetime | None, until: datetime | None, tickers: Iterable[str],
                      kinds: Sequence[str], cap: int) -> list[str] | None:
        """Ids of items matching the filters, or None when more than ``cap`` match."""
        it, tk = schema.items, schema.item_tickers
        wanted = sorted(set(tickers))
        if wanted:
            q = select(tk.c.item_id).where(tk.c.ticker.in_(wanted)).distinct()
            if since is not None:
                q = q.where(tk.c.published_at >= since)
            if until is not None:
                q = q.where(tk.c.published_at < until)
            if kinds:
                q = q.join(it, it.c.id == tk.c.item_id).where(it.c.kind.in_(list(kinds)))
        else:
            q = select(it.c.id)
            if since is not None:
                q = q.where(it.c.published_at >= since)
            if until is not None:
                q = q.where(it.c.published_at < until)
            if kinds:
                q = q.where(it.c.kind.in_(list(kinds)))
        with self.engine.connect() as conn:
            ids = list(conn.execute(q.limit(cap + 1)).scalars().all())  # one fetchall, not a fetch per row
        return None if len(ids) > cap else ids

    def story_sizes(self, story_ids: Iterable[str]) -> dict[str, int]:
        """How many stored items (the story itself included) each story has."""
        it = schema.items
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(story_ids))):
                rows = conn.execute(
                    select(it.c.story_id, func.count()).where(it.c.story_id.in_(chunk)).group_by(it.c.story_id)
                )
                out.update({sid: n for sid, n in rows})
        return out

    def window_items(self, start: datetime, end: datetime) -> list[Any]:
        """All items published in [start, end), oldest first."""
        it = schema.items
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(it).where(it.c.published_at >= start, it.c.published_at < end)
                    .order_by(it.c.published_at, it.c.id)
                )
            )

    def latest_stories(self, limit: int) -> list[Any]:
        """The most recently published stories (first reports only)."""
        it = schema.items
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(it).where(it.c.story_id == it.c.id).order_by(it.c.published_at.desc()).limit(limit)
                )
            )

    def story_items(self, story_id: str) -> list[Any]:
        """The items (first one first) that make up one story."""
        it = schema.items
        with self.engine.connect() as conn:
            return list(conn.execute(select(it).where(it.c.story_id == story_id).order_by(it.c.published_at)))

    def ids_published_before(self, cutoff: datetime) -> list[str]:
        """Ids of items published before ``cutoff``."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(schema.items.c.id).where(schema.items.c.published_at < cutoff)).scalars()
            )

    def delete_items(self, ids: Sequence[str]) -> int:
        """Delete items (and their ticker rows); return how many were removed."""
        removed = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(list(ids)):
                conn.execute(delete(schema.item_tickers).where(schema.item_tickers.c.item_id.in_(chunk)))
                removed += conn.execute(delete(schema.items).where(schema.items.c.id.in_(chunk))).rowcount or 0
        return removed

    def stats(self, ticker_since: datetime | None = None, top: int = 10) -> MemoryStats:
        """Totals by source and kind, and the most mentioned tickers."""
        it, tk = schema.items, schema.item_tickers
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(it)).scalar() or 0
            stories = conn.execute(select(func.count()).where(it.c.story_id == it.c.id)).scalar() or 0
            by_source: dict[str, int] = dict(
                conn.execute(select(it.c.source, func.count()).group_by(it.c.source)).all()
            )
            by_kind: dict[str, int] = dict(conn.execute(select(it.c.kind, func.count()).group_by(it.c.kind)).all())
            oldest, newest = conn.execute(select(func.min(it.c.published_at), func.max(it.c.published_at))).one()
            q = select(tk.c.ticker, func.count().label("n")).group_by(tk.c.ticker)
            if ticker_since is not None:
                q = q.where(tk.c.published_at >= ticker_since)
            tickers = conn.execute(q.order_by(func.count().desc(), tk.c.ticker).limit(top)).all()
        return MemoryStats(
            items=total, stories=stories, near_duplicates=total - stories,
            by_source=by_source, by_kind=by_kind, top_tickers=[(t, n) for t, n in tickers],
            oldest=oldest,
            newest=newest,
        )


def _item_row(item: Item, story_id: str, similarity: float | None) -> dict[str, Any]:
    return {
        "id": item.id, "story_id": story_id, "similarity": similarity, "kind": item.kind,
        "source": item.source, "url": item.url, "title": item.title, "author": item.author,
        "tickers": " ".join(item.tickers), "published_at": item.published_at, "fetched_at": item.fetched_at,
        "text": item.text[:2000], "cluster": item.cluster, "engagement": item.engagement,
        "suspect": int(looks_like_instructions(f"{item.title}\n{item.text}")),
    }
