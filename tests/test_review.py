"""The draft state machine and the audit log, on a real state DB (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crew.model import Problem, ValidationReport
from memory.drafts import Draft
from memory.state import StateDB
from publish.audit import AuditLog
from publish.outbox import Outbox
from publish.review import ReviewError, ReviewQueue
from tapewatch.clients import draft_validator
from tests.fakes.publishing import REVIEWERS, add_draft, make_settings


@pytest.fixture
def state(state_url: str) -> StateDB:
    db = StateDB(state_url)
    yield db
    db.close()


def _queue(state: StateDB, validator: object = None) -> ReviewQueue:
    return ReviewQueue(state, reviewers=REVIEWERS, validator=validator)  # type: ignore[arg-type]


def test_double_approval_is_idempotent(state: StateDB) -> None:
    draft = add_draft(state)
    queue = _queue(state)
    first = queue.approve(draft.id, "alice")
    second = queue.approve(draft.id[:8], "bob")
    assert first.changed and (first.from_status, first.to_status) == ("pending", "approved")
    assert not second.changed and queue.drafts.get(draft.id).status == "approved"
    approvals = [e for e in AuditLog(state.engine).for_draft(draft.id) if e.action == "approve"]
    assert [(e.actor, e.via, e.from_status, e.to_status) for e in approvals] == [
        ("alice", "cli", "pending", "approved")]


def test_concurrent_approvals_only_one_wins(state_url: str, state: StateDB) -> None:
    for _ in range(5):
        draft = add_draft(state)
        # Separate engines, as separate processes (CLI, bot, web page) would have.
        queues = [_queue(StateDB(state_url)) for _ in range(3)]
        results: list[object] = []
        barrier = threading.Barrier(3)

        def act(q: ReviewQueue, name: str, draft_id: str = draft.id, barrier: threading.Barrier = barrier,
                results: list[object] = results) -> None:
            barrier.wait()
            try:
                results.append(q.approve(draft_id, name))
            except ReviewError as exc:
                results.append(exc)

        threads = [threading.Thread(target=act, args=(q, n)) for q, n in zip(queues, ["alice", "bob", "alice"],
                                                                                strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        approvals = [e for e in AuditLog(state.engine).for_draft(draft.id) if e.action == "approve"]
        assert len(approvals) == 1, results
        assert [getattr(r, "changed", None) for r in results].count(True) == 1, results
        assert not any(isinstance(r, ReviewError) for r in results), results
        assert state_status(state, draft.id) == "approved"
        for q in queues:
            q.state.close()


def state_status(state: StateDB, draft_id: str) -> str:
    return ReviewQueue(state).drafts.get(draft_id).status


def test_unknown_or_missing_reviewer_is_refused(state: StateDB) -> None:
    draft = add_draft(state)
    with pytest.raises(ReviewError, match="'mallory' is not a reviewer; known reviewers: alice, bob"):
        _queue(state).approve(draft.id, "mallory")
    with pytest.raises(ReviewError, match="--as NAME"):
        _queue(state).approve(draft.id, "")
    with pytest.raises(ReviewError, match="no reviewers are configured"):
        ReviewQueue(state).approve(draft.id, "alice")
    assert state_status(state, draft.id) == "pending"
    assert AuditLog(state.engine).for_draft(draft.id) == []


def test_flagged_draft_needs_an_override_reason(state: StateDB) -> None:
    bad = ValidationReport((Problem("unknown_ticker", "PEPE is in no cited item", "x:2"),),
                           checked_at=datetime.now(UTC)).to_dict()
    draft = add_draft(state, status="flagged", validation=bad)
    queue = _queue(state)
    with pytest.raises(ReviewError, match=r"PEPE is in no cited item.*--override"):
        queue.approve(draft.id, "alice")
    with pytest.raises(ReviewError):
        queue.approve(draft.id, "alice", override="   ")
    t = queue.approve(draft.id, "alice", override="PEPE is named in the linked filing")
    assert t.changed and t.from_status == "flagged"
    entry = next(e for e in AuditLog(state.engine).for_draft(draft.id) if e.action == "approve")
    assert entry.reason == "PEPE is named in the linked filing"
    assert entry.detail["override"] is True and "PEPE" in entry.detail["problems"][0]


def test_edit_makes_a_new_version_revalidates_and_supersedes(state: StateDB, tmp_path: Path) -> None:
    state.commit_batch([], [], None)
    draft = add_draft(state)
    queue = _queue(state, draft_validator(make_settings(tmp_path), state))
    new = queue.edit(draft.id, "bob", x_thread=["1/2 tighter wording", "2/2 and a second post. Not financial advice."])
    assert (new.version, new.parent_id, new.status) == (2, draft.id, "pending")
    assert new.x_thread == ("1/2 tighter wording", "2/2 and a second post. Not financial advice.")
    assert new.telegram_html == draft.telegram_html and new.meta["edited_by"] == "bob"
    assert ValidationReport.from_dict(new.validation).ok and new.validation["checked_at"]
    assert queue.drafts.get(draft.id).status == "superseded"
    assert queue.drafts.get(draft.id).x_thread == draft.x_thread  # the original is kept as it was
    with pytest.raises(ReviewError, match="cannot supersede"):
        queue.edit(draft.id, "bob", markdown="again")
    # An edit that breaks the format limit is flagged and needs an override to approve.
    too_long = queue.edit(new.id, "alice", x_thread=["x" * 300])
    assert too_long.status == "flagged" and too_long.version == 3
    with pytest.raises(ReviewError, match=r"X post 1 is 300 weighted characters \(at most 280\)"):
        queue.approve(too_long.id, "alice")
    old_log = AuditLog(state.engine).for_draft(draft.id)
    assert [(e.action, e.from_status, e.to_status, e.actor) for e in old_log] == [
        ("supersede", "pending", "superseded", "bob")]
    assert old_log[0].detail["new_id"] == new.id
    created = AuditLog(state.engine).for_draft(new.id)[0]
    assert (created.action, created.to_status, created.detail["parent_id"]) == ("created", "pending", draft.id)


def test_edited_draft_without_a_validator_needs_an_override(state: StateDB) -> None:
    draft = add_draft(state)
    new = _queue(state).edit(draft.id, "alice", telegram_html="<b>fixed</b>")
    with pytest.raises(ReviewError, match="not been re-validated"):
        _queue(state).approve(new.id, "bob")
    assert _queue(state).approve(new.id, "bob", override="read it myself").changed


def test_validator_checks_limits_and_cited_items(state: StateDB, tmp_path: Path) -> None:
    validate = draft_validator(make_settings(tmp_path), state)
    draft = add_draft(state, item_ids=("missing-item",))
    assert validate(add_draft(state, "b")).ok  # cites its own stored item: grounded
    report = validate(draft)
    assert "unknown_source" in [p.code for p in report.problems]
    from dataclasses import replace

    long_tg = replace(draft, item_ids=(), telegram_html="<b>x</b>" * 600, x_thread=("ok", "y" * 281))
    too_long = {p.message for p in validate(long_tg).problems if p.code == "too_long"}
    assert too_long == {"X post 2 is 281 weighted characters (at most 280)",
                        "the Telegram message is 4800 characters (at most 4096)"}


def test_reject_expire_and_schedule(state: StateDB) -> None:
    queue = _queue(state)
    old = add_draft(state, "b", created_at=datetime.now(UTC) - timedelta(hours=60))
    scheduled_old = add_draft(state, "c", created_at=datetime.now(UTC) - timedelta(hours=60))
    fresh = add_draft(state, "d")
    queue.schedule(scheduled_old.id, "alice", datetime.now(UTC) + timedelta(hours=2))
    assert queue.expire_stale(timedelta(hours=48)) == [old.id]
    assert queue.drafts.get(old.id).status == "expired"
    assert queue.drafts.get(scheduled_old.id).status == "pending"  # its schedule counts, not its age
    with pytest.raises(ReviewError, match="cannot approve"):
        queue.approve(old.id, "alice")
    queue.reject(fresh.id, "bob", reason="off topic")
    assert queue.drafts.get(fresh.id).status == "rejected"
    with pytest.raises(ReviewError, match="only pending, flagged, approved"):
        queue.schedule(fresh.id, "alice", datetime.now(UTC))
    entry = AuditLog(state.engine).for_draft(fresh.id)[-1]
    assert (entry.actor, entry.action, entry.reason) == ("bob", "reject", "off topic")


def test_no_reject_or_edit_once_publishing_started(state: StateDB) -> None:
    queue = _queue(state)
    draft: Draft = add_draft(state)
    queue.approve(draft.id, "alice")
    outbox = Outbox(state.engine)
    row = outbox.plan(draft.id, "x", list(draft.x_thread))[0]
    assert outbox.mark_intent(row, None)
    with pytest.raises(ReviewError, match="publishing has already started"):
        queue.reject(draft.id, "bob", reason="late")
    with pytest.raises(ReviewError, match="publishing has already started"):
        queue.edit(draft.id, "bob", markdown="late edit")
    assert queue.drafts.get(draft.id).status == "approved"


def test_intent_needs_an_approved_draft(state: StateDB) -> None:
    draft = add_draft(state)
    outbox = Outbox(state.engine)
    row = outbox.plan(draft.id, "x", list(draft.x_thread))[0]
    assert not outbox.mark_intent(row, None)  # pending: the guard in the same UPDATE refuses it
    assert outbox.get(row.id).state == "queued"


def test_concurrent_plans_queue_a_draft_once(state_url: str, state: StateDB) -> None:
    # Two publish paths planning the same draft at once (separate engines, as separate processes).
    draft = add_draft(state, posts=3)
    ReviewQueue(state, reviewers=REVIEWERS).approve(draft.id, "alice")
    states = [StateDB(state_url) for _ in range(3)]
    barrier = threading.Barrier(len(states))
    outcomes: list[object] = []

    def plan(s: StateDB) -> None:
        barrier.wait()
        try:
            outcomes.append([r.id for r in Outbox(s.engine).plan(draft.id, "x", list(draft.x_thread))])
        except Exception as exc:  # the outcome under test
            outcomes.append(exc)

    threads = [threading.Thread(target=plan, args=(s,)) for s in states]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert len({tuple(o) for o in outcomes}) == 1  # type: ignore[arg-type]  (every caller sees the same rows)
    assert len(Outbox(state.engine).rows(draft.id, "x")) == 3
    assert [e.action for e in AuditLog(state.engine).for_draft(draft.id)].count("queued") == 1
    for s in states:
        s.close()
