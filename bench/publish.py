"""bench/publish.py: exactly-once publishing under failure — 200 drafts × 2 channels through the outbox.

Real tweepy and python-telegram-bot clients post to the loopback fake X API and fake Telegram Bot API, which
inject random failures: timeouts after the post was made, timeouts before it was made, 429s, 500s (some after
the post was made) and failing timeline searches. The worker is killed at random moments (its asyncio task is
cancelled mid-call, leaving intents in the outbox and tweepy calls still in flight) and restarted. Between runs
an "operator" settles Telegram parts marked needs_check by looking at the channel, as a person would.
The whole run is made once with the state DB on SQLite and once on a throwaway PostgreSQL cluster
(``.ci/postgres.sh``; skipped, and said so, where PostgreSQL is not installed), same seed, same failures.
Prints posts made, duplicates (must be 0), lost (must be 0), throughput per backend and their ratio, and
PASS/FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from bench.pgcluster import throwaway_postgres  # noqa: E402
from memory.drafts import DraftStore  # noqa: E402
from publish.outbox import Outbox  # noqa: E402
from publish.review import ReviewQueue  # noqa: E402
from tapewatch.clients import delivery, open_state, publish_channels  # noqa: E402
from tapewatch.settings import PublishSettings, ReviewSettings, Settings  # noqa: E402
from tests.fakes.publishing import add_draft  # noqa: E402
from tests.fakes.telegram_api import CHANNEL, TOKEN, FakeTelegramAPI, TgFailure, serving_telegram  # noqa: E402
from tests.fakes.x_api import ME_ID, FakeXAPI, serving_x  # noqa: E402
from tests.fakes.x_api import Failure as XFailure  # noqa: E402

WORDS = (
    "solana", "validators", "ether", "staking", "queue", "dogecoin", "miners", "chainlink", "oracles", "funding",
    "rates", "whale", "wallets", "stablecoin", "supply", "options", "expiry", "exchange", "reserves", "bridge",
    "volume", "governance", "vote", "token", "unlock", "fee", "burn", "layer", "two", "rollup", "sequencer",
    "restaking", "yields", "perp", "open", "interest", "spot", "inflows", "custody", "outflows",
)
CLIENT_TIMEOUT = 0.3  # seconds; the fakes' stalls last longer than this


def make_settings(data: Path, x: FakeXAPI, tg: FakeTelegramAPI, database_url: str | None = None) -> Settings:
    """Both channels on the fakes; settle time longer than the client timeout, so a killed call has ended."""
    return Settings(
        data_dir=data, database_url=database_url, review=ReviewSettings(reviewers=["bench"]),
        publish=PublishSettings.model_validate({
            "channels": ["x", "telegram"], "telegram_chat_id": CHANNEL, "x_base_url": x.base_url,
            "telegram_base_url": tg.base_url, "timeout": f"{CLIENT_TIMEOUT}s", "connect_timeout": "1s",
            "reconcile_settle": f"{CLIENT_TIMEOUT * 2}s", "max_posts_per_day": 1000, "max_attempts": 6,
            "max_wait": "5s", "reconcile_pages": 32,
        }),
        x_consumer_key=SecretStr("ck"), x_consumer_secret=SecretStr("cs"), x_access_token=SecretStr("at"),
        x_access_token_secret=SecretStr("ats"), telegram_bot_token=SecretStr(TOKEN),
    )


def inject(x: FakeXAPI, tg: FakeTelegramAPI, rng: random.Random, posts: int,
           rate: float) -> list[tuple[str, object, list[object]]]:
    """Queue failures at random gaps (each fires after the previous one plus a few successful calls)."""
    queued: list[tuple[str, object, list[object]]] = []
    for _ in range(int(posts * rate)):
        kind = rng.choice(["timeout+posted", "timeout", "429", "500", "500+posted", "search-500"])
        reset = {"x-rate-limit-reset": str(int(time.time())), "x-rate-limit-remaining": "0"}
        skip = int(rng.expovariate(rate))
        if kind == "search-500":
            failure = XFailure(f"/2/users/{ME_ID}/tweets", 500, method="GET", skip=skip)
        else:
            failure = XFailure("/2/tweets", {"429": 429, "500": 500, "500+posted": 500}.get(kind, 503),
                               method="POST", skip=skip, after_effect=kind.endswith("posted"),
                               delay_s=CLIENT_TIMEOUT * 2 if kind.startswith("timeout") else 0.0,
                               headers=reset if kind == "429" else {})
        x.failures.append(failure)
        queued.append((f"x {kind}", failure, x.failures))  # type: ignore[arg-type]
    for _ in range(max(1, int(posts * rate / 3))):
        kind = rng.choice(["timeout+posted", "timeout", "429", "500"])
        tg_failure = TgFailure("sendMessage", {"429": 429, "500": 500}.get(kind, 502),
                               skip=int(rng.expovariate(rate * 3)), retry_after=1 if kind == "429" else None,
                               after_effect=kind == "timeout+posted",
                               delay_s=CLIENT_TIMEOUT * 2 if kind.startswith("timeout") else 0.0)
        tg.failures.append(tg_failure)
        queued.append((f"telegram {kind}", tg_failure, tg.failures))  # type: ignore[arg-type]
    return queued


async def one_run(settings: Settings, state: object, kill_after: float | None) -> bool:
    """Run the worker; cancel it after ``kill_after`` seconds. True if it was killed."""
    async def quick(seconds: float) -> None:
        await asyncio.sleep(min(seconds, 1.5))  # 429 resets and backoffs, capped so the bench stays short

    worker = delivery(settings, state, publish_channels(settings))  # type: ignore[arg-type]
    worker.sleep = quick
    task = asyncio.create_task(worker.run())
    if kill_after is None:
        await task
        return False
    done, _ = await asyncio.wait({task}, timeout=kill_after)
    if done:
        task.result()
        return False
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return True


def operator(state: object, tg: FakeTelegramAPI) -> int:
    """Settle needs_check parts the way a person would: look at the channel."""
    outbox = Outbox(state.engine, actor="bench")  # type: ignore[attr-defined]
    settled = 0
    for row in outbox.in_states("needs_check"):
        seen = [m for m in tg.messages if m.text == row.text]
        if seen:
            outbox.mark_sent(row, str(seen[0].message_id), None, action="resolved")
        else:
            outbox.requeue(row, "not in the channel", actor="bench")
        settled += 1
    return settled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=200)
    parser.add_argument("--failure-rate", type=float, default=0.06, help="share of calls that fail")
    parser.add_argument("--kills", type=int, default=8, help="worker restarts by cancellation mid-run")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--sqlite-only", action="store_true", help="skip the PostgreSQL run")
    args = parser.parse_args()
    print("== state DB: SQLite ==")
    ok, sqlite_rate = run_backend(args, "sqlite", None)
    if args.sqlite_only:
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    with throwaway_postgres() as (url, version):
        if url is None:
            print(f"== state DB: PostgreSQL skipped: {version} ==")
            print("PASS" if ok else "FAIL")
            return 0 if ok else 1
        print(f"== state DB: {version} (throwaway cluster on loopback) ==")
        pg_ok, pg_rate = run_backend(args, "postgresql", url)
    print(f"throughput PostgreSQL / SQLite: {pg_rate:.1f} / {sqlite_rate:.1f} posts/s = {pg_rate / sqlite_rate:.2f}")
    print("PASS" if ok and pg_ok else "FAIL")
    return 0 if ok and pg_ok else 1


def run_backend(args: argparse.Namespace, backend: str, database_url: str | None) -> tuple[bool, float]:
    """One full run on one state DB: (passed, posts per second)."""
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, serving_x() as x, serving_telegram() as tg:
        settings = make_settings(Path(tmp), x, tg, database_url)
        state = open_state(settings)
        queue = ReviewQueue(state, reviewers=["bench"])
        drafts = []
        for i in range(args.drafts):
            words = " ".join(rng.sample(WORDS, 12))
            draft = add_draft(state, f"{i}: {words}", posts=rng.randint(1, 4))
            queue.approve(draft.id, "bench")
            drafts.append(draft)
        expected_x = sum(len(d.x_thread) for d in drafts)
        queued = inject(x, tg, rng, expected_x + args.drafts, args.failure_rate)
        started = time.perf_counter()
        kills = runs = settled = 0
        while runs < 60:
            runs += 1
            kill = rng.uniform(0.5, 4.0) if kills < args.kills else None
            kills += asyncio.run(one_run(settings, state, kill))
            settled += operator(state, tg)
            finished = all(DraftStore(state).get(d.id).status in ("published", "failed") for d in drafts)
            if finished and kills >= args.kills:
                break
        elapsed = time.perf_counter() - started

        x_texts = Counter(p.text for p in x.posts_by(ME_ID))
        tg_texts = Counter(m.text for m in tg.messages)
        want_x = [t for d in drafts for t in d.x_thread]
        want_tg = [d.telegram_html for d in drafts]
        duplicates = sum(n - 1 for n in x_texts.values() if n > 1) + sum(n - 1 for n in tg_texts.values() if n > 1)
        lost = sum(1 for t in want_x if x_texts[t] == 0) + sum(1 for t in want_tg if tg_texts[t] == 0)
        by_id = {p.id: p for p in x.posts_by(ME_ID)}
        text_to_id = {p.text: p.id for p in by_id.values()}
        broken = sum(1 for d in drafts for a, b in zip(d.x_thread, d.x_thread[1:], strict=False)
                     if b in text_to_id and by_id[text_to_id[b]].in_reply_to != text_to_id.get(a))
        statuses = Counter(DraftStore(state).get(d.id).status for d in drafts)
        made = sum(x_texts.values()) + sum(tg_texts.values())
        print(f"drafts: {args.drafts} × 2 channels = {len(want_x)} X posts in threads + {len(want_tg)} Telegram "
              f"messages expected")
        fired = Counter(kind for kind, failure, pending in queued if failure not in pending)
        print(f"injected failures that fired: {sum(fired.values())} of {len(queued)} queued: "
              + ", ".join(f"{k} {n}" for k, n in sorted(fired.items())))
        print(f"worker runs: {runs} ({kills} killed mid-run); needs_check settled by the operator: {settled}")
        print(f"posts made: {made} (X {sum(x_texts.values())}, Telegram {sum(tg_texts.values())}); "
              f"X API POSTs {len(x.calls('/2/tweets', 'POST'))}, sendMessage calls {len(tg.calls('sendMessage'))}")
        print(f"duplicates: {duplicates} (must be 0)")
        print(f"lost: {lost} (must be 0)")
        print(f"broken reply chains: {broken} (must be 0)")
        print(f"draft statuses: {dict(statuses)}")
        print(f"throughput: {made / elapsed:.1f} posts/s over {elapsed:.1f} s (waits for 429s, backoff and "
              f"reconcile settle included)")
        for d in drafts:
            if DraftStore(state).get(d.id).status != "published":
                for row in Outbox(state.engine).rows(d.id):
                    print(f"  unfinished {d.id[:12]} {row.channel} part {row.part + 1}/{row.parts}: {row.state} "
                          f"after {row.attempts} attempt(s): {row.error}")
        ok = duplicates == 0 and lost == 0 and broken == 0 and statuses.get("published", 0) == args.drafts
        print(f"{backend}: {'PASS' if ok else 'FAIL'}")
        state.close()
        return ok, made / elapsed




if __name__ == "__main__":
    sys.exit(main())
