"""Memory: items go in once, near-duplicates join their story, and search finds stories."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from memory import heap
from memory.chroma import VectorHit, VectorStore
from memory.deadline import BoundedVectors, Deadline
from memory.embeddings import Embedder
from memory.state import FetchRecord, Link, StateDB
from memory.stories import Facts, StoryRule, compare, facts_of
from sources.item import Item


@dataclass(frozen=True)
class NearDuplicatePolicy:
    """When two items count as one story."""

    # A score in cosine units (memory.stories.StoryRule): cosine, up for names, numbers and days in
    # common, down for conflicting numbers or days, for hours apart and for the same outlet. Calibrated
    # with MiniLM on tests/fixtures/stories (bench/stories.py prints precision and recall).
    threshold: float = StoryRule.threshold
    window: timedelta = timedelta(hours=36)
    kinds: tuple[str, ...] = ("news", "forum")
    rule: Literal["evidence", "cosine"] = "evidence"  # "cosine": the old single-cosine rule
    neighbours: int = 16

    def story_rule(self) -> StoryRule:
        """The scoring rule this policy applies."""
        if self.rule == "cosine":
            return StoryRule.cosine_only(self.threshold)
        return replace(StoryRule(), threshold=self.threshold)


@dataclass(frozen=True)
class AddResult:
    """What storing a batch did."""

    new: int = 0
    duplicate: int = 0
    near_duplicate: int = 0
    # Known items whose vector was missing (a lost or replaced vector store) and was stored again.
    restored: int = 0


@dataclass(frozen=True)
class VectorHealth:
    """Whether every stored item still has its vector."""

    items: int
    vectors: int
    missing: int  # item rows with no vector: search cannot find them

    @property
    def ok(self) -> bool:
        """True when no stored item lacks its vector."""
        return self.missing == 0

    def summary(self) -> str:
        """One line for the CLI, naming the fix when something is missing."""
        if self.ok:
            return f"{self.items} items, {self.vectors} vectors: every item is searchable"
        return (f"{self.items} items, {self.vectors} vectors: {self.missing} items have no vector and search "
                "cannot find them (vector store lost or replaced?); run `tapewatch memory repair`")


@dataclass(frozen=True)
class RepairResult:
    """What ``Memory.repair`` did."""

    checked: int
    missing: int
    restored: int


@dataclass(frozen=True)
class SearchHit:
    """One story found by semantic search."""

    id: str
    score: float
    title: str
    url: str
    source: str
    kind: str
    published_at: datetime
    tickers: tuple[str, ...]
    snippet: str
    sources: int


_REPAIR_BATCH = 128
# How long a vector-store call may take before it ends in a StoreError (settings: memory.store_timeout).
DEFAULT_STORE_TIMEOUT = 60.0
# Over-fetching unfiltered neighbours and filtering them here keeps filtered search on
# Chroma's fast path; a metadata ``where`` scans the collection, so it is only the fallback.
_OVERFETCH = 20
_OVERFETCH_MAX = 400
# Filters naming at most this many items are ranked among them (an id-restricted query); more, and the filter is
# broad enough for over-fetched neighbours to satisfy it. Measured at 100k: an id-restricted query over 2,804 ids
# takes 6.5 ms, over 34,050 43 ms (handing Chroma the ids costs more than it saves).
_CANDIDATE_CAP = 5000


class Memory:
    """The vector store and the state DB kept in step."""

    def __init__(self, vectors: VectorStore, state: StateDB, embedder: Embedder,
                 policy: NearDuplicatePolicy | None = None, deadline: Deadline | None = None) -> None:
        # Every vector-store call gets a deadline: a store that hangs (a nearly full disk, a server
        # that stopped answering) must end in a StoreError recorded against the batch, never a hang.
        self.vectors: VectorStore = BoundedVectors(vectors, deadline or Deadline(DEFAULT_STORE_TIMEOUT))
        self.state = state
        self.embedder = embedder
        self.policy = policy or NearDuplicatePolicy()
        # Before the embedder's and the store's threads allocate: few malloc arenas, so a trim reaches them all.
        heap.cap_arenas()

    def embed_new(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Vectors for the items not stored yet, by id: embedding ahead of ``add``, e.g. while another batch stores."""
        unique = list({item.id: item for item in items}.values())
        known = self.state.existing_ids(i.id for i in unique)
        fresh = [i for i in unique if i.id not in known]
        if not fresh:
            return {}
        return dict(zip([i.id for i in fresh], self.embedder.embed([i.embedding_text() for i in fresh]), strict=True))

    def add(self, items: Sequence[Item], fetch: FetchRecord | None = None,
            embedded: Mapping[str, np.ndarray] | None = None) -> AddResult:
        """Store new items (skipping known ids, linking near-duplicates) with their fetch record.

        ``embedded``: vectors from ``embed_new`` for these items; items it lacks are embedded here.
        """
        unique = list({item.id: item for item in items}.values())
        known = self.state.existing_ids(i.id for i in unique)
        fresh = sorted((i for i in unique if i.id not in known), key=lambda i: (i.published_at, i.id))
        duplicate = len(items) - len(fresh)
        restored = self._restore([i for i in unique if i.id in known])
        stories: list[Item] = []
        links: list[Link] = []
        if fresh:
            vectors = self._vectors(fresh, embedded or {})
            story_of = self._assign_stories(fresh, vectors, stories, links)
            # Near-duplicates keep their vectors too (tagged with their story) so a later
            # report can match any wording of the story, not only the first one.
            self.vectors.upsert(
                [i.id for i in fresh], vectors, [i.embedding_text() for i in fresh],
                [vector_metadata(i, story_of[i.id]) for i in fresh],
            )
        result = AddResult(new=len(stories), duplicate=duplicate, near_duplicate=len(links), restored=restored)
        if fetch is not None:
            fetch = replace(fetch, new=result.new, duplicate=result.duplicate, near_duplicate=result.near_duplicate)
        # Vectors first, rows second: a crash in between leaves vectors that the next
        # run upserts again, never rows without vectors.
        self.state.commit_batch(stories, links, fetch)
        if fresh:
            heap.release()  # what embedding and storing the batch freed goes back, not into the resident size
        return result

    def _vectors(self, fresh: list[Item], embedded: Mapping[str, np.ndarray]) -> np.ndarray:
        """The fresh items' vectors in order: the ones embedded ahead, the rest embedded now."""
        missing = [i for i in fresh if i.id not in embedded]
        if len(missing) == len(fresh):
            return self.embedder.embed([i.embedding_text() for i in fresh])
        now = dict(zip([i.id for i in missing], self.embedder.embed([i.embedding_text() for i in missing]),
                       strict=True)) if missing else {}
        return np.stack([embedded[i.id] if i.id in embedded else now[i.id] for i in fresh]).astype(np.float32)

    def _assign_stories(self, fresh: list[Item], vectors: np.ndarray,
                        stories: list[Item], links: list[Link]) -> dict[str, str]:
        """Decide for each fresh item whether it starts a story or joins one; return item id → story id."""
        policy, rule = self.policy, self.policy.story_rule()
        eligible = [n for n, item in enumerate(fresh) if item.kind in policy.kinds]
        neighbours: dict[int, list[VectorHit]] = {}
        if eligible:
            hits = self.vectors.query(vectors[eligible], n=policy.neighbours, metadata=False)  # rows decide
            neighbours = dict(zip(eligible, hits, strict=False))
        # Only committed rows count; a vector left by an interrupted batch does not.
        rows = self.state.items_by_ids({h.id for hs in neighbours.values() for h in hs if h.similarity >= rule.floor})
        rows = {i: r for i, r in rows.items() if r.kind in policy.kinds}
        firsts = self.state.items_by_ids({r.story_id for r in rows.values()})
        story_time = {sid: row.published_at for sid, row in firsts.items()}
        facts: dict[str, Facts] = {
            i: facts_of(r.title, r.text or r.title, r.published_at, tuple(r.tickers.split())) for i, r in rows.items()
        }
        facts.update({i.id: facts_of(i.title, i.text, i.published_at, i.tickers) for i in fresh})
        story_of: dict[str, str] = {}
        for n, item in enumerate(fresh):
            # (story, cosine, the other report); items placed earlier in this batch are not in the store yet.
            candidates: list[tuple[str, float, Any]] = [
                (rows[h.id].story_id, h.similarity, rows[h.id]) for h in neighbours.get(n, [])
                if h.id in rows and h.id != item.id and rows[h.id].story_id in story_time
            ]
            if item.kind in policy.kinds:
                candidates += [(story_of[o.id], float(np.dot(vectors[row], vectors[n])), o)
                               for row, o in enumerate(fresh[:n]) if o.kind in policy.kinds]
            best: tuple[str, float, float] | None = None  # story, score, cosine
            for story_id, cosine, other in candidates:
                # The window is measured from the story's first report, so a story cannot drift for days.
                if abs(item.published_at - story_time[story_id]) > policy.window:
                    continue
                score = rule.score(compare(facts[item.id], facts[other.id], cosine, item.published_at,
                                           other.published_at, item.source == other.source))
                if score >= rule.threshold and (best is None or score > best[1]):
                    best = (story_id, score, cosine)
            if best is None:
                story_of[item.id] = item.id
                story_time[item.id] = item.published_at
                stories.append(item)
            else:
                story_of[item.id] = best[0]
                links.append(Link(item=item, story_id=best[0], similarity=round(best[2], 4)))
        return story_of

    def _restore(self, known: list[Item]) -> int:
        """Store again the vectors of known items that lost theirs; return how many."""
        if not known:
            return 0
        have = self.vectors.present([i.id for i in known])
        lost = [i for i in known if i.id not in have]
        if not lost:
            return 0
        rows = self.state.items_by_ids(i.id for i in lost)
        lost = [i for i in lost if i.id in rows]
        self._upsert(lost, {i.id: rows[i.id].story_id for i in lost})
        return len(lost)

    def _upsert(self, items: Sequence[Item], story_of: dict[str, str]) -> None:
        texts = [i.embedding_text() for i in items]
        self.vectors.upsert([i.id for i in items], self.embedder.embed(texts), texts,
                            [vector_metadata(i, story_of[i.id]) for i in items])

    def vector_health(self) -> VectorHealth:
        """Count stored items that have no vector (each id is looked up, so a replaced store shows too)."""
        ids = self.state.item_ids()
        have = self.vectors.present(ids) if ids else set()
        return VectorHealth(items=len(ids), vectors=self.vectors.count(), missing=len(ids) - len(have))

    def repair(self, progress: Callable[[int, int], None] | None = None) -> RepairResult:
        """Re-embed, from their stored rows, the items that have no vector; ``progress(done, total)``."""
        ids = self.state.item_ids()
        have = self.vectors.present(ids) if ids else set()
        missing = [i for i in ids if i not in have]
        restored = 0
        if progress:
            progress(0, len(missing))
        for start in range(0, len(missing), _REPAIR_BATCH):
            rows = self.state.items_by_ids(missing[start : start + _REPAIR_BATCH])
            items = [item_from_row(row) for row in rows.values()]
            self._upsert(items, {row.id: row.story_id for row in rows.values()})
            restored += len(items)
            if progress:
                progress(min(start + _REPAIR_BATCH, len(missing)), len(missing))
        return RepairResult(checked=len(ids), missing=len(missing), restored=restored)

    def record(self, fetch: FetchRecord) -> None:
        """Record a fetch that produced no items (an error or a 304)."""
        self.state.record_fetch(fetch)

    def search(self, text: str, limit: int = 10, *, since: datetime | None = None, until: datetime | None = None,
               tickers: Sequence[str] = (), kinds: Sequence[str] = ()) -> list[SearchHit]:
        """Stories most similar to ``text``, optionally within a time window, tickers and kinds."""
        query = self.embedder.embed([text])
        wanted = {t.upper() for t in tickers}
        # Hits are resolved against their state DB rows anyway (text, story, filters), so no vector query reads
        # Chroma's metadata: at 100k items that read, not the neighbour search, is most of a query's time.
        if since or until or wanted:
            # A time window or a ticker: the state DB's indexes name the candidates in a few ms, and an
            # id-restricted query ranks them (exactly when few), instead of over-fetching neighbours that mostly
            # fail the filter (measured at 100k: the over-fetch answered a 24h + ticker search in 1 of 50 cases).
            candidates = self.state.candidate_ids(since, until, wanted, kinds, cap=_CANDIDATE_CAP)
            if candidates is not None:
                return self._ranked(self.vectors.query(query, n=limit * 3, ids=candidates, metadata=False)[0], limit)
        if not (since or until or wanted or kinds):
            return self._ranked(self.vectors.query(query, n=limit * 3, metadata=False)[0], limit)

        def keep(row: Any) -> bool:
            return ((since is None or row.published_at >= since) and (until is None or row.published_at < until)
                    and (not kinds or row.kind in kinds) and (not wanted or bool(wanted & set(row.tickers.split()))))

        # A broad filter (too many candidates to name, or kinds alone): most near neighbours pass it, so over-fetch
        # and keep those that do. When too few do, the filter is rarer than it looked: its candidates, when the
        # state DB can name them, else Chroma's own (scanning, approximate) metadata filter.
        n = min(max(limit * _OVERFETCH, 100), _OVERFETCH_MAX)
        raw = self.vectors.query(query, n=n, metadata=False)[0]
        found = self._ranked(raw, limit, keep)
        if len(found) < limit and len(raw) >= n:
            named = None if since or until or wanted else self.state.candidate_ids(None, None, (), kinds,
                                                                                   cap=_CANDIDATE_CAP)
            if named is not None:
                narrow = self.vectors.query(query, n=limit * 3, ids=named, metadata=False)[0]
            else:
                narrow = self.vectors.query(query, n=limit * 3, where=_where(since, until, wanted, kinds),
                                            metadata=False)[0]
            found = self._ranked(narrow, limit, keep)
        return found

    def _ranked(self, hits: list[VectorHit], limit: int, keep: Callable[[Any], bool] | None = None) -> list[SearchHit]:
        """The best hit of each story among ``hits`` (best first) that has a committed row ``keep`` accepts."""
        rows = self.state.items_by_ids(h.id for h in hits)
        chosen: list[tuple[VectorHit, Any]] = []
        seen: set[str] = set()
        for hit in hits:
            row = rows.get(hit.id)
            # No row: a vector whose batch never committed; the next ingest heals it.
            if row is None or row.story_id in seen or (keep is not None and not keep(row)):
                continue
            seen.add(row.story_id)
            chosen.append((hit, row))
            if len(chosen) == limit:
                break
        sizes = self.state.story_sizes(row.story_id for _, row in chosen)
        out = []
        for hit, row in chosen:
            text = row.text or ""
            body = text if text != row.title else ""  # as Item.embedding_text leaves it
            out.append(
                SearchHit(
                    id=hit.id, score=round(hit.similarity, 4), title=row.title, url=row.url, source=row.source,
                    kind=row.kind, published_at=row.published_at, tickers=tuple(row.tickers.split()),
                    snippet=body[:280], sources=sizes.get(row.story_id, 1),
                )
            )
        return out

    def prune(self, older_than: timedelta, now: datetime | None = None) -> int:
        """Delete items published before ``now - older_than``; return how many rows went."""
        cutoff = (now or datetime.now(UTC)) - older_than
        ids = self.state.ids_published_before(cutoff)
        # Vectors go by date too, which also sweeps vectors left by an interrupted batch.
        self.vectors.delete(ids=ids, where={"published_ts": {"$lt": int(cutoff.timestamp())}})
        return self.state.delete_items(ids)


def item_from_row(row: Any) -> Item:
    """An ``Item`` rebuilt from its stored row (its text as stored, enough to embed it again)."""
    return Item(
        id=row.id, kind=row.kind, source=row.source, url=row.url, title=row.title, text=row.text or row.title,
        published_at=row.published_at, fetched_at=row.fetched_at, author=row.author or "",
        tickers=tuple(row.tickers.split()), cluster=row.cluster or "",
    )


def vector_metadata(item: Item, story_id: str | None = None) -> dict[str, Any]:
    """Flat Chroma metadata for an item; one boolean key per ticker keeps filters simple."""
    meta: dict[str, Any] = {
        "story_id": story_id or item.id,
        "kind": item.kind,
        "source": item.source,
        "published_ts": int(item.published_at.timestamp()),
        "tickers": " ".join(item.tickers),
    }
    meta.update({f"tk_{t}": True for t in item.tickers})
    return meta


def _where(since: datetime | None, until: datetime | None, tickers: set[str], kinds: Sequence[str]) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = []
    if since is not None:
        clauses.append({"published_ts": {"$gte": int(since.timestamp())}})
    if until is not None:
        clauses.append({"published_ts": {"$lt": int(until.timestamp())}})
    if kinds:
        clauses.append({"kind": {"$in": list(kinds)}})
    if tickers:
        ors: list[dict[str, Any]] = [{f"tk_{t}": True} for t in sorted(tickers)]
        clauses.append(ors[0] if len(ors) == 1 else {"$or": ors})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
