"""The desk inside `tapewatch run` ([web] enabled): served on the daemon's loop; publish now goes out once."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory.accounts import Accounts
from memory.drafts import DraftStore
from publish.audit import AuditLog
from tapewatch.bot.service import attach
from tapewatch.daemon import Daemon
from tapewatch.web.service import attach as attach_web
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.publishing import add_draft
from tests.fakes.telegram_api import CHANNEL_ID, FakeTelegramAPI
from tests.fakes.x_api import ME_ID, FakeXAPI
from tests.test_automation import automation_settings, fakes, until  # noqa: F401  (fixture)
from tests.test_daemon import make_runtime
from tests.web_support import PASSWORD, csrf_of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_desk_runs_in_the_daemon_and_publish_now_posts_exactly_once(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    x, tg, cg = fakes
    port = free_port()
    schedule = {"briefs": [], "publish_every": "1h", "review_every": "1h"}
    settings = automation_settings(tmp_path, x, tg, cg, schedule=schedule, web={"enabled": True, "port": port},
                                   bot={"enabled": False})
    runtime = make_runtime(settings, tmp_path, hash_embedder)
    daemon = Daemon(runtime)
    automation, lines = attach(daemon, runtime)
    lines += attach_web(daemon, runtime, automation)
    assert f"Web desk: http://127.0.0.1:{port}/ (public archive at /, the desk at /desk)" in lines
    Accounts(runtime.state).add("alice", "reviewer", PASSWORD)
    draft = add_draft(runtime.state)

    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                async def up() -> bool:
                    try:
                        return (await client.get("/healthz")).status_code == 200
                    except httpx.TransportError:
                        return False

                for _ in range(200):
                    if await up():
                        break
                    await asyncio.sleep(0.1)
                assert (await client.get("/healthz")).json()["ok"] is True
                form = await client.get("/login")
                await client.post("/login", data={"csrf_token": csrf_of(form.text), "name": "alice",
                                                  "password": PASSWORD, "next": "/desk"})
                page = await client.get(f"/desk/drafts/{draft.id}")
                token = csrf_of(page.text)
                assert (await client.post(f"/desk/drafts/{draft.id}/approve", data={"csrf_token": token})
                        ).status_code == 303
                done = await client.post(f"/desk/drafts/{draft.id}/publish", data={"csrf_token": token})
                assert done.status_code == 303
                assert 'id="note">Publishing now.' in (await client.get(done.headers["location"])).text
                await until(lambda: len(x.posts_by(ME_ID)) == len(draft.x_thread) and tg.sent_to(CHANNEL_ID))
                await until(lambda: DraftStore(runtime.state).get(draft.id).status == "published")
                again = await client.post(f"/desk/drafts/{draft.id}/publish", data={"csrf_token": token})
                assert 'id="note">Already published.' in (await client.get(again.headers["location"])).text
        finally:
            daemon.stop()
            await asyncio.wait_for(task, timeout=15)

    asyncio.run(main())
    assert [p.text for p in x.posts_by(ME_ID)] == list(draft.x_thread) and len(tg.sent_to(CHANNEL_ID)) == 1
    actions = [(e.actor, e.via, e.action) for e in AuditLog(runtime.state.engine).for_draft(draft.id)]
    assert ("alice", "web", "approve") in actions and ("alice", "web", "scheduled") in actions
    assert ("publisher", "daemon", "publish") in actions
    runtime.close()
