"""The automated posting schedule inside ``tapewatch run``: scheduled briefs, publish runs, review cards.

Every job here is a kind registered with the daemon (``Daemon.add_work``) and fired by its one scheduler
through ``tapewatch.daemon.run_job`` (picklable, so the job store keeps them across restarts). A run-time
switch pauses the automatic part (scheduled briefs and publish runs); on-demand ``/brief`` keeps working.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from memory.switches import POSTING_PAUSED, ReviewCards, Switches
from sources.errors import ConfigError, TapewatchError
from tapewatch.settings import format_duration

if TYPE_CHECKING:
    from publish.channel import Channel
    from tapewatch.bot.review import ReviewBot
    from tapewatch.daemon import Daemon
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
                 channels: Callable[[], dict[str, Channel]] | None = None) -> None:
        self.daemon = daemon
        self.runtime = runtime
        self.review = review
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
            self.daemon.add_work(f"brief:{spec.name}", functools.partial(self.brief, spec))
            lines.append(f"brief {spec.name} at '{spec.cron}' ({s.publish.timezone})")
        if self._channels is not None:
            self.daemon.add_work(PUBLISH_JOB, coroutine=self.publish)
            lines.append(f"publish every {format_duration(s.schedule.publish_every.total_seconds())}")
        if self.review is not None:
            self.daemon.add_work(REVIEW_JOB, coroutine=self.post_cards)
            lines.append(f"review cards every {format_duration(s.schedule.review_every.total_seconds())}")
        return lines

    async def schedule(self) -> None:
        """Add this module's jobs to the running scheduler (a service start hook): stale ones go."""
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
            scheduler.add_job(run_job, CronTrigger.from_crontab(spec.cron, timezone=s.publish.timezone),
                              args=[f"brief:{spec.name}"], id=f"{BRIEF_PREFIX}{spec.name}",
                              name=f"brief {spec.name}", replace_existing=True, jitter=jitter)
        for job_id, every, on in ((PUBLISH_JOB, s.schedule.publish_every, self._channels is not None),
                                  (REVIEW_JOB, s.schedule.review_every, self.review is not None)):
            if not on:
                if scheduler.get_job(job_id) is not None:
                    scheduler.remove_job(job_id)
                continue
            scheduler.add_job(run_job, IntervalTrigger(seconds=every.total_seconds(), timezone=UTC), args=[job_id],
                              id=job_id, name=job_id, replace_existing=True,
                              next_run_time=datetime.now(UTC) + timedelta(seconds=1))

    async def unschedule(self) -> None:
        """Service stop hook: nothing to release (jobs stay stored for the next start)."""

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
            job = self.daemon.scheduler.get_job(PUBLISH_JOB)
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

        loop.call_soon_threadsafe(kick)

    # -- jobs ------------------------------------------------------------------------------------
    def brief(self, spec: ScheduledBrief) -> str:
        """Write one scheduled brief (blocking); the crew falls back to a data brief when over budget."""
        from memory.drafts import DraftStore
        from tapewatch.briefs import write_brief

        why = self.paused()
        if why:
            return f"skipped: posting {why}"
        memory = self.runtime.memory()
        result = write_brief(self.runtime.settings, memory, now=self.runtime.clock(), window=spec.window,
                             ticker=spec.ticker, topic=spec.topic, scheduled=True)
        if result.draft is None:
            return f"nothing to report ({result.signals.items} items looked at)"
        DraftStore(memory.state).update_meta(result.draft.id, schedule=spec.name,
                                             **({"channels": list(spec.channels)} if spec.channels else {}))
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
        from memory.drafts import DraftStore

        assert self.review is not None
        store = DraftStore(self.runtime.state)
        fresh = [d for status in ("pending", "flagged") for d in store.list(status, 50)]
        fresh.sort(key=lambda d: d.created_at)
        # One card Telegram refuses is recorded against its draft and the others still go out (issue 17).
        run = await self.review.post_new_cards([d.id for d in fresh], MAX_CARDS_PER_RUN)
        failed = f", {len(run.failed)} refused ({run.failed[0][1][:120]})" if run.failed else ""
        return f"{len(run.posted)} review card(s) posted{failed}" + (f"; {run.stopped}" if run.stopped else "")


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
