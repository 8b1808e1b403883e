"""Re-embedding what memory holds with another embedder, in batches, resumable after a kill.

The new vectors go into a staging collection (``<collection>.reembed``) recording the new embedder, batch by
batch in item-id order; after each batch the state DB records the last id done. The collection itself keeps
its old vectors and its old embedder until every item is staged; then the staging collection replaces it. So
a collection never holds vectors of two embedders, and opening it under the new embedder stays refused
(naming both) until the switch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from memory import schema
from memory.chroma import ChromaVectors, collection_names, drop_collection, recorded_embedder, replace_collection
from memory.deadline import BoundedVectors, Deadline
from memory.embeddings import Embedder
from memory.state import StateDB
from memory.store import DEFAULT_STORE_TIMEOUT, item_from_row, vector_metadata
from sources.errors import StoreError

BATCH = 256


@dataclass(frozen=True)
class ReembedResult:
    """What ``reembed`` did."""

    previous: str | None  # the embedder the collection was built with (None: no collection yet)
    embedder: str
    items: int
    embedded: int  # vectors made by this run (a resumed run skips what an earlier one staged)
    resumed_at: int  # items already staged by an interrupted run when this one started

    @property
    def needed(self) -> bool:
        """False when the collection already had this embedder's vectors."""
        return self.previous != self.embedder


def staging_name(collection: str) -> str:
    """The collection the new vectors are staged in."""
    return f"{collection}.reembed"


def pending(state: StateDB, collection: str) -> Any:
    """The recorded progress of an unfinished reembed of ``collection``, or None."""
    with state.engine.connect() as conn:
        table = schema.reembed_progress
        return conn.execute(select(table).where(table.c.collection == collection)).first()


def reembed(client: Any, state: StateDB, collection: str, embedder: Embedder, *, batch: int = BATCH,
            deadline: Deadline | None = None,
            progress: Callable[[int, int], None] | None = None) -> ReembedResult:
    """Re-embed every stored item of ``collection`` with ``embedder``; resumes an interrupted run."""
    previous = recorded_embedder(client, collection)
    row = pending(state, collection)
    if row is not None and row.embedder != embedder.name:  # a run toward another embedder: start over
        drop_collection(client, staging_name(collection))
        _forget(state, collection)
        row = None
    if row is None:
        if previous in (None, embedder.name):
            total = len(state.item_ids())
            return ReembedResult(previous or embedder.name, embedder.name, total, 0, 0)
        drop_collection(client, staging_name(collection))  # left by a run whose progress row was lost
        row = _start(state, collection, embedder.name, previous or "")
    deadline = deadline or Deadline(DEFAULT_STORE_TIMEOUT)
    ids = state.item_ids()
    resumed_at = sum(1 for i in ids if i <= row.cursor) if row.cursor else 0
    embedded = 0
    if row.phase == "embedding":
        staged = BoundedVectors(ChromaVectors(client, staging_name(collection), embedder.name, embedder.dimension),
                                deadline)
        todo = [i for i in ids if i > row.cursor]
        if progress:
            progress(len(ids) - len(todo), len(ids))
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            embedded += _stage(state, staged, embedder, chunk)
            _advance(state, collection, cursor=chunk[-1], done=len(ids) - len(todo) + start + len(chunk),
                     total=len(ids))
            if progress:
                progress(len(ids) - len(todo) + start + len(chunk), len(ids))
        # Items stored meanwhile with ids below the cursor (an ingest under the old embedder): staged last.
        ids = state.item_ids()
        have = staged.present(ids)
        late = [i for i in ids if i not in have]
        for start in range(0, len(late), batch):
            embedded += _stage(state, staged, embedder, late[start : start + batch])
        _advance(state, collection, cursor=row.cursor, done=len(ids), total=len(ids), phase="switching")
    # Every item is staged: the staging collection becomes the collection (a kill here resumes right here).
    if staging_name(collection) in collection_names(client):
        deadline.call("replace the collection",
                      lambda: replace_collection(client, staging_name(collection), collection))
    elif recorded_embedder(client, collection) != embedder.name:
        _forget(state, collection)
        raise StoreError(f"the staged vectors of an interrupted reembed of {collection!r} are gone; "
                         "run `tapewatch memory reembed` again")
    _forget(state, collection)  # (no staging and the new embedder recorded: killed after the switch itself)
    if progress:
        progress(len(ids), len(ids))
    return ReembedResult(row.previous or None, embedder.name, len(ids), embedded, resumed_at)


def _stage(state: StateDB, staged: BoundedVectors, embedder: Embedder, ids: Sequence[str]) -> int:
    """Embed the stored rows of ``ids`` (those still stored) into the staging collection."""
    rows = state.items_by_ids(ids)
    found = [rows[i] for i in ids if i in rows]
    if not found:
        return 0
    items = [item_from_row(r) for r in found]
    texts = [i.embedding_text() for i in items]
    staged.upsert([i.id for i in items], embedder.embed(texts), texts,
                  [vector_metadata(i, r.story_id) for i, r in zip(items, found, strict=True)])
    return len(items)


def _start(state: StateDB, collection: str, embedder: str, previous: str) -> Any:
    now = datetime.now(UTC)
    with state.engine.begin() as conn:
        conn.execute(insert(schema.reembed_progress).values(
            collection=collection, embedder=embedder, previous=previous, cursor="", done=0, total=0,
            phase="embedding", started_at=now, updated_at=now))
    return pending(state, collection)


def _advance(state: StateDB, collection: str, *, cursor: str, done: int, total: int,
             phase: str = "embedding") -> None:
    table = schema.reembed_progress
    with state.engine.begin() as conn:
        conn.execute(update(table).where(table.c.collection == collection).values(
            cursor=cursor, done=done, total=total, phase=phase, updated_at=datetime.now(UTC)))


def _forget(state: StateDB, collection: str) -> None:
    table = schema.reembed_progress
    with state.engine.begin() as conn:
        conn.execute(delete(table).where(table.c.collection == collection))
