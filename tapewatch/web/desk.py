"""The desk behind login: sign in and out, the queue, one draft's previews, grounding, actions and audit trail.

Every action goes through ``ReviewQueue`` (the CLI's and the bot's state machine and audit log) with
``via="web"`` and the signed-in user's name; a refused action is audited too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crew.model import ValidationReport
from memory import schema
from memory.accounts import Session
from memory.drafts import Draft, _draft
from publish.amend import Amender
from publish.audit import AuditLog
from publish.outbox import Outbox
from publish.review import OPEN, ReviewError, ReviewQueue
from sources.errors import StoreError, TapewatchError
from tapewatch.web.app import Web
from tapewatch.web.views import price_chart

FILTERS = ("open", "pending", "flagged", "approved", "scheduled")
ACTIONS = ("approve", "override", "reject", "edit", "schedule", "publish", "correct", "retract")
# What a reviewer may amend, as on the Telegram card: a published brief is corrected or retracted; what went out
# of a thread that failed part-way can be retracted.
AMENDS = {"published": ("correct", "retract"), "failed": ("retract",)}
POST_BREAK = "---"  # X posts are edited as blocks separated by a line holding only this (as in the CLI)


def queue_for(web: Web, session: Session) -> ReviewQueue:
    """The review queue acting as the signed-in user, from the web."""
    return ReviewQueue(web.state, reviewers=(session.user.name,), validator=web.deps.validator, via="web",
                       clock=web.deps.clock)


def routes(web: Web) -> list[Route]:
    """Login, logout and the desk's routes."""

    def login_form(request: Request) -> Response:
        nonce, cookie = web.guard.login_nonce(request)
        response = web.page(request, "login.html", login_csrf=nonce, next=_next(request.query_params.get("next")))
        web.guard.set_login_cookie(response, request, cookie)
        return response

    async def login(request: Request) -> Response:
        form = await request.form()
        await web.guard.check_login_csrf(request, form)
        name, password = str(form.get("name") or "")[:64], str(form.get("password") or "")
        ip = request.client.host if request.client else "?"
        keys = (f"user:{name.lower()}", f"ip:{ip}")
        from starlette.concurrency import run_in_threadpool

        locked = await run_in_threadpool(web.throttle.locked, *keys)
        user = None if locked else await run_in_threadpool(web.accounts.verify, name, password)
        if user is None:
            if not locked:
                await run_in_threadpool(web.throttle.failed, *keys)
            nonce, cookie = web.guard.login_nonce(request)
            why = (f"Too many failed sign-ins; try again after {locked:%H:%M} UTC." if locked
                   else "Wrong name or password.")
            response = web.page(request, "login.html", status=429 if locked else 401, login_csrf=nonce,
                                next=_next(str(form.get("next") or "")), error=why, typed_name=name)
            web.guard.set_login_cookie(response, request, cookie)
            return response
        await run_in_threadpool(web.throttle.succeeded, keys[0])  # the IP's count stays: one good account
        token = await run_in_threadpool(web.accounts.open_session, user, web.settings.web.session_ttl, ip)
        done = RedirectResponse(_next(str(form.get("next") or "")), status_code=303)
        web.guard.sign_in(done, request, token)
        return done

    async def logout(request: Request) -> Response:
        session = web.user(request)
        await web.guard.check_csrf(request, session)
        response = RedirectResponse("/", status_code=303)
        web.guard.sign_out(response, request)
        return response

    def queue_page(request: Request) -> Response:
        web.user(request)
        show = request.query_params.get("status", "open")
        ticker = request.query_params.get("ticker", "").strip().upper()[:10]
        rows, scheduled = _queue_rows(web, show if show in FILTERS else "open", ticker)
        template = "_queue_rows.html" if request.headers.get("hx-request") else "desk.html"
        return web.page(request, template, rows=rows, scheduled=scheduled, show=show, ticker=ticker,
                        filters=FILTERS)

    def draft_page(request: Request) -> Response:
        web.user(request)
        return web.page(request, "draft.html", **draft_context(web, _get(web, request)))

    async def check(request: Request) -> Response:
        """Re-validate the edit form's text as it is typed, saving nothing."""
        session = web.user(request, "viewer")
        form = await web.guard.check_csrf(request, session)
        from starlette.concurrency import run_in_threadpool

        draft = await run_in_threadpool(_get, web, request)
        candidate = replace(draft, **_edited(form))
        report = (await run_in_threadpool(web.deps.validator, candidate)) if web.deps.validator else None
        return web.page(request, "_check.html", report=report, draft=candidate)

    async def act(request: Request) -> Response:
        session = web.user(request)  # the role check comes after the CSRF check, so a refusal is audited
        form = await web.guard.check_csrf(request, session)
        action = str(request.path_params["action"])
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_act, web, request, session, action, form)

    return [Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]), Route("/desk", queue_page),
            Route("/desk/drafts/{draft_id}", draft_page),
            Route("/desk/drafts/{draft_id}/check", check, methods=["POST"]),
            Route("/desk/drafts/{draft_id}/{action}", act, methods=["POST"])]


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of ours only (never another site)."""
    value = value or "/desk"
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/desk"


def _get(web: Web, request: Request) -> Draft:
    wanted = str(request.path_params["draft_id"])
    d = schema.drafts
    with web.reads.engine.connect() as conn:  # the full id from our own links: the primary key, no prefix scan
        row = conn.execute(select(d).where(d.c.id == wanted)).first()
    if row is not None:
        return _draft(row)
    try:
        return ReviewQueue(web.reads).drafts.get(wanted)
    except StoreError as exc:
        raise HTTPException(404, str(exc)) from exc


def _edited(form: Any) -> dict[str, Any]:
    posts = [p.strip() for p in str(form.get("x_thread") or "").replace("\r\n", "\n").split(f"\n{POST_BREAK}\n")]
    return {"x_thread": tuple(p for p in posts if p), "telegram_html": str(form.get("telegram_html") or "").strip(),
            "markdown": str(form.get("markdown") or "").strip()}


def _act(web: Web, request: Request, session: Session, action: str, form: Any) -> Response:
    queue = queue_for(web, session)
    draft_id = str(request.path_params["draft_id"])
    reason = str(form.get("reason") or "").strip()[:1000]
    if action not in ACTIONS:
        raise HTTPException(404, "No such action.")
    if not session.user.can("reviewer"):
        queue.refused(draft_id, action, session.user.name, f"the {session.user.role} role cannot act on drafts")
        raise HTTPException(403, f"A {session.user.role} cannot {action} drafts; this needs the reviewer role.")
    name = session.user.name
    target, note = draft_id, ""
    try:
        if action in ("approve", "override"):
            if action == "override" and not reason:
                raise ReviewError("an override needs a reason")
            t = queue.approve(draft_id, name, override=reason if action == "override" else None)
            note = "Approved." if t.changed else "Already approved."
        elif action == "reject":
            if not reason:
                raise ReviewError("a rejection needs a reason")
            t = queue.reject(draft_id, name, reason=reason)
            note = "Rejected." if t.changed else "Already rejected."
        elif action == "edit":
            fields = _edited(form)
            new = queue.edit(draft_id, name, **fields)
            target = new.id
            note = (f"Saved as version {new.version}; it "
                    f"{'passes grounding' if new.status == 'pending' else 'is flagged by grounding'}.")
        elif action == "schedule":
            at = _parse_when(str(form.get("publish_at") or ""))
            queue.schedule(draft_id, name, at)
            note = f"Scheduled for {at:%Y-%m-%d %H:%M} UTC."
        elif action in ("correct", "retract"):
            note = _amend(web, queue, draft_id, name, action, str(form.get("text") or "").strip()[:1000], reason)
        else:
            note = _publish(web, queue, draft_id, name)
    except TapewatchError as exc:
        queue.refused(draft_id, action, name, str(exc))
        try:
            draft = queue.drafts.get(draft_id)
        except StoreError as missing:
            raise HTTPException(404, str(missing)) from missing
        return web.page(request, "draft.html", status=409, error=str(exc), **draft_context(web, draft))
    return web.done(session, f"/desk/drafts/{target}", note)


def _publish(web: Web, queue: ReviewQueue, draft_id: str, name: str) -> str:
    draft = queue.drafts.get(draft_id)
    if draft.status == "published":
        return "Already published."
    if draft.status != "approved":
        raise ReviewError(f"draft {draft.id[:12]} is {draft.status}; approve it first")
    if web.deps.publish_now is None:
        raise ReviewError("publishing is not running in this process")
    queue.schedule(draft.id, name, web.deps.clock())
    return web.deps.publish_now(draft.id)


def _amend(web: Web, queue: ReviewQueue, draft_id: str, name: str, action: str, text: str, reason: str) -> str:
    """Queue a correction or a retraction (publish/amend.py, as the CLI and the bot do) and start carrying it
    out: the publish run carries out open amendments, exactly once."""
    from tapewatch.clients import amender

    amend = amender(web.settings, queue)
    if action == "correct":
        if not text:
            raise ReviewError("a correction needs its text")
        amendment = amend.correct(draft_id, text, name)
    else:
        if not reason:
            raise ReviewError("a retraction needs a reason")
        amendment = amend.retract(draft_id, reason, name)
    what = "Correction" if action == "correct" else "Retraction"
    if amendment.done:
        return f"{what} already done."
    if web.deps.publish_now is None:
        return f"{what} queued; the next publish run carries it out."
    web.deps.publish_now(amendment.draft_id)
    return f"{what} queued; it goes out now."


def _parse_when(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ReviewError(f"{value!r} is not a date and time like 2026-12-01T18:30 (UTC)") from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@dataclass(frozen=True)
class QueueRow:
    """What a queue row shows of a draft; its bodies, claims and signals are left in the database."""

    id: str
    created_at: datetime
    status: str
    version: int
    mode: str
    topic: str
    tickers: tuple[str, ...]
    problems: int | None  # grounding problems, None when not checked yet


def _queue_rows(web: Web, show: str, ticker: str) -> tuple[list[QueueRow], dict[str, datetime]]:
    d, s = schema.drafts, schema.draft_schedule
    most = web.settings.web.page_size
    picks: list[tuple[datetime, str]] = []
    with web.reads.engine.connect() as conn:
        # The newest ids of each status first (the status/created index, no sort over every draft), then rows.
        for status in (OPEN if show in ("open", "scheduled") else (show,)):
            q = select(d.c.created_at, d.c.id).where(d.c.status == status).order_by(d.c.created_at.desc()).limit(most)
            if show == "scheduled":
                q = q.where(d.c.id.in_(select(s.c.draft_id)))
            if ticker:
                q = q.where((" " + d.c.tickers + " ").contains(f" {ticker} ", autoescape=True))
            picks += [(r.created_at, r.id) for r in conn.execute(q)]
        ids = [i for _, i in sorted(picks, reverse=True)[:most]]
        columns = (d.c.id, d.c.created_at, d.c.status, d.c.version, d.c.mode, d.c.topic, d.c.tickers, d.c.validation)
        rows = {r.id: _queue_row(r) for r in conn.execute(select(*columns).where(d.c.id.in_(ids)))} if ids else {}
    found = [rows[i] for i in ids if i in rows]
    return found, ReviewQueue(web.reads).scheduled(ids)


def _queue_row(r: Any) -> QueueRow:
    validation = json.loads(r.validation or "{}")
    problems = len(validation.get("problems") or []) if validation else None
    return QueueRow(r.id, r.created_at, r.status, r.version, r.mode, r.topic or "", tuple((r.tickers or "").split()),
                    problems)


def lineage(web: Web, draft: Draft, most: int = 20) -> list[Draft]:
    """This draft and the versions it was edited from, newest first."""
    store = ReviewQueue(web.reads).drafts
    chain = [draft]
    while chain[-1].parent_id and len(chain) < most:
        try:
            chain.append(store.get(chain[-1].parent_id))
        except StoreError:
            break
    return chain


def draft_context(web: Web, draft: Draft) -> dict[str, Any]:
    """Previews, grounding beside the cited sources, the audit trail and the outbox of one draft."""
    report = ValidationReport.from_dict(draft.validation)
    cited = web.archive.sources(draft)
    by_id = {r.id: r for r in cited}
    claims = []
    for line in draft.meta.get("claims") or []:
        if isinstance(line, dict):
            text = str(line.get("text", ""))
            check = next((c for c in report.claims if c.text and text.startswith(c.text.rstrip("…"))), None)
            claims.append((text, check, [by_id[i] for i in line.get("item_ids") or [] if i in by_id]))
    chart = None
    if draft.tickers:
        chart = price_chart(web.archive.price_series(draft.tickers[0], draft.window_start, draft.window_end),
                            label=f"${draft.tickers[0]}")
    versions = lineage(web, draft)
    audit = AuditLog(web.reads.engine)
    trail = sorted((e for v in versions for e in audit.for_draft(v.id)), key=lambda e: e.id, reverse=True)
    when = ReviewQueue(web.reads).scheduled([draft.id]).get(draft.id)
    amendments = Amender(ReviewQueue(web.reads)).of_draft(draft.id)
    return {"amends": AMENDS.get(draft.status, ()), "amendments": amendments,
            "draft": draft, "report": report, "claims": claims, "cited": cited, "chart": chart, "trail": trail,
            "versions": versions, "scheduled_at": when, "outbox": Outbox(web.reads.engine).rows(draft.id),
            "post_break": POST_BREAK, "open": draft.status in OPEN}
