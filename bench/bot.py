"""Benchmark: 50 concurrent /brief requests from 10 users through the real bot, crew and fake servers.

The bot (python-telegram-bot, long polling) runs against a loopback fake Bot API; briefs are written by the
real analyst crew (crewAI) against a loopback OpenAI-compatible fake answering at once (no model latency),
over memory holding the bundled sample day. Prints p50/p95 time to acknowledgement and to answer, requests
refused by the rate limit or a full queue, and checks that every request got exactly one acknowledgement or
refusal and every accepted one an answer. Target: acknowledgement p95 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tapewatch.bot.backend import ShellBackend  # noqa: E402
from tapewatch.bot.limits import BriefQueue, RateLimiter  # noqa: E402
from tapewatch.bot.service import brief_writer  # noqa: E402
from tapewatch.bot.telegram import Access, TelegramBot, build_application  # noqa: E402
from tapewatch.jobs import Runtime  # noqa: E402
from tapewatch.settings import load_settings  # noqa: E402
from tests.crew_support import fill_with_samples  # noqa: E402
from tests.fakes import crew_replies  # noqa: E402
from tests.fakes.embedder import HashEmbedder  # noqa: E402
from tests.fakes.llm_server import serving_llm  # noqa: E402
from tests.fakes.telegram_api import TOKEN, FakeTelegramAPI, serving_telegram  # noqa: E402

ACK = "On it"
REFUSED = ("You have asked for several briefs recently", "The brief queue is full")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def settings_for(data: Path, llm_url: str, args: argparse.Namespace) -> Any:
    env = {"TAPEWATCH_DATA_DIR": str(data), "TAPEWATCH_LLM__MODEL": "openai/fake-model",
           "TAPEWATCH_LLM__BASE_URL": llm_url, "TAPEWATCH_LLM__DAILY_BUDGET_USD": "1000",
           "TAPEWATCH_LLM__MONTHLY_BUDGET_USD": "10000", "TAPEWATCH_LLM_API_KEY": "bench",
           "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true", "CREWAI_TRACING_ENABLED": "false"}
    os.environ.update(env)
    return load_settings(None)


async def drive(fake: FakeTelegramAPI, runtime: Runtime, args: argparse.Namespace,
                concurrent: bool) -> dict[str, Any]:
    app = build_application(TOKEN, base_url=fake.base_url, read_timeout=10, concurrent=concurrent)
    users = [1000 + i for i in range(args.users)]
    bot = TelegramBot(app, ShellBackend(runtime.memory(), brief_writer(runtime)),
                      Access(frozenset(users), frozenset(), {}),
                      limiter=RateLimiter(args.limit, 600), queue=BriefQueue(args.concurrency, args.capacity))
    await bot.start(poll_timeout=1.0)
    sent_at: dict[int, list[float]] = {u: [] for u in users}
    try:
        started = time.monotonic()
        for i in range(args.requests):  # interleaved, as fast as the fake can take them
            user = users[i % len(users)]
            sent_at[user].append(time.monotonic())
            fake.user_message(user, "/brief")
        expected_answers: dict[int, int] = {}
        deadline = time.monotonic() + args.timeout

        def settled() -> bool:
            for user in users:
                texts = [m.text for m in fake.sent_to(user)]
                acks = sum(t.startswith(ACK) for t in texts)
                refusals = sum(t.startswith(REFUSED) for t in texts)
                if acks + refusals < len(sent_at[user]):
                    return False
                answers = len(texts) - acks - refusals
                expected_answers[user] = acks
                if answers < acks:
                    return False
            return True

        while not settled():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out after {args.timeout}s")
            await asyncio.sleep(0.02)
        wall = time.monotonic() - started
    finally:
        await bot.stop(drain_s=10)
    return {"sent_at": sent_at, "wall": wall, "users": users}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--limit", type=int, default=3, help="briefs per user per 10 minutes")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, serving_llm() as llm:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        llm.responder = crew_replies.well_behaved
        settings = settings_for(Path(tmp) / "data", llm.base_url, args)
        chroma = chromadb.PersistentClient(path=str(Path(tmp) / "chroma"),
                                           settings=ChromaSettings(anonymized_telemetry=False))
        runtime = Runtime(settings, embed=HashEmbedder(), chroma=chroma)
        fill_with_samples(runtime.memory())
        figures = {}
        # Baseline first: python-telegram-bot's default, one update at a time; then tapewatch's setting.
        for label, concurrent in (("baseline (updates one at a time)", False), ("tapewatch", True)):
            with serving_telegram() as fake:
                calls_before = len(llm.requests)
                result = asyncio.run(drive(fake, runtime, args, concurrent))
                figures[label] = measure(fake, result)
                figures[label]["llm_calls"] = len(llm.requests) - calls_before
                figures[label]["wall"] = result["wall"]
        runtime.close()

    print(f"{args.requests} /brief requests from {args.users} users (limit {args.limit}/user/10 min, "
          f"{args.concurrency} briefs at a time, queue {args.capacity}); real crew, fake LLM answering at once")
    for label, f in figures.items():
        print(f"[{label}] {f['wall']:.1f} s; acknowledged or refused {len(f['ack'])}, refused {f['refused']}, "
              f"answered {len(f['answer'])}, LLM calls {f['llm_calls']}, lost {f['lost']}, "
              f"duplicated {f['duplicated']}")
        print(f"  time to acknowledgement: p50 {percentile(f['ack'], 0.5) * 1000:.0f} ms, "
              f"p95 {percentile(f['ack'], 0.95) * 1000:.0f} ms")
        print(f"  time to answer: p50 {percentile(f['answer'], 0.5):.2f} s, "
              f"p95 {percentile(f['answer'], 0.95):.2f} s")
    ours, base = figures["tapewatch"], figures["baseline (updates one at a time)"]
    p95_ack = percentile(ours["ack"], 0.95)
    print(f"acknowledgement p95: {p95_ack * 1000:.0f} ms vs baseline "
          f"{percentile(base['ack'], 0.95) * 1000:.0f} ms (×{percentile(base['ack'], 0.95) / p95_ack:.1f} faster)")
    ok = p95_ack <= 1.0 and ours["lost"] == 0 and ours["duplicated"] == 0
    print(f"target: acknowledgement p95 ≤ 1 s, none lost, none duplicated → {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


def measure(fake: FakeTelegramAPI, result: dict[str, Any]) -> dict[str, Any]:
    """Latencies, refusals, losses and duplicates from what the fake Bot API saw."""
    ack_s: list[float] = []
    answer_s: list[float] = []
    refused = lost = duplicated = 0
    for user in result["users"]:
        messages = fake.sent_to(user)
        sent = result["sent_at"][user]
        replies = [m for m in messages if m.text.startswith((ACK, *REFUSED))]
        answers = [m for m in messages if not m.text.startswith((ACK, *REFUSED))]
        accepted = [when for when, r in zip(sent, replies, strict=False) if r.text.startswith(ACK)]
        refused += len(replies) - len(accepted)
        duplicated += max(0, len(replies) - len(sent)) + max(0, len(answers) - len(accepted))
        lost += max(0, len(sent) - len(replies)) + max(0, len(accepted) - len(answers))
        ack_s += [reply.at - when for when, reply in zip(sent, replies, strict=False)]
        answer_s += [answer.at - when for when, answer in zip(accepted, answers, strict=False)]
    return {"ack": ack_s, "answer": answer_s, "refused": refused, "lost": lost, "duplicated": duplicated}


if __name__ == "__main__":
    main()
