"""Benchmark: one crew brief over a 24 h window of 2,000 stored items, against the loopback fake LLM server.

Run: .venv/bin/python bench/brief.py [--items 2000] [--runs 2]

Memory is real (embedded Chroma + SQLite in a temp dir) with the fast hash embedder standing in for
MiniLM (embedding is ingest's cost, not the brief's). The fake server plays a well-behaved model
(tests/fakes/crew_replies.py): the researcher makes one tool call, then each agent answers once,
and no guardrail retry is needed. Tokens are counted by the server with a real tokenizer, OpenAI's
o200k_base (the gpt-4o family's), from the bpe-openai package, which bundles the encoding (tiktoken
would download it). The brief runs through the shell's own path, ``tapewatch.briefs.write_brief``.

Prints: LLM calls, prompt and completion tokens, wall time, time inside the fake LLM server and our
own overhead (the rest), per run. Targets, for a brief with no guardrail retry: ≤ 4 LLM calls,
≤ 15,000 prompt tokens, ≤ 2 s of our own overhead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sources.item import Item, item_id_for_url

COINS = {"BTC": "Bitcoin", "ETH": "Ether", "SOL": "Solana", "XRP": "XRP", "DOGE": "Dogecoin", "LINK": "Chainlink",
         "AVAX": "Avalanche", "ARB": "Arbitrum", "TON": "Toncoin", "SUI": "Sui", "ADA": "Cardano", "BNB": "BNB"}
EVENTS = [
    ("ETF inflows hit {m}", "Spot {name} funds took in a net {m} on the day, led by the largest issuer."),
    ("validators ship the {v} upgrade", "Operators moved {p} of stake to the {v} client within hours."),
    ("exchange outflows reach {m}", "Coins left exchanges at the fastest pace in a month, about {m} in a day."),
    ("perp open interest climbs {p}", "Leverage is building: open interest rose {p} week on week with funding flat."),
    ("treasury buys {m} more", "A listed company added {m} of {name} to its balance sheet this week."),
    ("bridge exploit drains {m}", "An attacker drained {m} from a bridge before it paused; funds are being traced."),
    ("governance vote passes with {p}", "Token holders approved the fee switch with {p} of votes in favour."),
    ("stablecoin supply on chain up {p}", "Stablecoin balances rose {p} in a week, a sign of fresh buying power."),
]
CLUSTERS = ["vc", "founder", "trader", "researcher", "dev", "media"]


def generate(n: int, now: datetime, seed: int = 2026) -> list[Item]:
    """n items over the 24 h before ``now``: news, forum threads and posts about a dozen coins."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        ticker = list(COINS)[int(rng.zipf(1.6)) % len(COINS)]
        title_t, text_t = EVENTS[int(rng.integers(0, len(EVENTS)))]
        values = {"m": f"${int(rng.integers(5, 900))}M", "p": f"{rng.uniform(1, 40):.1f}%",
                  "v": f"v{int(rng.integers(1, 9))}.{int(rng.integers(0, 9))}", "name": COINS[ticker]}
        kind = ("news", "forum", "social")[int(rng.integers(0, 3))]
        url = f"https://outlet{i % 40}.example/{ticker.lower()}/{i}"
        when = now - timedelta(seconds=float(rng.uniform(60, 86_000)))
        title = f"{COINS[ticker]} {title_t.format(**values)}"
        text = f"{text_t.format(**values)} ${ticker} traders are watching the follow-through. Story {i}."
        items.append(Item(
            id=item_id_for_url(url), kind=kind, source=f"outlet{i % 40}", url=url, title=title, text=text,
            published_at=when, fetched_at=now, author=f"@author{int(rng.integers(0, 300))}", tickers=(ticker,),
            cluster=CLUSTERS[int(rng.integers(0, len(CLUSTERS)))] if kind == "social" else "",
            metrics={"likes": int(rng.integers(0, 2000)), "reposts": int(rng.integers(0, 200))},
        ))
    return items


def main() -> None:
    """Fill memory, run crew briefs against the fake server, print figures and PASS/FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2, help="briefs in one process; the first is cold")
    args = parser.parse_args()

    import bpe_openai

    encoding = bpe_openai.get_encoding("o200k_base")
    encoding.encode("warm up")  # the first call loads the ranks; keep that out of the server's timings

    def count(text: str) -> int:
        return len(encoding.encode(text))

    print(f"bench/brief.py  items={args.items}  cores={os.cpu_count()}  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with tempfile.TemporaryDirectory(prefix="tapewatch-bench-brief-") as tmp:
        os.environ["TAPEWATCH_DATA_DIR"] = tmp
        results = run(args.items, args.runs, Path(tmp), count)
    first = results[0]
    checks = [("LLM calls", first["calls"], 4.0, "{:.0f}"), ("prompt tokens", first["prompt"], 15_000.0, "{:,.0f}"),
              ("own overhead (s), first brief", first["overhead"], 2.0, "{:.2f}")]
    verdict = all(value <= limit for _, value, limit, _ in checks)
    for name, value, limit, shown in checks:
        print(f"target {name} ≤ {limit:,g}: {shown.format(value)} → {'PASS' if value <= limit else 'FAIL'}")
    print("PASS" if verdict else "FAIL")


def run(n: int, runs: int, tmp: Path, count: Callable[[str], int]) -> list[dict[str, float]]:
    """Fill a store with n items, then time ``runs`` crew briefs."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from memory.chroma import ChromaVectors
    from memory.state import StateDB
    from memory.store import Memory
    from tapewatch import clients
    from tapewatch.briefs import write_brief
    from tapewatch.settings import load_settings
    from tests.fakes import crew_replies
    from tests.fakes.embedder import HashEmbedder
    from tests.fakes.llm_server import Reply, serving_llm

    now = datetime.now(UTC).replace(microsecond=0)
    embedder = HashEmbedder()
    state = StateDB(f"sqlite:///{tmp / 'state.db'}")
    client = chromadb.PersistentClient(str(tmp / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    memory = Memory(ChromaVectors(client, "bench-brief", embedder.name, embedder.dimension), state, embedder)
    started = time.perf_counter()
    items = generate(n, now)
    for start in range(0, n, 500):
        memory.add(items[start:start + 500])
    print(f"filled {n:,} items ({state.stats().stories:,} stories) in {time.perf_counter() - started:.1f}s "
          "[not timed]")

    started = time.perf_counter()
    clients.crewai_environment(load_settings(None))
    import crewai  # noqa: F401

    for module in ("crew.analyst", "crew.crewbrief", "crew.tools"):  # the crew, its tools, the renderers
        importlib.import_module(module)

    print(f"imports (crewAI, the crew, the renderers): {time.perf_counter() - started:.2f}s "
          "[once per process, not per brief; not timed]")
    results = []
    with serving_llm(count_tokens=count) as server:
        os.environ.update({"TAPEWATCH_LLM__MODEL": "openai/bench-model", "TAPEWATCH_LLM__BASE_URL": server.base_url,
                           "TAPEWATCH_LLM_API_KEY": "bench"})
        settings = load_settings(None)
        server.responder = crew_replies.well_behaved
        for k in range(runs):
            server.requests.clear()
            server.served_s = 0.0
            server.script("Market Researcher", Reply.tool("search_memory", query="ETF inflows this week"))
            started = time.perf_counter()
            result = write_brief(settings, memory, now=now + timedelta(seconds=k), window=timedelta(hours=24))
            wall = time.perf_counter() - started
            crew = result.crew
            assert result.draft is not None and crew is not None, "the brief was not written"
            prompt = sum(u.prompt_tokens for u in crew.usage)
            completion = sum(u.completion_tokens for u in crew.usage)
            per_call = ", ".join(f"{crew_replies.role_of(r.body)} {count(r.text):,}" for r in server.requests)
            results.append({"calls": float(len(server.requests)), "prompt": float(prompt), "wall": wall,
                            "llm": server.served_s, "overhead": wall - server.served_s})
            print(f"run {k + 1} ({'cold' if k == 0 else 'warm'}): {len(server.requests)} LLM calls, "
                  f"{prompt:,} prompt + {completion:,} completion tokens (o200k_base); wall {wall:.2f}s, "
                  f"inside the fake LLM {server.served_s:.2f}s, own overhead {wall - server.served_s:.2f}s; "
                  f"draft {result.draft.status}, {len(result.draft.item_ids)} cited items, "
                  f"{len(result.draft.x_thread)} posts")
            print(f"    prompt tokens per call (message text): {per_call}")
        # Informational: the same brief when the writer's first answer fails grounding once.
        sloppy = {"left": 1}

        def one_mistake(body: dict[str, Any]) -> Reply:
            if crew_replies.role_of(body) == "writer" and sloppy["left"]:
                sloppy["left"] = 0
                facts = crew_replies.facts_of(crew_replies.all_text(body))
                return crew_replies.brief(body, extra=[
                    {"text": "$FAKE is up 40%.", "item_ids": facts[0]["item_ids"], "ticker": "FAKE"}])
            return crew_replies.well_behaved(body)

        server.responder = one_mistake
        server.requests.clear()
        server.script("Market Researcher", Reply.tool("search_memory", query="ETF inflows this week"))
        result = write_brief(settings, memory, now=now + timedelta(seconds=runs), window=timedelta(hours=24))
        assert result.crew is not None
        print(f"with one guardrail retry (informational): {len(server.requests)} LLM calls, "
              f"{sum(u.prompt_tokens for u in result.crew.usage):,} prompt tokens, draft "
              f"{result.draft.status if result.draft else None}, writer attempts {result.crew.attempts['writer']}")
    state.close()
    return results


if __name__ == "__main__":
    main()
