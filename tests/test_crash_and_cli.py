"""End to end through the real CLI in subprocesses, with the real MiniLM model.

A SIGKILL in the middle of an ingest must lose nothing and duplicate nothing on re-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from sources.rss import FeedSpec, parse_feed
from sources.tickers import Watchlist
from tests.backends import database_toml, rows
from tests.fakes.feed_server import FeedServer, Route

pytestmark = pytest.mark.slow

COINS = ["bitcoin", "ether", "solana", "dogecoin", "chainlink", "avalanche"]
TOPICS = ["ETF flows", "exchange reserves", "funding rates", "a network upgrade", "whale transfers",
          "developer activity", "stablecoin supply", "options expiry", "miner revenue", "validator count"]


def make_feed(outlet: int, n: int) -> bytes:
    now = datetime.now(UTC)
    entries = []
    for i in range(n):
        coin, topic = COINS[(outlet + i) % len(COINS)], TOPICS[(outlet * 3 + i) % len(TOPICS)]
        when = format_datetime(now - timedelta(minutes=7 * i + outlet))
        entries.append(
            f"<item><title>Outlet {outlet} desk note {i}: {coin} and {topic}</title>"
            f"<link>https://outlet{outlet}.example/notes/{i}?utm_source=rss</link>"
            f"<description>Note {i} from outlet {outlet} on {coin}: {topic} moved {i % 9 + 1}.{outlet}% "
            f"while desk {outlet} watched order books in session {i}.</description>"
            f"<pubDate>{when}</pubDate></item>"
        )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Outlet {outlet}</title>'
            + "".join(entries) + "</channel></rss>").encode()


def write_config(path: Path, data_dir: Path, server: FeedServer, n_feeds: int, state_url: str = "sqlite") -> Path:
    lines = [f'data_dir = "{data_dir}"', database_toml(state_url), 'samples = "never"', "[fetch]", "concurrency = 2",
             'timeout = "10s"', ""]
    for k in range(n_feeds):
        lines += ["[[feeds]]", f'name = "outlet{k}"', f'url = "{server.url(f"/feed{k}.xml")}"', ""]
    path.write_text("\n".join(lines))
    return path


def cli(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
    env["COLUMNS"] = "200"
    return subprocess.Popen([sys.executable, "-m", "tapewatch", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def run(config: Path, *args: str, timeout: float = 240) -> tuple[int, str]:
    proc = cli(config, *args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def committed_fetches(url: str) -> int:
    found = rows(url, "SELECT count(*) FROM fetch_log")
    return int(found[0][0]) if found else 0


def stored_ids(url: str) -> list[str]:
    return [row[0] for row in rows(url, "SELECT id FROM items")]


def test_sigkill_mid_ingest_then_rerun_loses_and_duplicates_nothing(feed_server: FeedServer, tmp_path: Path,
                                                                    state_url: str) -> None:
    n_feeds, per_feed = 8, 40
    watchlist = Watchlist({})
    expected: set[str] = set()
    for k in range(n_feeds):
        body = make_feed(k, per_feed)
        # Slow answers keep the process busy long enough to be killed in the middle.
        feed_server.routes[f"/feed{k}.xml"] = Route(body=body, delay_s=1.0)
        spec = FeedSpec(f"outlet{k}", feed_server.url(f"/feed{k}.xml"))
        expected |= {i.id for i in parse_feed(body, spec, watchlist, fetched_at=datetime.now(UTC)).items}
    assert len(expected) == n_feeds * per_feed
    data = tmp_path / "data"
    config = write_config(tmp_path / "t.toml", data, feed_server, n_feeds, state_url)
    db = state_url

    victim = cli(config, "ingest")
    deadline = time.monotonic() + 180
    while committed_fetches(db) < 2 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim.poll() is None, "ingest finished before it could be killed; make the feeds slower"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    done_before_kill = committed_fetches(db)
    assert 2 <= done_before_kill < n_feeds

    code, output = run(config, "ingest")
    assert code == 0, output
    ids = stored_ids(db)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected

    code, output = run(config, "ingest")
    assert code == 0, output
    assert "0 new" in output and f"{len(expected)} duplicate" in output
    assert sorted(stored_ids(db)) == sorted(ids)

    # Search works on the healed store, and the vector store holds exactly one vector per item.
    code, output = run(config, "search", "chainlink funding rates", "--limit", "3")
    assert code == 0, output
    assert ".example/notes/" in output
    count = subprocess.run(
        [sys.executable, "-c",
         "import chromadb, sys; c = chromadb.PersistentClient(sys.argv[1]); "
         "print(c.get_collection('tapewatch-items').count())", str(data / "chroma")],
        capture_output=True, text=True, timeout=120,
    )
    assert count.stdout.strip() == str(len(expected)), count.stderr


def test_main_job_offline_uses_samples_then_search_and_sources(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[[feeds]]\nname = "unreachable"\nurl = "http://127.0.0.1:9/rss"\n'
    )
    code, output = run(config, "ingest")
    assert code == 0, output
    assert "bundled sample feeds" in output
    assert "unreachable" in output and "error" in output
    code, output = run(config, "memory")
    assert code == 0 and "near-duplicate reports" in output and "sample-chainwire" in output
    code, output = run(config, "search", "solana validators new client", "--since", "48h", "--ticker", "SOL")
    assert code == 0, output
    assert "Solana" in output or "solana" in output
    code, output = run(config, "sources")
    assert code == 0 and "sample-ledgerpost" in output and "could not connect" in output
    code, output = run(config, "brief", "--format", "all")
    assert code == 0, output
    assert "data brief built from signals alone" in output
    # The sample day's lead development, as the take (one X post) and the full brief.
    assert "Solana validators" in output and "$SOL" in output and "X take" in output and "<b>" in output
    draft_id = output.rsplit("tapewatch drafts show ", 1)[1].split()[0].strip("`")
    code, output = run(config, "drafts", "list")
    assert code == 0 and draft_id in output and "pending" in output
    code, output = run(config, "drafts", "show", draft_id, "--format", "x")
    assert code == 0 and "take of 1 post" in output and "Solana validators" in output
    code, output = run(config, "drafts", "show", "nope")
    assert code == 2 and "no draft" in output and "Traceback" not in output
    # Re-running stores nothing new.
    code, output = run(config, "ingest")
    assert code == 0 and "\n0 new" in output.replace("│", "\n")
