"""Benchmark: memory of `tapewatch run` idle and during an X cycle of 1,000 new posts, and X calls per 1,000 posts.

Run from the repository root:

    .venv/bin/python bench/daemon.py                 # 1,000 posts over 10 accounts
    .venv/bin/python bench/daemon.py --posts 3000 --accounts 25

A real `tapewatch run` (real MiniLM embedder, embedded Chroma, SQLite) runs in a subprocess against a
loopback fake X API v2 and a fake CoinGecko started here. Warm-up: each account has one post, so the first
X cycle stores it, sets the cursors and loads the model. Idle: resident memory sampled for a few seconds
between cycles. Then the posts are added (unevenly, like real accounts), and the next X cycle reads them:
peak resident memory during that cycle, X API calls it made, posts billed. Then SIGTERM. Targets: idle RSS
≤ 300 MB before and after the burst (the default embedder, MiniLM on ONNX Runtime, no torch); X calls
≤ ceil(posts / 100) + one per account per cycle. Nothing outside a temp dir is written.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.coingecko import serving_coingecko  # noqa: E402
from tests.fakes.x_api import FakeUser, FakeXAPI, serving_x  # noqa: E402

IDLE_TARGET_MB = 300.0
CLUSTERS = ["vc", "founder", "trader", "researcher", "dev", "media"]
COINS = ["$BTC", "$ETH", "$SOL", "solana", "bitcoin", "$LINK", "$AVAX", "$SUI", "$DOGE", "$ARB"]
TOPICS = ["funding flipped negative", "ETF inflows", "exchange reserves at a low", "new client release",
          "validator upgrade", "stablecoin supply", "options expiry", "open interest record", "whale wallet moved",
          "governance vote passed"]


def status_mb(pid: int) -> dict[str, float]:
    """Memory lines of /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, …) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key.startswith(("Vm", "Rss")) and rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory (VmRSS, VmHWM) of a process, in MB."""
    values = status_mb(pid)
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def idle_rss(pid: int, seconds: float) -> float:
    """The largest resident size seen while sampling an idle process every 0.1 s."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(rss_mb(pid)[0])
        time.sleep(0.1)
    return max(samples)


def shares(total: int, accounts: int, rng: random.Random) -> list[int]:
    """Split ``total`` posts unevenly (a few loud accounts, many quiet ones), each at least one."""
    weights = [1.0 / (i + 1) ** 0.9 for i in range(accounts)]
    rng.shuffle(weights)
    counts = [max(1, int(total * w / sum(weights))) for w in weights]
    counts[counts.index(max(counts))] += total - sum(counts)
    return counts


def post_text(rng: random.Random, n: int) -> str:
    return (f"{rng.choice(COINS)} {rng.choice(TOPICS)}: {rng.choice(['watching', 'noted', 'big if true', 'thread'])} "
            f"#{n} {rng.choice(COINS)} {rng.randint(1, 99)}%")


def cursors(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return dict(conn.execute("SELECT source, cursor FROM source_cursors").fetchall())
    except sqlite3.Error:
        return {}


def ledger(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT sum(posts) FROM x_reads").fetchone()
    return int(row[0] or 0)


def wait_for(check: object, proc: subprocess.Popen[str], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if proc.poll() is not None:
            raise SystemExit(f"tapewatch run exited while waiting for {what}:\n{proc.communicate()[0][-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--interval", type=float, default=20.0, help="X interval of the daemon, seconds")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle sampling")
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="tapewatch-bench-daemon-") as tmp, serving_x() as x, \
            serving_coingecko() as cg:
        cg.set("bitcoin", 97950.0, change=0.8, volume=2.8e10, cap=1.9e12)
        users = [x.add_user(f"bench_kol_{i:02d}") for i in range(args.accounts)]
        start = datetime.now(UTC) - timedelta(hours=2)
        for user in users:
            x.post(user, f"{user.username} warming up on {rng.choice(COINS)}", at=start)
        data = Path(tmp) / "data"
        config = Path(tmp) / "tapewatch.toml"
        accounts = ", ".join(f'{{ handle = "{u.username}", cluster = "{CLUSTERS[i % len(CLUSTERS)]}" }}'
                             for i, u in enumerate(users))
        config.write_text(
            f'data_dir = "{data}"\nfeeds = []\n'
            f'[x]\napi_base_url = "{x.base_url}"\ninterval = "{args.interval}s"\nmax_results = 100\nmax_pages = 50\n'
            f'accounts = [{accounts}]\n'
            f'[market]\nbase_url = "{cg.base_url}"\ninterval = "1h"\n'
            '[daemon]\njitter = "0s"\nretention_interval = "1d"\nshutdown_grace = "60s"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
        env.update(TAPEWATCH_X_BEARER_TOKEN="bench", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", COLUMNS="160")
        db = data / "state.db"
        launched = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "tapewatch", "--config", str(config), "run"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            figures = measure(proc, x, users, db, args, rng, launched)
        finally:
            if proc.poll() is None:
                proc.kill()
        report(figures, args, load_start)


def measure(proc: subprocess.Popen[str], x: FakeXAPI, users: list[FakeUser], db: Path, args: argparse.Namespace,
            rng: random.Random, launched: float) -> dict[str, float]:
    names = {f"x:@{u.username}" for u in users}
    wait_for(lambda: names <= set(cursors(db)), proc, 300, "the warm-up X cycle")
    warm = time.monotonic() - launched
    idle = idle_rss(proc.pid, args.idle)
    before = ledger(db)
    counts = shares(args.posts, len(users), rng)
    newest: dict[str, str] = {}
    at = datetime.now(UTC) - timedelta(minutes=90)
    n = 0
    for user, k in zip(users, counts, strict=True):
        for _ in range(k):
            n += 1
            newest[f"x:@{user.username}"] = x.post(user, post_text(rng, n), at=at + timedelta(seconds=n),
                                                    likes=rng.randint(0, 500), reposts=rng.randint(0, 50)).id
    x.requests.clear()
    peak = 0.0
    cycle_started = None
    while cursors(db).get(next(iter(newest))) is None or any(cursors(db).get(k) != v for k, v in newest.items()):
        if proc.poll() is not None:
            raise SystemExit(f"tapewatch run exited during the cycle:\n{proc.communicate()[0][-3000:]}")
        if cycle_started is None and x.requests:
            cycle_started = time.monotonic()
        peak = max(peak, rss_mb(proc.pid)[0])
        time.sleep(0.05)
    cycle_s = time.monotonic() - (cycle_started or time.monotonic())
    hwm = rss_mb(proc.pid)[1]
    time.sleep(0.5)  # the job's summary and the job store update
    after = idle_rss(proc.pid, args.idle)
    split = status_mb(proc.pid)
    calls = len(x.calls("/2/"))
    read = ledger(db) - before
    stop_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    return {
        "warm": warm, "idle": idle, "idle_after": after, "anon": split.get("RssAnon", 0.0),
        "file": split.get("RssFile", 0.0), "peak": max(peak, hwm), "cycle_s": cycle_s,
        "calls": calls, "read": read, "posts": args.posts, "accounts": len(users), "max_share": max(counts),
        "stop_s": time.monotonic() - stop_at, "exit": proc.returncode,
        "allowed": math.ceil(args.posts / 100) + len(users), "clean": "Stopped after" in output,
    }


def loadavg() -> str:
    """The 1/5/15-minute load averages, printed beside the figures (other work on the machine skews them)."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def report(f: dict[str, float], args: argparse.Namespace, load_start: str) -> None:
    print(f"tapewatch run: {f['accounts']:.0f} accounts, {f['posts']:.0f} new posts in one X cycle "
          f"(largest account {f['max_share']:.0f}), real MiniLM, embedded Chroma, SQLite; {os.cpu_count()} CPUs")
    print(f"  load average (1/5/15 min):      {load_start} at start, {loadavg()} at the end")
    print(f"  start → warm-up cycle stored:   {f['warm']:.1f} s (includes loading the model)")
    idle_ok = f["idle"] <= IDLE_TARGET_MB
    print(f"  idle RSS (model loaded, between cycles, max over {args.idle:.0f} s): {f['idle']:.0f} MB; "
          f"target ≤ {IDLE_TARGET_MB:.0f} MB → {'PASS' if idle_ok else 'FAIL'}")
    print(f"  idle RSS after the {f['posts']:,.0f}-post cycle: {f['idle_after']:.0f} MB; target ≤ "
          f"{IDLE_TARGET_MB:.0f} MB → {'PASS' if f['idle_after'] <= IDLE_TARGET_MB else 'FAIL'} (native memory "
          "that onnxruntime, tokenizers and Chroma keep after a large batch)")
    print(f"  of which after the cycle:       {f['anon']:.0f} MB anonymous (heap, model weights), "
          f"{f['file']:.0f} MB file-backed (shared libraries: onnxruntime, chromadb, …)")
    print(f"  peak RSS during the cycle:      {f['peak']:.0f} MB")
    rate = f["posts"] / max(f["cycle_s"], 1e-9)
    print(f"  cycle wall time:                {f['cycle_s']:.1f} s ({rate:.0f} posts/s)")
    calls_ok = f["calls"] <= f["allowed"]
    print(f"  X API calls in the cycle:       {f['calls']:.0f} for {f['posts']:.0f} posts "
          f"({f['calls'] * 1000 / f['posts']:.1f} per 1,000); allowed ceil(posts/100) + accounts = "
          f"{f['allowed']:.0f} → {'PASS' if calls_ok else 'FAIL'}")
    billed_ok = f["read"] == f["posts"]
    print(f"  posts billed (ledger):          {f['read']:.0f} → {'PASS' if billed_ok else 'FAIL'} (each post once)")
    print(f"  SIGTERM → exit:                 {f['stop_s']:.1f} s, exit status {f['exit']:.0f}, "
          f"{'clean' if f['clean'] else 'NOT clean'}")
    if f["exit"] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
