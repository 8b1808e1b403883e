"""Publishing through the outbox with real tweepy and python-telegram-bot clients against loopback fakes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crew.model import ValidationReport
from memory.drafts import DraftStore
from memory.state import StateDB
from publish.audit import AuditLog
from publish.delivery import Delivery, RunReport
from publish.outbox import Outbox
from publish.review import ReviewQueue
from tapewatch.clients import delivery, open_state, publish_channels
from tests.fakes.publishing import Sleeps, add_draft, make_settings
from tests.fakes.telegram_api import CHANNEL_ID, FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import ME_ID, FakeXAPI, serving_x


@pytest.fixture
def x() -> Iterator[FakeXAPI]:
    with serving_x() as server:
        yield server


@pytest.fixture
def tg() -> Iterator[FakeTelegramAPI]:
    with serving_telegram() as server:
        yield server


class Rig:
    """A state DB, the review queue and a publish run factory wired like the CLI wires them."""

    def __init__(self, tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI, **publish: Any) -> None:
        self.settings = make_settings(tmp_path, x.base_url, tg.base_url, **publish)
        self.state: StateDB = open_state(self.settings)
        self.queue = ReviewQueue(self.state, reviewers=["alice", "bob"])
        self.sleeps = Sleeps()
        self.now: datetime | None = None

    def run(self, dry_run: bool = False) -> RunReport:
        d: Delivery = delivery(self.settings, self.state, {} if dry_run else publish_channels(self.settings))
        d.sleep = self.sleeps
        if self.now is not None:
            # The outbox stamps sent parts with its own clock, which the daily cap counts back from: one clock,
            # or the test depends on the time of day it runs at.
            d.clock = d.outbox.clock = lambda: self.now  # type: ignore[assignment, return-value]
        return asyncio.run(d.run(dry_run=dry_run))

    def approved(self, tag: str = "a", posts: int = 4) -> str:
        draft = add_draft(self.state, tag, posts=posts)
        self.queue.approve(draft.id, "alice")
        return draft.id

    def rows(self, draft_id: str, channel: str) -> list[Any]:
        return Outbox(self.state.engine).rows(draft_id, channel)


def assert_chain(x: FakeXAPI, texts: list[str]) -> None:
    """Our account holds exactly these posts, each a reply to the one before."""
    posts = x.posts_by(ME_ID)
    assert [p.text for p in posts] == texts
    assert posts[0].in_reply_to is None
    assert all(posts[i].in_reply_to == posts[i - 1].id for i in range(1, len(posts)))


def test_thread_of_four_and_a_telegram_message(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg)
    draft_id = rig.approved()
    report = rig.run()
    draft = rig.queue.drafts.get(draft_id)
    assert report.published == [draft_id] and report.parts_sent == 5 and draft.status == "published"
    assert_chain(x, list(draft.x_thread))
    assert x.calls("/2/tweets", "POST")[0].headers["authorization"].startswith("OAuth ")
    [message] = tg.messages
    assert message.chat_id == CHANNEL_ID and message.text == draft.telegram_html
    assert message.parse_mode == "HTML" and message.link_preview_disabled
    x_rows = rig.rows(draft_id, "x")
    assert [r.remote_id for r in x_rows] == [p.id for p in x.posts_by(ME_ID)]
    assert x_rows[0].url == f"https://x.com/tapewatch_bot/status/{x_rows[0].remote_id}"
    assert [r.reply_to for r in x_rows[1:]] == [r.remote_id for r in x_rows[:-1]]
    [tg_row] = rig.rows(draft_id, "telegram")
    assert tg_row.url == f"https://t.me/tapewatch_test/{message.message_id}"
    # Nothing left to do: a second run posts nothing.
    again = rig.run()
    assert again.parts_sent == 0 and len(x.posts_by(ME_ID)) == 4 and len(tg.messages) == 1


def test_x_timeout_whose_post_went_out_is_reconciled_not_duplicated(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, timeout="0.5s", channels=["x"])
    # Part 2 is created, but the answer comes after the client gave up.
    x.fail_next("/2/tweets", 503, method="POST", skip=1, after_effect=True, delay_s=1.2)
    draft_id = rig.approved()
    report = rig.run()
    assert report.reconciled == 1 and report.resent == 0 and report.published == [draft_id]
    assert_chain(x, list(rig.queue.drafts.get(draft_id).x_thread))
    assert x.calls("/2/users/9000000000000000001/tweets", "GET")  # it searched our own timeline
    actions = [e.action for e in AuditLog(rig.state.engine).for_draft(draft_id) if e.channel == "x"]
    assert actions.count("unknown") == 1 and actions.count("reconciled") == 1


def test_x_timeout_that_did_not_post_is_sent_once_more(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, timeout="0.5s", channels=["x"])
    x.fail_next("/2/tweets", 503, method="POST", skip=2, delay_s=1.2)  # part 3 stalls and is not created
    draft_id = rig.approved()
    report = rig.run()
    assert report.resent == 1 and report.reconciled == 0 and report.published == [draft_id]
    assert_chain(x, list(rig.queue.drafts.get(draft_id).x_thread))
    assert rig.rows(draft_id, "x")[2].attempts == 2


@pytest.mark.parametrize("created", [False, True])
def test_x_server_error_is_checked_before_any_resend(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI, created: bool) -> None:
    rig = Rig(tmp_path, x, tg, channels=["x"])
    x.fail_next("/2/tweets", 500, method="POST", skip=1, after_effect=created)
    draft_id = rig.approved()
    report = rig.run()
    assert (report.reconciled, report.resent) == ((1, 0) if created else (0, 1))
    assert_chain(x, list(rig.queue.drafts.get(draft_id).x_thread))
    assert len(rig.sleeps.waits) == (0 if created else 1)  # a backoff before the resend


def test_x_429_waits_until_the_reset(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, channels=["x"])
    x.fail_next("/2/tweets", 429, method="POST", skip=1,
                headers={"x-rate-limit-reset": str(int(time.time()) + 20), "x-rate-limit-remaining": "0"},
                body={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                      "status": 429})
    draft_id = rig.approved()
    report = rig.run()
    assert report.published == [draft_id]
    [wait] = rig.sleeps.waits
    assert 18 <= wait <= 22
    assert_chain(x, list(rig.queue.drafts.get(draft_id).x_thread))
    assert len(x.calls("/2/tweets", "POST")) == 5


def test_telegram_429_honours_retry_after_and_5xx_backs_off(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, channels=["telegram"])
    tg.fail_next("sendMessage", 429, description="Too Many Requests: retry after 7", retry_after=7)
    tg.fail_next("sendMessage", 500, description="Internal Server Error")
    draft_id = rig.approved()
    report = rig.run()
    assert report.published == [draft_id] and len(tg.messages) == 1
    # 429: the server's retry_after; then a 5xx: backoff of 2 s for the second attempt, with ±20% jitter
    assert rig.sleeps.waits[0] == 7 and 1.6 <= rig.sleeps.waits[1] <= 2.4
    assert len(tg.calls("sendMessage")) == 3


def test_a_wait_longer_than_allowed_stops_the_run_and_the_thread_resumes_later(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, channels=["x"], max_wait="60s")
    x.fail_next("/2/tweets", 429, method="POST", skip=2)  # the fake's reset is 15 minutes away
    first = rig.approved("a")
    second = rig.approved("b", posts=2)
    report = rig.run()
    assert report.stopped and "publish.max_wait" in report.stopped
    assert [r.state for r in rig.rows(first, "x")] == ["sent", "sent", "queued", "queued"]
    assert rig.rows(second, "x") == [] and rig.sleeps.waits == []
    assert rig.queue.drafts.get(first).status == "approved"
    report = rig.run()
    assert sorted(report.published) == sorted([first, second])
    posts = x.posts_by(ME_ID)
    assert len(posts) == 6
    # Part 3 answers part 2, sent by the earlier run.
    assert_chain_prefix = [p.text for p in posts[:4]] == list(rig.queue.drafts.get(first).x_thread)
    assert assert_chain_prefix and posts[2].in_reply_to == posts[1].id and posts[4].in_reply_to is None


def test_telegram_timeout_goes_to_a_person_and_is_never_resent(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, timeout="0.5s", channels=["telegram"])
    tg.fail_next("sendMessage", 502, after_effect=True, delay_s=1.2)
    draft_id = rig.approved()
    report = rig.run()
    assert report.needs_check == 1 and report.waiting == [draft_id] and len(tg.messages) == 1
    [row] = rig.rows(draft_id, "telegram")
    assert row.state == "needs_check"
    assert rig.run().parts_sent == 0 and len(tg.calls("sendMessage")) == 1  # never resent
    Outbox(rig.state.engine, actor="alice").mark_sent(row, str(tg.messages[0].message_id), None, action="resolved")
    assert rig.run().published == [draft_id] and len(tg.messages) == 1


def test_unapproved_flagged_and_rejected_drafts_are_never_published(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg)
    bad = ValidationReport(checked_at=datetime.now(UTC)).to_dict() | {"ok": False, "problems": [
        {"code": "price_mismatch", "message": "SOL +40% is not in any snapshot", "where": "x:1"}]}
    pending = add_draft(rig.state, "a")
    flagged = add_draft(rig.state, "b", status="flagged", validation=bad)
    rejected = add_draft(rig.state, "c")
    rig.queue.reject(rejected.id, "bob", reason="no")
    report = rig.run()
    assert report.published == [] and x.calls("/2/tweets", "POST") == [] and tg.calls("sendMessage") == []
    # Auto policy: a pending draft that passes grounding goes; flagged ones never do.
    auto = Rig(tmp_path, x, tg, policy="auto")
    report = auto.run()
    assert report.published == [pending.id]
    assert {d: auto.queue.drafts.get(d).status for d in (pending.id, flagged.id, rejected.id)} == {
        pending.id: "published", flagged.id: "flagged", rejected.id: "rejected"}
    approve = next(e for e in AuditLog(auto.state.engine).for_draft(pending.id) if e.action == "approve")
    assert approve.actor == "policy"


def test_auto_policy_flags_a_draft_that_fails_grounding(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, policy="auto")
    draft = add_draft(rig.state, "a", item_ids=("not-in-memory",))
    report = rig.run()
    assert report.published == [] and rig.queue.drafts.get(draft.id).status == "flagged"
    assert x.calls("/2/tweets", "POST") == []


def test_duplicate_guard_blocks_a_near_copy(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg)
    first = rig.approved("a")
    rig.run()
    copy = add_draft(rig.state, "a")  # the same brief written again
    rig.queue.approve(copy.id, "alice")
    other = rig.approved("b")
    report = rig.run()
    assert report.published == [other]
    assert report.failed == [copy.id] and rig.queue.drafts.get(copy.id).status == "failed"
    assert {(d, ch, like) for d, ch, like, _ in report.blocked} == {(copy.id, "x", first), (copy.id, "telegram", first)}
    assert all(r.state == "blocked" for r in rig.rows(copy.id, "x"))
    assert len(x.posts_by(ME_ID)) == 8 and len(tg.messages) == 2


def test_dry_run_records_without_posting(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg)
    draft_id = rig.approved()
    report = rig.run(dry_run=True)
    assert [(r.channel, r.part, r.state) for r in report.would_post] == [
        ("x", 0, "dry_run"), ("x", 1, "dry_run"), ("x", 2, "dry_run"), ("x", 3, "dry_run"),
        ("telegram", 0, "dry_run")]
    assert x.requests == [] and tg.requests == []
    assert rig.queue.drafts.get(draft_id).status == "approved"
    assert rig.run().published == [draft_id] and len(x.posts_by(ME_ID)) == 4


def test_quiet_hours_daily_cap_and_schedule(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, quiet_hours="22:00-07:00", max_posts_per_day=1)
    a, b = rig.approved("a"), rig.approved("b")
    rig.now = datetime.now(UTC).replace(hour=23, minute=30)
    report = rig.run()
    assert report.published == [] and {why for _, why in report.skipped} == {"quiet hours"}
    rig.now = rig.now + timedelta(hours=9)
    rig.queue.schedule(a, "bob", rig.now + timedelta(hours=3))
    report = rig.run()
    assert report.published == [b]
    assert dict(report.skipped)[a].startswith("scheduled for")
    rig.now = rig.now + timedelta(hours=4)
    report = rig.run()
    assert report.published == [] and dict(report.skipped)[a] == "daily cap of 1 reached"


def test_a_second_run_is_refused_while_one_holds_the_lease(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    from publish.lease import Lease
    from sources.errors import PublishError

    rig = Rig(tmp_path, x, tg)
    holder = Lease(rig.state.engine, timedelta(minutes=5))
    assert holder.acquire()
    rig.approved()
    with pytest.raises(PublishError, match="another publish run is active"):
        rig.run()
    holder.release()
    assert rig.run().parts_sent == 5


def test_audit_log_is_complete(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, timeout="0.5s")
    x.fail_next("/2/tweets", 503, method="POST", skip=1, after_effect=True, delay_s=1.2)
    published = rig.approved("a")
    edited = rig.queue.edit(add_draft(rig.state, "b").id, "bob", telegram_html="<b>B</b> edited")
    rig.queue.approve(edited.id, "alice", override="checked by hand")
    rejected = add_draft(rig.state, "c")
    rig.queue.reject(rejected.id, "bob", reason="stale")
    rig.run()
    log = AuditLog(rig.state.engine)
    for draft in rig.queue.drafts.list(limit=100):
        entries = log.for_draft(draft.id)
        assert all(e.actor and e.via and e.at for e in entries)
        moves = [e for e in entries if e.to_status and e.from_status != e.to_status]
        # Status changes form one unbroken chain ending at the draft's status.
        chain = [moves[0].from_status or "pending"] + [m.to_status for m in moves]
        assert all(m.from_status in (None, prev) for m, prev in zip(moves, chain, strict=False))
        assert chain[-1] == draft.status
    # Every part sent has its intent and its remote id in the log.
    for draft_id in (published, edited.id):
        for row in Outbox(rig.state.engine).rows(draft_id):
            steps = [e for e in log.for_draft(draft_id) if e.detail.get("row") == row.id]
            assert steps[0].action == "intent" and steps[0].detail["reply_to"] == row.reply_to
            assert steps[-1].detail["remote_id"] == row.remote_id and steps[-1].action in ("sent", "reconciled")
    statuses = {d: rig.queue.drafts.get(d).status for d in (published, edited.id, rejected.id, edited.parent_id)}
    assert list(statuses.values()) == ["published", "published", "rejected", "superseded"]


def test_a_draft_with_nothing_for_a_channel_fails_instead_of_posting_empty(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    from dataclasses import replace

    from memory.drafts import DraftStore

    rig = Rig(tmp_path, x, tg)
    draft = DraftStore(rig.state).save(replace(add_draft(rig.state, "z"), id="f" * 32, telegram_html="  "))
    rig.queue.approve(draft.id, "alice")
    report = rig.run()
    assert draft.id in report.failed and tg.calls("sendMessage") == []
    assert next(e for e in AuditLog(rig.state.engine).for_draft(draft.id) if e.action == "fail").reason == (
        "not delivered on telegram")


def test_a_draft_goes_only_to_its_own_channels(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg)
    telegram_only = rig.approved("a", posts=2)
    DraftStore(rig.state).update_meta(telegram_only, channels=["telegram"])
    report = rig.run()
    assert report.published == [telegram_only]
    assert x.posts_by(ME_ID) == [] and len(tg.messages) == 1
    # A draft meant only for a channel that is not enabled fails with the reason, and posts nothing.
    rig_x_off = Rig(tmp_path, x, tg, channels=["telegram"])
    x_only = rig_x_off.approved("b", posts=2)
    DraftStore(rig_x_off.state).update_meta(x_only, channels=["x"])
    report = rig_x_off.run()
    assert report.failed == [x_only] and len(tg.messages) == 1
    entry = next(e for e in AuditLog(rig_x_off.state.engine).for_draft(x_only) if e.action == "fail")
    assert entry.reason == "none of its channels (x) is enabled in publish.channels (telegram)"


class Crashing:
    """A real channel that crashes (a publisher bug, not a refusal) on texts containing ``poison``."""

    def __init__(self, inner: Any, poison: str) -> None:
        self.inner, self.poison = inner, poison
        self.name, self.reconcilable = inner.name, inner.reconcilable

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def send(self, text: str, reply_to: str | None) -> Any:
        if self.poison in text:
            raise RuntimeError(f"publisher bug on {self.poison!r}")
        return await self.inner.send(text, reply_to)

    async def find(self, text: str, reply_to: str | None, since: datetime) -> Any:
        return await self.inner.find(text, reply_to, since)


def test_one_poison_draft_never_blocks_the_publish_queue(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    """A draft that crashes a run (before or after parts went out) or that Telegram refuses is set aside."""
    rig = Rig(tmp_path, x, tg)
    first, crash_x, refused, crash_tg, last = (rig.approved(tag, posts=1) for tag in ("a", "b", "c", "d", "e"))
    tg.refuse("sendMessage", "C brief")
    real = publish_channels(rig.settings)
    channels = {"x": Crashing(real["x"], "ether staking"), "telegram": Crashing(real["telegram"], "D brief")}

    def run() -> RunReport:
        d = delivery(rig.settings, rig.state, channels)  # type: ignore[arg-type]
        d.sleep = rig.sleeps
        return asyncio.run(d.run())

    report = run()
    status = {d: rig.queue.drafts.get(d).status for d in (first, crash_x, refused, crash_tg, last)}
    assert status == {first: "published", crash_x: "approved", refused: "failed", crash_tg: "approved",
                      last: "published"}
    assert [d for d, _ in report.errors] == [crash_x, crash_tg]
    assert "RuntimeError: publisher bug on 'ether staking'" in report.errors[0][1]
    # A crash after the part's intent was recorded may have posted: never a blind repost. On X later runs search
    # our posts, find it absent and try again, and a draft that fails three runs is failed with the reason; on
    # Telegram, which cannot be searched, the part goes to a person.
    run()
    run()
    assert rig.queue.drafts.get(crash_x).status == "failed"
    trail = AuditLog(rig.state.engine).for_draft(crash_x)
    assert len([e for e in trail if e.action == "error"]) == 3
    assert "RuntimeError" in next(e.reason or "" for e in trail if e.action == "fail")
    assert [r.state for r in rig.rows(crash_tg, "telegram")] == ["needs_check"]
    assert sum("chainlink oracles" in p.text for p in x.posts_by(ME_ID)) == 1
    assert [m.text.split("\n")[0] for m in tg.messages] == ["<b>A brief</b>", "<b>E brief</b>"]


def test_a_draft_the_grounding_check_chokes_on_is_left_for_a_person(
        tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    rig = Rig(tmp_path, x, tg, policy="auto")
    drafts = [add_draft(rig.state, tag, posts=1) for tag in ("a", "b", "c")]

    def validator(draft: Any) -> ValidationReport:
        if "ether" in draft.x_thread[0]:
            raise KeyError("claims")  # a checker bug on one draft's content
        return ValidationReport(())

    d = delivery(rig.settings, rig.state, publish_channels(rig.settings))
    d.queue.validator = validator
    d.sleep = rig.sleeps
    report = asyncio.run(d.run())
    assert sorted(report.published) == sorted([drafts[0].id, drafts[2].id])
    assert rig.queue.drafts.get(drafts[1].id).status == "pending"
    assert (drafts[1].id, "the grounding check failed: KeyError: 'claims'") in report.skipped
