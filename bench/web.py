"""Benchmark: the web desk under 20 concurrent clients, over 10,000 drafts and 100,000 audit rows.

The app (Starlette under uvicorn, as `tapewatch web [--workers N]` runs it, one pass per `--workers` count,
1 and 2 by default) serves a SQLite state
DB seeded with 10,000 drafts in every status (a third published, so in the public archive) and 100,000
audit-log rows. 20 httpx clients on loopback, each signed in, request in turns: the desk's queue page
(``/desk``), a draft's page, a permalink (``/b/{public id}``) and, as the baseline measured in the same run,
a static file (server and transport alone). Prints p50/p95/p99 per page, requests per second, and the
ratio of each page's p95 to the baseline's. Targets: desk queue p95 <= 100 ms, permalink p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import socket
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from memory import schema  # noqa: E402
from memory.accounts import Accounts  # noqa: E402
from memory.state import StateDB  # noqa: E402
from publish.archive import Archive  # noqa: E402
from tapewatch.settings import Settings  # noqa: E402

PASSWORD = "bench password 1"
STATUSES = ["published"] * 33 + ["pending"] * 12 + ["flagged"] * 5 + ["approved"] * 5 + ["rejected"] * 20 + \
    ["expired"] * 15 + ["superseded"] * 10
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _link(k: int) -> str:
    return f" ([source](https://news{k % 12}.example/{k}))"


def seed(state: StateDB, drafts: int, audit: int, rng: random.Random) -> list[str]:
    """Drafts, their audit rows and cited items, written in bulk; returns the published drafts' public ids."""
    now = datetime.now(UTC)
    items = [{"id": uuid.uuid4().hex, "story_id": "", "kind": "news", "source": f"outlet{i % 12}",
              "url": f"https://news{i % 12}.example/{i}", "title": f"Story {i} about $SOL and $ETH",
              "author": "", "tickers": "SOL ETH", "published_at": now - timedelta(minutes=i),
              "fetched_at": now - timedelta(minutes=i), "text": f"Body of story {i}. " * 20, "cluster": "media",
              "engagement": 0, "suspect": 0} for i in range(2000)]
    for item in items:
        item["story_id"] = item["id"]
    rows, ids = [], []
    for n in range(drafts):
        created = now - timedelta(minutes=7 * n)
        cited = [items[rng.randrange(len(items))]["id"] for _ in range(6)]
        draft_id = uuid.uuid4().hex
        ids.append(draft_id)
        meta = {"public_id": uuid.uuid4().hex[:16], "models": {"writer": "ollama/qwen3"}, "prompt_version": "p1",
                "claims": [{"text": f"Claim {k} of draft {n}", "item_ids": [cited[k]]} for k in range(6)]}
        validation = {"ok": True, "checked_at": created.isoformat(), "summary": "6 claims: 6 corroborated",
                      "problems": [], "claims": [{"text": f"Claim {k} of draft {n}", "standing": "corroborated",
                                                  "tier": "media", "basis": ["outlet1 (media)"]} for k in range(6)]}
        rows.append({"id": draft_id, "created_at": created, "mode": "crew", "status": rng.choice(STATUSES),
                     "topic": "", "window_start": created - timedelta(hours=24), "window_end": created,
                     "x_thread": json.dumps([f"{k}/4 Post {k} of brief {n} on $SOL" for k in range(1, 5)]),
                     "telegram_html": f"<b>Brief {n}</b>\n" + "A line with a <a href=\"https://news1.example/1\">"
                     "source</a>.\n" * 8, "markdown": f"# Brief {n}\n\n" + "".join(
                         f"A sentence of the brief{_link(k) if k % 4 == 0 else ''}. " for k in range(40)),
                     "item_ids": json.dumps(cited), "tickers": "SOL ETH", "signals": "{}", "version": 1,
                     "parent_id": None, "meta": json.dumps(meta), "validation": json.dumps(validation)})
    actions = ["created", "validated", "approve", "scheduled", "sent", "publish"]
    log = [{"at": now - timedelta(seconds=n), "draft_id": ids[n % len(ids)], "actor": "alice", "via": "web",
            "action": actions[n % len(actions)], "from_status": "pending", "to_status": "approved",
            "channel": None, "reason": None, "detail": "{}"} for n in range(audit)]
    with state.engine.begin() as conn:
        conn.execute(insert(schema.items), items)
        conn.execute(insert(schema.drafts), rows)
        for start in range(0, len(log), 10_000):
            conn.execute(insert(schema.audit_log), log[start:start + 10_000])
    Archive(state).sync()
    with state.engine.connect() as conn:
        return [r.public_id for r in conn.execute(schema.archive.select())]


def _settings(url: str, port: int) -> Settings:
    return Settings(data_dir=Path(tempfile.gettempdir()), database_url=url, web={"port": port})


def bench_app(settings: Settings) -> Any:
    """The desk app over the bench's state DB, as `tapewatch web` builds it (no vector store)."""
    from tapewatch.web.app import build_app
    from tapewatch.web.service import standalone_deps

    return build_app(standalone_deps(settings, StateDB(str(settings.database_url)), None))


def serve(url: str, port: int, workers: int) -> None:
    """The server: the desk app under uvicorn as `tapewatch web [--workers N]` runs it (no vector store)."""
    from tapewatch.web.workers import bind, serve_workers, worker

    settings = _settings(url, port)
    if workers == 1:
        worker(settings, bind(settings, "127.0.0.1", port), bench_app)
    else:
        serve_workers(settings, bind(settings, "127.0.0.1", port), workers, bench_app)


async def sign_in(http: httpx.AsyncClient) -> float:
    """Sign one client in (outside the timed part: argon2 is meant to be slow); returns the seconds it took."""
    start = time.perf_counter()
    form = await http.get("/login")
    token = CSRF.search(form.text)
    assert token, "no login form"
    signed = await http.post("/login", data={"csrf_token": token[1], "name": "bench", "password": PASSWORD})
    assert signed.status_code == 303, signed.text[:200]
    return time.perf_counter() - start


async def client(http: httpx.AsyncClient, plan: list[tuple[str, str]], times: dict[str, list[float]]) -> None:
    """One signed-in client requesting its share of the plan in turn."""
    for kind, path in plan:
        start = time.perf_counter()
        response = await http.get(path)
        times[kind].append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")


async def drive(base: str, clients: int, per_client: int, pids: list[str], draft_ids: list[str],
                rng: random.Random) -> tuple[dict[str, list[float]], float]:
    kinds = ["baseline", "desk queue", "draft page", "permalink"]
    plans = [[(kinds[(c + n) % 4], "") for n in range(per_client)] for c in range(clients)]
    paths = {"baseline": lambda: "/static/desk.css", "desk queue": lambda: "/desk",
             "draft page": lambda: f"/desk/drafts/{rng.choice(draft_ids)}",
             "permalink": lambda: f"/b/{rng.choice(pids)}"}
    plans = [[(kind, paths[kind]()) for kind, _ in plan] for plan in plans]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    https = [httpx.AsyncClient(base_url=base, timeout=30) for _ in plans]
    try:
        times["sign-in"] = list(await asyncio.gather(*(sign_in(http) for http in https)))
        start = time.perf_counter()
        await asyncio.gather(*(client(http, plan, times) for http, plan in zip(https, plans, strict=True)))
        return times, time.perf_counter() - start
    finally:
        for http in https:
            await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=60, help="requests per client")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="server processes per pass (`tapewatch web --workers N`); one pass each")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="tapewatch-bench-web-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'state.db'}"
        state = StateDB(url)
        began = time.perf_counter()
        pids = seed(state, args.drafts, args.audit, rng)
        with state.engine.connect() as conn:
            open_ids = [r.id for r in conn.execute(schema.drafts.select().where(
                schema.drafts.c.status.in_(("pending", "flagged", "approved"))).limit(500))]
        Accounts(state).add("bench", "reviewer", PASSWORD)
        print(f"seeded {args.drafts:,} drafts ({len(pids):,} published), {args.audit:,} audit rows in "
              f"{time.perf_counter() - began:.1f} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        failed: list[str] = []
        for workers in args.workers:
            failed += [f"{kind} ({workers} worker{'s' * (workers > 1)})"
                       for kind in run(url, workers, args, pids, open_ids, rng)]
    if failed:
        print(f"targets missed: {', '.join(failed)}")


def run(url: str, workers: int, args: argparse.Namespace, pids: list[str], open_ids: list[str],
        rng: random.Random) -> list[str]:
    """One pass against a server of ``workers`` processes; prints its table, returns the targets it missed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(url, port, workers), daemon=False)
    proc.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/static/desk.css", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        asyncio.run(drive(base, 8, 8, pids, open_ids, rng))  # warm-up: templates compiled, pools filled
        times, elapsed = asyncio.run(drive(base, args.clients, args.requests, pids, open_ids, rng))
    finally:
        proc.terminate()
        proc.join(30)
    logins = times.pop("sign-in")
    total = sum(len(v) for v in times.values())
    base_p95 = percentile(times["baseline"], 0.95)
    print(f"\n{workers} server process{'es' * (workers > 1)}: {args.clients} concurrent clients, {total:,} requests "
          f"in {elapsed:.1f} s: {total / elapsed:,.0f} requests/s")
    print(f"{'page':<12} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95/baseline':>13}  target")
    targets = {"desk queue": 0.100, "permalink": 0.050}
    failed = []
    for kind, values in times.items():
        p95 = percentile(values, 0.95)
        target = targets.get(kind)
        verdict = "" if target is None else (f"<= {target * 1000:.0f} ms " + ("ok" if p95 <= target else "MISSED"))
        if target is not None and p95 > target:
            failed.append(kind)
        print(f"{kind:<12} {len(values):>6} {percentile(values, 0.5) * 1000:>8.1f} {p95 * 1000:>8.1f} "
              f"{percentile(values, 0.99) * 1000:>8.1f} {p95 / base_p95:>12.1f}x  {verdict}")
    print(f"sign-in (argon2id, {len(logins)} at once, before the timed part): "
          f"p50 {percentile(logins, 0.5) * 1000:.0f} ms, max {max(logins) * 1000:.0f} ms")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return failed


if __name__ == "__main__":
    main()
