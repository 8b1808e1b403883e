"""Who is signed in, CSRF tokens on every POST, and the security headers every response carries."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memory.accounts import Accounts, Session

SESSION_COOKIE = "tw_session"
LOGIN_COOKIE = "tw_login"  # the pre-session CSRF nonce of the login form
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# The desk's paths: never cached, rendered on the desk's threads (tapewatch/web/lanes.py).
PRIVATE_PREFIXES = ("/desk", "/login", "/logout")
FLASH_PARAM = "n"  # the signed note after an action (Guard.flash)
FLASH_TTL_S = 600
# Only our own scripts and styles; no inline script, no eval, no framing, forms post only to us.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'; connect-src 'self'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """ASGI middleware adding ``HEADERS`` to every HTTP response (and no-store to the desk's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = str(scope.get("path", "")).startswith(PRIVATE_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if private and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class Guard:
    """Session cookies signed with the state DB's key, checked against the sessions table on each request."""

    def __init__(self, accounts: Accounts, *, ttl_s: float, secure: str = "auto") -> None:
        self.accounts = accounts
        self.ttl_s = ttl_s
        self.secure = secure
        self._signer = URLSafeTimedSerializer(accounts.signing_key(), salt="tapewatch-session")
        self._login_signer = URLSafeTimedSerializer(accounts.signing_key(), salt="tapewatch-login")
        self._flash_signer = URLSafeTimedSerializer(accounts.signing_key(), salt="tapewatch-flash")

    def _secure(self, request: Request) -> bool:
        return self.secure == "always" or (self.secure == "auto" and request.url.scheme == "https")

    def session(self, request: Request) -> Session | None:
        """The live session this request's cookie names, or None."""
        if "tw_session_cached" in request.scope:
            return request.scope["tw_session_cached"]
        raw = request.cookies.get(SESSION_COOKIE)
        found = None
        if raw:
            try:
                token = self._signer.loads(raw, max_age=int(self.ttl_s))
            except BadSignature:
                token = None
            if isinstance(token, str):
                found = self.accounts.session(token)
        request.scope["tw_session_cached"] = found
        return found

    def sign_in(self, response: Response, request: Request, token: str) -> None:
        """Set the session cookie: signed, HttpOnly, SameSite=Lax, Secure over https."""
        response.set_cookie(SESSION_COOKIE, self._signer.dumps(token), max_age=int(self.ttl_s), httponly=True,
                            samesite="lax", secure=self._secure(request), path="/")
        response.delete_cookie(LOGIN_COOKIE, path="/login")

    def sign_out(self, response: Response, request: Request) -> None:
        """Revoke the request's session and clear its cookie."""
        raw = request.cookies.get(SESSION_COOKIE)
        if raw:
            with contextlib.suppress(BadSignature):
                self.accounts.revoke(self._signer.loads(raw))
        response.delete_cookie(SESSION_COOKIE, path="/")

    # -- Flash notes ------------------------------------------------------------------------------
    # The note shown after an action ("Approved.") travels in the redirect's URL, so it is signed and bound
    # to the session that acted: a crafted link cannot make the desk show words of someone else's choosing.
    def flash(self, session: Session, note: str) -> str:
        """The ``?n=`` value that shows ``note`` once to this session (for ``FLASH_TTL_S``)."""
        return str(self._flash_signer.dumps([_bind(session), note[:500]]))

    def read_flash(self, request: Request) -> str | None:
        """The note this request's ``?n=`` carries, if it is ours, fresh and for the signed-in session."""
        raw, session = request.query_params.get(FLASH_PARAM), self.session(request)
        if not raw or session is None:
            return None
        try:
            bound, note = self._flash_signer.loads(raw, max_age=FLASH_TTL_S)
        except (BadSignature, ValueError, TypeError):
            return None
        return str(note) if isinstance(bound, str) and hmac.compare_digest(bound, _bind(session)) else None

    # -- CSRF ------------------------------------------------------------------------------------
    def login_nonce(self, request: Request) -> tuple[str, str | None]:
        """The login form's CSRF token, and the cookie to set when the browser has none yet."""
        raw = request.cookies.get(LOGIN_COOKIE)
        if raw:
            try:
                nonce = self._login_signer.loads(raw, max_age=3600)
                if isinstance(nonce, str):
                    return nonce, None
            except BadSignature:
                pass
        nonce = secrets.token_urlsafe(24)
        return nonce, self._login_signer.dumps(nonce)

    def set_login_cookie(self, response: Response, request: Request, cookie: str | None) -> None:
        """Remember the login form's nonce (HttpOnly, only sent to /login)."""
        if cookie is not None:
            response.set_cookie(LOGIN_COOKIE, cookie, max_age=3600, httponly=True, samesite="lax",
                                secure=self._secure(request), path="/login")

    async def check_login_csrf(self, request: Request, form: Any) -> None:
        """Refuse a login POST whose form token is not the one in its login cookie."""
        raw = request.cookies.get(LOGIN_COOKIE) or ""
        try:
            nonce = self._login_signer.loads(raw, max_age=3600)
        except BadSignature:
            nonce = None
        _compare(nonce, form.get(CSRF_FIELD))

    async def check_csrf(self, request: Request, session: Session) -> Any:
        """The POST's form, once its CSRF token (form field or X-CSRF-Token header) matches the session's."""
        form = await request.form()
        _compare(session.csrf_token, form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER))
        return form


def _bind(session: Session) -> str:
    """A tag of the session (from its CSRF token, which never leaves it) that a flash note is bound to."""
    return hashlib.sha256(f"flash:{session.csrf_token}".encode()).hexdigest()[:32]


def _compare(expected: object, given: object) -> None:
    if not isinstance(expected, str) or not isinstance(given, str) or not hmac.compare_digest(expected, given):
        raise HTTPException(403, "The form's security token is missing or stale; reload the page and try again.")


Endpoint = Callable[[Request], Awaitable[Response]]
