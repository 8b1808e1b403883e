"""/desk/users, for admins: the accounts, adding one, disabling or enabling one (each change audited)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from memory.accounts import AccountError, Session
from publish.audit import record
from tapewatch.web.app import Web


def routes(web: Web) -> list[Route]:
    """The users page and its form posts."""

    def page(request: Request) -> Response:
        web.user(request, "admin")
        return web.page(request, "users.html", users=web.accounts.list())

    async def change(request: Request) -> Response:
        session = web.user(request)
        form = await web.guard.check_csrf(request, session)
        action = str(request.path_params["action"])
        if not session.user.can("admin"):
            await run_in_threadpool(_audit, web, session, "refused", f"users {action}: needs the admin role")
            raise HTTPException(403, "Managing users needs the admin role.")
        name = str(form.get("name") or "").strip()
        try:
            note = await run_in_threadpool(_change, web, session, action, name, form)
        except AccountError as exc:
            note = f"Not done: {exc}"
        return web.done(session, "/desk/users", note)

    return [Route("/desk/users", page), Route("/desk/users/{action}", change, methods=["POST"])]


def _change(web: Web, session: Session, action: str, name: str, form: object) -> str:
    if action == "add":
        role, password = str(form.get("role") or ""), str(form.get("password") or "")  # type: ignore[attr-defined]
        user = web.accounts.add(name, role, password)
        _audit(web, session, "user_added", f"{user.name} as {user.role}")
        return f"Added {user.name} ({user.role})."
    if action in ("disable", "enable"):
        if name == session.user.name and action == "disable":
            raise AccountError("you cannot disable your own account here (use `tapewatch users disable`)")
        web.accounts.set_disabled(name, action == "disable")
        _audit(web, session, f"user_{action}d", name)
        return f"{name} is {action}d" + ("; its sessions are ended." if action == "disable" else ".")
    raise HTTPException(404, "No such action.")


def _audit(web: Web, session: Session, action: str, reason: str) -> None:
    with web.state.engine.begin() as conn:
        record(conn, at=web.deps.clock(), draft_id="", actor=session.user.name, via="web", action=action[:30],
               reason=reason[:500])
