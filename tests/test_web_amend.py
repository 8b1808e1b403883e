"""The archive page of a corrected, then retracted brief: the correction with its time, then the retraction
(which also deletes the correction replies)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from memory.store import Memory
from publish.archive import public_id
from tapewatch.clients import amender, delivery, publish_channels, review_queue
from tests.fakes.publishing import add_draft
from tests.fakes.telegram_api import serving_telegram
from tests.fakes.x_api import ME_ID, serving_x
from tests.web_support import client_for, web_deps

FIX = "solana validators ship the new client next week, not this week"


def test_archive_page_shows_the_correction_and_the_retraction(tmp_path: Path, memory: Memory) -> None:
    with serving_x() as x, serving_telegram() as tg:
        deps: Any = web_deps(tmp_path, memory, x_url=x.base_url, tg_url=tg.base_url)
        queue = review_queue(deps.settings, deps.state)

        def publish_run() -> None:
            report = asyncio.run(delivery(deps.settings, deps.state, publish_channels(deps.settings)).run())
            assert not report.errors and not report.failed, report

        draft = add_draft(deps.state, "a", posts=2)
        queue.approve(draft.id, "alice")
        publish_run()
        client = client_for(deps)
        page = f"/b/{public_id(draft)}"
        assert client.get(page).status_code == 200 and "Correction" not in client.get(page).text

        fixes = amender(deps.settings, queue)
        fixes.correct(draft.id, FIX, "alice")
        assert "Correction" not in client.get(page).text  # queued, not out yet: not shown
        publish_run()
        html = client.get(page).text
        assert 'id="correction-1"' in html and FIX in html and "Correction" in html
        assert len([p for p in x.posts_by(ME_ID) if "Correction" in p.text]) == 1

        fixes.retract(draft.id, "the release date was wrong", "bob")
        publish_run()
        response = client.get(page)
        assert response.status_code == 200  # the link already shared still answers, marked retracted
        assert 'class="notice error"' in response.text and "the release date was wrong" in response.text
        assert response.text.index("Retraction") < response.text.index(FIX)  # newest first
        assert public_id(draft) not in client.get("/").text  # no longer listed among the briefs
        assert x.posts_by(ME_ID) == [] and len(tg.deleted) == 2  # the thread, the message and the corrections


def test_the_track_page_shows_the_table_and_says_too_few(tmp_path: Path, memory: Memory) -> None:
    import json
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from memory import schema
    from memory.calls import record_calls
    from memory.drafts import DraftStore
    from memory.prices import PriceSnapshot, PriceStore

    deps: Any = web_deps(tmp_path, memory)
    client = client_for(deps)
    assert "No published calls yet" in client.get("/track").text
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    prices = PriceStore(deps.state)
    for day in range(40):  # twelve briefs a day apart, each featuring SOL; SOL beats BTC by 1 point a day
        at = now - timedelta(days=40 - day)
        prices.add([PriceSnapshot("SOL", at, 100.0 * 1.02 ** day), PriceSnapshot("BTC", at, 90_000.0 * 1.01 ** day)],
                   now)
    for n in range(12):
        draft = add_draft(deps.state, f"t{n}", created_at=now - timedelta(days=39 - n))
        with deps.state.engine.begin() as conn:
            conn.execute(update(schema.drafts).where(schema.drafts.c.id == draft.id).values(
                status="published", signals=json.dumps({"tickers": [{"ticker": "SOL", "clusters": 3}]})))
        published = DraftStore(deps.state).get(draft.id)
        with deps.state.engine.begin() as conn:
            record_calls(conn, published, now - timedelta(days=39 - n))
    html = client.get("/track").text
    assert "12 call(s) from 12 published brief(s)" in html and 'id="track"' in html
    assert '<svg class="chart"' in html and "1d +1.00 pp" in html  # the 1-day row has enough calls
    # Daily briefs on 5- and 10-day horizons overlap: twelve of them are too few independent spans; and only
    # nine of them are 30 days old with a price at both ends.
    assert html.count("too few independent spans") == 2 and "too few calls (9 of 10 needed)" in html
