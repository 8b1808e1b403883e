"""Narratives: the window's stories grouped by meaning and labelled by their distinctive words."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from crew.model import Narrative

# Where an item without a configured author cluster belongs: outlets, forums and social
# accounts are different audiences, so each kind is a cluster of its own by default.
# (Defined here, the lower of the two modules, so signals and narratives share one rule.)
DEFAULT_CLUSTERS: dict[str, str] = {"news": "media", "forum": "forum", "social": "social"}

_URL = re.compile(r"(?:https?://|www\.)\S+")
_CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z0-9]*")
_WORD = re.compile(r"[a-z][a-z0-9]*(?:[-'][a-z0-9]+)*")
# English function words, plus words every crypto headline uses (they name no narrative) and
# the big coins' names (the ticker list already carries them). Kept inline: no NLTK download.
_STOPWORD_TEXT = """
    a about above after again against all almost also am among an and another any are around as at
    back be became because been before being below between both but by can cannot could did do does
    doing done down during each either else even ever every few for from further get gets got had has
    have having he her here hers him his how however i if in into is it its itself just last least less
    like made make makes many may me might more most much must my near need new next no nor not now of
    off on once one only onto or other our ours out over own per said same say says see she should since
    so some still such than that the their theirs them then there these they this those though three
    through thus to too two under until up upon us very via was we were what when where whether which
    while who whom whose why will with within without would yet you your yours today yesterday tomorrow
    week weeks day days year years amid ahead anyone what's it's here's
    crypto cryptocurrency cryptocurrencies coin coins token tokens market markets price prices trading
    traders trader report reports update news breaking analysts analyst live first big top record
    bitcoin ethereum ether solana ripple dogecoin cardano avalanche chainlink tether
    http https www com org net html htm amp utm
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def cluster_of(row: Any) -> str:
    """The author cluster of an item row: its own, or its kind's default."""
    return str(row.cluster or DEFAULT_CLUSTERS.get(row.kind, row.kind))


class EmbeddingSource(Protocol):
    """Stored vectors by id (``memory.chroma.ChromaVectors`` implements it)."""

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Unit vectors of the ids that have one."""
        ...


def find_narratives(
    rows_in_window: Sequence[Any],
    rows_baseline: Sequence[Any],
    vectors: EmbeddingSource,
    *,
    window_start: datetime,
    now: datetime,
    threshold: float = 0.55,
    max_stories: int = 1500,
    recent_item_ids: AbstractSet[str] = frozenset(),
) -> tuple[Narrative, ...]:
    """Groups of at least two window stories about one thing, biggest and broadest first."""
    by_story: dict[str, list[Any]] = defaultdict(list)
    for r in rows_in_window:
        by_story[r.story_id].append(r)
    if not by_story or max_stories <= 0:
        return ()
    known = {r.id for r in rows_in_window} | {r.id for r in rows_baseline}
    picked = _pick_stories(by_story, max_stories)
    # A story is represented by its own first report, which may predate the window;
    # if memory no longer holds that row, its earliest report in the window stands in.
    rep = {sid: sid if sid in known else min(by_story[sid], key=lambda r: r.published_at).id for sid in picked}
    got = vectors.embeddings([rep[sid] for sid in picked])
    stories = [sid for sid in picked if rep[sid] in got]
    if len(stories) < 2:
        return ()
    matrix = np.stack([_unit(got[rep[sid]]) for sid in stories])
    first_seen: dict[str, datetime] = {}
    for r in (*rows_baseline, *rows_in_window):
        if r.story_id in by_story and (r.story_id not in first_seen or r.published_at < first_seen[r.story_id]):
            first_seen[r.story_id] = r.published_at
    # The window's own titles are the background: a word every story of the day uses names none
    # of them. (The baseline would be a steadier background but costs a pass over days of rows.)
    background = _Background([r.title for r in rows_in_window],
                             {t.lower() for r in rows_in_window for t in r.tickers.split()})
    found = []
    for group in _average_linkage(matrix, threshold):
        if len(group) < 2:
            continue
        sub = matrix[group]
        sims = sub @ sub.T
        # Centrality: mean similarity to the rest of the group; the most central story names it.
        centrality = (sims.sum(axis=1) - np.diag(sims)) / (len(group) - 1)
        order = sorted(range(len(group)), key=lambda k: (-float(centrality[k]), stories[group[k]]))
        members = [stories[group[k]] for k in order]
        found.append(_narrative(members, by_story, first_seen, background, window_start, now, recent_item_ids))
    found.sort(key=lambda n: (-n.size * n.clusters, -n.reports, n.first_seen, n.id))
    return tuple(found)


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _pick_stories(by_story: dict[str, list[Any]], cap: int) -> list[str]:
    """At most ``cap`` stories, most engaged (then most reported, then latest) first; oldest-first out."""
    def rank(sid: str) -> tuple[int, int, float, str]:
        rows = by_story[sid]
        return (-max(int(r.engagement or 0) for r in rows), -len(rows),
                -max(r.published_at for r in rows).timestamp(), sid)

    chosen = sorted(by_story, key=rank)[:cap]
    # Clustering order is fixed by time and id so ties break the same way on every run.
    return sorted(chosen, key=lambda sid: (min(r.published_at for r in by_story[sid]), sid))


def _average_linkage(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage clustering by cosine similarity, merging while the best pair is ≥ ``threshold``."""
    n = len(vectors)
    sim = (vectors @ vectors.T).astype(np.float64)
    np.fill_diagonal(sim, -np.inf)
    size = np.ones(n)
    members: list[list[int]] = [[k] for k in range(n)]
    active = np.ones(n, dtype=bool)
    # Each row's best partner is cached so a merge costs O(n), not a full O(n²) scan.
    best_j = sim.argmax(axis=1)
    best = sim[np.arange(n), best_j]
    while n > 1:
        i = int(best.argmax())
        if not best[i] >= threshold:
            break
        j = int(best_j[i])
        # Lance–Williams update: the similarity to a merged group is the size-weighted mean.
        merged = (size[i] * sim[i] + size[j] * sim[j]) / (size[i] + size[j])
        sim[i, :] = merged
        sim[:, i] = merged
        sim[j, :] = -np.inf
        sim[:, j] = -np.inf
        sim[i, i] = -np.inf
        size[i] += size[j]
        members[i] += members[j]
        members[j] = []
        active[j] = False
        best[j] = -np.inf
        # Rows whose best partner was i or j may have lost it; every other row can only gain i.
        stale = ((best_j == i) | (best_j == j)) & active
        stale[i] = True
        rows = np.flatnonzero(stale)
        if rows.size:
            best_j[rows] = sim[rows].argmax(axis=1)
            best[rows] = sim[rows, best_j[rows]]
        gain = active & ~stale & (sim[:, i] > best)
        best_j[gain] = i
        best[gain] = sim[gain, i]
    return [sorted(m) for m in members if m]


class _Background:
    """Document frequencies of title words across the window, for TF-IDF."""

    def __init__(self, titles: Iterable[str], tickers: set[str]) -> None:
        self.tickers = tickers
        self.docs = 0
        self.df: Counter[str] = Counter()
        for title in titles:
            self.docs += 1
            self.df.update(set(self.words(title)))

    def words(self, title: str) -> list[str]:
        """Content words of a title: no URLs, cashtags, tickers, numbers or stopwords."""
        text = _CASHTAG.sub(" ", _URL.sub(" ", title)).lower().replace("\u2019", "'")
        out = []
        for word in _WORD.findall(text):
            word = word.removesuffix("'s")
            if len(word) >= 3 and word not in _STOPWORDS and word not in self.tickers:
                out.append(word)
        return out

    def distinctive(self, titles: Sequence[str], limit: int = 5) -> tuple[str, ...]:
        """The words of ``titles`` most particular to them (titles containing it × idf)."""
        local: Counter[str] = Counter()
        for title in titles:
            local.update(set(self.words(title)))
        scored = {w: n * (math.log((self.docs + 1) / (self.df.get(w, 0) + 1)) + 1.0) for w, n in local.items()}
        return tuple(sorted(scored, key=lambda w: (-scored[w], w))[:limit])


def _narrative(members: list[str], by_story: dict[str, list[Any]], first_seen: dict[str, datetime],
               background: _Background, window_start: datetime, now: datetime,
               recent: AbstractSet[str]) -> Narrative:
    """One narrative from its stories, most central first."""
    rows = [r for sid in members for r in by_story[sid]]
    mentions: Counter[str] = Counter()
    for sid in members:
        mentions.update({t for r in by_story[sid] for t in r.tickers.split()})
    # A ticker named by fewer than a third of the stories is a passing mention, not the subject.
    tickers = tuple(t for t, n in sorted(mentions.items(), key=lambda kv: (-kv[1], kv[0]))
                    if 3 * n >= len(members))[:3]
    terms = background.distinctive([r.title for r in rows])
    middle = window_start + (now - window_start) / 2
    entered = {sid: min(r.published_at for r in by_story[sid]) for sid in members}
    late = sum(1 for t in entered.values() if t >= middle)
    growth = (late + 1) / (len(members) - late + 1)
    seen = min(first_seen[sid] for sid in members)
    used = {sid for sid in members if sid in recent or any(r.id in recent for r in by_story[sid])}
    return Narrative(
        id=members[0],
        label=" / ".join([*tickers[:2], *terms[:3]]),
        terms=terms,
        tickers=tickers,
        size=len(members),
        reports=len(rows),
        clusters=len({cluster_of(r) for r in rows}),
        growth=growth,
        first_seen=seen,
        status=_status(seen, len(members), growth, window_start, now),
        item_ids=tuple(members[:5]),
        novelty=1.0 - len(used) / len(members),
    )


def _status(first_seen: datetime, size: int, growth: float, window_start: datetime, now: datetime) -> str:
    """emerging (first seen in the last 40% of the window), hot, cooling or steady, first match wins."""
    if first_seen >= window_start + 0.6 * (now - window_start) and size >= 2:
        return "emerging"
    if growth >= 1.5 and size >= 3:
        return "hot"
    if growth < 0.67:
        return "cooling"
    return "steady"
