"""The Telegram review desk: review cards and reviewer actions over the same review queue as the CLI."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime

from crew.model import ValidationReport
from crew.render import TELEGRAM_LIMIT
from memory.drafts import Draft
from publish.amend import Amender
from publish.audit import record
from publish.review import ReviewError, ReviewQueue
from tapewatch.bot.messages import fit_html
from tapewatch.bot.review import Card, Outcome

ACTIONS_BY_STATUS: dict[str, tuple[str, ...]] = {
    "pending": ("approve", "reject", "edit"),
    "flagged": ("reject", "edit"),  # approving a flagged draft takes /override with a reason
    "approved": ("publish", "reject"),
    "published": ("correct", "retract"),  # corrections and retractions go out through the outbox (publish/amend.py)
    "failed": ("retract",),  # a thread cut short: what did go out can be deleted
}


def card_html(draft: Draft) -> str:
    """Header, validation report and cost, then as much of the Telegram text as fits one message."""
    report = ValidationReport.from_dict(draft.validation)
    head = [f"📝 <b>Draft {draft.id[:8]}</b> · v{draft.version} · {html.escape(draft.mode)} · "
            f"<b>{html.escape(draft.status)}</b>"]
    focus = " ".join(f"${t}" for t in draft.tickers[:6])
    if draft.topic or focus:
        head.append(html.escape(" · ".join(x for x in (draft.topic, focus) if x)))
    if report.checked_at is None:
        head.append("Grounding: not checked")
    elif report.ok:
        head.append("✅ Grounding: every claim traced to stored sources"
                    + (f" ({html.escape(report.summary)})" if report.claims else ""))
    else:
        head.append(f"⚠️ Grounding: {html.escape(report.summary)}" if report.claims
                    else f"⚠️ Grounding: {len(report.blocking)} problem(s)")
        head += [f"• {html.escape(p.message[:300])}" for p in report.blocking[:5]]  # clip, then escape
        if draft.status == "flagged":
            head.append(f"Approve anyway only with <code>/override {draft.id[:12]} your reason</code>")
    for channel, problems in sorted(report.blocked().items()):
        # A compliance profile refuses this channel whatever the reviewer does; the other channels still go.
        head.append(f"⛔ <b>Blocked on {html.escape(channel)}</b> (no override): " + "; ".join(
            html.escape(f"{p.profile}/{p.rule}: {p.message[:160]} — {p.source[:120]}") for p in problems[:3]))
    cost = draft.meta.get("cost_usd")
    if isinstance(cost, int | float):
        head.append(f"Cost ${cost:.4f} · {html.escape(', '.join(map(str, draft.meta.get('models', []))))}")
    more = "\n<i>… (continues; `tapewatch drafts show` has all of it)</i>"
    return fit_html("\n".join(head) + "\n\n" + draft.telegram_html, TELEGRAM_LIMIT, more)


class QueueDesk:
    """``ReviewDesk`` over ``ReviewQueue`` (via="telegram"); ``publish_soon`` asks the daemon to publish now."""

    def __init__(self, queue: ReviewQueue, *, publish_soon: Callable[[], None] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), amender: Amender | None = None) -> None:
        self.queue = queue
        self.publish_soon = publish_soon
        self.clock = clock
        self.amender = amender if amender is not None else Amender(queue, clock=clock)

    def card(self, draft_id: str) -> Card:
        """The draft's card and the buttons its status allows."""
        draft = self.queue.drafts.get(draft_id)
        actions = ACTIONS_BY_STATUS.get(draft.status, ())
        if "publish" in actions and self.publish_soon is None:
            actions = tuple(a for a in actions if a != "publish")
        return Card(draft.id, card_html(draft), actions)

    def act(self, draft_id: str, action: str, reviewer: str, *, text: str | None = None,
            reason: str | None = None) -> Outcome:
        """Apply a reviewer's action through the review queue (its errors reach the reviewer as text)."""
        try:
            return self._act(draft_id, action, reviewer, text, reason)
        except ReviewError:
            raise
        except Exception as exc:
            raise ReviewError(str(exc)) from exc

    def _act(self, draft_id: str, action: str, reviewer: str, text: str | None, reason: str | None) -> Outcome:
        q = self.queue
        if action in ("approve", "override"):
            if action == "override" and not (reason and reason.strip()):
                raise ReviewError("an override needs a reason")
            t = q.approve(draft_id, reviewer, override=reason if action == "override" else None)
            return Outcome("Approved." if t.changed else "Already approved.", t.draft_id, t.changed)
        if action == "reject":
            t = q.reject(draft_id, reviewer, reason=reason or "rejected in Telegram")
            return Outcome("Rejected." if t.changed else "Already rejected.", t.draft_id, t.changed)
        if action == "edit":
            new = q.edit(draft_id, reviewer, telegram_html=text or "")
            verdict = "passes grounding" if new.status == "pending" else "is flagged by grounding"
            return Outcome(f"Saved as version {new.version} ({new.id[:8]}); it {verdict}.", new.id)
        if action in ("correct", "retract"):
            if action == "correct":
                amendment = self.amender.correct(draft_id, text or "", reviewer)
            else:
                amendment = self.amender.retract(draft_id, reason or "", reviewer)
            what = "Correction" if action == "correct" else "Retraction"
            if amendment.done:
                return Outcome(f"{what} already done.", amendment.draft_id, changed=False)
            if self.publish_soon is not None:
                self.publish_soon()  # the publish run carries out open corrections and retractions
                return Outcome(f"{what} queued; it goes out now.", amendment.draft_id)
            return Outcome(f"{what} queued; the next publish run carries it out.", amendment.draft_id)
        if action == "publish":
            draft = q.drafts.get(draft_id)
            if draft.status == "published":
                # A scheduled run got there first (the tap and the run race): nothing left to do.
                return Outcome("Already published.", draft.id, changed=False)
            if draft.status != "approved":
                raise ReviewError(f"draft {draft.id[:12]} is {draft.status}; approve it first")
            if self.publish_soon is None:
                raise ReviewError("publishing is not running in this process")
            q.schedule(draft.id, reviewer, self.clock())
            self.publish_soon()
            return Outcome("Publishing now.", draft.id, changed=False)
        raise ReviewError(f"unknown action {action!r}")

    def refused(self, draft_id: str, action: str, who: str) -> None:
        """Write the refused attempt to the audit log (draft ids from buttons are trusted only as text)."""
        with self.queue.state.engine.begin() as conn:
            record(conn, at=self.clock(), draft_id=draft_id[:32], actor=who[:100], via="telegram",
                   action="refused", reason=f"not a reviewer: tried to {action}"[:200])
