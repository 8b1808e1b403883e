"""Story grouping: pairwise precision and recall of the evidence rule and of the old single-cosine rule.

Run from the repository root:

    .venv/bin/python bench/stories.py              # three fixture sets and the synthetic corpus, both rules
    .venv/bin/python bench/stories.py --set holdout
    .venv/bin/python bench/stories.py --embedder minilm-int8   # memory.embedder (repeatable; default: minilm)

Each fixture set (tests/fixtures/stories/*.toml, written for tapewatch: calibration, holdout, unseen) is
ingested through the real pipeline — MiniLM on CPU (the embedder chosen), an embedded Chroma and a SQLite state DB in a
temporary directory — in per-outlet batches every 6 hours, as a daemon would fetch them. Then every
pair of reports within the grouping window is checked: grouped into one story or not, against the
story each was written for. No network is used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from memory.embeddings import Embedder  # noqa: E402
from memory.store import NearDuplicatePolicy  # noqa: E402
from memory.stories import calibrated_threshold  # noqa: E402
from tests.story_pairs import Scores, StoryFixture, group, load, pairs, score  # noqa: E402


class CachedEmbedder:
    """MiniLM, each text embedded once across the runs."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._cache: dict[str, object] = {}

    def embed(self, texts: list[str]):  # type: ignore[no-untyped-def]
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.asarray([self._cache[t] for t in texts], dtype=np.float32).reshape(len(texts), self.dimension)


def closest_calls(fixture: StoryFixture, embedder: Embedder) -> tuple[float, float]:
    """The evidence rule's lowest score for a one-story pair and highest for two stories (pairs in the window)."""
    from memory.stories import StoryRule, compare, facts_of

    rule = StoryRule(threshold=calibrated_threshold(embedder.name))
    vectors = dict(zip((i.id for i in fixture.items), embedder.embed([i.embedding_text() for i in fixture.items]),
                       strict=True))
    facts = {i.id: facts_of(i.title, i.text, i.published_at, i.tickers) for i in fixture.items}
    same: list[float] = []
    other: list[float] = []
    for pair in pairs(fixture):
        cosine = float(vectors[pair.a.id] @ vectors[pair.b.id])
        scored = rule.score(compare(facts[pair.a.id], facts[pair.b.id], cosine, pair.a.published_at,
                                    pair.b.published_at, pair.a.source == pair.b.source))
        (same if pair.same else other).append(scored)
    return min(same), max(other)


def rules(embedder: Embedder) -> dict[str, NearDuplicatePolicy]:
    """The evidence rule at the embedder's calibrated threshold, and the old single-cosine rule."""
    threshold = calibrated_threshold(embedder.name)
    return {f"evidence >= {threshold:.2f}": NearDuplicatePolicy(threshold=threshold),
            "cosine >= 0.70 (old rule)": NearDuplicatePolicy(threshold=0.70, rule="cosine", neighbours=8)}


def synthetic_links(embedder: Embedder, policies: dict[str, NearDuplicatePolicy] | None = None) -> dict[str, int]:
    """Reports linked into another's story in bench/ingest.py's synthetic corpus, where no story is told twice."""
    from datetime import UTC, datetime

    from sources.rss import parse_feed
    from sources.tickers import Watchlist
    from tapewatch.settings import DEFAULT_WATCHLIST

    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import build_feeds

    now = datetime.now(UTC)
    items = [item for feed in build_feeds(300, 50, now, 20261126)
             for item in parse_feed(feed.body, feed.spec, Watchlist(DEFAULT_WATCHLIST), fetched_at=now).items]
    fixture = StoryFixture("synthetic", tuple(items), {i.id: i.id for i in items}, {i.id: "" for i in items}, {})
    out = {}
    for rule, policy in (policies or rules(embedder)).items():
        workdir = Path(tempfile.mkdtemp(prefix="tapewatch-stories-"))
        try:
            story_of = group(fixture, policy, embedder, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        out[rule] = sum(item_id != story for item_id, story in story_of.items())
    return out


def report(name: str, fixture: StoryFixture, results: dict[str, Scores]) -> None:
    stories = len(set(fixture.story.values()))
    print(f"\n{name}: {len(fixture.items)} reports of {stories} stories")
    width = max(len(r) for r in results)
    print(f"  {'rule':{width}}  precision  recall   grouped pairs: right / wrong / missed")
    for rule, s in results.items():
        print(f"  {rule:{width}}  {s.precision:9.2f}  {s.recall:6.2f}   "
              f"{s.true_pos:5d} / {s.false_pos:5d} / {s.false_neg:6d}")
    categories = next(iter(results.values())).by_category
    print(f"  pairs grouped, by kind of pair ({' | '.join(results)}):")
    for category in categories:
        cells = " | ".join(f"{s.by_category[category][0]:3d} of {s.by_category[category][1]:3d}"
                           for s in results.values())
        print(f"    {category:30s} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", choices=["calibration", "holdout", "unseen"],
                        help="fixture set (repeatable; default all three)")
    parser.add_argument("--embedder", action="append", choices=["minilm", "minilm-int8", "minilm-torch"],
                        help="memory.embedder (repeatable; default minilm)")
    parser.add_argument("--sweep", type=float, nargs="+", metavar="T",
                        help="instead: the evidence rule at each threshold T, one line per threshold")
    args = parser.parse_args()
    for choice in args.embedder or ["minilm"]:
        if args.sweep:
            sweep(choice, args.set, args.sweep)
        else:
            run(choice, args.set)


def sweep(choice: str, sets: list[str] | None, thresholds: list[float]) -> None:
    """Per threshold: pairwise precision / recall on each fixture set, and links in the synthetic corpus."""
    from tapewatch.clients import embedder as configured
    from tapewatch.settings import MemorySettings, Settings

    embedder = CachedEmbedder(configured(Settings(memory=MemorySettings(embedder=choice))))  # type: ignore[arg-type]
    names = sets or ["calibration", "holdout", "unseen"]
    fixtures = {name: load(name) for name in names}
    print(f"\n=== {choice} ({embedder.name}): evidence rule, precision / recall per set; synthetic: reports "
          "linked in bench/ingest.py's corpus (no story told twice there)")
    print("  threshold  " + "  ".join(f"{name:>13}" for name in names) + "  synthetic")
    for threshold in thresholds:
        policy = NearDuplicatePolicy(threshold=threshold)
        cells = []
        for name in names:
            workdir = Path(tempfile.mkdtemp(prefix="tapewatch-stories-"))
            try:
                got = score(fixtures[name], group(fixtures[name], policy, embedder, workdir), policy.window)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            cells.append(f"{got.precision:.2f} / {got.recall:.2f}")
        links = synthetic_links(embedder, {"evidence": policy})["evidence"] if not sets else -1
        print(f"  {threshold:9.2f}  " + "  ".join(f"{c:>13}" for c in cells) + f"  {links:9d}", flush=True)


def run(choice: str, sets: list[str] | None) -> None:
    """Every fixture set (and the synthetic corpus) with one embedder."""
    from tapewatch.clients import embedder as configured
    from tapewatch.settings import MemorySettings, Settings

    embedder = CachedEmbedder(configured(Settings(memory=MemorySettings(embedder=choice))))  # type: ignore[arg-type]
    started = time.monotonic()
    print(f"\n=== {choice} ({embedder.name}): pairs of reports within 36h; precision = grouped pairs that are one "
          "story, recall = one-story pairs that were grouped.")
    for name in sets or ["calibration", "holdout", "unseen"]:
        fixture = load(name)
        results = {}
        for rule, policy in rules(embedder).items():
            workdir = Path(tempfile.mkdtemp(prefix="tapewatch-stories-"))
            try:
                results[rule] = score(fixture, group(fixture, policy, embedder, workdir), policy.window)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        report(name, fixture, results)
        low, high = closest_calls(fixture, embedder)
        print(f"  evidence score, pair by pair (threshold {calibrated_threshold(embedder.name)}): lowest one-story "
              f"pair {low:.3f}, highest two-story pair {high:.3f} (safe: above the second, up to the first)")
    if not sets:
        linked = synthetic_links(embedder)
        print("\nbench/ingest.py's synthetic corpus (300 templated reports, no story told twice), reports linked "
              "into another's story: " + ", ".join(f"{rule} {n}" for rule, n in linked.items()))
    print("\nThe weights were chosen on calibration; holdout then informed one round of changes (round figures and"
          "\nprices count half, figures match within their written precision, 0.20 per day apart); unseen was"
          "\nwritten after that and run once at threshold 0.58, unchanged; the threshold then went to 0.62 (the"
          "\nmiddle of calibration's safe range 0.58-0.64) for fewer links in the synthetic corpus."
          f" ({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
