"""The automated posting schedule inside ``tapewatch run``: scheduled briefs, publish runs, review cards.

Every job here is a kind registered with the daemon (``Daemon.add_work``) and fired by its one scheduler
through ``tapewatch.daemon.run_job`` (picklable, so the job store keeps them across restarts). A run-time
switch pauses the automatic part (scheduled briefs and publish runs); on-demand ``/brief`` keeps working.

Scheduled briefs run once per slot: a slot that came due while the daemon was down runs on restart (within
``daemon.misfire_grace``; the stored next run time is kept), a brief killed mid-run is retried once, and
the draft is saved in the same transaction that ends the slot's run, so neither is ever written twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from memory.drafts import Draft, DraftStore
from memory.switches import POSTING_PAUSED, ReviewCards, Switches
from sources.errors import ConfigError, TapewatchError
from tapewatch.settings import format_duration

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from memory.state import StateDB
    from publish.channel import Channel
    from tapewatch.bot.review import ReviewBot
    from tapewatch.daemon import Daemon
    from tapewatch.daemon.runs import JobRuns, RunTicket
    from tapewatch.jobs import Runtime
    from tapewatch.settings import ScheduledBrief

log = logging.getLogger(__name__)

PUBLISH_JOB = "publish"
REVIEW_JOB = "review-cards"
BRIEF_PREFIX = "brief-"
MAX_CARDS_PER_RUN = 10


class Automation:
    """Scheduled briefs, publish runs and review cards for one daemon."""

    def __init__(self, daemon: Daemon, runtime: Runtime, *, review: ReviewBot | None = None,
                 channels: Callable[[], dict[str, Channel]] | None = None,
                 bot_up: Callable[[], bool] = lambda: True) -> None:
        self.daemon = daemon
        self.runtime = runtime
        self.review = review
        self.bot_up = bot_up  # whether the Telegram bot is connected (review cards need it)
        self.switches = Switches(runtime.state)
        self.cards = ReviewCards(runtime.state)
        self._channels = channels
        self.notes: list[str] = []

    # -- installation ----------------------------------------------------------------------------
    def install(self) -> list[str]:
        """Register the job kinds with the daemon; returns one line per job for the start-up banner."""
        s = self.runtime.settings
        lines = []
        for spec in s.schedule.briefs:
            self.daemon.add_work(f"brief:{spec.name}", per_slot=functools.partial(self.brief, spec))
            lines.append(f"brief {spec.name} at '{spec.cron}' ({s.publish.timezone})")
        if self._channels is not None:
            self.daemon.add_work(PUBLISH_JOB, coroutine=self.publish)
            lines.append(f"publish every {format_duration(s.schedule.publish_every.total_seconds())}")
        if self.review is not None:
            self.daemon.add_work(REVIEW_JOB, coroutine=self.post_cards)
            lines.append(f"review cards every {format_duration(s.schedule.review_every.total_seconds())}")
        return lines

    def schedule(self) -> None:
        """Add this module's jobs to the scheduler (while it is paused, at start); stale ones go.

        A brief whose cron and time zone are unchanged keeps its stored next run time, so a slot that came
        due while the daemon was down still runs now (the scheduler skips it if later than misfire_grace).
        """
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        from tapewatch.daemon import run_job

        s = self.runtime.settings
        scheduler = self.daemon.scheduler
        wanted = {f"{BRIEF_PREFIX}{b.name}" for b in s.schedule.briefs}
        for job in scheduler.get_jobs():
            if job.id.startswith(BRIEF_PREFIX) and job.id not in wanted:
                job.remove()
        jitter = int(s.daemon.jitter.total_seconds()) or None
        for spec in s.schedule.briefs:
            job_id = f"{BRIEF_PREFIX}{spec.name}"
            trigger = CronTrigger.from_crontab(spec.cron, timezone=s.publish.timezone)
            trigger.jitter = jitter
            existing = scheduler.get_job(job_id)
            keep: dict[str, Any] = {}
            if existing is not None and existing.next_run_time is not None and _same_cron(existing.trigger, trigger):
                keep["next_run_time"] = existing.next_run_time
            scheduler.add_job(run_job, trigger, args=[f"brief:{spec.name}"], id=job_id, name=f"brief {spec.name}",
                              replace_existing=True, **keep)
        for job_id, every, on in ((PUBLISH_JOB, s.schedule.publish_every, self._channels is not None),
                                  (REVIEW_JOB, s.schedule.review_every, self.review is not None)):
            if not on:
                if scheduler.get_job(job_id) is not None:
                    scheduler.remove_job(job_id)
                continue
            scheduler.add_job(run_job, IntervalTrigger(seconds=every.total_seconds(), timezone=UTC), args=[job_id],
                              id=job_id, name=job_id, replace_existing=True,
                              next_run_time=datetime.now(UTC) + timedelta(seconds=1))

    # -- the switch ------------------------------------------------------------------------------
    def set_paused(self, paused: bool, by: str) -> str:
        """Pause or resume scheduled briefs and publishing."""
        changed = self.switches.set(POSTING_PAUSED, paused, by)
        state = "paused" if paused else "running"
        return f"Scheduled posting is {state}{'' if changed else ' (it already was)'}."

    def paused(self) -> str | None:
        """Who paused posting and when, or None when it runs."""
        switch = self.switches.get(POSTING_PAUSED)
        if not switch.on:
            return None
        when = f"{switch.changed_at:%Y-%m-%d %H:%M} UTC" if switch.changed_at else "?"
        return f"paused by {switch.changed_by} at {when}"

    def publish_soon(self) -> None:
        """Run the publish job as soon as possible (thread-safe: reviewers press Publish now from Telegram)."""
        loop = self.daemon.loop
        if loop is None or loop.is_closed():
            raise TapewatchError("the daemon is not running")

        def kick() -> None:
            try:
                job = self.daemon.scheduler.get_job(PUBLISH_JOB)
                if job is not None:
                    job.modify(next_run_time=datetime.now(UTC))
            except Exception:  # the job store cannot be written (a full disk): the next scheduled run comes anyway
                log.warning("could not bring the publish run forward", exc_info=True)

        loop.call_soon_threadsafe(kick)

    # -- jobs ------------------------------------------------------------------------------------
    def brief(self, spec: ScheduledBrief, ticket: RunTicket) -> str:
        """Write one scheduled brief for its slot (blocking); the crew falls back to a data brief when over budget."""
        from tapewatch.briefs import write_brief

        why = self.paused()
        if why:
            return f"skipped: posting {why}"
        memory = self.runtime.memory()
        meta: dict[str, Any] = {"schedule": spec.name, "slot": ticket.slot.isoformat(), "attempt": ticket.attempt}
        if spec.channels:
            meta["channels"] = list(spec.channels)
        if spec.profiles:
            meta["profiles"] = {channel: list(names) for channel, names in spec.profiles.items()}
        drafts = SlotDrafts(memory.state, self.daemon.runs, ticket, meta)
        result = write_brief(self.runtime.settings, memory, now=self.runtime.clock(), window=spec.window,
                             ticker=spec.ticker, topic=spec.topic, scheduled=True, drafts=drafts,
                             shape=spec.shape)
        if result.draft is None:
            return f"nothing to report ({result.signals.items} items looked at)"
        note = f"; {result.note}" if result.note and result.mode == "data" and result.crew is None else ""
        return f"{result.mode} draft {result.draft.id[:12]} ({result.draft.status}){note}"

    async def publish(self) -> str:
        """One publish run over the outbox, unless posting is paused."""
        from tapewatch.clients import delivery

        why = self.paused()
        if why:
            return f"skipped: posting {why}"
        assert self._channels is not None
        s = self.runtime.settings
        report = await delivery(s, self.runtime.state, self._channels(), via="daemon").run(dry_run=s.publish.dry_run)
        parts = ([f"dry run: {len(report.would_post)} part(s) would be posted"] if report.dry_run else
                 [f"{len(report.published)} published", f"{report.parts_sent} part(s) sent"])
        if report.failed:
            parts.append(f"{len(report.failed)} failed")
        if report.waiting:
            parts.append(f"{len(report.waiting)} waiting")
        if report.blocked:
            parts.append(f"{len(report.blocked)} blocked as duplicates")
        if report.skipped:
            parts.append(f"{len(report.skipped)} not due ({report.skipped[0][1]})")
        if report.stopped:
            parts.append(f"stopped: {report.stopped}")
        parts += [f"{name} unavailable ({why})" for name, why in report.unavailable.items()]
        if self.review is not None:
            await self._refresh_cards([*report.published, *report.failed])
        return ", ".join(parts)

    async def _refresh_cards(self, draft_ids: list[str]) -> None:
        """Show the outcome on the drafts' review cards; a card that can't be updated is only logged."""
        assert self.review is not None
        for draft_id in draft_ids:
            card = await asyncio.to_thread(self.cards.message_of, draft_id)
            if card is None:
                continue
            try:
                await self.review.refresh_card(card[0], card[1], draft_id)
            except Exception:  # the publish run succeeded; a stale card is cosmetic (and the bot may be stopping)
                log.warning("could not update the review card of draft %s", draft_id[:12], exc_info=True)

    async def post_cards(self) -> str:
        """Put new pending and flagged drafts in front of reviewers, once each."""
        assert self.review is not None
        if not self.bot_up():
            return "skipped: the Telegram bot is not connected"
        store = DraftStore(self.runtime.state)
        fresh = [d for status in ("pending", "flagged") for d in store.list(status, 50)]
        fresh.sort(key=lambda d: d.created_at)
        # One card Telegram refuses is recorded against its draft and the others still go out (issue 17).
        run = await self.review.post_new_cards([d.id for d in fresh], MAX_CARDS_PER_RUN)
        failed = f", {len(run.failed)} refused ({run.failed[0][1][:120]})" if run.failed else ""
        return f"{len(run.posted)} review card(s) posted{failed}" + (f"; {run.stopped}" if run.stopped else "")


class SlotDrafts(DraftStore):
    """Saves a scheduled brief's draft with its slot in ``meta`` and ends the slot's run in the same transaction."""

    def __init__(self, state: StateDB, runs: JobRuns, ticket: RunTicket, meta: dict[str, Any]) -> None:
        super().__init__(state)
        self.runs = runs
        self.ticket = ticket
        self.meta = meta

    def save(self, draft: Draft, conn: Connection | None = None) -> Draft:
        """Store the draft and mark its run done, atomically: a kill before leaves neither, after both."""
        from tapewatch.daemon.runs import DONE

        draft = dataclasses.replace(draft, meta={**draft.meta, **self.meta})
        summary = f"{draft.mode} draft {draft.id[:12]} ({draft.status})"
        if conn is not None:
            saved = super().save(draft, conn)
            self.runs.finish(self.ticket, DONE, summary, datetime.now(UTC), draft_id=draft.id, conn=conn)
            return saved
        with self.state.engine.begin() as tx:
            saved = super().save(draft, tx)
            self.runs.finish(self.ticket, DONE, summary, datetime.now(UTC), draft_id=draft.id, conn=tx)
        return saved


def _same_cron(old: Any, new: Any) -> bool:
    """Whether two cron triggers fire at the same times (fields, time zone and jitter)."""
    return (type(old) is type(new) and str(old) == str(new) and str(getattr(old, "timezone", "")) ==
            str(getattr(new, "timezone", "")) and getattr(old, "jitter", None) == getattr(new, "jitter", None))


def publish_channels_or_none(runtime: Runtime) -> tuple[Callable[[], dict[str, Channel]] | None, str]:
    """The channel factory for publish runs (None when channels lack credentials) and a line saying so."""
    from tapewatch.clients import publish_channels

    s = runtime.settings
    if s.publish.dry_run:
        return dict, "Publishing: dry run (records what would be posted)"
    try:
        publish_channels(s)  # builds clients only: no network; fails fast on missing credentials
    except ConfigError as exc:
        return None, f"Publishing: off ({exc})"
    return (lambda: publish_channels(s)), f"Publishing: {', '.join(s.publish.channels)} ({s.publish.policy} policy)"
