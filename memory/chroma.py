"""Chroma as tapewatch's vector store: one collection of story vectors with flat metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sources.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

# Chroma caps how many records one call may carry.
_BATCH = 1000
# Id-restricted queries over at most this many candidates are computed exactly. Measured at 100k vectors: HNSW with
# an id filter slows down as the set shrinks (881 ids: 20 ms, 2,804: 6.5 ms), while reading vectors back costs
# ~35 µs each (881: 31 ms), so only small sets are ranked here.
_EXACT_IDS = 300


@dataclass(frozen=True)
class VectorHit:
    """One nearest-neighbour result."""

    id: str
    similarity: float
    metadata: dict[str, Any]


class VectorStore(Protocol):
    """The vector operations memory needs; Chroma implements them."""

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[dict[str, Any]]) -> None: ...

    def query(self, embeddings: np.ndarray, n: int, where: dict[str, Any] | None = None,
              ids: Sequence[str] | None = None, metadata: bool = True) -> list[list[VectorHit]]: ...

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def present(self, ids: Sequence[str]) -> set[str]: ...

    def delete(self, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None) -> None: ...

    def count(self) -> int: ...


class ChromaVectors:
    """A Chroma collection holding precomputed, cosine-space embeddings."""

    def __init__(self, client: Any, name: str, embedder_name: str, dimension: int) -> None:
        try:
            self._collection = client.get_or_create_collection(
                name=name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedder": embedder_name, "dimension": dimension},
            )
        except Exception as exc:
            raise StoreError(f"cannot open Chroma collection {name!r}: {exc}") from exc
        stored = self._collection.metadata or {}
        if stored.get("embedder") not in (None, embedder_name) or stored.get("dimension") not in (None, dimension):
            raise StoreError(
                f"collection {name!r} was built with embedder {stored.get('embedder')!r} "
                f"({stored.get('dimension')} dims) but {embedder_name!r} ({dimension} dims) is configured; "
                f"run `tapewatch memory reembed` to re-embed it with {embedder_name!r} (resumable), or set "
                "memory.embedder back"
            )

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[dict[str, Any]]) -> None:
        """Insert or replace vectors by id."""
        try:
            for start in range(0, len(ids), _BATCH):
                end = start + _BATCH
                self._collection.upsert(
                    ids=list(ids[start:end]), embeddings=embeddings[start:end],
                    documents=list(documents[start:end]), metadatas=list(metadatas[start:end]),
                )
        except Exception as exc:
            raise StoreError(f"vector upsert failed: {exc}") from exc

    def query(self, embeddings: np.ndarray, n: int, where: dict[str, Any] | None = None,
              ids: Sequence[str] | None = None, metadata: bool = True) -> list[list[VectorHit]]:
        """The ``n`` nearest stored vectors to each query embedding, optionally among ``ids`` only.

        ``metadata=False`` leaves the hits' metadata empty: callers that resolve hits against the state DB anyway
        skip Chroma's metadata read, which dominates a query (measured at 100k: k=1,000 in 5.7 ms without, 111 ms
        with).
        """
        if len(embeddings) == 0 or (ids is not None and not ids):
            return [[] for _ in range(len(embeddings))]
        if ids is not None and len(ids) <= _EXACT_IDS:
            return self._exact(embeddings, n, ids, metadata)
        try:
            # Chroma caps n_results at the collection size itself; asking count() first would
            # cost a scan (or a round trip to a server) on every query.
            # No documents: a hit's text comes from the state DB row it is resolved against anyway.
            result = self._collection.query(
                query_embeddings=embeddings, n_results=n, where=where, ids=list(ids) if ids is not None else None,
                include=["metadatas", "distances"] if metadata else ["distances"],
            )
        except Exception as exc:
            raise StoreError(f"vector query failed: {exc}") from exc
        out: list[list[VectorHit]] = []
        metas_of = result["metadatas"] if metadata else None
        for row, (found, dists) in enumerate(zip(result["ids"], result["distances"] or [], strict=False)):
            metas = metas_of[row] if metas_of else [None] * len(found)
            out.append([VectorHit(id=i, similarity=1.0 - float(d), metadata=dict(m or {}))
                        for i, d, m in zip(found, dists, metas, strict=False)])
        return out

    def _exact(self, embeddings: np.ndarray, n: int, ids: Sequence[str],
               metadata: bool = True) -> list[list[VectorHit]]:
        """Nearest among a few ids, computed exactly: HNSW with an id filter may miss some of them."""
        import numpy as np

        try:
            # Vectors first, metadata only for the few that rank: most candidates are never shown.
            got = self._collection.get(ids=list(ids), include=["embeddings"])
            if not got["ids"]:
                return [[] for _ in range(len(embeddings))]
            stored = np.asarray(got["embeddings"], dtype=np.float32)
            stored /= np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
            ranked: list[list[tuple[str, float]]] = []
            for query in np.asarray(embeddings, dtype=np.float32):
                sims = stored @ (query / max(float(np.linalg.norm(query)), 1e-12))
                top = np.argpartition(-sims, n - 1)[:n] if n < len(sims) else np.arange(len(sims))
                ranked.append([(got["ids"][k], float(sims[k])) for k in top[np.argsort(-sims[top])]])
            if not metadata:
                return [[VectorHit(id=i, similarity=sim, metadata={}) for i, sim in hits] for hits in ranked]
            wanted = sorted({i for hits in ranked for i, _ in hits})
            shown = self._collection.get(ids=wanted, include=["metadatas"])
        except Exception as exc:
            raise StoreError(f"vector query failed: {exc}") from exc
        detail = {i: dict(m or {}) for i, m in zip(shown["ids"], shown["metadatas"] or [], strict=False)}
        return [[VectorHit(id=i, similarity=sim, metadata=detail[i]) for i, sim in hits if i in detail]
                for hits in ranked]

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (ids without a vector are left out)."""
        import numpy as np

        out: dict[str, np.ndarray] = {}
        try:
            for start in range(0, len(ids), _BATCH):
                got = self._collection.get(ids=list(ids[start : start + _BATCH]), include=["embeddings"])
                for item_id, vector in zip(got["ids"], got["embeddings"], strict=False):
                    out[item_id] = np.asarray(vector, dtype=np.float32)
        except Exception as exc:
            raise StoreError(f"vector fetch failed: {exc}") from exc
        return out

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` have a stored vector."""
        found: set[str] = set()
        try:
            for start in range(0, len(ids), _BATCH):
                got = self._collection.get(ids=list(ids[start : start + _BATCH]), include=[])
                found.update(got["ids"])
        except Exception as exc:
            raise StoreError(f"vector lookup failed: {exc}") from exc
        return found

    def delete(self, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None) -> None:
        """Delete vectors by id or by metadata filter."""
        try:
            if ids:
                for start in range(0, len(ids), _BATCH):
                    self._collection.delete(ids=list(ids[start : start + _BATCH]))
            if where:
                self._collection.delete(where=where)
        except Exception as exc:
            raise StoreError(f"vector delete failed: {exc}") from exc

    def count(self) -> int:
        """How many vectors the collection holds."""
        try:
            return int(self._collection.count())
        except Exception as exc:
            raise StoreError(f"vector count failed: {exc}") from exc


def recorded_embedder(client: Any, name: str) -> str | None:
    """The embedder collection ``name`` records, or None when there is no such collection."""
    try:
        if name not in collection_names(client):
            return None
        return str((client.get_collection(name).metadata or {}).get("embedder") or "") or None
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot read Chroma collection {name!r}: {exc}") from exc


def collection_names(client: Any) -> set[str]:
    """The names of the client's collections."""
    try:
        # chromadb 1.x lists Collection objects; older versions listed names.
        return {getattr(c, "name", c) for c in client.list_collections()}
    except Exception as exc:
        raise StoreError(f"cannot list Chroma collections: {exc}") from exc


def drop_collection(client: Any, name: str) -> None:
    """Delete collection ``name`` when it exists."""
    if name in collection_names(client):
        try:
            client.delete_collection(name)
        except Exception as exc:
            raise StoreError(f"cannot delete Chroma collection {name!r}: {exc}") from exc


def replace_collection(client: Any, staging: str, name: str) -> None:
    """Make collection ``staging`` the one called ``name``, dropping the old ``name`` first."""
    drop_collection(client, name)
    try:
        client.get_collection(staging).modify(name=name)
    except Exception as exc:
        raise StoreError(f"cannot rename Chroma collection {staging!r} to {name!r}: {exc}") from exc
