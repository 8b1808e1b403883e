"""The web desk's routes through an ASGI test client, on a real SQLite state DB and a real Chroma."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memory.store import Memory
from publish.audit import AuditLog
from publish.review import ReviewQueue
from tests.fakes.publishing import REVIEWERS, add_draft
from tests.web_support import add_users, client_for, desk_csrf, sign_in, web_deps


@pytest.fixture
def deps(tmp_path: Path, memory: Memory) -> Any:
    d = web_deps(tmp_path, memory)
    add_users(d)
    return d


def test_public_pages_answer_without_login(deps: Any) -> None:
    client = client_for(deps)
    for path in ("/", "/feed.atom", "/t/SOL", "/narratives", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert client.get("/healthz").json() == {"ok": True, "state": "ok", "vectors": "ok"}


def test_desk_needs_login(deps: Any) -> None:
    client = client_for(deps)
    response = client.get("/desk")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_sign_in_sets_a_signed_httponly_lax_cookie_and_sign_out_revokes_it(deps: Any) -> None:
    client = client_for(deps)
    response = sign_in(client, "rita")
    assert response.status_code == 303 and response.headers["location"] == "/desk"
    cookie = response.headers["set-cookie"]
    assert "tw_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http (loopback); over https it is Secure, below
    raw = client.cookies["tw_session"]
    assert client.get("/desk").status_code == 200
    assert client.post("/logout", data={"csrf_token": desk_csrf(client)}).status_code == 303
    client.cookies.set("tw_session", raw)  # the old cookie, replayed after sign-out
    assert client.get("/desk").status_code == 303


def test_cookie_is_secure_over_https(deps: Any) -> None:
    response = sign_in(client_for(deps, base_url="https://desk.example"), "rita")
    assert "Secure" in response.headers["set-cookie"]


def test_a_tampered_cookie_signs_nobody_in(deps: Any) -> None:
    client = client_for(deps)
    sign_in(client, "rita")
    raw = client.cookies["tw_session"]
    client.cookies.clear()
    client.cookies.set("tw_session", raw[:-2] + ("AA" if not raw.endswith("AA") else "BB"))
    assert client.get("/desk").status_code == 303


def test_wrong_password_is_refused_and_locks_after_the_limit_per_user_and_per_ip(deps: Any) -> None:
    client = client_for(deps)
    for _ in range(deps.settings.web.login_limit):
        assert sign_in(client, "rita", "wrong password!").status_code == 401
    locked = sign_in(client, "rita")  # the right password, but the name is locked now
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert "tw_session" not in client.cookies
    # The same IP trying other names is locked too (per-IP counter), even for a real account.
    assert sign_in(client, "adam").status_code == 429


def test_login_without_or_with_a_forged_csrf_token_is_refused(deps: Any) -> None:
    client = client_for(deps)
    client.get("/login")
    assert client.post("/login", data={"name": "rita", "password": "correct horse battery"}).status_code == 403
    forged = client.post("/login", data={"csrf_token": "forged", "name": "rita", "password": "correct horse battery"})
    assert forged.status_code == 403 and "tw_session" not in client.cookies


def test_next_never_leaves_the_site(deps: Any) -> None:
    client = client_for(deps)
    page = client.get("/login?next=//evil.example/x")
    from tests.web_support import csrf_of

    response = client.post("/login", data={"csrf_token": csrf_of(page.text), "name": "rita",
                                           "password": "correct horse battery", "next": "//evil.example/x"})
    assert response.headers["location"] == "/desk"


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_desk_posts_without_the_sessions_csrf_token_are_refused(deps: Any, token: str | None) -> None:
    draft = add_draft(deps.state)
    client = client_for(deps)
    sign_in(client, "rita")
    data = {} if token is None else {"csrf_token": token}
    response = client.post(f"/desk/drafts/{draft.id}/approve", data=data)
    assert response.status_code == 403
    assert ReviewQueue(deps.state).drafts.get(draft.id).status == "pending"
    assert client.post("/desk/status/pause", data=data).status_code == 403
    assert client.post("/logout", data=data).status_code == 403


def test_another_sessions_csrf_token_is_refused(deps: Any) -> None:
    draft = add_draft(deps.state)
    other = client_for(deps)
    sign_in(other, "adam")
    stolen = desk_csrf(other)
    client = client_for(deps)
    sign_in(client, "rita")
    assert client.post(f"/desk/drafts/{draft.id}/approve", data={"csrf_token": stolen}).status_code == 403


def test_a_viewer_reads_the_desk_but_cannot_approve_and_the_attempt_is_audited(deps: Any) -> None:
    draft = add_draft(deps.state)
    client = client_for(deps)
    sign_in(client, "vera")
    assert client.get(f"/desk/drafts/{draft.id}").status_code == 200
    response = client.post(f"/desk/drafts/{draft.id}/approve", data={"csrf_token": desk_csrf(client)})
    assert response.status_code == 403 and "reviewer role" in response.text
    assert ReviewQueue(deps.state).drafts.get(draft.id).status == "pending"
    refused = [e for e in AuditLog(deps.state.engine).for_draft(draft.id) if e.action == "refused"]
    assert [(e.actor, e.via) for e in refused] == [("vera", "web")]
    assert client.post("/desk/status/pause", data={"csrf_token": desk_csrf(client), "paused": "1"}).status_code == 403


def test_a_reviewer_approves_through_the_review_queue_with_via_web(deps: Any) -> None:
    draft = add_draft(deps.state)
    ReviewQueue(deps.state, reviewers=REVIEWERS, validator=deps.validator).validate(draft.id)
    client = client_for(deps)
    sign_in(client, "rita")
    response = client.post(f"/desk/drafts/{draft.id}/approve", data={"csrf_token": desk_csrf(client)})
    assert response.status_code == 303
    assert ReviewQueue(deps.state).drafts.get(draft.id).status == "approved"
    approvals = [e for e in AuditLog(deps.state.engine).for_draft(draft.id) if e.action == "approve"]
    assert [(e.actor, e.via, e.from_status, e.to_status) for e in approvals] == [("rita", "web", "pending", "approved")]
    page = client.get(response.headers["location"])
    assert "Approved." in page.text and "rita" in page.text  # the note and the audit trail


def test_a_reviewer_cannot_pause_posting_but_an_admin_can(deps: Any) -> None:
    from memory.switches import POSTING_PAUSED, Switches

    client = client_for(deps)
    sign_in(client, "rita")
    assert client.post("/desk/status/pause", data={"csrf_token": desk_csrf(client), "paused": "1"}).status_code == 403
    admin = client_for(deps)
    sign_in(admin, "adam")
    assert admin.post("/desk/status/pause", data={"csrf_token": desk_csrf(admin), "paused": "1"}).status_code == 303
    switch = Switches(deps.state).get(POSTING_PAUSED)
    assert switch.on and switch.changed_by == "web:adam"
    assert "paused" in admin.get("/desk/status").text


def test_a_disabled_users_session_dies_at_once(deps: Any) -> None:
    from memory.accounts import Accounts

    client = client_for(deps)
    sign_in(client, "rita")
    assert client.get("/desk").status_code == 200
    Accounts(deps.state).set_disabled("rita")
    assert client.get("/desk").status_code == 303
    assert sign_in(client, "rita").status_code == 401


def test_reject_and_override_need_a_reason(deps: Any) -> None:
    draft = add_draft(deps.state, status="flagged", validation={"ok": False, "checked_at": "2026-12-01T00:00:00+00:00",
                                                                "problems": [{"code": "x", "message": "bad"}]})
    client = client_for(deps)
    sign_in(client, "rita")
    token = desk_csrf(client)
    for action in ("reject", "override"):
        response = client.post(f"/desk/drafts/{draft.id}/{action}", data={"csrf_token": token, "reason": " "})
        assert response.status_code == 409 and "needs a reason" in response.text
    assert client.post(f"/desk/drafts/{draft.id}/approve", data={"csrf_token": token}).status_code == 409
    done = client.post(f"/desk/drafts/{draft.id}/override", data={"csrf_token": token, "reason": "checked the wire"})
    assert done.status_code == 303 and ReviewQueue(deps.state).drafts.get(draft.id).status == "approved"


def test_edit_checks_as_you_type_and_saves_a_revalidated_version(deps: Any) -> None:
    draft = add_draft(deps.state)
    client = client_for(deps)
    sign_in(client, "rita")
    token = desk_csrf(client, f"/desk/drafts/{draft.id}")
    bad = {"csrf_token": token, "x_thread": "$SOL jumps 900% to $4,000 today. Not financial advice.",
           "telegram_html": draft.telegram_html, "markdown": draft.markdown}
    check = client.post(f"/desk/drafts/{draft.id}/check", data=bad)
    assert check.status_code == 200 and "problem" in check.text
    assert ReviewQueue(deps.state).drafts.get(draft.id).version == 1  # checking saves nothing
    good = {**bad, "x_thread": "\n---\n".join(draft.x_thread)}
    good["markdown"] = draft.markdown + "\n\nEdited on the desk."
    assert "Passes grounding" in client.post(f"/desk/drafts/{draft.id}/check", data=good).text
    saved = client.post(f"/desk/drafts/{draft.id}/edit", data=good)
    assert saved.status_code == 303
    new_id = saved.headers["location"].split("/")[-1].split("?")[0]
    new = ReviewQueue(deps.state).drafts.get(new_id)
    assert new.version == 2 and new.parent_id == draft.id and new.status == "pending"
    assert new.validation.get("checked_at") and new.markdown.endswith("Edited on the desk.")
    assert ReviewQueue(deps.state).drafts.get(draft.id).status == "superseded"


def test_queue_filters_by_status_and_ticker(deps: Any) -> None:
    pending, flagged = add_draft(deps.state, "a"), add_draft(deps.state, "b", status="flagged")
    rejected = add_draft(deps.state, "c", status="rejected")
    client = client_for(deps)
    sign_in(client, "vera")
    open_page = client.get("/desk").text
    assert pending.id[:8] in open_page and flagged.id[:8] in open_page and rejected.id[:8] not in open_page
    only = client.get("/desk?status=flagged", headers={"HX-Request": "true"})
    assert flagged.id[:8] in only.text and pending.id[:8] not in only.text and "<html" not in only.text
    assert pending.id[:8] not in client.get("/desk?ticker=BTC").text


def test_the_note_after_an_action_is_signed_and_shown_only_to_the_session_that_acted(deps: Any) -> None:
    draft = add_draft(deps.state)
    ReviewQueue(deps.state, reviewers=REVIEWERS, validator=deps.validator).validate(draft.id)
    page = f"/desk/drafts/{draft.id}"
    bait = "Your session expired. Sign in again at https://evil.example/login"
    rita = client_for(deps)
    sign_in(rita, "rita")
    # A crafted link, in the old form or with our parameter carrying unsigned or forged text, shows nothing.
    for query in (f"?note={bait}", f"?n={bait}", "?n=WyJhYmMiLCAiaGkiXQ.ZZZZZZ.forged", "?n="):
        shown = rita.get(page + query)
        assert shown.status_code == 200 and "evil.example" not in shown.text and 'id="note"' not in shown.text
    acted = rita.post(f"{page}/approve", data={"csrf_token": desk_csrf(rita, page)})
    assert acted.status_code == 303 and "?n=" in acted.headers["location"]
    assert 'id="note">Approved.' in rita.get(acted.headers["location"]).text
    # Another signed-in user following rita's link sees the page, not her note; so does rita after signing out.
    adam = client_for(deps)
    sign_in(adam, "adam")
    other = adam.get(acted.headers["location"])
    assert other.status_code == 200 and 'id="note"' not in other.text
    rita.post("/logout", data={"csrf_token": desk_csrf(rita)})
    sign_in(rita, "rita")
    assert 'id="note"' not in rita.get(acted.headers["location"]).text
    # The status and users pages carry their notes the same way.
    paused = adam.post("/desk/status/pause", data={"csrf_token": desk_csrf(adam), "paused": "1"})
    assert "Scheduled posting is paused" in adam.get(paused.headers["location"]).text
    assert "hacked" not in adam.get("/desk/status?note=Scheduled+posting+is+hacked").text


def test_pages_for_a_session_are_never_cached_and_public_ones_briefly(deps: Any) -> None:
    anonymous = client_for(deps)
    for path in ("/", "/narratives", "/track", "/feed.atom"):
        assert anonymous.get(path).headers["cache-control"] == "public, max-age=60", path
    assert anonymous.get("/login").headers["cache-control"] == "private, no-store"
    assert anonymous.get("/b/0123456789abcdef").headers["cache-control"] == "private, no-store"  # a 404
    rita = client_for(deps)
    sign_in(rita, "rita")
    draft = add_draft(deps.state)
    for path in ("/", "/desk", f"/desk/drafts/{draft.id}", "/desk/status"):
        response = rita.get(path)  # these carry the session's CSRF token and the desk's contents
        assert response.headers["cache-control"] == "private, no-store" and "Cookie" in response.headers["vary"]
