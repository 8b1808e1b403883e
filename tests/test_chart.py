"""The brief's chart: deterministic PNG bytes, phone size under 300 KB, alt text from the data, the CLI."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from crew.chart import ALT_LIMIT, alt_text, bucket_for, chart_data, render_png
from tapewatch.cli import app
from tests.crew_support import llm_server_fixture, sample_memory_fixture  # noqa: F401  (fixtures)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def row(n: int, hours_ago: float, ticker: str = "SOL", cluster: str = "dev", story: str | None = None) -> Any:
    return SimpleNamespace(id=f"i{n}", story_id=story or f"s{n}", tickers=ticker, cluster=cluster, kind="social",
                           published_at=NOW - timedelta(hours=hours_ago))


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def sample(window: timedelta = timedelta(hours=24)) -> Any:
    rows = [row(i, (i * 0.7) % (window.total_seconds() / 3600), cluster=["dev", "media", "vc"][i % 3])
            for i in range(40)]
    rows += [row(100, 2, ticker="BTC"), row(101, 3, story="s1", cluster="forum")]  # another ticker; a repeat story
    prices = [(NOW - window + timedelta(hours=h), 180.0 + h * 0.15) for h in range(int(window.total_seconds() // 3600))]
    return chart_data(rows, "$sol", NOW - window, NOW, prices, marker=NOW - timedelta(hours=9),
                      marker_label="first report of the top story")


def test_the_same_data_gives_the_same_png_readable_on_a_phone_and_small() -> None:
    data = sample()
    first, second = render_png(data), render_png(sample())
    assert first == second  # deterministic: no timestamp, no version, same pixels
    assert png_size(first) == (1200, 675)
    assert len(first) <= 300 * 1024
    assert b"Software" not in first[:200] and b"matplotlib" not in first
    # Different data, different image.
    other = chart_data([row(1, 1)], "SOL", NOW - timedelta(hours=24), NOW)
    assert render_png(other) != first


def test_buckets_are_hours_or_four_hours_counted_from_the_rows() -> None:
    data = sample()
    assert data.ticker == "SOL" and data.bucket == timedelta(hours=1) and len(data.times) in (24, 25)
    assert all(t.minute == 0 for t in data.times)
    # Every SOL row lands in a bucket once; the BTC row nowhere; a story told twice in one hour counts once there.
    # (the row published at the window's very end is outside it: windows are [start, end))
    assert data.distinct == 39 and sum(data.stories) <= 40
    assert max(data.breadth) <= 3 + 1
    week = sample(timedelta(days=7))
    assert week.bucket == timedelta(hours=4) == bucket_for(timedelta(days=7))
    assert all(t.hour % 4 == 0 for t in week.times)


def test_alt_text_describes_the_chart_from_its_data_within_xs_limit() -> None:
    data = sample()
    alt = alt_text(data)
    assert len(alt) <= ALT_LIMIT
    assert alt.startswith("Bar chart of $SOL over the last 24h, per hour, UTC.")
    assert "Stories naming $SOL: 39 in all" in alt
    first, last = data.prices[0][1], data.prices[-1][1]
    assert f"${first:,.2f} to ${last:,.2f} ({(last - first) / first * 100:+.1f}%)" in alt
    assert "first report of the top story at 03:00 on 26 Nov" in alt
    empty = alt_text(chart_data([], "ETH", NOW - timedelta(hours=24), NOW))
    assert "No stored story names $ETH" in empty and "No stored price snapshots" in empty
    long = alt_text(chart_data([row(1, 1)], "SOL", NOW - timedelta(hours=24), NOW, marker=NOW - timedelta(hours=2),
                               marker_label="x" * 2000))
    assert len(long) <= ALT_LIMIT and long.endswith("…")


def test_cli_chart_writes_the_png_and_refuses_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--samples", "always"]).exit_code == 0
    out = tmp_path / "sol.png"
    result = runner.invoke(app, ["chart", "SOL", "--window", "7d", "--out", str(out)])
    assert result.exit_code == 0, result.output
    png = out.read_bytes()
    assert png_size(png) == (1200, 675) and len(png) <= 300 * 1024
    assert "Alt text: Bar chart of $SOL over the last 7d, per 4 h, UTC." in " ".join(result.output.split())
    for bad in (["chart", "$$"], ["chart", "SOL", "--out", str(tmp_path / "x.jpg")],
                ["chart", "SOL", "--window", "1s"]):
        refused = runner.invoke(app, bad)
        assert refused.exit_code == 2, (bad, refused.output)
    nowhere = runner.invoke(app, ["chart", "SOL", "--out", str(tmp_path / "missing" / "dir" / "x.png")])
    assert nowhere.exit_code == 2 and "cannot write" in nowhere.output


class _SavedAs:
    """A draft store remembering what each draft looked like, and whether its chart file existed, when saved."""

    def __init__(self, state: Any, settings: Any) -> None:
        from memory.drafts import DraftStore

        self.store, self.settings, self.saved = DraftStore(state), settings, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save(self, draft: Any, conn: Any = None) -> Any:
        from tapewatch.charts import chart_file

        self.saved.append((draft.meta.get("chart"), chart_file(self.settings, draft.id).is_file()))
        return self.store.save(draft, conn)


@pytest.mark.parametrize("mode", ["data", "crew"])
def test_a_brief_is_saved_with_its_chart_so_a_quick_reviewer_cannot_publish_it_without(
        mode: str, sample_memory: Any, llm_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A saved draft is reviewable at once (the review job polls for them); a chart drawn after the save could
    # be missing when a reviewer taps Publish.
    from tapewatch.briefs import write_brief
    from tapewatch.settings import load_settings
    from tests.crew_support import crew_settings
    from tests.fakes import crew_replies

    monkeypatch.setenv("TAPEWATCH_DATA_DIR", str(tmp_path))
    if mode == "crew":
        settings = crew_settings(monkeypatch, llm_server)
        llm_server.responder = crew_replies.well_behaved
    else:
        settings = load_settings(None)
    drafts = _SavedAs(sample_memory.state, settings)
    result = write_brief(settings, sample_memory, now=datetime.now(UTC), drafts=drafts)  # type: ignore[arg-type]
    assert result.mode == mode and result.draft is not None
    [(chart, file_there)] = drafts.saved
    assert chart is not None and chart["ticker"] == result.draft.meta["chart"]["ticker"] and file_there
    assert drafts.store.get(result.draft.id).meta["chart"] == chart
