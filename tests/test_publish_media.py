"""The take's chart on X (media upload, alt text) and Telegram (photo with caption), X costs and X budgets.

Real tweepy and python-telegram-bot clients against the loopback fakes; the crash test kills a real
`tapewatch publish` with SIGKILL between the upload and the post.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crew.chart import alt_text, chart_data, render_png
from memory.costs import CostLedger
from memory.drafts import DraftStore
from memory.state import StateDB
from publish.review import ReviewQueue
from sources.errors import PublishError
from tapewatch.charts import chart_file
from tapewatch.clients import delivery, open_state, publish_channels
from tests.fakes.publishing import Sleeps, add_draft, make_settings
from tests.fakes.telegram_api import CHANNEL, CHANNEL_ID, FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import ME_ID, FakeXAPI, serving_x

NOW = datetime.now(UTC)
SECRETS = {"TAPEWATCH_X_CONSUMER_KEY": "ck", "TAPEWATCH_X_CONSUMER_SECRET": "cs", "TAPEWATCH_X_ACCESS_TOKEN": "at",
           "TAPEWATCH_X_ACCESS_TOKEN_SECRET": "ats", "TAPEWATCH_TELEGRAM_BOT_TOKEN": ""}


@pytest.fixture
def x() -> Iterator[FakeXAPI]:
    with serving_x() as server:
        yield server


@pytest.fixture
def tg() -> Iterator[FakeTelegramAPI]:
    with serving_telegram() as server:
        yield server


def chart_png() -> tuple[bytes, str]:
    rows = [type("R", (), {"id": f"i{i}", "story_id": f"s{i}", "tickers": "SOL", "cluster": "dev", "kind": "social",
                           "published_at": NOW - timedelta(hours=i)})() for i in range(1, 6)]
    data = chart_data(rows, "SOL", NOW - timedelta(hours=24), NOW, [(NOW - timedelta(hours=3), 180.0)])
    return render_png(data), alt_text(data)


def with_chart(settings: Any, state: StateDB, draft_id: str) -> tuple[bytes, str]:
    png, alt = chart_png()
    path = chart_file(settings, draft_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    DraftStore(state).update_meta(draft_id, chart={"ticker": "SOL", "file": path.name, "alt": alt, "bytes": len(png)})
    return png, alt


def run(settings: Any, state: StateDB) -> Any:
    d = delivery(settings, state, publish_channels(settings))
    d.sleep = Sleeps()
    return asyncio.run(d.run())


def test_the_take_carries_its_chart_on_x_and_telegram(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    settings = make_settings(tmp_path, x.base_url, tg.base_url)
    state = open_state(settings)
    draft = add_draft(state, "a", posts=2)
    png, alt = with_chart(settings, state, draft.id)
    ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
    report = run(settings, state)
    assert report.published == [draft.id], report
    # X: one upload with its alt text, attached to the first post only.
    (media_id,) = x.media
    assert x.media[media_id] == {"bytes": png, "alt": alt}
    first, second = x.posts_by(ME_ID)
    assert first.media == (media_id,) and second.media == ()
    assert first.text == f"{draft.x_thread[0]} https://t.co/{media_id[-10:]}"  # as X shows it
    # Telegram: a photo with the brief as its caption (short enough).
    (photo,) = [m for m in tg.sent_to(CHANNEL_ID)]
    assert photo.params["photo"] == png and photo.params["caption"] == draft.telegram_html
    assert tg.calls("sendMessage") == []


def test_a_long_brief_follows_its_photo_on_telegram(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    settings = make_settings(tmp_path, x.base_url, tg.base_url, channels=["telegram"])
    state = open_state(settings)
    draft = add_draft(state, "b", posts=1)
    long_html = draft.telegram_html + "\n" + "\n".join(f"• line {i} of the full brief, with its sources" * 2
                                                       for i in range(20))
    with state.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE drafts SET telegram_html = ? WHERE id = ?", (long_html, draft.id))
    png, _ = with_chart(settings, state, draft.id)
    ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
    report = run(settings, state)
    assert report.published == [draft.id], report
    photo, text = tg.sent_to(CHANNEL_ID)
    assert photo.params["photo"] == png and not photo.params.get("caption")
    assert text.text == long_html


def test_each_x_part_is_a_cost_row_and_a_link_costs_more(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> None:
    settings = make_settings(tmp_path, x.base_url, tg.base_url, channels=["x"])
    state = open_state(settings)
    draft = add_draft(state, "c", posts=3)
    linked = (*draft.x_thread[:2], f"Full brief with sources:\nhttps://briefs.example.com/b/{draft.id[:12]}")
    with state.engine.begin() as conn:
        import json

        conn.exec_driver_sql("UPDATE drafts SET x_thread = ? WHERE id = ?", (json.dumps(linked), draft.id))
    ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
    assert run(settings, state).published == [draft.id]
    rows = CostLedger(state).by_day_and_model(NOW - timedelta(days=1))
    by_model = {r.model: r for r in rows}
    assert by_model["x post"].calls == 2 and by_model["x post"].cost_usd == pytest.approx(0.030)
    assert by_model["x post+url"].calls == 1 and by_model["x post+url"].cost_usd == pytest.approx(0.20)
    ledger = CostLedger(state)
    assert ledger.spent(NOW - timedelta(days=1), service="x") == pytest.approx(0.23)
    assert ledger.spent(NOW - timedelta(days=1)) == 0.0  # the LLM budget is not charged for X


def test_x_budgets_refuse_a_publish_run_and_skip_a_brief_that_would_pass_them(tmp_path: Path, x: FakeXAPI,
                                                                              tg: FakeTelegramAPI) -> None:
    settings = make_settings(tmp_path, x.base_url, tg.base_url, channels=["x"], x_daily_budget_usd=0.05)
    state = open_state(settings)
    queue = ReviewQueue(state, reviewers=["alice"])
    big = add_draft(state, "a", posts=4)  # 4 posts × $0.015 = $0.06 > $0.05
    queue.approve(big.id, "alice")
    report = run(settings, state)
    assert report.published == [] and any("daily X budget" in why for _, why in report.skipped), report
    assert x.posts_by(ME_ID) == [] and queue.drafts.get(big.id).status == "approved"  # it waits for tomorrow
    small = add_draft(state, "b", posts=2)
    queue.approve(small.id, "alice")
    assert run(settings, state).published == [small.id]
    CostLedger(state).record_x(datetime.now(UTC), "post_url", 1, 0.20)  # spend past the limit
    with pytest.raises(PublishError, match="publish run refused: the daily X budget"):
        run(settings, state)
    monthly = make_settings(tmp_path, x.base_url, tg.base_url, channels=["x"], x_daily_budget_usd=None,
                            x_monthly_budget_usd=0.1)
    with pytest.raises(PublishError, match="monthly X budget"):
        run(monthly, state)


def _write_config(path: Path, data: Path, x: FakeXAPI, tg: FakeTelegramAPI) -> Path:
    path.write_text(f'data_dir = "{data}"\n[review]\nreviewers = ["alice"]\n'
                    f'[publish]\nchannels = ["x"]\ntelegram_chat_id = "{CHANNEL}"\ntimeout = "30s"\n'
                    f'reconcile_settle = "0s"\nx_base_url = "{x.base_url}"\ntelegram_base_url = "{tg.base_url}"\n')
    return path


def _states(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM outbox WHERE channel = 'x' ORDER BY part")]


@pytest.mark.slow
@pytest.mark.parametrize("created_before_kill", [False, True])
def test_sigkill_between_upload_and_post_gives_one_post_with_its_image(tmp_path: Path,
                                                                       created_before_kill: bool) -> None:
    with serving_x() as x, serving_telegram() as tg:
        data = tmp_path / "data"
        data.mkdir()
        config = _write_config(tmp_path / "t.toml", data, x, tg)
        settings = make_settings(tmp_path, x.base_url, tg.base_url)
        settings = settings.model_copy(update={"data_dir": data})
        state = StateDB(f"sqlite:///{data / 'state.db'}")
        draft = add_draft(state, "a", posts=2)
        png, alt = with_chart(settings, state, draft.id)
        ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
        state.close()
        # The upload goes through; the post then hangs (created first, or not at all) until the process is dead.
        x.fail_next("/2/tweets", 503, method="POST", delay_s=8, after_effect=created_before_kill)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | SECRETS | {"COLUMNS": "200"}
        command = [sys.executable, "-m", "tapewatch", "--config", str(config), "publish"]
        victim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not x.calls("/2/tweets", "POST") and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert victim.poll() is None, victim.communicate()
        assert len(x.media) == 1  # uploaded, with its alt text, before the post was asked for
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert _states(data / "state.db") == ["intent", "queued"]

        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 published" in done.stdout, done.stdout
        posts = x.posts_by(ME_ID)
        assert len(posts) == 2  # the take exactly once, then the reply
        take = posts[0]
        assert take.text.startswith(draft.x_thread[0]) and len(take.media) == 1
        assert x.media[take.media[0]] == {"bytes": png, "alt": alt}
        assert posts[1].in_reply_to == take.id and posts[1].media == ()
        # Found by reconciliation (no second upload), or confirmed absent and sent again (uploaded again).
        assert len(x.media) == (1 if created_before_kill else 2)
        assert _states(data / "state.db") == ["sent", "sent"]


def test_x_reads_are_charged_when_ingesting_and_when_reconciling(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI,
                                                                  hash_embedder: Any) -> None:
    from tapewatch.jobs import Runtime
    from tapewatch.settings import Settings

    mira = x.add_user("mira_onchain")
    for n in range(3):
        x.post(mira, f"$SOL validators, note {n}")
    settings = Settings(data_dir=tmp_path / "ingest", x_bearer_token="t",
                        x={"api_base_url": x.base_url, "timeout": "2s", "accounts": [{"handle": "mira_onchain"}]})
    runtime = Runtime(settings, embed=hash_embedder)
    try:
        assert runtime.ingest_x().posts_read == 3
        reads = [r for r in CostLedger(runtime.state).by_day_and_model(NOW - timedelta(days=1)) if r.model == "x read"]
        assert [(r.calls, round(r.cost_usd, 4)) for r in reads] == [(3, 0.015)]
    finally:
        runtime.close()
    # A publish run that must check its own posts (a part left unsettled) pays for the posts it reads.
    publishing = make_settings(tmp_path, x.base_url, tg.base_url, channels=["x"])
    state = open_state(publishing)
    draft = add_draft(state, "d", posts=1)
    ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
    x.fail_next("/2/tweets", 503, method="POST", after_effect=True)  # created, then a 5xx: ambiguous
    assert run(publishing, state).published == [draft.id]
    assert len(x.posts_by(ME_ID)) == 1
    charged = {r.model: r.calls for r in CostLedger(state).by_day_and_model(NOW - timedelta(days=1))}
    assert charged["x read"] >= 1 and charged["x post"] == 1
