"""A publish run: reconcile what a crash or timeout left unsettled, then send due drafts through the outbox.

Exactly once: each part's intent is committed before the call and its remote id right after. A part left
``intent`` / ``unknown`` is never resent blindly. On X we search the account's own posts since the intent
(same normalised text, same parent): found → adopt its id; absent over the whole searched window → send again;
search incomplete or failed → leave it ``unknown`` for the next run. On Telegram, whose Bot API cannot list a
channel's posts, the part goes to ``needs_check`` for a person (``tapewatch publish resolve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from crew.model import ValidationReport
from memory import schema
from memory.calls import record_calls
from memory.drafts import Draft
from publish.audit import record
from publish.channel import Ambiguous, Channel, Media, Rejected, Retryable, Sent
from publish.lease import Lease
from publish.outbox import BLOCKED, FAILED, INTENT, QUEUED, SENT, UNKNOWN, Outbox, OutboxRow, started
from publish.policy import DuplicateGuard, PublishPolicy
from publish.review import ReviewError, ReviewQueue
from sources.durations import format_duration
from sources.errors import PublishError

Sleep = Callable[[float], Awaitable[None]]
MediaFor = Callable[[Draft, str], "Media | None"]  # the image a draft's first part carries on a channel
# Told of every part that went out (found by reconciliation too): (draft id, channel, part, text, when).
OnSent = Callable[[str, str, int, str, datetime], None]
# Raises PublishError when posting ``planned`` USD more on a channel would pass its budget.
BudgetCheck = Callable[[str, float, datetime], None]
# (draft, channel) → why a compliance profile refuses the draft there ('' if none): ``crew.grounding.refusal``.
Gate = Callable[[Draft, str], str]
log = logging.getLogger(__name__)
MAX_DRAFT_ERRORS = 3  # publish runs that may fail on one draft already under way before it is failed


class _Stop(Exception):
    """End this run early (a rate-limit wait longer than allowed, or the lease was lost)."""


@dataclass
class RunReport:
    """What one publish run did."""

    dry_run: bool = False
    expired: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # started, not finished: unknown / needs_check / retry later
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (draft id, why it was not started)
    blocked: list[tuple[str, str, str, float]] = field(default_factory=list)  # (draft, channel, like draft, score)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (draft, channel, compliance reason)
    would_post: list[OutboxRow] = field(default_factory=list)  # dry run
    parts_sent: int = 0
    reconciled: int = 0  # unsettled parts found among our own posts and adopted
    resent: int = 0  # unsettled parts confirmed absent and sent again
    needs_check: int = 0
    stopped: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (draft id, what went wrong): set aside, run went on
    unavailable: dict[str, str] = field(default_factory=dict)  # channel → why it could not be opened this run
    amended: Any = None  # publish.amend.AmendReport: corrections and retractions carried out this run


@dataclass(frozen=True)
class Limits:
    """Retry and reconciliation bounds."""

    max_attempts: int = 4
    max_wait: timedelta = timedelta(seconds=90)
    reconcile_settle: timedelta = timedelta(seconds=10)
    backoff_base_s: float = 1.0


class Delivery:
    """Publish due drafts to the configured channels; one instance per run (or per daemon tick)."""

    def __init__(self, queue: ReviewQueue, outbox: Outbox, channels: Mapping[str, Channel], policy: PublishPolicy,
                 *, limits: Limits = Limits(), lease: Lease | None = None, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), media_for: MediaFor | None = None,
                 on_sent: OnSent | None = None, budget: BudgetCheck | None = None,
                 cost_of: Callable[[str, str], float] | None = None, amender: Any = None,
                 gate: Gate | None = None) -> None:
        self.queue = queue
        self.outbox = outbox
        self.channels = channels
        self.policy = policy
        self.limits = limits
        self.lease = lease
        self._down: dict[str, str] = {}  # channels that could not be opened this run
        self.sleep = sleep
        self.clock = clock
        self.guard = DuplicateGuard(outbox, policy.duplicate_window, policy.duplicate_threshold)
        self.media_for = media_for
        self.on_sent = on_sent
        self.budget = budget  # X's budgets: checked before a run and before each draft's parts
        self.cost_of = cost_of or (lambda channel, text: 0.0)
        self.amender = amender  # publish.amend.Amender: open corrections and retractions go out with each run
        self.gate = gate

    async def run(self, *, dry_run: bool = False) -> RunReport:
        """Expire stale drafts, reconcile leftovers, then publish (or, dry, record) every due draft."""
        report = RunReport(dry_run=dry_run)
        missing = [c for c in self.policy.channels if c not in self.channels]
        if missing and not dry_run:
            raise PublishError(f"channel(s) {', '.join(missing)} are enabled but not configured")
        if not dry_run and self.lease is not None and not self.lease.acquire():
            holder = self.lease.holder()
            until = f" until {holder[1]:%H:%M:%S} UTC" if holder else ""
            raise PublishError(f"another publish run is active ({holder[0] if holder else '?'}{until}); "
                               "try again later")
        opened: list[Channel] = []
        self._down = report.unavailable
        if not dry_run and self.budget is not None:
            for name in self.policy.channels:
                try:
                    self.budget(name, 0.0, self.clock())
                except PublishError as exc:
                    if self.lease is not None:
                        self.lease.release()
                    raise PublishError(f"publish run refused: {exc}") from exc
        try:
            if not dry_run:
                for name in self.policy.channels:
                    try:
                        await self.channels[name].open()
                    except PublishError as exc:
                        # One channel down (Telegram rejects the token, X is unreachable) must not stop the
                        # others: its parts wait for a later run, the drafts stay approved until then.
                        report.unavailable[name] = str(exc)
                        with contextlib.suppress(Exception):
                            await self.channels[name].close()
                        continue
                    opened.append(self.channels[name])
                report.expired = self.queue.expire_stale(self.policy.expire_after)
                await self._reconcile_all(report)
                if self.amender is not None:
                    report.amended = await self.amender.run({c.name: c for c in opened})
            for draft in self._due(report, dry_run):
                await self._publish_isolated(draft, dry_run, report)
        except _Stop as stop:
            report.stopped = str(stop)
        finally:
            for channel in opened:
                await channel.close()
            if not dry_run and self.lease is not None:
                self.lease.release()
        return report

    # -- which drafts ------------------------------------------------------------------------------
    def _due(self, report: RunReport, dry_run: bool) -> list[Draft]:
        now = self.clock()
        drafts = self.queue.drafts
        candidates = sorted(drafts.list("approved", 1000), key=lambda d: d.created_at)
        if self.policy.mode == "auto":
            candidates += self._auto_candidates(report, dry_run)
        schedule = self.queue.scheduled([d.id for d in candidates])
        started_today = self.outbox.drafts_started_since(now - timedelta(days=1))
        due: list[Draft] = []
        for draft in candidates:
            if self.outbox.rows(draft.id, dry_run=False):
                due.append(draft)  # already under way: always finish it
                continue
            if schedule.get(draft.id, now) > now:
                report.skipped.append((draft.id, f"scheduled for {schedule[draft.id]:%Y-%m-%d %H:%M} UTC"))
            elif self.policy.is_quiet(now):
                report.skipped.append((draft.id, "quiet hours"))
            elif started_today >= self.policy.max_posts_per_day:
                report.skipped.append((draft.id, f"daily cap of {self.policy.max_posts_per_day} reached"))
            else:
                started_today += 1
                due.append(draft)
        return due

    def _auto_candidates(self, report: RunReport, dry_run: bool) -> list[Draft]:
        out = []
        for draft in sorted(self.queue.drafts.list("pending", 1000), key=lambda d: d.created_at):
            verdict = ValidationReport.from_dict(draft.validation)
            checked = verdict.checked_at is not None
            if not checked and self.queue.validator is not None:
                # A dry run must change nothing, so it validates without storing the report.
                try:
                    verdict = self.queue.validator(draft) if dry_run else self.queue.validate(draft.id, "policy")
                except Exception as exc:  # a draft the checker chokes on is left for a person, never auto-approved
                    log.warning("grounding check failed on draft %s: %s: %s", draft.id[:12], type(exc).__name__, exc)
                    report.skipped.append((draft.id, f"the grounding check failed: {type(exc).__name__}: {exc}"[:300]))
                    continue
                checked = True
            if not checked or not verdict.ok:
                report.skipped.append((draft.id, "did not pass the grounding check"))
                continue
            if not dry_run:
                try:
                    self.queue.auto_approve(draft.id)
                except ReviewError as exc:
                    report.skipped.append((draft.id, str(exc)))
                    continue
                draft = self.queue.drafts.get(draft.id)
            out.append(draft)
        return out

    # -- one draft -----------------------------------------------------------------------------------
    async def _publish_isolated(self, draft: Draft, dry_run: bool, report: RunReport) -> None:
        """Publish one draft; whatever goes wrong with it is recorded against it and the run goes on."""
        try:
            await self._publish(draft, dry_run, report)
        except _Stop:
            raise
        except Exception as exc:  # a bug, a malformed row, a store hiccup: one draft must never hold up the rest
            why = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("publish run: draft %s failed and was set aside: %s", draft.id[:12], why)
            report.errors.append((draft.id, why))
            if not dry_run:
                self._set_aside(draft.id, why, report)

    def _set_aside(self, draft_id: str, why: str, report: RunReport) -> None:
        """A draft nothing of which has gone out fails with the reason; one under way is resumed by the next run,
        up to ``MAX_DRAFT_ERRORS`` runs that fail on it."""
        try:
            with self.queue.state.engine.connect() as conn:
                under_way = started(conn, draft_id)
            if not under_way:
                self.queue.finish(draft_id, "failed", reason=f"could not be published: {why}")
                report.failed.append(draft_id)
                return
            a = schema.audit_log
            with self.queue.state.engine.begin() as conn:
                errors = conn.execute(select(func.count()).where(a.c.draft_id == draft_id,
                                                                 a.c.action == "error")).scalar() or 0
                record(conn, at=self.clock(), draft_id=draft_id, actor="publisher", via=self.queue.via,
                       action="error", reason=f"publish run failed on this draft: {why}")
            if errors + 1 >= MAX_DRAFT_ERRORS:  # it keeps failing the same way: stop retrying it every run
                self.queue.finish(draft_id, "failed", reason=f"failed in {errors + 1} publish runs: {why}")
                report.failed.append(draft_id)
        except Exception:  # recording is best effort here: the run itself must go on
            log.warning("could not record the failure of draft %s", draft_id[:12], exc_info=True)

    async def _publish(self, draft: Draft, dry_run: bool, report: RunReport) -> None:
        outcomes: dict[str, str] = {}
        targets = self.channels_for(draft)
        if not targets and not dry_run:
            self.queue.finish(draft.id, "failed", reason=f"none of its channels ({', '.join(draft.meta['channels'])}) "
                              f"is enabled in publish.channels ({', '.join(self.policy.channels)})")
            report.failed.append(draft.id)
            return
        for name in targets:
            if name in self._down and not dry_run:
                outcomes[name] = "waiting"  # the channel could not be opened: its parts go out on a later run
                continue
            texts = [t for t in (draft.x_thread if name == "x" else (draft.telegram_html,)) if t.strip()]
            if not texts:
                outcomes[name] = "failed"  # nothing to post on this channel; the draft cannot be delivered whole
                continue
            rows = self.outbox.rows(draft.id, name, dry_run=dry_run)
            if not rows and self.gate is not None and (refusal := self.gate(draft, name)):
                # A profile of this channel blocks the draft: refused and recorded here; the others still go.
                rows = self.outbox.plan(draft.id, name, texts, dry_run=dry_run)
                report.refused.append((draft.id, name, refusal))
                if not dry_run:
                    for row in rows:
                        self.outbox.block(row, refusal, action="refused")
                    outcomes[name] = "refused"
                continue
            if not rows and not dry_run and self.budget is not None:
                try:  # a draft not yet under way starts only if all its parts fit the budget
                    self.budget(name, sum(self.cost_of(name, t) for t in texts), self.clock())
                except PublishError as exc:
                    report.skipped.append((draft.id, str(exc)))
                    outcomes[name] = "waiting"
                    continue
            if not rows:
                dup = self.guard.check(name, texts, self.clock(), draft.id)
                rows = self.outbox.plan(draft.id, name, texts, dry_run=dry_run)
                if dup is not None:
                    report.blocked.append((draft.id, name, dup[0], dup[1]))
                    if not dry_run:
                        within = format_duration(self.policy.duplicate_window)
                        reason = f"{dup[1]:.0%} like draft {dup[0][:12]}, sent within {within}"
                        for row in rows:
                            self.outbox.block(row, reason)
                        outcomes[name] = "blocked"
                    continue
            if dry_run:
                report.would_post.extend(rows)
                continue
            media = self.media_for(draft, name) if self.media_for is not None else None
            outcomes[name] = await self._deliver(self.channels[name], rows, report, media)
        if not dry_run:
            self._finish(draft, outcomes, report)

    def channels_for(self, draft: Draft) -> list[str]:
        """The enabled channels this draft goes to: those its ``meta["channels"]`` names, else all enabled."""
        wanted = draft.meta.get("channels")
        if not isinstance(wanted, list) or not wanted:
            return list(self.policy.channels)
        return [c for c in self.policy.channels if c in wanted]

    def _finish(self, draft: Draft, outcomes: dict[str, str], report: RunReport) -> None:
        if "waiting" in outcomes.values():
            report.waiting.append(draft.id)
            return
        delivered = [c for c, o in outcomes.items() if o == "delivered"]
        detail = {"channels": outcomes}
        if delivered and "failed" not in outcomes.values():
            self.queue.finish(draft.id, "published", detail=detail)
            report.published.append(draft.id)
            self._record_calls(draft)
        else:
            self.queue.finish(draft.id, "failed", reason="not delivered on " + ", ".join(
                c + (" (refused by compliance)" if o == "refused" else "") for c, o in outcomes.items()
                if o != "delivered"), detail=detail)
            report.failed.append(draft.id)

    def _record_calls(self, draft: Draft) -> None:
        """What the brief featured, stored as calls for the track record (``memory.calls``), once."""
        try:
            sent = [r.sent_at for r in self.outbox.rows(draft.id) if r.sent_at is not None]
            with self.queue.state.engine.begin() as conn:
                record_calls(conn, draft, min(sent, default=self.clock()))
        except Exception:  # the draft is out; a missing call is recorded from the same data on the next read
            log.warning("could not record the calls of draft %s", draft.id[:12], exc_info=True)

    async def _deliver(self, channel: Channel, rows: list[OutboxRow], report: RunReport,
                       media: Media | None = None) -> str:
        """Send the parts still queued, in order (``media`` on the first); 'delivered', 'failed', 'blocked' or
        'waiting'."""
        last: str | None = None
        for planned in rows:
            row = self.outbox.get(planned.id)
            if row.state == SENT:
                last = row.remote_id
                continue
            if row.state in (BLOCKED, FAILED):
                return {BLOCKED: "blocked", FAILED: "failed"}[row.state]
            if row.state != QUEUED:
                return "waiting"  # unknown / needs_check: settled by reconciliation or by a person
            sent = await self._send_part(channel, row, last, report, media if row.part == 0 else None)
            if sent is None:
                return "failed" if self.outbox.get(row.id).state == FAILED else "waiting"
            last = sent
            if self.lease is not None and not self.lease.renew():
                raise _Stop("the publish lease was taken over; stopping")
        return "delivered"

    async def _send_part(self, channel: Channel, row: OutboxRow, reply_to: str | None,
                         report: RunReport, media: Media | None = None) -> str | None:
        """Send one part; its remote id, or None when it failed or must wait."""
        while True:
            if row.attempts >= self.limits.max_attempts:
                self.outbox.mark_failed(row, f"gave up after {row.attempts} attempts: {row.error}")
                return None
            if not self.outbox.mark_intent(row, reply_to):
                return None  # the draft is no longer approved, or another run took this part
            row = self.outbox.get(row.id)
            try:
                # The upload, if any, happens inside the call, after the intent: see publish.x_publisher.
                sent = await self._call(channel, row.text, reply_to, media)
            except _Stop:
                self.outbox.requeue(row, "rate limited; left for a later run")  # a 429 posted nothing
                raise
            except Retryable as exc:
                self.outbox.requeue(row, f"still failing after retries: {exc}")
                return None
            except Rejected as exc:
                self.outbox.mark_failed(row, str(exc))
                return None
            except Ambiguous as exc:
                self.outbox.mark_unknown(row, str(exc))
                verdict = await self._reconcile(channel, self.outbox.get(row.id), report)
                row = self.outbox.get(row.id)
                if verdict == "sent":
                    return row.remote_id
                if verdict != "absent":
                    return None
                report.resent += 1
                await self.sleep(self._backoff(row.attempts))
                continue
            if self.outbox.mark_sent(row, sent.remote_id, sent.url):
                self._sent(row)
            report.parts_sent += 1
            return sent.remote_id

    def _sent(self, row: OutboxRow) -> None:
        if self.on_sent is None:
            return
        try:
            self.on_sent(row.draft_id, row.channel, row.part, row.text, self.clock())
        except Exception:  # the cost ledger must never undo a part that went out
            log.warning("could not record the cost of part %d of draft %s", row.part + 1, row.draft_id[:12],
                        exc_info=True)

    async def _call(self, channel: Channel, text: str, reply_to: str | None, media: Media | None = None) -> Sent:
        retrying = AsyncRetrying(stop=stop_after_attempt(self.limits.max_attempts), wait=self._wait,
                                 retry=retry_if_exception_type(Retryable), sleep=self.sleep, reraise=True)
        async for attempt in retrying:
            with attempt:
                if media is not None:
                    return await channel.send(text, reply_to, media)
                return await channel.send(text, reply_to)
        raise AssertionError("unreachable")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "wait_s", None)
        wait = float(hint) if hint is not None else self._backoff(state.attempt_number)
        if wait > self.limits.max_wait.total_seconds():
            raise _Stop(f"{exc}; waiting {wait:.0f} s is longer than publish.max_wait, so the rest stays queued")
        return wait

    def _backoff(self, attempt: int) -> float:
        base = self.limits.backoff_base_s * 2 ** max(0, attempt - 1)
        return min(base, self.limits.max_wait.total_seconds()) * random.uniform(0.8, 1.2)

    # -- reconciliation ------------------------------------------------------------------------------
    async def _reconcile_all(self, report: RunReport) -> None:
        for row in self.outbox.in_states(INTENT, UNKNOWN):
            channel = self.channels.get(row.channel)
            if channel is not None and row.channel not in self._down:
                await self._reconcile(channel, row, report)

    async def _reconcile(self, channel: Channel, row: OutboxRow, report: RunReport) -> str:
        """'sent' (found and adopted), 'absent' (requeued) or 'unknown' (left for later or for a person)."""
        if not channel.reconcilable:
            self.outbox.mark_needs_check(row, "may have been sent; the Bot API cannot check, so a person must")
            report.needs_check += 1
            return "unknown"
        since = row.intent_at or row.created_at
        settle = (since + self.limits.reconcile_settle - self.clock()).total_seconds()
        if settle > 0:
            await self.sleep(settle)
        try:
            lookup = await channel.find(row.text, row.reply_to, since)
        except PublishError as exc:
            if row.state == INTENT:
                self.outbox.mark_unknown(row, f"could not check: {exc}")
            return "unknown"
        if lookup.found is not None:
            if self.outbox.mark_sent(row, lookup.found.remote_id, lookup.found.url, action="reconciled",
                                     reason="found among our own posts"):
                self._sent(row)  # it went out, so it was paid for
            report.reconciled += 1
            return "sent"
        if lookup.complete:
            self.outbox.requeue(row, f"not among our own posts since {since:%H:%M:%S} UTC; safe to send")
            return "absent"
        if row.state == INTENT:
            self.outbox.mark_unknown(row, "search did not cover the whole window")
        return "unknown"

