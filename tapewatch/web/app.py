"""The web desk's ASGI app: public archive pages, the review desk behind login, and /healthz.

Every page is rendered on the server by Jinja2 (autoescape on); htmx (shipped as a static file) swaps
partial updates in. Handlers are plain functions, so Starlette runs their blocking database work in its
thread pool and the event loop (the daemon's, inside ``tapewatch run``) never waits on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from crew.model import ValidationReport
from crew.render import weighted_length
from memory.accounts import Accounts, LoginThrottle, Session
from memory.drafts import Draft
from memory.state import StateDB
from publish.archive import Archive
from tapewatch.settings import Settings
from tapewatch.web.lanes import Lane, laned
from tapewatch.web.security import CSRF_FIELD, FLASH_PARAM, PRIVATE_PREFIXES, Guard, SecurityHeaders
from tapewatch.web.views import excerpt, markdown_html, safe_url, telegram_html, title_of

PUBLIC_MAX_AGE_S = 60  # how stale a cached public page may be: a correction shows within a minute
log = logging.getLogger(__name__)
HERE = Path(str(files("tapewatch.web")))
Validator = Callable[[Draft], ValidationReport]


@dataclass
class WebDeps:
    """What the pages need, built by the shell; the callables reach the daemon when it runs in-process."""

    settings: Settings
    state: StateDB
    memory: Callable[[], Any] | None = None  # the vector memory, opened on first use (narratives, /healthz)
    validator: Validator | None = None
    # Bring the publish run forward (the daemon), or run one now (standalone); raises when it cannot.
    publish_now: Callable[[str], str] | None = None
    set_paused: Callable[[bool, str], str] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Web:
    """Shared state of one app: templates, the session guard, the archive and the accounts."""

    def __init__(self, deps: WebDeps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.state = deps.state
        # Pages read through this view so that they never queue behind the daemon's writers (SQLite's write
        # lock); every action writes through ``state``.
        self.reads = deps.state.reading()
        self.accounts = Accounts(deps.state, clock=deps.clock)
        w = deps.settings.web
        self.throttle = LoginThrottle(deps.state, limit=w.login_limit, window=w.login_window, lock=w.login_lock,
                                      clock=deps.clock)
        self.guard = Guard(Accounts(self.reads, clock=deps.clock), ttl_s=w.session_ttl.total_seconds(),
                           secure=w.secure_cookies)
        self.archive = Archive(self.reads)
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(("html", "xml"), default=True),
                                     trim_blocks=True, lstrip_blocks=True,
                                     auto_reload=False)  # package data: no stat() of every template per page
        self.templates.filters.update(safe_url=safe_url, markdown=markdown_html, telegram=telegram_html,
                                      title_of=title_of, excerpt=excerpt, weighted=weighted_length, when=_when,
                                      as_text=lambda value: str.__str__(value))
        self.templates.globals.update(csrf_field=CSRF_FIELD, x_limit=280)

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a template with the signed-in session (if any) and its CSRF token."""
        session = self.guard.session(request)
        body = self.templates.get_template(name).render(
            request=request, session=session, user=session.user if session else None,
            csrf=session.csrf_token if session else "", archive_url=self.settings.publish.archive_url,
            flash=self.guard.read_flash(request), **context)
        # A page rendered for a session carries its CSRF token and the desk's contents: no cache may keep it.
        # A public page seen signed out is the same for everyone, so a proxy in front may serve it a minute.
        public = session is None and status == 200 and not request.url.path.startswith(PRIVATE_PREFIXES)
        cache = f"public, max-age={PUBLIC_MAX_AGE_S}" if public else "private, no-store"
        return HTMLResponse(body, status_code=status, headers={"cache-control": cache, "vary": "Cookie"})

    def done(self, session: Session, path: str, note: str) -> RedirectResponse:
        """After an action: back to ``path`` (ours), showing ``note`` to this session only (signed)."""
        return RedirectResponse(f"{path}?{FLASH_PARAM}={self.guard.flash(session, note)}", status_code=303)

    def user(self, request: Request, role: str = "viewer") -> Session:
        """The signed-in session with at least ``role``; 401 (to the login page) or 403 otherwise."""
        session = self.guard.session(request)
        if session is None:
            raise HTTPException(401, "Sign in first.")
        if not session.user.can(role):
            raise HTTPException(403, f"This needs the {role} role; you are a {session.user.role}.")
        return session


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "—"


def build_app(deps: WebDeps) -> Starlette:
    """The ASGI app over these dependencies."""
    from tapewatch.web import desk, public, status, track, users

    web = Web(deps)
    w = deps.settings.web
    pages = [*public.routes(web), *track.routes(web), *desk.routes(web), *status.routes(web), *users.routes(web)]
    routes = [*laned(pages, Lane("public", w.public_threads), Lane("desk", w.desk_threads)),
              Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static")]

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 401 and request.method == "GET":
            return Response(status_code=303, headers={"location": f"/login?next={request.url.path}"})
        if exc.status_code == 401 and request.headers.get("hx-request"):
            return Response(status_code=401, headers={"hx-redirect": "/login"})
        return web.page(request, "error.html", status=exc.status_code, code=exc.status_code, message=exc.detail)

    async def on_error(request: Request, exc: Exception) -> Response:
        log.exception("web: %s %s failed", request.method, request.url.path)
        return PlainTextResponse("Something went wrong on our side; it has been logged.", status_code=500)

    app = Starlette(routes=routes, exception_handlers={HTTPException: on_http_error, Exception: on_error})
    app.add_middleware(SecurityHeaders)
    app.state.web = web
    return app


def not_found() -> HTTPException:
    """The one 404 of the public side (the same for an unknown and an unpublished brief)."""
    return HTTPException(404, "No published brief here.")


__all__ = ["Web", "WebDeps", "build_app", "not_found"]
