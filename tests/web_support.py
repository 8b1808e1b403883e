"""Shared set-up of the web desk tests: an app over a real state DB and Chroma, accounts, signing in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from memory.accounts import Accounts
from memory.store import Memory
from tapewatch.clients import draft_validator
from tapewatch.web.app import WebDeps, build_app
from tests.fakes.publishing import make_settings

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_deps(tmp_path: Path, memory: Memory, *, publish_now: Callable[[str], str] | None = None,
             **publish: Any) -> WebDeps:
    """Dependencies of a desk over ``memory``'s state DB, with the real grounding validator."""
    settings = make_settings(tmp_path, **publish)
    return WebDeps(settings=settings, state=memory.state, memory=lambda: memory,
                   validator=draft_validator(settings, memory.state), publish_now=publish_now)


def client_for(deps: WebDeps, base_url: str = "http://testserver") -> TestClient:
    """A test client of the desk app (cookies kept between requests)."""
    return TestClient(build_app(deps), base_url=base_url, follow_redirects=False)


def add_users(deps: WebDeps) -> None:
    """One account of each role: vera (viewer), rita (reviewer), adam (admin)."""
    accounts = Accounts(deps.state)
    for name, role in (("vera", "viewer"), ("rita", "reviewer"), ("adam", "admin")):
        accounts.add(name, role, PASSWORD)


def csrf_of(html: str) -> str:
    """The first CSRF token in a page."""
    found = CSRF.search(html)
    assert found, "the page has no csrf_token field"
    return found[1]


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    """Sign in through the login form; returns the POST's response."""
    form = client.get("/login")
    return client.post("/login", data={"csrf_token": csrf_of(form.text), "name": name, "password": password,
                                       "next": "/desk"})


def desk_csrf(client: TestClient, path: str = "/desk") -> str:
    """The session's CSRF token, read from a desk page."""
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return csrf_of(page.text)
