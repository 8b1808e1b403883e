"""The operator's view, /desk/status: posting paused or running, jobs, sources, the outbox, spend, the X budget."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from memory.costs import CostLedger
from memory.quotas import Quotas, month_of, next_month
from memory.switches import POSTING_PAUSED, Switches
from publish.audit import record
from publish.outbox import NEEDS_CHECK, UNKNOWN, Outbox
from sources.errors import TapewatchError
from tapewatch.web.app import Web

UNSETTLED = ("needs_check", "unknown", "intent", "queued", "failed")


def routes(web: Web) -> list[Route]:
    """The status page and its two forms (pause/resume, settle an outbox part)."""

    def page(request: Request) -> Response:
        web.user(request)
        return web.page(request, "status.html", **status_context(web))

    async def pause(request: Request) -> Response:
        session = web.user(request)
        form = await web.guard.check_csrf(request, session)
        paused = str(form.get("paused")) == "1"
        if not session.user.can("admin"):
            await run_in_threadpool(_refused, web, session.user.name, "pause" if paused else "resume")
            raise HTTPException(403, "Pausing and resuming posting needs the admin role.")
        by = f"web:{session.user.name}"
        if web.deps.set_paused is not None:
            note = await run_in_threadpool(web.deps.set_paused, paused, by)
        else:
            changed = await run_in_threadpool(Switches(web.state).set, POSTING_PAUSED, paused, by)
            note = f"Scheduled posting is {'paused' if paused else 'running'}{'' if changed else ' (it already was)'}."
        return web.done(session, "/desk/status", note)

    async def settle(request: Request) -> Response:
        session = web.user(request)
        form = await web.guard.check_csrf(request, session)
        if not session.user.can("reviewer"):
            await run_in_threadpool(_refused, web, session.user.name, "settle an outbox part")
            raise HTTPException(403, "Settling outbox parts needs the reviewer role.")
        try:
            note = await run_in_threadpool(_settle, web, session.user.name, int(request.path_params["row"]),
                                           str(form.get("sent") or "").strip(), str(form.get("outcome") or ""))
        except TapewatchError as exc:
            note = f"Not settled: {exc}"
        return web.done(session, "/desk/status", note)

    return [Route("/desk/status", page), Route("/desk/status/pause", pause, methods=["POST"]),
            Route("/desk/outbox/{row:int}", settle, methods=["POST"])]


def _refused(web: Web, name: str, what: str) -> None:
    with web.state.engine.begin() as conn:
        record(conn, at=web.deps.clock(), draft_id="", actor=name[:100], via="web", action="refused",
               reason=f"{what}: not allowed for this role"[:500])


def _settle(web: Web, name: str, row_id: int, sent: str, outcome: str) -> str:
    """Record by hand whether a part that needs a person went out (as `tapewatch publish resolve` does)."""
    from publish.telegram_publisher import message_link
    from sources.errors import PublishError

    outbox = Outbox(web.state.engine, actor=name, via="web")
    row = outbox.get(row_id)
    if row.state not in (NEEDS_CHECK, UNKNOWN):
        raise PublishError(f"outbox row {row_id} is {row.state}; only needs_check or unknown rows are settled by hand")
    if outcome == "sent":
        if not sent.isdigit():
            raise PublishError("a message id is a number")
        url = (message_link(web.settings.publish.telegram_chat_id or "", int(sent)) if row.channel == "telegram"
               else f"https://x.com/i/web/status/{sent}")
        outbox.mark_sent(row, sent, url, action="resolved", reason=f"{name} confirmed it went out")
        return f"Row {row_id} recorded as sent ({sent}); the next publish run continues the draft."
    if outcome == "not_sent":
        outbox.requeue(row, f"{name} confirmed it did not go out", actor=name)
        return f"Row {row_id} queued again; the next publish run sends it."
    raise PublishError("choose whether the part went out")


def status_context(web: Web) -> dict[str, Any]:
    """Everything the status page shows."""
    from tapewatch.daemon import JOB_IDS, next_runs

    s = web.settings
    now = web.deps.clock()
    switch = Switches(web.reads).get(POSTING_PAUSED)
    stored = next_runs(web.reads.engine)
    jobs = [(kind, stored.get(job_id), job_id in stored) for kind, job_id in JOB_IDS.items()]
    jobs += [(job_id, when, True) for job_id, when in stored.items() if job_id not in JOB_IDS.values()]
    ledger = CostLedger(web.reads)
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    usage = Quotas(web.reads).usage(month_of(now))
    return {
        "switch": switch, "jobs": jobs, "now": now, "sources": web.reads.source_health(),
        "outbox": Outbox(web.reads.engine).in_states(*UNSETTLED), "settle": (NEEDS_CHECK, UNKNOWN),
        "spend": [("today", ledger.spent(day), s.llm.daily_budget_usd),
                  ("this month", ledger.spent(month), s.llm.monthly_budget_usd)],
        "x_usage": usage, "x_budget": s.x.monthly_read_budget, "x_resets": next_month(now),
        "pauses": Quotas(web.reads).pauses(now),
    }

