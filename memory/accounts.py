"""Web desk accounts: users with argon2id passwords and roles, revocable sessions, and failed-login counters."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from memory import schema
from memory.state import StateDB
from sources.errors import StoreError

ROLES = ("viewer", "reviewer", "admin")  # each can do what the one before it can
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}")
MIN_PASSWORD = 10
_HASHER = PasswordHasher()  # argon2id with argon2-cffi's current RFC 9106 low-memory profile
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _HASHER.hash(secrets.token_hex(16))


class AccountError(StoreError):
    """A user that cannot be added or changed: bad name, role or password, or no such user."""


@dataclass(frozen=True)
class User:
    """A desk account."""

    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime
    changed_at: datetime

    def can(self, role: str) -> bool:
        """True when this user's role is ``role`` or above it, and the account is enabled."""
        return not self.disabled and ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Session:
    """A signed-in session: who, its CSRF token, and when it ends."""

    user: User
    csrf_token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("a password has at most 1024 characters")


class Accounts:
    """Users and their sessions in the state database."""

    def __init__(self, state: StateDB, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.state = state
        self.clock = clock

    # -- users -----------------------------------------------------------------------------------
    def add(self, name: str, role: str, password: str) -> User:
        """Create a user; the password is stored only as an argon2id hash."""
        if not NAME.fullmatch(name):
            raise AccountError(f"user name {name!r} must be 1-64 letters, digits, _ . @ -")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        _check_password(password)
        now = self.clock()
        try:
            with self.state.engine.begin() as conn:
                conn.execute(insert(schema.web_users).values(
                    name=name, role=role, password_hash=_HASHER.hash(password), disabled=False, created_at=now,
                    changed_at=now))
        except IntegrityError as exc:
            raise AccountError(f"user {name!r} already exists") from exc
        return self.get(name)

    def get(self, name: str) -> User:
        """The user called ``name``."""
        u = schema.web_users
        with self.state.engine.connect() as conn:
            row = conn.execute(select(u).where(u.c.name == name)).first()
        if row is None:
            raise AccountError(f"no user {name!r}")
        return _user(row)

    def list(self) -> list[User]:
        """Every user, by name."""
        u = schema.web_users
        with self.state.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(u).order_by(u.c.name))]

    def set_disabled(self, name: str, disabled: bool = True) -> User:
        """Disable (or enable) a user; disabling ends every session of theirs."""
        user = self.get(name)
        u = schema.web_users
        with self.state.engine.begin() as conn:
            conn.execute(update(u).where(u.c.id == user.id).values(disabled=disabled, changed_at=self.clock()))
        if disabled:
            self.revoke_all(user.id)
        return self.get(name)

    def set_password(self, name: str, password: str) -> User:
        """Replace a user's password and end their sessions."""
        _check_password(password)
        user = self.get(name)
        u = schema.web_users
        with self.state.engine.begin() as conn:
            conn.execute(update(u).where(u.c.id == user.id).values(password_hash=_HASHER.hash(password),
                                                                   changed_at=self.clock()))
        self.revoke_all(user.id)
        return self.get(name)

    def verify(self, name: str, password: str) -> User | None:
        """The enabled user whose name and password these are, or None (constant work for unknown names)."""
        u = schema.web_users
        with self.state.engine.connect() as conn:
            row = conn.execute(select(u).where(u.c.name == name)).first() if NAME.fullmatch(name) else None
        try:
            _HASHER.verify(row.password_hash if row is not None else _DUMMY, password[:1024])
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled:
            return None
        if _HASHER.check_needs_rehash(row.password_hash):
            with self.state.engine.begin() as conn:
                conn.execute(update(u).where(u.c.id == row.id).values(password_hash=_HASHER.hash(password)))
        return _user(row)

    # -- sessions --------------------------------------------------------------------------------
    def open_session(self, user: User, ttl: timedelta, ip: str = "") -> str:
        """A new session for ``user``; returns its token (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.state.engine.begin() as conn:
            conn.execute(insert(schema.web_sessions).values(
                token_hash=_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32), created_at=now,
                expires_at=now + ttl, ip=ip[:64]))
        return token

    def session(self, token: str) -> Session | None:
        """The live session with this token: not expired, not revoked, its user enabled."""
        s, u = schema.web_sessions, schema.web_users
        with self.state.engine.connect() as conn:
            row = conn.execute(select(s.c.csrf_token, s.c.expires_at, s.c.revoked_at, u)
                               .join(u, u.c.id == s.c.user_id).where(s.c.token_hash == _digest(token))).first()
        if row is None or row.revoked_at is not None or row.expires_at <= self.clock() or row.disabled:
            return None
        return Session(_user(row), row.csrf_token, row.expires_at)

    def revoke(self, token: str) -> None:
        """End one session (sign out)."""
        s = schema.web_sessions
        with self.state.engine.begin() as conn:
            conn.execute(update(s).where(s.c.token_hash == _digest(token), s.c.revoked_at.is_(None))
                         .values(revoked_at=self.clock()))

    def revoke_all(self, user_id: int) -> int:
        """End every session of a user; returns how many were live."""
        s = schema.web_sessions
        with self.state.engine.begin() as conn:
            return int(conn.execute(update(s).where(s.c.user_id == user_id, s.c.revoked_at.is_(None))
                                    .values(revoked_at=self.clock())).rowcount)

    def prune_sessions(self, older_than: timedelta = timedelta(days=30)) -> int:
        """Forget sessions that ended more than ``older_than`` ago."""
        s = schema.web_sessions
        with self.state.engine.begin() as conn:
            return int(conn.execute(delete(s).where(s.c.expires_at < self.clock() - older_than)).rowcount)

    def signing_key(self) -> str:
        """The cookie signing key: made once at random and kept in the state database."""
        k = schema.web_keys
        with self.state.engine.begin() as conn:
            value = conn.execute(select(k.c.value).where(k.c.name == "session")).scalar()
            if value is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(k).values(name="session", value=secrets.token_urlsafe(48),
                                                      created_at=self.clock()))
                except IntegrityError:  # another process made it first
                    pass
                value = conn.execute(select(k.c.value).where(k.c.name == "session")).scalar()
        return str(value)


class LoginThrottle:
    """Failed logins per key (a user name, an IP): after ``limit`` in ``window`` the key is locked for ``lock``."""

    def __init__(self, state: StateDB, *, limit: int = 5, window: timedelta = timedelta(minutes=15),
                 lock: timedelta = timedelta(minutes=15),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.state = state
        self.limit = limit
        self.window = window
        self.lock = lock
        self.clock = clock

    def locked(self, *keys: str) -> datetime | None:
        """Until when any of these keys is locked (None when none is)."""
        f = schema.web_login_failures
        now = self.clock()
        with self.state.engine.connect() as conn:
            until = [r for r in conn.execute(select(f.c.locked_until).where(f.c.key.in_(keys))).scalars()
                     if r is not None and r > now]
        return max(until) if until else None

    def failed(self, *keys: str) -> None:
        """Count one failed login against each key."""
        f = schema.web_login_failures
        now = self.clock()
        with self.state.engine.begin() as conn:
            for key in keys:
                row = conn.execute(select(f).where(f.c.key == key)).first()
                if row is None or row.window_start < now - self.window:
                    conn.execute(delete(f).where(f.c.key == key))
                    conn.execute(insert(f).values(key=key, failures=1, window_start=now,
                                                  locked_until=now + self.lock if self.limit <= 1 else None))
                    continue
                failures = row.failures + 1
                conn.execute(update(f).where(f.c.key == key).values(
                    failures=failures, locked_until=now + self.lock if failures >= self.limit else row.locked_until))

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these keys after a good login."""
        f = schema.web_login_failures
        with self.state.engine.begin() as conn:
            conn.execute(delete(f).where(f.c.key.in_(keys)))


def _user(row: object) -> User:
    return User(id=row.id, name=row.name, role=row.role, disabled=bool(row.disabled),  # type: ignore[attr-defined]
                created_at=row.created_at, changed_at=row.changed_at)  # type: ignore[attr-defined]
