"""The public archive index: public ids, published drafts only, survives an edit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from memory.drafts import DraftStore
from memory.public_ids import assign_public_id, permalink, public_id
from memory.state import StateDB
from publish.archive import Archive
from publish.review import ReviewQueue
from tests.fakes.publishing import REVIEWERS, add_draft


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.close()


def test_public_id_is_not_the_internal_id_and_is_stable(state: StateDB) -> None:
    draft = add_draft(state)
    pid = public_id(draft)
    assert draft.id not in pid and pid[:8] not in draft.id and pid == public_id(DraftStore(state).get(draft.id))
    assert permalink("https://briefs.example.org/", pid) == f"https://briefs.example.org/b/{pid}"
    assert permalink(None, pid) is None


def test_assigned_public_id_survives_an_edit_and_is_what_the_archive_serves(state: StateDB) -> None:
    meta: dict[str, object] = {}
    pid = assign_public_id(meta)
    assert assign_public_id(meta) == pid and len(pid) >= 16
    draft = add_draft(state, "b")
    DraftStore(state).update_meta(draft.id, public_id=pid)
    queue = ReviewQueue(state, reviewers=REVIEWERS)
    edited = queue.edit(draft.id, "alice", markdown="# b\nedited text\n\nNot financial advice.")
    assert public_id(edited) == pid
    archive = Archive(state)
    assert archive.get(pid) is None  # not published: not public
    queue.approve(edited.id, "alice", override="checked by hand")  # no validator in this queue
    assert archive.get(pid) is None  # approved is still not published
    queue.finish(edited.id, "published")
    entry = archive.get(pid)
    assert entry is not None and entry.draft.id == edited.id and entry.draft.markdown.startswith("# b\nedited")
    assert [e.public_id for e in archive.latest()] == [pid]
    assert [e.public_id for e in archive.latest(ticker="sol")] == [pid]
    assert archive.latest(ticker="BTC") == []


@pytest.mark.parametrize("status", ["pending", "flagged", "approved", "rejected", "failed", "expired", "superseded"])
def test_unpublished_drafts_are_never_found(state: StateDB, status: str) -> None:
    draft = add_draft(state, status=status)
    archive = Archive(state)
    assert archive.get(public_id(draft)) is None and archive.latest() == []
    assert archive.get(draft.id) is None and archive.get(draft.id[:12]) is None


def test_a_copied_public_id_does_not_hide_the_second_brief(state: StateDB) -> None:
    store = DraftStore(state)
    one, two = add_draft(state, "c", status="published"), add_draft(state, "d", status="published")
    store.update_meta(one.id, public_id="same-id-copied-0001")
    store.update_meta(two.id, public_id="same-id-copied-0001")
    archive = Archive(state)
    assert archive.sync() == 2
    ids = {e.draft.id: e.public_id for e in archive.latest()}
    assert set(ids) == {one.id, two.id} and len(set(ids.values())) == 2
    assert public_id(replace(store.get(one.id), meta={})) in ids.values() or \
        public_id(replace(store.get(two.id), meta={})) in ids.values()
