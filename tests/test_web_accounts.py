"""Desk accounts on a real SQLite state DB: argon2id hashes, revocable sessions, failed-login locks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from memory import schema
from memory.accounts import AccountError, Accounts, LoginThrottle
from memory.state import StateDB


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.close()


def test_password_is_stored_only_as_an_argon2id_hash(state: StateDB) -> None:
    Accounts(state).add("alice", "reviewer", "correct horse battery")
    with state.engine.connect() as conn:
        stored = conn.execute(select(schema.web_users.c.password_hash)).scalar()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert Accounts(state).verify("alice", "correct horse battery") is not None
    assert Accounts(state).verify("alice", "correct horse batterY") is None
    assert Accounts(state).verify("nobody", "correct horse battery") is None


@pytest.mark.parametrize(("name", "role", "password", "why"), [
    ("bad name", "viewer", "long enough pw", "user name"),
    ("bob", "owner", "long enough pw", "role must be"),
    ("bob", "viewer", "short", "at least 10"),
])
def test_bad_accounts_are_refused_with_one_line(state: StateDB, name: str, role: str, password: str, why: str) -> None:
    with pytest.raises(AccountError, match=why):
        Accounts(state).add(name, role, password)
    assert Accounts(state).list() == []


def test_duplicate_user_is_refused(state: StateDB) -> None:
    Accounts(state).add("alice", "admin", "correct horse battery")
    with pytest.raises(AccountError, match="already exists"):
        Accounts(state).add("alice", "viewer", "another long one")


def test_sessions_expire_and_are_revoked_by_disable_and_passwd(state: StateDB) -> None:
    now = [datetime(2026, 12, 1, 12, tzinfo=UTC)]
    accounts = Accounts(state, clock=lambda: now[0])
    alice = accounts.add("alice", "reviewer", "correct horse battery")
    token = accounts.open_session(alice, timedelta(hours=1))
    live = accounts.session(token)
    assert live is not None and live.user.name == "alice" and len(live.csrf_token) >= 32
    with state.engine.connect() as conn:  # only the token's hash is stored
        assert conn.execute(select(schema.web_sessions.c.token_hash)).scalar() != token
    now[0] += timedelta(hours=2)
    assert accounts.session(token) is None  # expired
    token = accounts.open_session(alice, timedelta(hours=1))
    accounts.set_password("alice", "a brand new password")
    assert accounts.session(token) is None  # a new password ends old sessions
    assert accounts.verify("alice", "correct horse battery") is None
    token = accounts.open_session(alice, timedelta(hours=1))
    accounts.set_disabled("alice")
    assert accounts.session(token) is None
    assert accounts.verify("alice", "a brand new password") is None  # a disabled user cannot sign in
    accounts.set_disabled("alice", False)
    assert accounts.session(token) is None  # enabling again does not bring the old session back


def test_throttle_locks_a_key_after_the_limit_and_unlocks_later(state: StateDB) -> None:
    now = [datetime(2026, 12, 1, 12, tzinfo=UTC)]
    throttle = LoginThrottle(state, limit=3, window=timedelta(minutes=10), lock=timedelta(minutes=5),
                             clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("user:alice", "ip:10.0.0.1")
    assert throttle.locked("user:alice") is None
    throttle.failed("user:alice", "ip:10.0.0.1")
    assert throttle.locked("user:alice") == now[0] + timedelta(minutes=5)
    assert throttle.locked("ip:10.0.0.1") is not None and throttle.locked("user:bob") is None
    now[0] += timedelta(minutes=6)
    assert throttle.locked("user:alice", "ip:10.0.0.1") is None


def test_signing_key_is_made_once(state: StateDB, tmp_path: Path) -> None:
    first = Accounts(state).signing_key()
    other = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    assert Accounts(other).signing_key() == first and len(first) >= 48
    other.close()


def test_every_template_and_static_file_ships_as_package_data() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tapewatch.web"]
    web = root / "tapewatch" / "web"
    files = [str(p.relative_to(web)) for sub in ("templates", "static") for p in (web / sub).iterdir()]
    assert "templates/feed.xml" in files and "static/htmx.min.js" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
