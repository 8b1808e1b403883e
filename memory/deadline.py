"""Deadlines on vector-store calls: a store that stops answering ends in a ``StoreError``, not a hang."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TypeVar

from memory.chroma import VectorHit, VectorStore
from sources.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")
_Task = tuple[Future[Any], Callable[[], Any]]


class Deadline:
    """Runs blocking calls on a few long-lived worker threads and gives up on any call that overruns.

    A call stuck inside a client library (Chroma's upsert on a full disk, an HTTP read with no
    timeout) cannot be interrupted from Python, so the caller stops waiting and the worker is
    written off; a replacement keeps the pool at strength. Once ``max_stuck`` calls are stuck at
    once, new calls fail at once instead of stranding more threads.
    """

    def __init__(self, seconds: float, *, workers: int = 4, max_stuck: int = 4) -> None:
        if seconds <= 0:
            raise ValueError("a deadline must be positive")
        self.seconds = seconds
        self._target = workers
        self._max_stuck = max_stuck
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._stuck: dict[int, tuple[str, float]] = {}  # id(future) → (what, since)
        self._serial = 0

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn()`` and return its result, or raise ``StoreError`` once the deadline has passed."""
        with self._lock:
            if len(self._stuck) >= self._max_stuck:
                oldest_what, since = min(self._stuck.values(), key=lambda v: v[1])
                raise StoreError(
                    f"vector store is not answering: {len(self._stuck)} calls are stuck "
                    f"(the oldest, {oldest_what}, for {time.monotonic() - since:.0f}s); not trying another"
                )
            while self._threads < self._target:
                self._spawn()
        future: Future[T] = Future()
        self._tasks.put((future, fn))
        try:
            return future.result(timeout=self.seconds)
        except FutureTimeout:
            if not future.cancel():  # running: its worker is stuck inside the call
                self._write_off(future, what)
            raise StoreError(
                f"vector store did not answer within {self.seconds:g}s ({what}); gave up on the call"
            ) from None

    def stuck(self) -> int:
        """How many calls are still stuck past their deadline."""
        with self._lock:
            return len(self._stuck)

    def _write_off(self, future: Future[Any], what: str) -> None:
        with self._lock:
            if future.done():
                return
            self._stuck[id(future)] = (what, time.monotonic())
            self._spawn()  # the stuck worker no longer counts toward the pool
        future.add_done_callback(self._recovered)

    def _recovered(self, future: Future[Any]) -> None:
        # The stuck call returned after all: its worker is back, so one worker can go.
        with self._lock:
            if self._stuck.pop(id(future), None) is not None:
                self._tasks.put(None)

    def _spawn(self) -> None:
        self._serial += 1
        self._threads += 1
        # Daemon threads: a worker stuck for good must not keep the process from exiting.
        threading.Thread(target=self._work, name=f"vector-store-{self._serial}", daemon=True).start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                with self._lock:
                    self._threads -= 1
                return
            future, fn = task
            if not future.set_running_or_notify_cancel():
                continue  # gave up on before it started
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, who may still be waiting
                future.set_exception(exc)


class BoundedVectors:
    """A ``VectorStore`` whose every call ends within the deadline (in a ``StoreError`` if it must)."""

    def __init__(self, inner: VectorStore, deadline: Deadline) -> None:
        self.inner = inner
        self.deadline = deadline

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[dict[str, Any]]) -> None:
        """Insert or replace vectors by id, within the deadline."""
        self.deadline.call(f"upsert of {len(ids)} vectors",
                           lambda: self.inner.upsert(ids, embeddings, documents, metadatas))

    def query(self, embeddings: np.ndarray, n: int, where: dict[str, Any] | None = None,
              ids: Sequence[str] | None = None, metadata: bool = True) -> list[list[VectorHit]]:
        """Nearest neighbours, within the deadline."""
        return self.deadline.call("query", lambda: self.inner.query(embeddings, n, where=where, ids=ids,
                                                                    metadata=metadata))

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id, within the deadline."""
        return self.deadline.call(f"fetch of {len(ids)} vectors", lambda: self.inner.embeddings(ids))

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` have a stored vector, within the deadline."""
        return self.deadline.call(f"check of {len(ids)} ids", lambda: self.inner.present(ids))

    def delete(self, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None) -> None:
        """Delete vectors, within the deadline."""
        self.deadline.call("delete", lambda: self.inner.delete(ids=ids, where=where))

    def count(self) -> int:
        """How many vectors are stored, within the deadline."""
        return self.deadline.call("count", self.inner.count)
