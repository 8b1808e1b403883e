"""Review cards in the daemon: a card Telegram refuses never blocks the others; one card per draft, edits too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memory.drafts import Draft, DraftStore
from memory.switches import ReviewCards
from tapewatch.bot.review import MAX_CARD_ATTEMPTS, callback_data
from tapewatch.bot.service import attach
from tapewatch.daemon import Daemon
from tests.fakes.coingecko import FakeCoinGecko, serving_coingecko
from tests.fakes.telegram_api import FakeMessage, FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import FakeXAPI, serving_x
from tests.test_automation import ALICE, REVIEW_CHAT, automation_settings, until
from tests.test_daemon import make_runtime


@pytest.fixture
def fakes() -> Iterator[tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko]]:
    with serving_x() as x, serving_telegram() as tg, serving_coingecko() as cg:
        tg.add_chat(REVIEW_CHAT)
        yield x, tg, cg


HOURLY = {"briefs": [], "publish_every": "1h", "review_every": "0.2s"}


def pending(text: str, minutes_ago: int) -> Draft:
    now = datetime.now(UTC)
    return Draft(created_at=now - timedelta(minutes=minutes_ago), mode="data", window_start=now - timedelta(days=1),
                 window_end=now, x_thread=("SOL leads attention today",), telegram_html=text, markdown=text,
                 item_ids=(), tickers=("SOL",), status="pending")


def cards_of(tg: FakeTelegramAPI, draft_id: str) -> list[FakeMessage]:
    return [m for m in tg.sent_to(REVIEW_CHAT) if draft_id in str(m.params.get("reply_markup", ""))]


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


def test_a_refused_card_is_recorded_and_the_later_cards_still_go_out(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any) -> None:
    x, tg, cg = fakes
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, schedule=HOURLY), tmp_path, hash_embedder)
    store = DraftStore(runtime.state)
    first = store.save(pending("<b>SOL</b> leads the first brief", 30))
    poison = store.save(pending("<b>SOL</b> POISON that the Bot API refuses", 20))
    # A tag spanning lines in a text longer than a card: the old line splitter cut it open and was refused.
    long = "<b>ETF flows</b>\n<blockquote>" + "\n".join(f"• day {i}: inflows &amp; outflows" for i in range(300))
    later = store.save(pending(long + "</blockquote>", 10))
    tg.refuse("sendMessage", "POISON")
    daemon = Daemon(runtime)
    attach(daemon, runtime)

    async def scenario() -> None:
        await until(lambda: cards_of(tg, first.id) and cards_of(tg, later.id))
        await until(lambda: any("could not be shown here" in m.text for m in tg.sent_to(REVIEW_CHAT)))
        for _ in range(3):  # more runs: the given-up draft is left alone, nothing is posted twice
            await daemon.run("review-cards")

    serve(daemon, scenario)
    assert len(cards_of(tg, first.id)) == 1 and len(cards_of(tg, later.id)) == 1
    assert cards_of(tg, later.id)[0].text.count("<blockquote>") == 1  # valid HTML, sent as HTML
    assert cards_of(tg, poison.id) == []
    assert ReviewCards(runtime.state).given_up([poison.id, first.id], MAX_CARD_ATTEMPTS) == {poison.id}
    tries = [r for r in tg.calls("sendMessage") if "POISON" in str(r.params.get("text"))]
    assert len(tries) == 2 * MAX_CARD_ATTEMPTS  # each attempt: as HTML, then as plain text
    notices = [m.text for m in tg.sent_to(REVIEW_CHAT) if "could not be shown here" in m.text]
    assert len(notices) == 1 and poison.id[:12] in notices[0] and "refused" in notices[0]
    runtime.close()


def test_an_edit_in_telegram_gets_exactly_one_card_and_the_old_card_shows_it_is_superseded(
        fakes: tuple[FakeXAPI, FakeTelegramAPI, FakeCoinGecko], tmp_path: Path, hash_embedder: Any) -> None:
    x, tg, cg = fakes
    runtime = make_runtime(automation_settings(tmp_path, x, tg, cg, schedule=HOURLY), tmp_path, hash_embedder)
    original = DraftStore(runtime.state).save(pending("<b>SOL</b> leads", 5))
    daemon = Daemon(runtime)
    attach(daemon, runtime)
    new_id: list[str] = []
    old_cards: list[FakeMessage] = []

    async def scenario() -> None:
        card = (await until(lambda: cards_of(tg, original.id)))[0]
        old_cards.append(card)
        tg.user_callback(ALICE, card.message_id, callback_data("edit", original.id))
        prompt = await until(lambda: [m for m in tg.sent_to(REVIEW_CHAT) if "Reply to this message" in m.text])
        tg.user_message(ALICE, "SOL leads; ETH lags", chat_id=REVIEW_CHAT, reply_to=prompt[0].message_id)
        await until(lambda: any(m.text.startswith("Saved as version 2") for m in tg.sent_to(REVIEW_CHAT)))
        edited = await until(lambda: [d for d in DraftStore(runtime.state).list(None, 10) if d.version == 2])
        new_id.append(edited[0].id)
        await until(lambda: cards_of(tg, new_id[0]))
        for _ in range(3):
            await daemon.run("review-cards")
        await until(lambda: "superseded" in card.text)

    serve(daemon, scenario)
    assert len(cards_of(tg, new_id[0])) == 1
    assert "<b>superseded</b>" in old_cards[0].text and "reply_markup" not in old_cards[0].params  # no buttons left
    runtime.close()
