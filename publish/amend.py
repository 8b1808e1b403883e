"""Corrections and retractions of published drafts, as outbox work: exactly once, audited, by reviewers only.

A *correction* is a reply under the X thread's first post and under the Telegram channel message; its text is
checked by the grounding validator like any draft. A *retraction* moves the draft to ``retracted`` (so no more of
it goes out), blocks its queued parts and deletes every part that went out. Each request is one ``amendments``
row (unique per draft and text, so a repeated command resumes it) with one step per remote action. A step moves
like an outbox part: ``queued → intent → sent``, the intent committed before the call. A reply left ``intent`` /
``unknown`` by a crash is looked for among our own X posts (adopted if found, sent again only if surely absent);
on Telegram, which cannot list a channel, it goes to ``needs_check``. A delete is safe to repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, insert, select, update

from crew.model import ValidationReport
from memory import schema
from memory.drafts import Draft
from publish.audit import record
from publish.channel import Ambiguous, Channel, Rejected, Retryable, Sent
from publish.outbox import FAILED, INTENT, NEEDS_CHECK, QUEUED, SENT, UNKNOWN
from publish.review import ReviewError, ReviewQueue

CORRECTION, RETRACTION = "correction", "retraction"
REPLY, DELETE = "reply", "delete"
SETTLED = (SENT, FAILED, NEEDS_CHECK)


class Amendable(Channel, Protocol):
    """A channel that can also reply to and delete its own posts."""

    async def reply(self, text: str, reply_to: str) -> Sent:
        """Reply to one of our posts."""

    async def delete(self, remote_id: str) -> bool:
        """Delete one of our posts; False when it was already gone."""


@dataclass(frozen=True)
class Step:
    """One remote action of an amendment."""

    id: int
    amendment_id: int
    draft_id: str
    channel: str
    op: str
    target: str
    text: str
    state: str
    remote_id: str | None
    url: str | None
    attempts: int
    error: str | None
    intent_at: datetime | None
    sent_at: datetime | None


@dataclass(frozen=True)
class Amendment:
    """A correction or a retraction of one draft, with its steps."""

    id: int
    draft_id: str
    kind: str
    text: str
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None
    steps: tuple[Step, ...] = ()

    @property
    def done(self) -> bool:
        """Every step went through."""
        return all(s.state == SENT for s in self.steps)


@dataclass
class AmendReport:
    """What one pass over the open amendments did."""

    sent: int = 0
    adopted: int = 0  # replies found among our own posts after a crash
    needs_check: int = 0
    failed: list[str] = field(default_factory=list)
    waiting: int = 0


class Amender:
    """Request corrections and retractions, and carry them out over the publishing channels."""

    def __init__(self, queue: ReviewQueue, *, disclaimer: str | None = None, settle: timedelta = timedelta(0),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.queue = queue
        self.settle = settle  # let a timed-out reply show among our posts before looking for it
        self.engine = queue.state.engine
        self.disclaimer = (disclaimer or "").strip()
        self.clock = clock

    # -- requests -----------------------------------------------------------------------------------
    def correct(self, draft_id: str, text: str, reviewer: str) -> Amendment:
        """Queue a correction of a published draft (once per text), after grounding checks it."""
        self.queue.check_reviewer(reviewer)
        draft = self.queue.drafts.get(draft_id)
        posted = self.wording(text)
        key = hashlib.sha256(" ".join(posted.split()).casefold().encode()).hexdigest()
        existing = self._find(draft.id, CORRECTION, key)
        if existing is not None:
            return existing
        if draft.status == "retracted":
            raise ReviewError(f"draft {draft.id[:12]} is retracted; there is nothing left to correct")
        targets = self._first_parts(draft.id)
        if not targets:
            raise ReviewError(f"nothing of draft {draft.id[:12]} went out; edit or reject it instead")
        report = self._validate(draft, posted)
        if not report.ok:
            raise ReviewError("the correction does not pass the grounding check: "
                              + "; ".join(f"[{p.code}] {p.message}" for p in report.problems)[:1500])
        steps = [(channel, REPLY, target, html.escape(posted) if channel == "telegram" else posted)
                 for channel, target in targets.items()]
        return self._store(draft.id, CORRECTION, key, posted, reviewer, steps, report.to_dict())

    def retract(self, draft_id: str, reason: str, reviewer: str) -> Amendment:
        """Retract a draft: nothing more of it goes out, and every part that did is deleted."""
        self.queue.check_reviewer(reviewer)
        if not reason.strip():
            raise ReviewError("a retraction needs a reason (--reason)")
        draft = self.queue.drafts.get(draft_id)
        existing = self._find(draft.id, RETRACTION, RETRACTION)
        if existing is not None:
            return existing
        holder: dict[str, int] = {}

        def write(conn: Connection, _from: str) -> None:
            o = schema.outbox
            rows = conn.execute(select(o).where(o.c.draft_id == draft.id, o.c.dry_run == 0)
                                .order_by(o.c.channel, o.c.part)).all()
            steps = [(r.channel, DELETE, r.remote_id, "") for r in rows if r.state == SENT and r.remote_id]
            unsure = [r for r in rows if r.state in (INTENT, UNKNOWN, NEEDS_CHECK)]
            steps += [(r.channel, DELETE, f"row:{r.id}", r.text) for r in unsure]
            s = schema.amendment_steps  # corrections already posted under it go with it
            steps += [(r.channel, DELETE, r.remote_id, "") for r in conn.execute(select(s).where(
                s.c.draft_id == draft.id, s.c.op == REPLY, s.c.state == SENT)).all() if r.remote_id]
            conn.execute(update(o).where(o.c.draft_id == draft.id, o.c.dry_run == 0, o.c.state == QUEUED)
                         .values(state="blocked", error=f"retracted: {reason}"[:500], updated_at=self.clock()))
            holder["id"] = self._insert(conn, draft.id, RETRACTION, RETRACTION, reason.strip(), reviewer, steps,
                                        {}, needs_check={f"row:{r.id}" for r in unsure})

        self.queue._move(draft.id, "retract", reviewer, reason=reason.strip(), also=write)
        return self._load(holder["id"])

    def wording(self, text: str) -> str:
        """What a correction posts: the text, marked as a correction, with the disclaimer when it lacks one."""
        body = " ".join(text.split())
        if not body:
            raise ReviewError("a correction needs its text (--text)")
        if not body.casefold().startswith("correction"):
            body = f"Correction: {body}"
        if self.disclaimer and self.disclaimer.casefold() not in body.casefold():
            end = "" if body[-1] in ".!?" else "."  # a sentence of its own, or "… not this week Not…" reads negated
            body = f"{body}{end} {self.disclaimer}"
        return body

    # -- carrying them out ---------------------------------------------------------------------------
    async def run(self, channels: Mapping[str, Channel], draft_id: str | None = None) -> AmendReport:
        """Carry out every open step (of one draft, if given) on the channels at hand."""
        report = AmendReport()
        for amendment in self.open(draft_id):
            for step in amendment.steps:
                channel = channels.get(step.channel)
                if step.state in SETTLED:
                    continue
                if channel is None:
                    report.waiting += 1
                    continue
                await self._carry(channel, step, report)
            self._maybe_finish(amendment.id)
        return report

    async def _carry(self, channel: Channel, step: Step, report: AmendReport) -> None:
        if step.state in (INTENT, UNKNOWN):
            if step.op == REPLY and not await self._settle_reply(channel, step, report):
                return
            step = self._get(step.id)
        if not self._move(step, (QUEUED, INTENT, UNKNOWN) if step.op == DELETE else (QUEUED,), INTENT, "intent",
                          intent_at=self.clock(), attempts=schema.amendment_steps.c.attempts + 1, error=None):
            return
        step = self._get(step.id)
        try:
            if step.op == REPLY:
                sent = await channel.reply(step.text, step.target)  # type: ignore[attr-defined]
                self._move(step, (INTENT,), SENT, "sent", remote_id=sent.remote_id, url=sent.url,
                           sent_at=self.clock())
            else:
                gone = await channel.delete(step.target)  # type: ignore[attr-defined]
                self._move(step, (INTENT,), SENT, "deleted", sent_at=self.clock(),
                           error=None if gone else "already gone")
            report.sent += 1
        except Retryable as exc:
            self._move(step, (INTENT,), QUEUED, "requeued", error=str(exc)[:500])
            report.waiting += 1
        except Rejected as exc:
            self._move(step, (INTENT,), FAILED, "failed", error=str(exc)[:500])
            report.failed.append(f"{step.channel} {step.op} {step.target}: {exc}")
        except Ambiguous as exc:
            if step.op == DELETE:  # a delete may be repeated safely
                self._move(step, (INTENT,), QUEUED, "requeued", error=str(exc)[:500])
                report.waiting += 1
                return
            self._move(step, (INTENT,), UNKNOWN, "unknown", error=str(exc)[:500])
            await self._settle_reply(channel, self._get(step.id), report)

    async def _settle_reply(self, channel: Channel, step: Step, report: AmendReport) -> bool:
        """A reply that may have gone out: adopt it, requeue it (True: send it now), or leave it for later."""
        if not channel.reconcilable:
            self._move(step, (INTENT, UNKNOWN), NEEDS_CHECK, "needs_check",
                       error="may have been sent; the Bot API cannot check, so a person must")
            report.needs_check += 1
            return False
        since = step.intent_at or self.clock()
        wait = (since + self.settle - self.clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        lookup = await channel.find(step.text, step.target, since)
        if lookup.found is not None:
            self._move(step, (INTENT, UNKNOWN), SENT, "reconciled", remote_id=lookup.found.remote_id,
                       url=lookup.found.url, sent_at=self.clock(), error=None)
            report.adopted += 1
            return False
        if lookup.complete:
            return self._move(step, (INTENT, UNKNOWN), QUEUED, "requeued",
                              error="not among our own posts; safe to send")
        self._move(step, (INTENT,), UNKNOWN, "unknown", error="search did not cover the whole window")
        report.waiting += 1
        return False

    def resolve(self, step_id: int, reviewer: str, *, sent: str | None = None, not_sent: bool = False,
                done: bool = False) -> Step:
        """A person settles a step only they can judge: a reply that may have gone out, a delete left to them."""
        self.queue.check_reviewer(reviewer)
        step = self._get(step_id)
        url = None
        if step.op == REPLY and sent is not None:
            to, values = SENT, {"remote_id": sent, "sent_at": self.clock(), "error": f"{reviewer} confirmed it"}
            if step.channel == "x":
                url = f"https://x.com/i/web/status/{sent}"
        elif step.op == REPLY and not_sent:
            to, values = QUEUED, {"error": f"{reviewer} confirmed it did not go out"}
        elif step.op == DELETE and done:
            to, values = SENT, {"sent_at": self.clock(), "error": f"{reviewer} settled it by hand"}
        else:
            raise ReviewError("a reply step takes --sent ID or --not-sent; a delete step takes --done")
        if not self._move(step, (NEEDS_CHECK, UNKNOWN, FAILED), to, "resolved", actor=reviewer, url=url, **values):
            raise ReviewError(f"step {step_id} is {step.state}; only steps waiting for a person are resolved by hand")
        self._maybe_finish(step.amendment_id)
        return self._get(step_id)

    # -- reading -----------------------------------------------------------------------------------
    def open(self, draft_id: str | None = None) -> list[Amendment]:
        """Amendments not finished yet, oldest first."""
        a = schema.amendments
        q = select(a.c.id).where(a.c.finished_at.is_(None)).order_by(a.c.id)
        if draft_id is not None:
            q = q.where(a.c.draft_id == draft_id)
        with self.engine.connect() as conn:
            ids = list(conn.execute(q).scalars())
        return [self._load(i) for i in ids]

    def of_draft(self, draft_id: str) -> list[Amendment]:
        """Every amendment of one draft, oldest first (what the archive shows)."""
        a = schema.amendments
        with self.engine.connect() as conn:
            ids = list(conn.execute(select(a.c.id).where(a.c.draft_id == draft_id).order_by(a.c.id)).scalars())
        return [self._load(i) for i in ids]

    # -- storage -----------------------------------------------------------------------------------
    def _validate(self, draft: Draft, posted: str) -> ValidationReport:
        """The grounding check of the correction as a draft of its own, citing what the draft cited."""
        if self.queue.validator is None:
            raise ReviewError("no grounding validator is configured; a correction cannot be checked")
        copy = replace(draft, x_thread=(posted,), telegram_html=html.escape(posted), markdown=posted, meta={},
                       validation={})
        return replace(self.queue.validator(copy), checked_at=self.clock())

    def _first_parts(self, draft_id: str) -> dict[str, str]:
        """Channel → remote id of the draft's first part, where it went out."""
        o = schema.outbox
        with self.engine.connect() as conn:
            rows = conn.execute(select(o.c.channel, o.c.remote_id).where(
                o.c.draft_id == draft_id, o.c.dry_run == 0, o.c.part == 0, o.c.state == SENT)).all()
        return {r.channel: r.remote_id for r in sorted(rows, key=lambda r: r.channel != "x") if r.remote_id}

    def _store(self, draft_id: str, kind: str, key: str, text: str, actor: str,
               steps: list[tuple[str, str, str, str]], validation: dict[str, Any]) -> Amendment:
        with self.engine.begin() as conn:
            amendment_id = self._insert(conn, draft_id, kind, key, text, actor, steps, validation)
        return self._load(amendment_id)

    def _insert(self, conn: Connection, draft_id: str, kind: str, key: str, text: str, actor: str,
                steps: list[tuple[str, str, str, str]], validation: dict[str, Any],
                needs_check: AbstractSet[str] = frozenset()) -> int:
        now = self.clock()
        a, s = schema.amendments, schema.amendment_steps
        inserted = conn.execute(insert(a).values(
            draft_id=draft_id, kind=kind, key=key, text=text, requested_by=actor[:100], via=self.queue.via,
            requested_at=now, validation=json.dumps(validation, default=str))).inserted_primary_key
        amendment_id = int(inserted[0]) if inserted is not None else 0
        if steps:
            conn.execute(insert(s), [
                {"amendment_id": amendment_id, "draft_id": draft_id, "channel": channel, "op": op, "target": target,
                 "text": body, "state": NEEDS_CHECK if target in needs_check else QUEUED,
                 "error": "this part may have gone out; check the channel and delete it by hand"
                 if target in needs_check else None, "created_at": now, "updated_at": now}
                for channel, op, target, body in steps])
        record(conn, at=now, draft_id=draft_id, actor=actor, via=self.queue.via, action=f"{kind}_queued",
               reason=text[:500], detail={"amendment": amendment_id, "steps": [f"{c} {o}" for c, o, _, _ in steps]})
        return amendment_id

    def _move(self, step: Step, from_states: tuple[str, ...], to: str, action: str, *, actor: str = "publisher",
              **values: Any) -> bool:
        s = schema.amendment_steps
        now = self.clock()
        with self.engine.begin() as conn:
            changed = conn.execute(update(s).where(s.c.id == step.id, s.c.state.in_(from_states))
                                   .values(state=to, updated_at=now, **values)).rowcount
            if changed != 1:
                return False
            kind = "correction" if step.op == REPLY else "retraction"
            record(conn, at=now, draft_id=step.draft_id, actor=actor,
                   via=self.queue.via, action=f"{kind}_{action}", channel=step.channel, reason=values.get("error"),
                   detail={"step": step.id, "op": step.op, "target": step.target, "from": step.state, "to": to,
                           **{k: v for k, v in values.items() if k in ("remote_id", "url")}})
        return True

    def _maybe_finish(self, amendment_id: int) -> None:
        amendment = self._load(amendment_id)
        if amendment.done:
            a = schema.amendments
            with self.engine.begin() as conn:
                conn.execute(update(a).where(a.c.id == amendment_id, a.c.finished_at.is_(None))
                             .values(finished_at=self.clock()))

    def _find(self, draft_id: str, kind: str, key: str) -> Amendment | None:
        a = schema.amendments
        with self.engine.connect() as conn:
            found = conn.execute(select(a.c.id).where(a.c.draft_id == draft_id, a.c.kind == kind,
                                                      a.c.key == key)).scalar()
        return self._load(int(found)) if found is not None else None

    def _load(self, amendment_id: int) -> Amendment:
        a, s = schema.amendments, schema.amendment_steps
        with self.engine.connect() as conn:
            row = conn.execute(select(a).where(a.c.id == amendment_id)).one()
            steps = conn.execute(select(s).where(s.c.amendment_id == amendment_id).order_by(s.c.id)).all()
        return Amendment(row.id, row.draft_id, row.kind, row.text, row.requested_by, row.requested_at,
                         row.finished_at, tuple(_step(r) for r in steps))

    def _get(self, step_id: int) -> Step:
        s = schema.amendment_steps
        with self.engine.connect() as conn:
            return _step(conn.execute(select(s).where(s.c.id == step_id)).one())


def _step(r: Any) -> Step:
    return Step(r.id, r.amendment_id, r.draft_id, r.channel, r.op, r.target, r.text, r.state, r.remote_id, r.url,
                r.attempts, r.error, r.intent_at, r.sent_at)


def public_notes(engine: Engine, draft_id: str) -> list[dict[str, Any]]:
    """What the archive page shows, newest first: each correction once it went out, and a retraction."""
    a, s = schema.amendments, schema.amendment_steps
    with engine.connect() as conn:
        rows = conn.execute(select(a).where(a.c.draft_id == draft_id).order_by(a.c.id)).all()
        if not rows:  # most briefs: no second query on every permalink view
            return []
        sent = dict(conn.execute(select(s.c.amendment_id, func.min(s.c.sent_at)).where(
            s.c.draft_id == draft_id, s.c.op == REPLY, s.c.state == SENT).group_by(s.c.amendment_id)).all())
    notes = [{"kind": r.kind, "at": sent[r.id] if r.kind == CORRECTION else r.requested_at, "text": r.text}
             for r in rows if r.kind == RETRACTION or sent.get(r.id) is not None]
    return sorted(notes, key=lambda n: n["at"], reverse=True)
