"""Strangers and floods against the daemon's bot: refusals audited with a stable id, no amplification, groups left."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from memory.drafts import DraftStore
from publish.audit import AuditLog
from tapewatch.bot.review import callback_data
from tapewatch.bot.service import attach
from tapewatch.daemon import Daemon
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko
from tests.fakes.telegram_api import FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import FakeXAPI, serving_x
from tests.test_automation import ALICE, BOB, REVIEW_CHAT, automation_settings, seed, until
from tests.test_bot_cards import cards_of, pending
from tests.test_daemon import make_runtime

MALLORY = 666
GROUP, STRANGE_GROUP, OTHER_GROUP = -2001, -3001, -3002
HOURLY = {"briefs": [], "publish_every": "1h", "review_every": "0.2s"}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko]]:
    with serving_x() as x, serving_telegram() as tg, serving_coingecko() as cg:
        cg.set("solana", 213.2, change=3.6)
        tg.add_chat(REVIEW_CHAT)
        yield x, tg, cg


def daemon_for(tmp_path: Path, fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], hash_embedder: Any,
               **bot: Any) -> tuple[Daemon, Any]:
    x, tg, cg = fakes
    settings = {"reviewers": [{"telegram_id": ALICE, "name": "alice"}], "review_chat_id": REVIEW_CHAT,
                "allowed_users": [BOB], "allowed_chats": [GROUP], "poll_timeout": "0.2s", **bot}
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, schedule=HOURLY, bot=settings), tmp_path,
                           hash_embedder)
    daemon = Daemon(runtime)
    attach(daemon, runtime)
    return daemon, runtime


def serve(daemon: Daemon, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        task = asyncio.create_task(daemon.serve(handle_signals=False))
        try:
            await until(lambda: daemon.scheduler.running)
            await scenario()
        finally:
            daemon.stop()
            await asyncio.wait_for(task, timeout=15)

    asyncio.run(main())


def test_refused_actions_are_audited_by_telegram_id_never_by_username_alone(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any) -> None:
    tg = fakes[1]
    tg.usernames[MALLORY] = "alice"  # a stranger who took a reviewer's name
    daemon, runtime = daemon_for(tmp_path, fakes, hash_embedder)
    draft = DraftStore(runtime.state).save(pending("<b>SOL</b> leads", 5))

    async def scenario() -> None:
        card = (await until(lambda: cards_of(tg, draft.id)))[0]
        tg.user_message(BOB, "/pause")
        tg.user_message(BOB, "/resume")
        tg.user_message(MALLORY, f"/override {draft.id} trust me", chat_id=REVIEW_CHAT)
        tg.user_callback(MALLORY, card.message_id, callback_data("approve", draft.id))
        tg.user_callback(ALICE, card.message_id, callback_data("edit", draft.id))
        prompt = await until(lambda: [m for m in tg.sent_to(REVIEW_CHAT) if "Reply to this message" in m.text])
        tg.user_message(BOB, "hijacked text", chat_id=REVIEW_CHAT, reply_to=prompt[0].message_id)
        tg.user_message(ALICE, "/pause")
        tg.user_message(ALICE, "/resume")
        await until(lambda: len([m for m in tg.sent_to(ALICE) if "Scheduled posting" in m.text]) >= 2)
        await until(lambda: len([e for e in AuditLog(runtime.state.engine).all() if e.action == "refused"]) >= 5)

    serve(daemon, scenario)
    entries = [(e.draft_id, e.actor, e.via, e.action, e.reason) for e in AuditLog(runtime.state.engine).all()
               if e.action in ("refused", "pause", "resume")]
    assert sorted(entries) == sorted([
        ("", "telegram:222 (@user222)", "telegram", "refused", "not a reviewer: tried to pause"),
        ("", "telegram:222 (@user222)", "telegram", "refused", "not a reviewer: tried to resume"),
        (draft.id, "telegram:666 (@alice)", "telegram", "refused", "not a reviewer: tried to override"),
        (draft.id, "telegram:666 (@alice)", "telegram", "refused", "not a reviewer: tried to approve"),
        (draft.id, "telegram:222 (@user222)", "telegram", "refused", "not a reviewer: tried to edit"),
        ("", "telegram:111 (@user111)", "telegram", "pause", None),
        ("", "telegram:111 (@user111)", "telegram", "resume", None),
    ])
    assert not [e for e in AuditLog(runtime.state.engine).all() if e.actor == "telegram:alice"]
    assert DraftStore(runtime.state).get(draft.id).status == "pending"  # the hijacked reply changed nothing
    assert not [d for d in DraftStore(runtime.state).list(None, 10) if "hijacked" in d.telegram_html]
    runtime.close()


def test_a_brief_flood_is_bounded_per_chat_and_strangers_get_one_refusal_then_silence(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    tg = fakes[1]
    monkeypatch.setattr("tests.test_databrief.NOW", datetime.now(UTC))
    daemon, runtime = daemon_for(tmp_path, fakes, hash_embedder, brief_chat_limit=3, max_refusals=10)
    seed(runtime)
    members = [5000 + i for i in range(92)]
    strangers = [7000 + i for i in range(15)]

    async def scenario() -> None:
        for user in members:  # 92 members of an allowed group ask within moments
            tg.user_message(user, "/brief $SOL", chat_id=GROUP)
        for _ in range(5):
            for user in strangers:  # 15 strangers, five times each, in private
                tg.user_message(user, "/brief")
        await until(lambda: tg.pending_updates() == 0)
        await until(lambda: len([m for m in tg.sent_to(GROUP) if m.text.startswith("<b>")]) >= 3)
        for _ in range(10):  # nothing more trickles out once the accepted briefs are answered
            await asyncio.sleep(0.1)

    serve(daemon, scenario)
    drafts = DraftStore(runtime.state).list(None, 200)
    assert len(drafts) == 3  # not 92: bot.brief_chat_limit per chat
    group = [m.text for m in tg.sent_to(GROUP)]
    assert sum(t.startswith("On it") for t in group) == 3
    assert sum(t.startswith("This chat has asked for several briefs") for t in group) == 1  # once, then silence
    assert len(group) == 3 + 3 + 1  # acknowledgements, answers, one notice: no amplification
    replies = {u: len(tg.sent_to(u)) for u in strangers}
    assert all(n <= 1 for n in replies.values())  # one refusal per user per period
    assert sum(replies.values()) == 10 - 1  # and at most bot.max_refusals in all (one went to the group)
    runtime.close()


def test_the_bot_leaves_groups_that_are_not_allowed_and_stays_in_its_own(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any) -> None:
    tg = fakes[1]
    daemon, runtime = daemon_for(tmp_path, fakes, hash_embedder)

    async def scenario() -> None:
        tg.user_message(MALLORY, "/brief", chat_id=STRANGE_GROUP)
        tg.user_message(BOB, "/top", chat_id=STRANGE_GROUP)  # even an allowed user: the group is not allowed
        tg.bot_added_to(OTHER_GROUP, by_user=MALLORY)
        tg.user_message(MALLORY, "hello", chat_id=REVIEW_CHAT)
        tg.user_message(BOB, "/top", chat_id=GROUP)
        await until(lambda: tg.sent_to(GROUP) and tg.pending_updates() == 0)

    serve(daemon, scenario)
    assert sorted(tg.left) == sorted([STRANGE_GROUP, OTHER_GROUP])  # each left once; the review chat stays
    assert tg.sent_to(STRANGE_GROUP) == [] and tg.sent_to(OTHER_GROUP) == []  # left without a word
    runtime.close()
