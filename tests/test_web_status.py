"""/desk/status: posting switch, jobs, sources, the outbox settled from the page, spend and the X budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memory.costs import CostEntry, CostLedger
from memory.quotas import Quotas
from memory.state import FetchRecord
from memory.store import Memory
from publish.audit import AuditLog
from publish.outbox import Outbox
from publish.review import ReviewQueue
from tests.fakes.publishing import REVIEWERS, add_draft
from tests.web_support import add_users, client_for, desk_csrf, sign_in, web_deps


@pytest.fixture
def deps(tmp_path: Path, memory: Memory) -> Any:
    d = web_deps(tmp_path, memory, telegram_chat_id="@briefs")
    add_users(d)
    return d


def _needs_check(deps: Any) -> Any:
    draft = add_draft(deps.state)
    ReviewQueue(deps.state, reviewers=REVIEWERS).approve(draft.id, "alice", override="test")
    outbox = Outbox(deps.state.engine)
    row = outbox.plan(draft.id, "telegram", [draft.telegram_html])[0]
    assert outbox.mark_intent(row, None)
    assert outbox.mark_needs_check(outbox.get(row.id), "timed out; did it go out?")
    return draft, row


def test_status_shows_sources_spend_and_the_x_budget(deps: Any) -> None:
    now = datetime.now(UTC)
    deps.state.record_fetch(FetchRecord(source="wire", kind="news", url="https://news.example/feed.xml",
                                        started_at=now, finished_at=now, status="error", error="HTTP 500 <b>x</b>"))
    CostLedger(deps.state).record([CostEntry(now, "run1", "writer", "openai/x", 1, 100, 50, 0.25)])
    Quotas(deps.state).record_reads(now, posts=1234, requests=12)
    client = client_for(deps)
    sign_in(client, "vera")
    page = client.get("/desk/status").text
    assert "wire" in page and "HTTP 500 &lt;b&gt;x&lt;/b&gt;" in page
    assert "$0.2500" in page and "$1.00" in page  # today's spend against llm.daily_budget_usd
    assert "1,234 of" in page and "12 requests" in page
    assert "ingest-feeds" not in page and "feeds" in page  # jobs by kind
    assert 'id="toggle-posting"' not in page  # a viewer sees the switch, not its button


def test_a_reviewer_settles_a_part_that_needs_a_person(deps: Any) -> None:
    draft, row = _needs_check(deps)
    client = client_for(deps)
    sign_in(client, "rita")
    page = client.get("/desk/status").text
    assert f'action="/desk/outbox/{row.id}"' in page and "timed out; did it go out?" in page
    token = desk_csrf(client, "/desk/status")
    bad = client.post(f"/desk/outbox/{row.id}", data={"csrf_token": token, "outcome": "sent", "sent": "abc"})
    assert "a message id is a number" in client.get(bad.headers["location"]).text
    done = client.post(f"/desk/outbox/{row.id}", data={"csrf_token": token, "outcome": "sent", "sent": "4711"})
    assert done.status_code == 303
    settled = Outbox(deps.state.engine).get(row.id)
    assert settled.state == "sent" and settled.remote_id == "4711" and settled.url == "https://t.me/briefs/4711"
    entries = [e for e in AuditLog(deps.state.engine).for_draft(draft.id) if e.action == "resolved"]
    assert [(e.actor, e.via) for e in entries] == [("rita", "web")]
    again = client.post(f"/desk/outbox/{row.id}", data={"csrf_token": token, "outcome": "not_sent"})
    assert "only needs_check or unknown rows" in client.get(again.headers["location"]).text


def test_a_viewer_cannot_settle_an_outbox_part(deps: Any) -> None:
    _draft, row = _needs_check(deps)
    client = client_for(deps)
    sign_in(client, "vera")
    token = desk_csrf(client, "/desk/status")
    assert client.post(f"/desk/outbox/{row.id}", data={"csrf_token": token, "outcome": "not_sent"}).status_code == 403
    assert Outbox(deps.state.engine).get(row.id).state == "needs_check"


def test_schedule_from_the_desk(deps: Any) -> None:
    draft = add_draft(deps.state)
    client = client_for(deps)
    sign_in(client, "rita")
    token = desk_csrf(client)
    when = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    done = client.post(f"/desk/drafts/{draft.id}/schedule",
                       data={"csrf_token": token, "publish_at": when.strftime("%Y-%m-%dT%H:%M")})
    assert done.status_code == 303
    assert ReviewQueue(deps.state).scheduled([draft.id]) == {draft.id: when}
    assert draft.id[:8] in client.get("/desk?status=scheduled").text
    bad = client.post(f"/desk/drafts/{draft.id}/schedule", data={"csrf_token": token, "publish_at": "tomorrow"})
    assert bad.status_code == 409 and "is not a date and time" in bad.text


def test_publish_now_without_publishing_configured_says_so(deps: Any) -> None:
    draft = add_draft(deps.state)
    ReviewQueue(deps.state, reviewers=REVIEWERS).approve(draft.id, "alice", override="test")
    client = client_for(deps)
    sign_in(client, "rita")
    response = client.post(f"/desk/drafts/{draft.id}/publish", data={"csrf_token": desk_csrf(client)})
    assert response.status_code == 409 and "publishing is not running in this process" in response.text


def test_an_admin_manages_users_and_a_reviewer_cannot(deps: Any) -> None:
    from memory.accounts import Accounts

    admin = client_for(deps)
    sign_in(admin, "adam")
    token = desk_csrf(admin, "/desk/users")
    added = admin.post("/desk/users/add", data={"csrf_token": token, "name": "nina", "role": "reviewer",
                                                "password": "another long one"})
    assert added.status_code == 303 and Accounts(deps.state).get("nina").role == "reviewer"
    short = admin.post("/desk/users/add", data={"csrf_token": token, "name": "otto", "role": "viewer",
                                                "password": "short"})
    assert "at least 10 characters" in admin.get(short.headers["location"]).text
    nina = client_for(deps)
    sign_in(nina, "nina", "another long one")
    assert nina.get("/desk").status_code == 200
    assert nina.get("/desk/users").status_code == 403
    assert nina.post("/desk/users/disable", data={"csrf_token": desk_csrf(nina), "name": "adam"}).status_code == 403
    assert admin.post("/desk/users/disable", data={"csrf_token": token, "name": "nina"}).status_code == 303
    assert nina.get("/desk").status_code == 303  # her session ended with the account
    actions = [(e.actor, e.action) for e in AuditLog(deps.state.engine).all()]
    assert ("adam", "user_added") in actions and ("adam", "user_disabled") in actions and ("nina", "refused") in actions
