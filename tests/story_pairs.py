"""The story-grouping fixtures (tests/fixtures/stories/*.toml) as Items, and pairwise precision/recall."""

from __future__ import annotations

import itertools
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from memory.embeddings import Embedder
from memory.store import NearDuplicatePolicy
from sources.item import Item, item_id_for_url
from sources.tickers import Watchlist
from tapewatch.settings import DEFAULT_WATCHLIST

STORIES = Path(__file__).parent / "fixtures" / "stories"
BATCH_HOURS = 6  # each outlet's reports arrive in one batch per 6 hours, as a daemon would fetch them


@dataclass(frozen=True)
class StoryFixture:
    """Items with the story, family and family kind each was written for."""

    name: str
    items: tuple[Item, ...]
    story: dict[str, str]  # item id → story label
    family: dict[str, str]  # item id → family
    family_kind: dict[str, str]  # family → recurring | same-entity | same-topic


@dataclass(frozen=True)
class Pair:
    """Two reports within the grouping window, and whether they tell one story."""

    a: Item
    b: Item
    same: bool
    category: str


@dataclass(frozen=True)
class Scores:
    """Pairwise precision and recall of a grouping against the labels."""

    true_pos: int
    false_pos: int
    false_neg: int
    by_category: dict[str, tuple[int, int]]  # category → (pairs grouped, pairs)

    @property
    def precision(self) -> float:
        """Grouped pairs that are one story."""
        grouped = self.true_pos + self.false_pos
        return self.true_pos / grouped if grouped else 1.0

    @property
    def recall(self) -> float:
        """One-story pairs that were grouped."""
        wanted = self.true_pos + self.false_neg
        return self.true_pos / wanted if wanted else 1.0


def load(name: str) -> StoryFixture:
    """Load ``tests/fixtures/stories/<name>.toml``."""
    data = tomllib.loads((STORIES / f"{name}.toml").read_text(encoding="utf-8"))
    base: datetime = data["base"]
    watch = Watchlist(DEFAULT_WATCHLIST)
    items: list[Item] = []
    story: dict[str, str] = {}
    family: dict[str, str] = {}
    for n, raw in enumerate(data["item"]):
        url = f"https://{raw['outlet']}.example/{raw['story']}-{n}"
        when = base + timedelta(hours=float(raw["at"]))
        item = Item(id=item_id_for_url(url), kind="news", source=raw["outlet"], url=url, title=raw["title"],
                    text=raw["text"], published_at=when, fetched_at=when + timedelta(minutes=5),
                    tickers=watch.extract(f"{raw['title']} {raw['text']}"))
        items.append(item)
        story[item.id] = raw["story"]
        family[item.id] = raw["family"]
    return StoryFixture(name, tuple(items), story, family, dict(data["families"]))


def pairs(fixture: StoryFixture, window: timedelta = timedelta(hours=36)) -> list[Pair]:
    """Every pair of reports published within ``window`` of each other, labelled and categorised."""
    out = []
    for a, b in itertools.combinations(sorted(fixture.items, key=lambda i: i.published_at), 2):
        if abs(b.published_at - a.published_at) > window:
            continue
        same = fixture.story[a.id] == fixture.story[b.id]
        if same:
            category = "same story, same outlet" if a.source == b.source else "same story, other outlet"
        elif fixture.family[a.id] == fixture.family[b.id]:
            kind = fixture.family_kind[fixture.family[a.id]]
            if kind == "recurring" and a.published_at.date() == b.published_at.date():
                kind = "same-topic"
            category = {"recurring": "recurring report, other day", "same-entity": "same company, other news",
                        "same-topic": "same topic, other story"}[kind]
        else:
            category = "unrelated"
        out.append(Pair(a, b, same, category))
    return out


def score(fixture: StoryFixture, story_of: dict[str, str], window: timedelta = timedelta(hours=36)) -> Scores:
    """Compare a grouping (item id → story id) with the labels over every pair within the window."""
    tp = fp = fn = 0
    grouped: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for pair in pairs(fixture, window):
        together = story_of[pair.a.id] == story_of[pair.b.id]
        total[pair.category] += 1
        grouped[pair.category] += together
        tp += together and pair.same
        fp += together and not pair.same
        fn += pair.same and not together
    return Scores(tp, fp, fn, {c: (grouped[c], total[c]) for c in sorted(total)})


def group(fixture: StoryFixture, policy: NearDuplicatePolicy, embedder: Embedder, workdir: Path) -> dict[str, str]:
    """Ingest the fixture through a real Memory (embedded Chroma, SQLite) and return item id → story id."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.state import StateDB
    from memory.store import Memory

    client = chromadb.PersistentClient(str(workdir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    state = StateDB(f"sqlite:///{workdir / 'state.db'}")
    memory = Memory(ChromaVectors(client, "stories", embedder.name, embedder.dimension), state, embedder, policy)
    batches: dict[tuple[int, str], list[Item]] = defaultdict(list)
    start = min(i.published_at for i in fixture.items)
    for item in fixture.items:
        slot = int((item.published_at - start).total_seconds() // (BATCH_HOURS * 3600))
        batches[slot, item.source].append(item)
    for key in sorted(batches):
        memory.add(batches[key])
    rows = state.items_by_ids(i.id for i in fixture.items)
    state.close()
    return {item_id: row.story_id for item_id, row in rows.items()}
