"""One ingest pass: fetch feeds concurrently, parse and store each as it arrives."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np

from memory.prices import PriceStore, snapshot_of
from memory.state import FetchRecord
from memory.store import Memory
from sources.errors import FetchError, IngestError, StoreError
from sources.item import Item
from sources.rss import FeedSpec, FetchResult, ParsedFeed, Validators, fetch_feed, parse_feed
from sources.samples import (
    SAMPLE_FEEDS,
    SAMPLE_POSTS_SOURCE,
    SAMPLE_PRICES_SOURCE,
    rebase,
    sample_body,
    sample_posts,
    sample_quotes,
)
from sources.tickers import Watchlist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceOutcome:
    """What one source produced in one pass."""

    name: str
    kind: str
    status: str  # ok | not_modified | error | skipped (a budget or a rate limit said not now)
    new: int = 0
    duplicate: int = 0
    near_duplicate: int = 0
    warnings: tuple[str, ...] = ()
    error: str | None = None
    unreachable: bool = False
    skipped: int = 0  # entries or posts the source sent that could not be used
    degraded: str | None = None  # why the items of an "ok" fetch are in doubt
    too_old: int = 0  # items published before the retention window, not stored

    @property
    def shown_status(self) -> str:
        """The status as shown: ``degraded`` for an ok fetch with problems."""
        return "degraded" if self.status == "ok" and self.degraded else self.status


@dataclass
class IngestReport:
    """All outcomes of a pass, and whether the bundled samples stood in for the network."""

    outcomes: list[SourceOutcome] = field(default_factory=list)
    used_samples: bool = False

    @property
    def failed(self) -> bool:
        """True when every source errored."""
        return bool(self.outcomes) and all(o.status == "error" for o in self.outcomes)


@dataclass(frozen=True)
class _Ready:
    """A fetched feed, parsed and its new items embedded, waiting to be stored; or what went wrong on the way."""

    feed: FeedSpec
    started: datetime
    fetched: FetchResult | None = None
    parsed: ParsedFeed | None = None
    embedded: Mapping[str, np.ndarray] = field(default_factory=dict)
    error: Exception | None = None


Clock = Callable[[], datetime]
# Loads one bundled sample source as of a fetch time: its items and any parse warnings.
SampleLoader = Callable[[datetime], tuple[Sequence[Item], Sequence[str]]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Ingestor:
    """Runs feeds through fetch → parse → memory, one source's failure never stopping the rest."""

    def __init__(self, memory: Memory, client: httpx.Client, watchlist: Watchlist, *, max_body_bytes: int,
                 deadline_s: float, concurrency: int = 4, clock: Clock = _utcnow,
                 retention: timedelta | None = None) -> None:
        self.memory = memory
        self.client = client
        self.watchlist = watchlist
        self.max_body_bytes = max_body_bytes
        self.deadline_s = deadline_s
        self.concurrency = concurrency
        self.clock = clock
        self.retention = retention

    def run(self, feeds: Sequence[FeedSpec],
            on_done: Callable[[SourceOutcome], None] | None = None) -> list[SourceOutcome]:
        """Fetch all feeds (in parallel) and store each one's items (in this thread) as it arrives.

        Between the two, one worker parses and embeds each fetched feed while this thread stores the one before:
        embedding (most of ingest, and off the GIL) overlaps the near-duplicate matching and the writes.
        """
        outcomes: list[SourceOutcome] = []
        ready: queue.SimpleQueue[_Ready] = queue.SimpleQueue()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="fetch") as pool, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed") as embedding:

            def fetched(feed: FeedSpec, started: datetime, future: Future[FetchResult]) -> None:
                embedding.submit(lambda: ready.put(self._prepare(feed, started, future)))

            for feed in feeds:
                started = self.clock()
                pool.submit(self._fetch, feed).add_done_callback(
                    lambda future, feed=feed, started=started: fetched(feed, started, future))  # type: ignore[misc]
            for _ in feeds:
                outcome = self._store(ready.get())
                outcomes.append(outcome)
                if on_done:
                    on_done(outcome)
        return outcomes

    def run_samples(self, on_done: Callable[[SourceOutcome], None] | None = None) -> list[SourceOutcome]:
        """Ingest the bundled sample feeds, posts and prices, dated so their day ends now."""

        def feed_loader(feed: FeedSpec, filename: str) -> SampleLoader:
            def load(started: datetime) -> tuple[Sequence[Item], Sequence[str]]:
                parsed = parse_feed(sample_body(filename), feed, self.watchlist, fetched_at=started)
                return parsed.items, parsed.warnings

            return load

        sources: list[tuple[FeedSpec, SampleLoader]] = [(f, feed_loader(f, name)) for f, name in SAMPLE_FEEDS]
        sources.append((FeedSpec(SAMPLE_POSTS_SOURCE, "https://x.com/", "social"),
                        lambda started: (sample_posts(self.watchlist, started), ())))
        outcomes = []
        for spec, load in sources:
            started = self.clock()
            try:
                items, warnings = load(started)
                outcome = self._commit(spec, started, rebase(tuple(items), started), warnings,
                                       http_status=None, validators=None)
            except (IngestError, StoreError) as exc:
                outcome = self._failed(spec, started, exc, http_status=None)
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
        outcomes.append(self._sample_prices())
        if on_done:
            on_done(outcomes[-1])
        return outcomes

    def _sample_prices(self) -> SourceOutcome:
        """Store the sample day's market snapshots, so price moves show offline too."""
        started = self.clock()
        spec = FeedSpec(SAMPLE_PRICES_SOURCE, "https://api.coingecko.example/api/v3/simple/price", "market")
        try:
            snapshots = [snapshot_of(q, SAMPLE_PRICES_SOURCE) for q in sample_quotes(started)]
            store = PriceStore(self.memory.state)
            # Like the sample items, the sample day is placed once: a re-run would re-date it and double it.
            new = 0 if store.count(SAMPLE_PRICES_SOURCE) else store.add(snapshots, started)
            self.memory.record(FetchRecord(source=spec.name, kind=spec.kind, url=spec.url, started_at=started,
                                           finished_at=self.clock(), status="ok", new=new,
                                           duplicate=len(snapshots) - new))
        except (IngestError, StoreError) as exc:
            return self._failed(spec, started, exc, http_status=None)
        return SourceOutcome(name=spec.name, kind=spec.kind, status="ok", new=new, duplicate=len(snapshots) - new)

    def _fetch(self, feed: FeedSpec) -> FetchResult:
        validators = self.memory.state.validators(feed.name)
        return fetch_feed(self.client, feed.url, validators, max_bytes=self.max_body_bytes, deadline_s=self.deadline_s)

    def _prepare(self, feed: FeedSpec, started: datetime, future: Future[FetchResult]) -> _Ready:
        """Parse a fetched feed and embed its new items (in the embedding worker); never raises."""
        try:
            fetched = future.result()
        except IngestError as exc:
            return _Ready(feed, started, error=exc)
        except Exception as exc:  # one source's surprise must not sink the batch
            log.exception("%s: unexpected error while fetching", feed.name)
            return _Ready(feed, started, error=IngestError(f"unexpected error: {exc!r}"))
        if fetched.not_modified:
            return _Ready(feed, started, fetched)
        try:
            parsed = parse_feed(fetched.body, feed, self.watchlist, fetched_at=started,
                                content_type=fetched.content_type)
            embedded = self._embed_ahead(within_retention(parsed.items, started, self.retention))
            return _Ready(feed, started, fetched, parsed, embedded)
        except IngestError as exc:
            return _Ready(feed, started, fetched, error=exc)
        except Exception as exc:  # one source's surprise must not sink the batch
            log.exception("%s: unexpected error while parsing", feed.name)
            return _Ready(feed, started, fetched, error=IngestError(f"unexpected error: {exc!r}"))

    def _embed_ahead(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        try:
            return self.memory.embed_new(items)
        except Exception as exc:  # storing embeds what is missing, and reports a failure against the feed then
            log.warning("embedding ahead failed (%s); the items are embedded when stored", exc)
            return {}

    def _store(self, ready: _Ready) -> SourceOutcome:
        feed, started, fetched = ready.feed, ready.started, ready.fetched
        status = fetched.status_code if fetched is not None else None
        if ready.error is not None:
            return self._failed(feed, started, ready.error, http_status=status)
        assert fetched is not None
        if fetched.not_modified:
            record = FetchRecord(
                source=feed.name, kind=feed.kind, url=feed.url, started_at=started, finished_at=self.clock(),
                status="not_modified", http_status=304,
            )
            self.memory.record(record)
            return SourceOutcome(name=feed.name, kind=feed.kind, status="not_modified")
        parsed = ready.parsed
        assert parsed is not None
        try:
            return self._commit(feed, started, parsed.items, parsed.warnings,
                                http_status=fetched.status_code, validators=fetched.validators,
                                skipped=parsed.skipped, degraded="; ".join(parsed.degraded) or None,
                                embedded=ready.embedded)
        except (IngestError, StoreError) as exc:
            return self._failed(feed, started, exc, http_status=fetched.status_code)
        except Exception as exc:  # one source's surprise must not sink the batch
            log.exception("%s: unexpected error while storing", feed.name)
            return self._failed(feed, started, IngestError(f"unexpected error: {exc!r}"),
                                http_status=fetched.status_code)

    def _commit(self, feed: FeedSpec, started: datetime, items: Sequence[Item], warnings: Sequence[str], *,
                http_status: int | None, validators: Validators | None, skipped: int = 0,
                degraded: str | None = None, embedded: Mapping[str, np.ndarray] | None = None) -> SourceOutcome:
        fresh = within_retention(items, started, self.retention)
        record = FetchRecord(
            source=feed.name, kind=feed.kind, url=feed.url, started_at=started, finished_at=self.clock(),
            status="ok", http_status=http_status, warnings=tuple(warnings), validators=validators,
            skipped=skipped, degraded=degraded,
        )
        result = self.memory.add(fresh, record, embedded)
        for warning in warnings:
            log.warning("%s: %s", feed.name, warning)
        if len(fresh) < len(items):
            log.info("%s: %d item(s) older than the retention window not stored", feed.name, len(items) - len(fresh))
        return SourceOutcome(
            name=feed.name, kind=feed.kind, status="ok", new=result.new, duplicate=result.duplicate,
            near_duplicate=result.near_duplicate, warnings=tuple(warnings), skipped=skipped, degraded=degraded,
            too_old=len(items) - len(fresh),
        )

    def _failed(self, feed: FeedSpec, started: datetime, exc: Exception, *, http_status: int | None) -> SourceOutcome:
        log.warning("%s: %s", feed.name, exc)
        unreachable = isinstance(exc, FetchError) and exc.unreachable
        record = FetchRecord(
            source=feed.name, kind=feed.kind, url=feed.url, started_at=started, finished_at=self.clock(),
            status="error", http_status=http_status, error=str(exc),
        )
        try:
            self.memory.record(record)
        except StoreError as store_exc:  # the error is still reported to the caller
            log.error("%s: could not record fetch error: %s", feed.name, store_exc)
        return SourceOutcome(name=feed.name, kind=feed.kind, status="error", error=str(exc), unreachable=unreachable)


def within_retention(items: Sequence[Item], now: datetime, retention: timedelta | None) -> list[Item]:
    """The items published inside the retention window: older ones would only be pruned again."""
    if retention is None:
        return list(items)
    cutoff = now - retention
    return [i for i in items if i.published_at >= cutoff]


def ingest(ingestor: Ingestor, feeds: Sequence[FeedSpec], samples: str,
           on_done: Callable[[SourceOutcome], None] | None = None) -> IngestReport:
    """Ingest ``feeds``; with samples='auto' fall back to the bundled samples when no feed was reachable."""
    report = IngestReport()
    if samples != "always" and feeds:
        report.outcomes = ingestor.run(feeds, on_done)
    offline = not feeds or all(o.unreachable for o in report.outcomes)
    if samples == "always" or (samples == "auto" and offline):
        report.outcomes += ingestor.run_samples(on_done)
        report.used_samples = True
    return report
