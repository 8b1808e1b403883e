"""The draft state machine: every move is a compare-and-set on the draft's status plus its audit entry,
committed together, so a double approval is a no-op and two reviewers can never both win.

::

    pending ──approve──► approved ──(publisher)──► published
       │  └──reject──► rejected          └──(publisher)──► failed
       └─flag (grounding failed)─► flagged ──approve with an override reason──► approved
    pending / flagged / approved ──edit──► superseded   (+ a new draft: version + 1, parent_id, re-validated)
    pending / flagged / approved ──(older than review.expire_after)──► expired
    approved / published / failed ──retract (a reviewer, with a reason)──► retracted

Once any part of a draft has left the outbox queue it can no longer be edited, rejected or expired.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import OperationalError

from crew.model import ValidationReport
from memory import schema
from memory.drafts import Draft, DraftStore
from memory.state import StateDB
from publish.audit import record
from publish.outbox import started
from sources.durations import format_duration
from sources.errors import PublishError

Validator = Callable[[Draft], ValidationReport]

# action → (statuses it may start from, status it ends in)
MOVES: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({"pending", "flagged"}), "approved"),
    "reject": (frozenset({"pending", "flagged", "approved"}), "rejected"),
    "flag": (frozenset({"pending"}), "flagged"),
    "expire": (frozenset({"pending", "flagged", "approved"}), "expired"),
    "supersede": (frozenset({"pending", "flagged", "approved"}), "superseded"),
    "publish": (frozenset({"approved"}), "published"),
    "fail": (frozenset({"approved"}), "failed"),
    # A retraction (publish/amend.py) stops what has not gone out and deletes what has.
    "retract": (frozenset({"approved", "published", "failed"}), "retracted"),
}
OPEN = ("pending", "flagged", "approved")


class ReviewError(PublishError):
    """A review action that is not allowed: unknown reviewer, wrong status, missing override."""


@dataclass(frozen=True)
class Transition:
    """The outcome of a move; ``changed`` is False when the draft was already there (idempotent)."""

    draft_id: str
    from_status: str
    to_status: str
    changed: bool


class ReviewQueue:
    """Review actions on drafts, by named reviewers, with the grounding validator injected."""

    def __init__(self, state: StateDB, *, reviewers: Sequence[str] = (), validator: Validator | None = None,
                 via: str = "cli", clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 actor_label: Callable[[str], str] | None = None) -> None:
        self.state = state
        # How a reviewer is named in the audit log: the CLI adds the OS account beside a claimed --as name.
        self.label = actor_label or (lambda name: name)
        self.drafts = DraftStore(state)
        self.reviewers = tuple(reviewers)
        self.validator = validator
        self.via = via
        self.clock = clock

    def check_reviewer(self, name: str | None) -> str:
        """The reviewer's name if settings know it; a clear error otherwise."""
        if not self.reviewers:
            raise ReviewError("no reviewers are configured: add them to settings, e.g. [review] reviewers = "
                              "[\"alice\"]")
        if not name:
            raise ReviewError("who is reviewing? pass --as NAME or set review.reviewer "
                              "(TAPEWATCH_REVIEW__REVIEWER); known reviewers: " + ", ".join(self.reviewers))
        if name not in self.reviewers:
            raise ReviewError(f"{name!r} is not a reviewer; known reviewers: {', '.join(self.reviewers)} "
                              "(settings review.reviewers)")
        return name

    def refused(self, draft_id: str, action: str, actor: str, reason: str) -> None:
        """Write a refused attempt to the audit log (``draft_id`` as given, or the draft a prefix names)."""
        with contextlib.suppress(Exception):  # no such draft, or an ambiguous prefix: the text as given
            draft_id = self.drafts.get(draft_id).id
        with self.state.engine.begin() as conn:
            record(conn, at=self.clock(), draft_id=draft_id[:32], actor=actor[:100], via=self.via, action="refused",
                   reason=f"{action}: {reason}"[:500])

    def approve(self, draft_id: str, reviewer: str, *, override: str | None = None) -> Transition:
        """Approve a pending draft; a flagged, failing or unvalidated edited draft needs an override reason."""
        self.check_reviewer(reviewer)
        draft = self.drafts.get(draft_id)
        if draft.status == "approved":
            return Transition(draft.id, "approved", "approved", changed=False)
        report = ValidationReport.from_dict(draft.validation)
        blockers: list[str] = []
        if draft.status == "flagged" or not report.ok:
            blockers += [p.message for p in report.blocking] or ["flagged by the grounding check"]
        if draft.parent_id is not None and report.checked_at is None:
            blockers.append("this edited version has not been re-validated")
        if blockers and not (override and override.strip()):
            raise ReviewError(f"draft {draft.id[:12]} cannot be approved as it is: {'; '.join(blockers)}. "
                              "Fix it with `drafts edit`, or approve with --override REASON")
        detail: dict[str, Any] = {"override": bool(blockers), "problems": blockers} if blockers else {}
        return self._move(draft.id, "approve", self.label(reviewer), reason=override if blockers else None,
                          detail=detail)

    def auto_approve(self, draft_id: str) -> Transition:
        """The auto policy approves a pending draft whose grounding report is checked and clean."""
        draft = self.drafts.get(draft_id)
        report = ValidationReport.from_dict(draft.validation)
        if draft.status != "pending" or report.checked_at is None or not report.ok:
            raise ReviewError(f"draft {draft.id[:12]} did not pass grounding; the auto policy leaves it")
        return self._move(draft.id, "approve", "policy", reason="auto policy: grounding passed")

    def reject(self, draft_id: str, reviewer: str, *, reason: str) -> Transition:
        """Reject a draft that has not started publishing."""
        self.check_reviewer(reviewer)
        return self._move(self.drafts.get(draft_id).id, "reject", self.label(reviewer), reason=reason or None)

    def edit(self, draft_id: str, reviewer: str, *, x_thread: Sequence[str] | None = None,
             telegram_html: str | None = None, markdown: str | None = None) -> Draft:
        """Save an edited copy (version + 1, re-validated) and mark the original superseded."""
        self.check_reviewer(reviewer)
        old = self.drafts.get(draft_id)
        changes: dict[str, Any] = {}
        if x_thread is not None and tuple(x_thread) != old.x_thread:
            if not [p for p in x_thread if p.strip()]:
                raise ReviewError("an X thread needs at least one post")
            changes["x_thread"] = tuple(p.strip() for p in x_thread if p.strip())
        if telegram_html is not None and telegram_html.strip() != old.telegram_html:
            changes["telegram_html"] = telegram_html.strip()
        if markdown is not None and markdown.strip() != old.markdown:
            changes["markdown"] = markdown.strip()
        if not changes:
            raise ReviewError("nothing changed; the draft stays as it is")
        now = self.clock()
        new = replace(old, id=uuid.uuid4().hex, created_at=now, status="pending", version=old.version + 1,
                      parent_id=old.id, validation={}, meta={**old.meta, "edited_by": reviewer},
                      **changes)
        if self.validator is not None:
            report = replace(self.validator(new), checked_at=now)
            new = replace(new, validation=report.to_dict(), status="pending" if report.ok else "flagged")

        def write(conn: Connection, current: str) -> None:
            self.drafts.save(new, conn)
            record(conn, at=now, draft_id=new.id, actor=self.label(reviewer), via=self.via, action="created",
                   to_status=new.status, detail={"parent_id": old.id, "version": new.version,
                                                 "changed": sorted(changes), "validation": new.validation})

        self._move(old.id, "supersede", self.label(reviewer), reason=f"edited into {new.id}", detail={"new_id": new.id},
                   also=write, strict=True)
        return new

    def validate(self, draft_id: str, actor: str = "validator") -> ValidationReport:
        """Run the grounding validator, store its report, and flag a pending draft that fails."""
        if self.validator is None:
            raise ReviewError("no grounding validator is configured")
        draft = self.drafts.get(draft_id)
        report = replace(self.validator(draft), checked_at=self.clock())
        d = schema.drafts
        with self.state.engine.begin() as conn:
            conn.execute(update(d).where(d.c.id == draft.id).values(validation=_json(report.to_dict())))
            record(conn, at=self.clock(), draft_id=draft.id, actor=actor, via=self.via, action="validated",
                   from_status=draft.status, to_status=draft.status, detail=report.to_dict())
        if not report.ok and draft.status == "pending":
            self._move(draft.id, "flag", actor, reason="; ".join(p.message for p in report.blocking)[:1000])
        return report

    def schedule(self, draft_id: str, reviewer: str, at: datetime) -> None:
        """Publish no earlier than ``at`` (replaces an earlier schedule)."""
        self.check_reviewer(reviewer)
        draft = self.drafts.get(draft_id)
        if draft.status not in OPEN:
            raise ReviewError(f"draft {draft.id[:12]} is {draft.status}; only {', '.join(OPEN)} drafts can be "
                              "scheduled")
        s = schema.draft_schedule
        now = self.clock()
        with self.state.engine.begin() as conn:
            conn.execute(delete(s).where(s.c.draft_id == draft.id))
            conn.execute(insert(s).values(draft_id=draft.id, publish_at=at, set_by=reviewer, set_at=now))
            record(conn, at=now, draft_id=draft.id, actor=self.label(reviewer), via=self.via, action="scheduled",
                   from_status=draft.status, to_status=draft.status, detail={"publish_at": at.isoformat()})

    def scheduled(self, draft_ids: Sequence[str]) -> dict[str, datetime]:
        """When each of these drafts is scheduled, if it is."""
        s = schema.draft_schedule
        with self.state.engine.connect() as conn:
            rows = conn.execute(select(s.c.draft_id, s.c.publish_at).where(s.c.draft_id.in_(list(draft_ids))))
            return {r.draft_id: r.publish_at for r in rows}

    def finish(self, draft_id: str, status: str, *, reason: str | None = None,
               detail: dict[str, Any] | None = None) -> Transition:
        """The publisher's verdict: ``published`` or ``failed``."""
        return self._move(draft_id, "publish" if status == "published" else "fail", "publisher", reason=reason,
                          detail=detail)

    def expire_stale(self, max_age: timedelta) -> list[str]:
        """Expire open drafts older than ``max_age`` (from creation, or from their schedule if later)."""
        now = self.clock()
        d = schema.drafts
        with self.state.engine.connect() as conn:
            rows = conn.execute(select(d.c.id, d.c.created_at).where(d.c.status.in_(OPEN),
                                                                    d.c.created_at < now - max_age)).all()
        when = self.scheduled([r.id for r in rows])
        expired = []
        for r in rows:
            if max(r.created_at, when.get(r.id, r.created_at)) >= now - max_age:
                continue
            try:
                if self._move(r.id, "expire", "system", reason=f"older than {format_duration(max_age)}").changed:
                    expired.append(r.id)
            except ReviewError:
                continue  # publishing already started: it finishes instead
        return expired

    # -- the one place a status changes ------------------------------------------------------------
    def _move(self, draft_id: str, action: str, actor: str, *, reason: str | None = None,
              detail: dict[str, Any] | None = None, also: Callable[[Connection, str], None] | None = None,
              strict: bool = False) -> Transition:
        allowed, to = MOVES[action]
        for attempt in range(3):
            try:
                return self._try_move(draft_id, action, actor, allowed, to, reason, detail, also, strict)
            except OperationalError as exc:  # a lock timeout, or the compare-and-set lost: read again
                if attempt == 2:
                    raise ReviewError(f"draft {draft_id[:12]} is busy; try again ({exc.orig})") from exc
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _try_move(self, draft_id: str, action: str, actor: str, allowed: frozenset[str], to: str,
                  reason: str | None, detail: dict[str, Any] | None,
                  also: Callable[[Connection, str], None] | None, strict: bool) -> Transition:
        d = schema.drafts
        now = self.clock()
        with self.state.engine.begin() as conn:
            # Take the row's write lock before reading (SQLite: the database's, waiting on busy_timeout;
            # PostgreSQL: the row's), so the status we compare against is the latest committed one.
            conn.execute(update(d).where(d.c.id == draft_id).values(status=d.c.status))
            current = conn.execute(select(d.c.status).where(d.c.id == draft_id)).scalar()
            if current is None:
                raise ReviewError(f"no draft {draft_id!r}")
            if current == to and not strict:
                return Transition(draft_id, current, to, changed=False)
            if current not in allowed:
                raise ReviewError(f"cannot {action} draft {draft_id[:12]}: it is {current}")
            if action in ("reject", "expire", "supersede") and started(conn, draft_id):
                raise ReviewError(f"cannot {action} draft {draft_id[:12]}: publishing has already started")
            changed = conn.execute(update(d).where(d.c.id == draft_id, d.c.status == current)
                                   .values(status=to)).rowcount
            if changed != 1:  # another actor moved it between our read and our write
                raise OperationalError("compare-and-set lost", None, Exception("status changed"))
            record(conn, at=now, draft_id=draft_id, actor=actor, via=self.via, action=action,
                   from_status=current, to_status=to, reason=reason, detail=detail)
            if also is not None:
                also(conn, current)
        return Transition(draft_id, current, to, changed=True)


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, default=str)
