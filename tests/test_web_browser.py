"""The desk in a real browser: Debian's headless Chromium driven by Playwright, against a live uvicorn server.

Login → a flagged draft beside its sources → edited until it validates → approved → published now through
the fake X and Telegram → its permalink. A failing step saves a screenshot (build/browser-screenshots/).
Without /usr/bin/chromium the tests skip locally and fail in CI (CI=true), which must not skip them silently.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.accounts import Accounts
from memory.drafts import DraftStore
from memory.store import Memory
from publish.archive import public_id
from publish.review import ReviewQueue
from tapewatch.web.app import build_app
from tapewatch.web.service import server, standalone_deps
from tests.fakes.publishing import REVIEWERS, add_draft, make_settings
from tests.fakes.telegram_api import CHANNEL_ID, serving_telegram
from tests.fakes.x_api import ME_ID, serving_x
from tests.test_web_daemon import free_port
from tests.web_support import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parents[1] / "build" / "browser-screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
BAD_POST = "1/1 $SOL jumped 900% to $4,000 overnight, traders say. Not financial advice."

pytestmark = pytest.mark.slow


def _browser_or_skip() -> None:
    if CHROMIUM.exists():
        return
    message = (f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, as .ci/browser.sh "
               "does)")
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run in CI: {message}")
    pytest.skip(message)


@pytest.fixture
def live(tmp_path: Path, memory: Memory) -> Iterator[dict[str, Any]]:
    _browser_or_skip()
    with serving_x() as x, serving_telegram() as tg:
        settings = make_settings(tmp_path, x.base_url, tg.base_url)
        settings.web.port = free_port()
        deps = standalone_deps(settings, memory.state, lambda: memory)
        Accounts(memory.state).add("rita", "reviewer", PASSWORD)
        srv = server(build_app(deps), settings)
        thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.started, "uvicorn did not start"
        try:
            yield {"base": f"http://127.0.0.1:{settings.web.port}", "x": x, "tg": tg, "state": memory.state,
                   "validator": deps.validator}
        finally:
            srv.should_exit = True
            thread.join(10)


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Any]:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(20_000)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        failures = request.session.testsfailed  # the call phase's failure is counted before teardown runs
        try:
            yield tab
        finally:
            if request.session.testsfailed > failures:
                SHOTS.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
            context.close()
            browser.close()
        assert not [e for e in errors if "Content Security Policy" in e], errors  # our pages obey our own CSP


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/desk")
    assert "/login" in page.url
    page.fill("#name", "rita")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/desk$"))


def _flagged_draft(live: dict[str, Any]) -> Any:
    state = live["state"]
    original = add_draft(state)
    queue = ReviewQueue(state, reviewers=REVIEWERS, validator=live["validator"])
    flagged = queue.edit(original.id, "alice", x_thread=[BAD_POST])  # an edit that the grounding check flags
    assert flagged.status == "flagged"
    return original, flagged


def test_login_review_edit_approve_publish_and_permalink(live: dict[str, Any], page: Any) -> None:
    base, x, tg = live["base"], live["x"], live["tg"]
    original, flagged = _flagged_draft(live)
    _sign_in(page, base)

    # The flagged draft is in the queue; its problems show beside the sources it cites.
    page.select_option("#status", "flagged")
    page.wait_for_selector(f"a[href='/desk/drafts/{flagged.id}']")
    page.click(f"a[href='/desk/drafts/{flagged.id}']")
    page.wait_for_url(f"{base}/desk/drafts/{flagged.id}")
    assert page.inner_text("#status") == "flagged"
    assert page.locator("#problems li").count() >= 1
    assert "solana validators ship a new client" in page.inner_text("#cited")
    assert "#" not in (page.get_attribute("#cited a", "href") or "#")
    assert page.locator("#approve").count() == 0  # a flagged draft is approved only with an override
    _shot(page, "desk-flagged-draft")

    # Edit until it validates: the check runs as one types (htmx), then the save makes a new version.
    page.fill("#x_thread", "\n---\n".join(original.x_thread))
    page.wait_for_selector("#check-ok")
    page.click("#save")
    page.wait_for_url(re.compile(r"/desk/drafts/[0-9a-f]{32}\?n="))
    assert page.inner_text("#status") == "pending" and "passes grounding" in page.inner_text("#note")
    edited_id = page.url.split("/desk/drafts/")[1].split("?")[0]
    assert edited_id != flagged.id

    page.click("#approve")
    page.wait_for_selector("#publish")
    assert page.inner_text("#status") == "approved"
    page.click("#publish")
    page.wait_for_selector("#note")
    assert "Publishing now." in page.inner_text("#note")
    deadline = time.monotonic() + 30
    while DraftStore(live["state"]).get(edited_id).status != "published" and time.monotonic() < deadline:
        time.sleep(0.2)
    page.reload()
    assert page.inner_text("#status") == "published"
    assert [p.text for p in x.posts_by(ME_ID)] == list(original.x_thread) and len(tg.sent_to(CHANNEL_ID)) == 1
    assert "publish" in page.inner_text("#audit") and "rita" in page.inner_text("#audit")

    # The permalink shows the published brief and its sources, to anyone.
    pid = public_id(DraftStore(live["state"]).get(edited_id))
    anonymous = page.context.browser.new_context()
    reader = anonymous.new_page()
    reader.goto(f"{base}/b/{pid}")
    assert "solana validators ship a new client" in reader.inner_text("#text")
    link = reader.locator("#sources a").first
    assert link.get_attribute("href") == "https://news.example/a" and link.get_attribute("rel") == "noopener nofollow"
    _shot(reader, "archive-permalink")
    assert reader.goto(f"{base}/b/{public_id(flagged)}").status == 404  # the flagged version never published
    anonymous.close()


def test_wrong_password_shows_an_error_and_no_desk(live: dict[str, Any], page: Any) -> None:
    page.goto(f"{live['base']}/login")
    page.fill("#name", "rita")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "Wrong name or password." in page.inner_text("#login-error")
    assert page.goto(f"{live['base']}/desk").url.endswith("/login?next=/desk")


def _shot(page: Any, name: str) -> None:
    """Pages the README shows: written only when DESK_SCREENSHOTS names a directory (docs/screenshots)."""
    where = os.environ.get("DESK_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"{name}.png"), full_page=False)
