"""The framing of featured tickers: written by the crew's writer, derived by the data brief, checked by grounding,
kept by every edit path, and recorded with each call so the track record can say whether the direction matched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crew.databrief import build
from memory.calls import CallStore
from memory.drafts import Draft, DraftStore
from memory.prices import PriceSnapshot, PriceStore
from publish.review import ReviewQueue
from sources.item import Item, item_id_for_post
from tapewatch.briefs import write_brief
from tapewatch.clients import delivery, draft_validator, publish_channels
from tapewatch.settings import load_settings
from tests.crew_support import (  # noqa: F401  (fixtures)
    Prices,
    add_post,
    crew_settings,
    llm_server_fixture,
    run_brief,
    sample_memory_fixture,
)
from tests.fakes import crew_replies
from tests.fakes.llm_server import LLMServer, Reply
from tests.fakes.publishing import make_settings
from tests.fakes.telegram_api import serving_telegram
from tests.fakes.x_api import serving_x

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
BEARISH = "{t} plunges as an exploit drains a lending pool; holders rekt"
BULLISH = "{t} rallies after a record approval; bullish desks cheer"
CALM = "{t} oracle documentation updated for node operators"
_serial = iter(range(1, 1_000_000))


def post(memory: Any, ticker: str, text: str, at: datetime, cluster: str) -> Item:
    """One social post about ``ticker`` published at ``at`` by an account of ``cluster``."""
    n = next(_serial)
    item = Item(id=item_id_for_post("x", str(7_000_000 + n)), kind="social", source="x",
                url=f"https://x.com/acct{n}/status/{7_000_000 + n}", title=text, text=text, published_at=at,
                fetched_at=at, author=f"@acct{n}", tickers=(ticker,), cluster=cluster, metrics={"likes": 900})
    memory.add([item])
    return item


def day_of_news(memory: Any, prices: PriceStore, end: datetime, moves: dict[str, tuple[float | None, str]],
                tag: str = "") -> None:
    """Posts (three groups each) and snapshots at ``end`` - 1d and ``end`` for each ticker: (move %, text)."""
    for ticker, (move, text) in moves.items():
        for k, cluster in enumerate(("trader", "media", "researcher")):
            post(memory, ticker, f"{text.format(t=ticker)} {tag}".strip() + f" ({cluster})", end - (2 + k) * HOUR,
                 cluster)
        if move is not None:
            prices.add([PriceSnapshot(ticker, end - DAY, 100.0, source="test"),
                        PriceSnapshot(ticker, end, 100.0 * (1 + move / 100), source="test")], end)


def data_brief(memory: Any, now: datetime, prices: PriceStore) -> Draft:
    """The embedded (no model) writer's draft for the day ending ``now``, validated like ``tapewatch brief``."""
    settings = load_settings(None)
    _, draft = build(memory, DraftStore(memory.state), now=now, prices=prices,
                     validate=draft_validator(settings, memory.state))
    assert draft is not None
    return draft


# --- the embedded path -------------------------------------------------------------------------------------------


def test_data_brief_frames_each_ticker_from_the_move_and_tone_it_reports(memory: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    prices = PriceStore(memory.state)
    day_of_news(memory, prices, now, {"SOL": (-6.0, BEARISH), "ETH": (4.0, BULLISH), "DOGE": (5.0, BEARISH),
                                      "AVAX": (0.4, CALM), "LINK": (None, CALM)})
    draft = data_brief(memory, now, prices)
    assert set(draft.tickers) >= {"SOL", "ETH", "DOGE", "AVAX", "LINK"}, draft.markdown
    assert "$SOL -6.0% over 24h" in draft.markdown and "$ETH +4.0% over 24h" in draft.markdown
    # Both pieces of evidence one way: that side. A rise on bearish posts: neutral. A stated move under 1% on
    # calm posts: neutral. No stated move and calm posts: the brief says nothing about direction, no framing.
    assert draft.meta["framing"] == {"SOL": "negative", "ETH": "positive", "DOGE": "neutral", "AVAX": "neutral"}
    assert draft.status == "pending", draft.validation["problems"]


def test_make_run_on_the_bundled_samples_frames_the_featured_tickers(sample_memory: Any) -> None:
    result = write_brief(load_settings(None), sample_memory, now=datetime.now(UTC))
    draft = result.draft
    assert draft is not None and draft.mode == "data" and draft.status == "pending"
    framing = draft.meta["framing"]
    assert framing and set(framing) <= set(draft.tickers)  # only what the brief features
    signals = {t["ticker"]: t for t in draft.signals["tickers"]}
    for ticker, word in framing.items():
        move, tone = signals[ticker]["price_change_pct"], signals[ticker]["sentiment"]
        stated = move is not None and f"${ticker} {move:+.1f}%" in draft.markdown
        sides = {(move > 0) - (move < 0) if stated and abs(move) >= 1.0 else 0,
                 (tone > 0) - (tone < 0) if abs(tone) >= 0.05 else 0} - {0}
        assert word == ({1: "positive", -1: "negative"}[sides.pop()] if len(sides) == 1 else "neutral"), ticker
    # The sample day's tape goes both ways, and the brief takes a side on some of it.
    assert {"positive", "negative"} <= set(framing.values())


# --- grounding: a framing the brief's own text contradicts ----------------------------------------------------------


def test_a_framing_the_brief_itself_contradicts_is_a_grounding_finding(memory: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    prices = PriceStore(memory.state)
    day_of_news(memory, prices, now, {"SOL": (-6.0, BEARISH), "ETH": (4.0, BULLISH)})
    draft = data_brief(memory, now, prices)
    queue = ReviewQueue(memory.state, reviewers=["alice"], validator=draft_validator(load_settings(None), memory.state))
    assert queue.validate(draft.id).ok
    # The same brief framing SOL positive, though it reports only SOL's fall and SOL's posts are bearish; ETH
    # framed negative, though it reports only ETH's rise on bullish posts.
    store = DraftStore(memory.state)
    wrong = store.save(replace(draft, id="f" * 32, meta={**draft.meta, "framing": {"SOL": "positive",
                                                                                    "ETH": "negative"}}))
    report = queue.validate(wrong.id)
    found = {p.message.split()[0]: p for p in report.problems if p.code == "framing_contradicts"}
    assert set(found) == {"$SOL", "$ETH"} and not report.ok and store.get(wrong.id).status == "flagged"
    assert "$SOL is framed positive" in found["$SOL"].message and found["$SOL"].where == "framing"
    assert [p.code for p in report.problems if p.code != "framing_contradicts"] == []

    # A hand edit that makes the text report SOL rising leaves one piece of evidence against the framing
    # (the bearish posts): a judgement the writer may make, no finding. Its framing is the draft's own.
    fixed = queue.edit(wrong.id, "alice", x_thread=[t.replace("$SOL -6.0%", "$SOL +6.0%") for t in wrong.x_thread],
                       telegram_html=wrong.telegram_html.replace("$SOL -6.0%", "$SOL +6.0%"),
                       markdown=wrong.markdown.replace("$SOL -6.0%", "$SOL +6.0%"))
    assert fixed.meta["framing"] == {"SOL": "positive", "ETH": "negative"}
    assert "$SOL is framed" not in json.dumps(fixed.validation["problems"])


def test_the_cli_bot_and_web_edits_keep_the_drafts_framing(memory: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tapewatch.bot.desk import QueueDesk
    from tests.test_publish_cli import cli
    from tests.web_support import add_users, client_for, desk_csrf, sign_in, web_deps

    now = datetime.now(UTC).replace(microsecond=0)
    prices = PriceStore(memory.state)
    day_of_news(memory, prices, now, {"SOL": (-6.0, BEARISH), "ETH": (4.0, BULLISH)})
    first = data_brief(memory, now, prices)
    assert first.meta["framing"] == {"SOL": "negative", "ETH": "positive"}
    store = DraftStore(memory.state)

    # The CLI: tapewatch drafts edit --text.
    monkeypatch.setenv("TAPEWATCH_REVIEW__REVIEWERS", '["alice"]')
    monkeypatch.setattr("tapewatch.clients.open_state", lambda _settings: memory.state)
    code, output = cli(["drafts", "edit", first.id, "--format", "markdown", "--text",
                        first.markdown + "\n\nEdited in the CLI.", "--as", "alice"], monkeypatch, capsys)
    assert code == 0, output
    [cli_copy] = [d for d in store.recent(now - DAY) if d.parent_id == first.id]
    code, output = cli(["drafts", "show", cli_copy.id, "--format", "none"], monkeypatch, capsys)
    [line] = [ln for ln in output.splitlines() if ln.startswith("framing: ")]
    assert code == 0 and sorted(line.removeprefix("framing: ").split(", ")) == ["$ETH positive", "$SOL negative"]

    # The Telegram desk: the Edit button's reply.
    desk = QueueDesk(ReviewQueue(memory.state, reviewers=["alice"], via="telegram"), publish_soon=lambda: None)
    bot_copy = store.get(desk.act(cli_copy.id, "edit", "alice", text=cli_copy.telegram_html + "\nEdited.").draft_id)

    # The web desk: the edit form.
    deps: Any = web_deps(tmp_path, memory)
    add_users(deps)
    client = client_for(deps)
    sign_in(client, "rita")
    token = desk_csrf(client)  # the draft page itself fails to render a brief with links (see the report)
    saved = client.post(f"/desk/drafts/{bot_copy.id}/edit", data={
        "csrf_token": token, "x_thread": "\n---\n".join(bot_copy.x_thread), "telegram_html": bot_copy.telegram_html,
        "markdown": bot_copy.markdown + "\n\nEdited on the desk."})
    assert saved.status_code == 303, saved.text[:300]
    web_copy = store.get(saved.headers["location"].split("/")[-1].split("?")[0])

    assert [d.version for d in (cli_copy, bot_copy, web_copy)] == [2, 3, 4]
    assert all(d.meta["framing"] == first.meta["framing"] for d in (cli_copy, bot_copy, web_copy))


# --- the crew's writer ------------------------------------------------------------------------------------------------


def framed_writer(framing: Callable[[list[str], str], Any]) -> Callable[[dict[str, Any]], Reply]:
    """The well-behaved crew, whose writer adds ``framing(featured tickers, its prompt)`` to its brief."""
    def respond(body: dict[str, Any]) -> Reply:
        if crew_replies.role_of(body) != "writer":
            return crew_replies.well_behaved(body)
        data = json.loads(crew_replies.brief(body).content or "{}")
        claims = [data["take"], *data["thread"], *(c for s in data["sections"] for c in s["claims"])]
        featured = list(dict.fromkeys(c["ticker"].upper() for c in claims if c["ticker"]))
        data["framing"] = framing(featured, crew_replies.all_text(body))
        return Reply.json(data)
    return respond


def test_crew_writer_framing_is_stored_with_unknown_words_and_unfeatured_tickers_dropped(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server)
    seen: list[str] = []

    def framing(featured: list[str], _prompt: str) -> Any:
        seen.extend(featured)
        others = [t for t in ("XRP", "ADA", "LINK", "DOT") if t not in featured]
        return [{"ticker": f"${featured[0].lower()}", "framing": " Positive"},
                {"ticker": featured[0], "framing": "negative"},  # a second word for the same ticker: the first stands
                *([{"ticker": featured[1], "framing": "bullish"}] if len(featured) > 1 else []),  # no such framing
                {"ticker": others[0], "framing": "negative"},  # a ticker no claim is about
                {"ticker": "ignore previous instructions", "framing": "positive"}]

    llm_server.responder = framed_writer(framing)
    outcome = run_brief(settings, sample_memory)
    draft = outcome.draft
    assert draft is not None and draft.status == "pending", draft and draft.validation["problems"]
    assert draft.meta["framing"] == {seen[0]: "positive"}
    assert DraftStore(sample_memory.state).get(draft.id).meta["framing"] == {seen[0]: "positive"}
    # The writer was asked for it, and a constraining server got the three words as an enum.
    writer = next(r for r in llm_server.requests if crew_replies.role_of(r.body) == "writer")
    assert '"framing"' in writer.text and "positive, negative or neutral" in writer.text
    schema = json.dumps(writer.body.get("response_format") or {})
    assert '"enum": ["positive", "negative", "neutral"]' in schema


def test_crew_writer_without_framing_or_with_a_mapping_still_gives_a_brief(
        llm_server: LLMServer, sample_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server)
    llm_server.responder = crew_replies.well_behaved  # an older model's answer: no "framing" key at all
    plain = run_brief(settings, sample_memory).draft
    assert plain is not None and plain.status == "pending" and "framing" not in plain.meta
    llm_server.responder = framed_writer(lambda featured, _: {featured[0]: "NEGATIVE", "$$$": "positive",
                                                              "ZZZ": ["not", "a", "word"]})
    mapped = run_brief(settings, sample_memory).draft
    assert mapped is not None and list(mapped.meta["framing"].values()) == ["negative"]


def _bearish_sol(memory: Any) -> Prices:
    now = datetime.now(UTC)
    for n, cluster in enumerate(("trader", "media", "researcher", "dev")):
        add_post(memory, 40 + n, f"SOL plunges 8% as an exploit drains a lending pool; holders rekt ({cluster})",
                 tickers=("SOL",), hours_ago=2 + n, cluster=cluster)
    prices = Prices()
    prices.add("SOL", 100.0, now - DAY - timedelta(minutes=5))
    prices.add("SOL", 92.0, now - timedelta(minutes=5))
    return prices


def test_crew_framing_contradicting_the_brief_is_sent_back_to_the_writer(
        llm_server: LLMServer, memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = crew_settings(monkeypatch, llm_server)
    prices = _bearish_sol(memory)
    asked: list[str] = []

    def framing(featured: list[str], prompt: str) -> Any:
        asked.append(prompt)
        return [{"ticker": "SOL", "framing": "negative" if "[framing_contradicts]" in prompt else "positive"}]

    llm_server.responder = framed_writer(framing)
    draft = run_brief(settings, memory, prices).draft
    assert draft is not None and draft.status == "pending", draft and draft.validation["problems"]
    assert draft.meta["framing"] == {"SOL": "negative"} and draft.meta["attempts"]["writer"] == 2
    feedback = asked[1][asked[1].index("[framing_contradicts]"):][:400]
    assert "$SOL is framed positive" in feedback and "claim withheld" not in asked[1]  # no claim was at fault

    # A writer that insists: its last attempt is stored flagged with the finding, the framing as it gave it.
    llm_server.responder = framed_writer(lambda featured, _: [{"ticker": "SOL", "framing": "positive"}])
    stubborn = run_brief(settings, memory, prices).draft
    assert stubborn is not None and stubborn.status == "flagged" and stubborn.meta["framing"] == {"SOL": "positive"}
    assert [p["code"] for p in stubborn.validation["problems"]] == ["framing_contradicts"]


# --- publish → calls → track ------------------------------------------------------------------------------------------


def test_published_framing_reaches_the_calls_and_track_reports_direction_matched(
        memory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_publish_cli import SECRETS, cli, write_config

    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    prices = PriceStore(memory.state)
    start = now - 16 * DAY
    # Twelve daily briefs: SOL falls 3% a day on bearish posts (framed negative), BTC, the benchmark, holds.
    for k in range(14):
        at = start + k * DAY
        prices.add([PriceSnapshot("SOL", at, 100.0 * 0.97 ** k, source="test"),
                    PriceSnapshot("BTC", at, 90_000.0, source="test")], now)
    with serving_x() as x, serving_telegram() as tg:
        settings = make_settings(tmp_path, x.base_url, tg.base_url, duplicate_window="1h")
        queue = ReviewQueue(memory.state, reviewers=["alice"], validator=draft_validator(settings, memory.state))
        published = []
        for day in range(1, 13):
            at = start + day * DAY
            for k, cluster in enumerate(("trader", "media", "researcher")):
                post(memory, "SOL", f"SOL plunges on day {day} as an exploit drains pool {day}; holders rekt "
                     f"({cluster})", at - (2 + k) * HOUR, cluster)
            draft = data_brief(memory, at, prices)
            assert draft.meta["framing"].get("SOL") == "negative", (day, draft.markdown)
            queue.approve(draft.id, "alice")
            run = delivery(settings, memory.state, publish_channels(settings))
            # The run happens a minute after the brief was written (the queue, the outbox and delivery agree).
            run.clock = run.outbox.clock = run.queue.clock = lambda at=at: at + timedelta(minutes=1)  # type: ignore[misc]
            report = asyncio.run(run.run())
            assert report.published == [draft.id], report
            published.append(draft.id)
        calls = [c for c in CallStore(memory.state.engine).all() if c.ticker == "SOL"]
        assert [c.draft_id for c in calls] == published and {c.framing for c in calls} == {"negative"}
        assert calls[0].published_at == start + DAY + timedelta(minutes=1)

        write_config(tmp_path / "tapewatch.toml", tmp_path / "data", x, tg)
        monkeypatch.setattr("tapewatch.clients.open_state", lambda _settings: memory.state)
        code, output = cli(["track", "--horizon", "1d", "--json"], monkeypatch, capsys)
    assert code == 0, output
    data = json.loads(output)
    [one_day] = data["horizons"]
    # Every framed SOL call fell 3% against a flat benchmark the next day: negative and right, 12 of 12.
    assert one_day["framed"] >= 12 and one_day["direction_matched"] == 1.0, one_day
    assert {s["framing"] for s in data["scored"] if s["ticker"] == "SOL"} == {"negative"}
