"""Ingest and search benchmark for tapewatch's memory pipeline.

Run from the repository root:

    .venv/bin/python bench/ingest.py            # N=5000 items, search at 100,000 stored items
    .venv/bin/python bench/ingest.py --quick    # N=300, search at 5,000 (a sanity run)
    .venv/bin/python bench/ingest.py --embedder minilm-int8   # memory.embedder (default "minilm", ONNX fp32)

Everything (Chroma files, the SQLite state DB) lives in a temporary directory that is
removed at the end. No network is used. See bench/README.md for what each figure means.

A second phase ingests the same feeds twice with the state DB on SQLite and on a throwaway PostgreSQL
cluster (``.ci/postgres.sh``; skipped, and said so, without PostgreSQL, or with ``--sqlite-only``):
throughput of each and their ratio, nothing lost and nothing stored twice on either.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.dont_write_bytecode = True  # importing the project below must write nothing into the source tree
# The bench never phones home and never reaches for a model hub.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from bench.pgcluster import throwaway_postgres  # noqa: E402
from bench.rss import run_with_peak_rss  # noqa: E402
from memory.chroma import ChromaVectors  # noqa: E402
from memory.deadline import Deadline  # noqa: E402
from memory.embeddings import Embedder  # noqa: E402
from memory.state import FetchRecord, StateDB  # noqa: E402
from memory.store import Memory, vector_metadata  # noqa: E402
from sources.item import Item  # noqa: E402
from sources.rss import FeedSpec, parse_feed  # noqa: E402
from sources.tickers import Watchlist  # noqa: E402
from tapewatch.settings import DEFAULT_WATCHLIST, MemorySettings, Settings  # noqa: E402

INGEST_TARGET_RATIO = 0.9
INGEST_TARGET_N = 5000
INGEST_RSS_TARGET_MB = 400.0
SEARCH_TARGET_P50_MS = 8.0  # unfiltered
FILTERED_TARGET_P50_MS = 15.0  # a time window and a ticker
SEARCH_TARGET_N = 100_000

console = Console(width=118, highlight=False, soft_wrap=False)


# --------------------------------------------------------------------------------------
# Synthetic news
# --------------------------------------------------------------------------------------

# A tiny grammar: frames with slots, slots filled from pools (some pool entries have slots
# themselves). It gives enough variety that unrelated stories rarely pass the 0.8 cosine
# near-duplicate threshold by accident, while same-topic stories still cluster.
POOLS: dict[str, tuple[str, ...]] = {
    "exchange": ("Binance", "Coinbase", "Kraken", "OKX", "Bybit", "Bitstamp", "Gemini", "Bitget", "Upbit",
                 "Crypto.com", "Bitfinex", "KuCoin", "Deribit", "Robinhood", "HTX"),
    "firm": ("BlackRock", "Fidelity", "Grayscale", "ARK Invest", "VanEck", "Galaxy Digital", "MicroStrategy",
             "Franklin Templeton", "Jump Crypto", "a16z crypto", "Paradigm", "Pantera Capital", "Bitwise",
             "Citadel Securities", "Goldman Sachs", "JPMorgan", "Standard Chartered", "Tether", "Circle",
             "Ripple Labs"),
    "protocol": ("Aave", "Uniswap", "Lido", "EigenLayer", "MakerDAO", "Curve", "Pendle", "Jupiter", "Ethena",
                 "Compound", "GMX", "Hyperliquid", "Morpho", "Raydium", "Jito", "dYdX", "Synthetix", "Balancer",
                 "Frax", "Across"),
    "regulator": ("the SEC", "the CFTC", "the UK's FCA", "Hong Kong's SFC", "Singapore's MAS", "ESMA",
                  "Japan's FSA", "the U.S. Treasury", "South Korea's FSC", "Dubai's VARA", "the OCC",
                  "Brazil's central bank", "Germany's BaFin", "France's AMF", "Australia's ASIC"),
    "place": ("the United States", "the European Union", "Hong Kong", "Singapore", "Brazil", "South Korea",
              "Japan", "the UK", "the UAE", "Argentina", "Nigeria", "Turkey", "Australia", "Canada", "El Salvador",
              "Switzerland", "India", "Thailand", "Vietnam", "Mexico"),
    "person": ("an analyst at 10x Research", "a strategist at Standard Chartered", "a veteran options trader",
               "the firm's chief executive", "a Glassnode researcher", "a partner at a crypto hedge fund",
               "a CryptoQuant analyst", "the project's lead developer", "a former regulator",
               "a portfolio manager at Bitwise", "an economist at a Wall Street bank", "a Kaiko research analyst",
               "the exchange's head of derivatives", "a pseudonymous on-chain sleuth", "a Bernstein analyst",
               "a market maker in Singapore", "a DeFi founder", "a law professor at Georgetown"),
    "metric": ("open interest", "funding rates", "exchange reserves", "daily active addresses", "the hashrate",
               "mining difficulty", "stablecoin supply", "total value locked", "spot trading volume", "ETF flows",
               "gas fees", "staking yields", "the futures basis", "implied volatility", "the long/short ratio",
               "whale balances", "dormant supply", "DEX volume", "bridge outflows", "NFT sales",
               "the validator count", "transaction counts", "fee revenue", "the put/call ratio",
               "perpetual swap premiums", "miner outflows", "realised losses", "the Coinbase premium"),
    "move": ("rose", "fell", "jumped", "slipped", "doubled", "halved", "hit a record", "dropped to a two-year low",
             "stabilised", "spiked", "cooled", "recovered", "climbed steadily", "collapsed", "flattened out",
             "ticked up", "sank", "surged", "edged lower", "reversed course"),
    "when": ("on Tuesday", "over the weekend", "in Asian hours", "this quarter", "since the halving",
             "in the past 24 hours", "overnight", "after the U.S. open", "late Friday", "earlier this month",
             "since January", "over the past week", "on Monday morning", "during the European session",
             "ahead of the FOMC meeting", "after the CPI print", "into the monthly close", "on Thursday"),
    "source": ("according to Glassnode", "CoinGlass data show", "per DefiLlama", "Kaiko data show",
               "said {person}", "a regulatory filing shows", "on-chain data show", "according to Farside Investors",
               "CryptoQuant figures show", "the company said in a blog post", "a spokesperson confirmed",
               "Dune dashboards show", "Arkham data indicate", "according to people familiar with the matter",
               "a Reuters report said", "The Block's data dashboard shows", "per Token Terminal",
               "Santiment data suggest"),
    "event": ("a surprise rate cut", "the ETF approval", "a $200 million exploit", "the halving",
              "a court ruling", "a failed governance vote", "a wave of liquidations", "record stablecoin inflows",
              "the mainnet launch", "an exchange outage", "a large token unlock", "a whale sell-off",
              "new import tariffs", "weak jobs data", "a regional bank failure", "a listing on {exchange}",
              "an airdrop", "a proof-of-reserves audit", "a leadership change at {exchange}",
              "a corporate treasury purchase", "hotter-than-expected inflation", "a stablecoin depeg",
              "a hard fork", "a validator slashing incident", "a Treasury auction", "a short squeeze",
              "options expiry", "a delisting notice", "a subpoena from {regulator}", "a cross-chain bridge hack"),
    "action": ("announced a ${amount} million buyback", "paused deposits in {place}", "filed an appeal",
               "launched a {coin} staking product", "cut trading fees for market makers",
               "hired a former {regulator} official", "opened an office in {place}", "settled with {regulator}",
               "added support for {coin}", "published a proof-of-reserves report", "froze accounts linked to a hack",
               "raised ${amount} million in a Series B", "laid off a fifth of its staff",
               "applied for a licence in {place}", "rolled out a {coin} lending desk",
               "acquired a custody startup", "delisted several privacy tokens", "sued {regulator}",
               "started a bug bounty worth up to ${amount} million", "moved its headquarters to {place}",
               "reported record quarterly revenue", "shut down its NFT marketplace",
               "tokenised a money-market fund on {coin}", "launched perpetual futures on {coin}"),
    "claim": ("the rally has further to run", "leverage is building up dangerously", "retail has not come back yet",
              "institutions are buying the dip", "the selling looks exhausted",
              "regulatory clarity is finally arriving",
              "the market is underpricing a macro shock", "the correction is healthy", "liquidity is thinning out",
              "the upgrade removes a key bottleneck", "fees will keep falling", "the treasury trade is crowded",
              "the exploit exposed a design flaw", "stablecoins are the real growth story",
              "miners are under real pressure", "on-chain activity does not support the price",
              "altcoins need bitcoin to stall first", "the rules will push activity offshore",
              "the token unlock is already priced in", "ETF demand is structural, not speculative"),
    "reason": ("as traders pile back into risk", "after Fed minutes", "on ETF optimism", "amid exchange outflows",
               "as whales accumulate", "after hack news", "in a short squeeze", "as the dollar weakens",
               "ahead of options expiry", "after the network upgrade", "as funding turns negative",
               "on heavy Asian buying", "after a CPI surprise", "as miners sell", "on takeover rumours",
               "amid regulatory uncertainty", "after a big token unlock", "as stablecoin inflows surge",
               "on a Trump administration remark", "as bond yields climb", "after a liquidation cascade",
               "on strong earnings from crypto stocks"),
    "direction": ("up", "down", "higher", "lower", "flat"),
    "level": ("the 200-day moving average", "its all-time high", "last month's low", "the weekly open",
              "the $100,000 mark", "a key support zone", "the top of its range", "the yearly open",
              "the realised price", "the post-election high"),
    "opinion": ("I've been holding {coin} since {year} and honestly don't know what to do now",
                "the {exchange} news spooked me but the fundamentals haven't changed",
                "everyone here was bullish at the top and now nobody talks about {coin}",
                "not financial advice, but DCA has worked better for me than trading",
                "fees on {coin} have been brutal lately, anyone else notice",
                "my plan is to take some profit if we get back to {level}",
                "I moved everything off {exchange} after the last scare",
                "staking rewards barely beat inflation at this point",
                "my whole portfolio is down and I'm still buying",
                "the {protocol} yields look too good to be true",
                "I lost money on a rug pull last year so I only hold {coin} now",
                "my tax guy in {place} had no idea how to handle {coin}",
                "this sub flips from euphoria to despair every two weeks",
                "hardware wallet arrived today, took me an hour to set up",
                "I think {coin2} is the better bet for the next cycle"),
}

TITLE_FRAMES: dict[str, tuple[str, ...]] = {
    "market": ("{coin} {title_move} {pct}% {reason}", "{coin} {title_move} toward {level} {reason}",
               "{coin} tests {level} {reason}", "Why {coin} is {direction} {pct}% {when}",
               "{metric_cap} on {coin} {move} {reason}", "{coin} and {coin2} diverge {reason}"),
    "corporate": ("{org} {action}", "{org} {action} {reason}", "{firm} bets on {coin} as {metric} {move}"),
    "policy": ("{regulator_cap} {reg_action}", "{place_cap} {policy_action}",
               "{regulator_cap} targets {exchange} over {issue}"),
    "security": ("{protocol} hit by {hack} worth ${amount} million", "{exchange} {security_action} after {event}",
                 "Hackers behind the {protocol} exploit move funds through {coin}"),
    "onchain": ("{metric_cap} on {coin} {move} {when}", "{coin} whales {whale_action} {reason}",
                "{metric_cap} {move} as {coin} {title_move} {pct}%"),
}
EXTRA: dict[str, tuple[str, ...]] = {
    "title_move": ("jumps", "slides", "climbs", "tumbles", "rebounds", "stalls", "surges", "dips", "rallies",
                   "sinks", "edges higher", "edges lower", "breaks out", "retreats", "whipsaws"),
    "reg_action": ("opens a probe into stablecoin reserves", "approves the first {coin} ETF in the region",
                   "fines {exchange} ${amount} million", "publishes draft custody rules",
                   "delays a decision on a {coin} fund", "warns retail investors about memecoins",
                   "grants {exchange} a licence", "drops its case against {exchange}",
                   "proposes a cap on stablecoin holdings", "bans crypto lending to retail clients"),
    "policy_action": ("passes a stablecoin law", "moves to tax crypto gains at {pct}%",
                      "adds {coin} to its strategic reserve", "legalises crypto payments",
                      "cracks down on offshore exchanges", "launches a CBDC pilot",
                      "eases rules for crypto ETFs", "orders app stores to remove unlicensed exchanges"),
    "issue": ("unregistered staking", "market manipulation", "sanctions breaches", "misleading ads",
              "customer fund segregation", "wash trading", "anti-money-laundering failures"),
    "hack": ("a flash-loan attack", "an oracle manipulation", "a private-key leak", "a reentrancy bug",
             "a phishing campaign", "a front-end hijack", "a governance takeover"),
    "security_action": ("pauses withdrawals", "freezes stolen funds", "reimburses users",
                        "hires blockchain forensics firm", "rotates its hot wallets"),
    "whale_action": ("move $1 billion to exchanges", "go on a buying spree", "dump coins on Binance",
                     "wake up after a decade", "pile into staking", "rotate into stablecoins"),
}
SENTENCE_FRAMES: tuple[str, ...] = (
    "{metric_cap} on {coin} {move} {when}, {source}.",
    "{org} {action} {when}.",
    "The move followed {event} {when}.",
    "{person_cap} said {claim}.",
    "{coin} is {direction} {pct}% {when}, while {coin2} {move_short}.",
    "Traders are watching {level} after {event}.",
    "{metric_cap} {move} to a {span} high, {source}.",
    "{regulator_cap} {reg_action} {when}.",
    "{org} declined to comment on {event}.",
    "In {place}, {metric} {move} after {event}.",
    "{person_cap} warned that {claim}, pointing to {metric}.",
    "Some {crowd} argue {claim}, {source}.",
    "{coin} ({ticker}) changed hands near ${price} {when}.",
    "The {pct}% move in {coin} liquidated about ${amount} million of positions, {source}.",
    "{org} and {org2} are among the largest holders, {source}.",
    "{place_cap} {policy_action} {when}, which {person} called overdue.",
)
SHORT = {
    "move_short": ("barely moved", "lagged", "outperformed", "gave back early gains", "held steady",
                   "extended losses", "hit a fresh high", "slipped further"),
    "span": ("six-month", "two-year", "record", "one-year", "multi-week", "three-month"),
    "crowd": ("traders", "analysts", "validators", "fund managers", "developers", "miners", "lawmakers"),
}

COINS = (("BTC", "Bitcoin", 96_000), ("ETH", "Ethereum", 3_400), ("SOL", "Solana", 185), ("XRP", "XRP", 2.3),
         ("DOGE", "Dogecoin", 0.32), ("LINK", "Chainlink", 22), ("AVAX", "Avalanche", 38), ("ARB", "Arbitrum", 0.92),
         ("TON", "Toncoin", 5.6), ("SUI", "Sui", 3.9), ("ADA", "Cardano", 0.96), ("BNB", "BNB", 655),
         ("DOT", "Polkadot", 7.1), ("LTC", "Litecoin", 104), ("NEAR", "Near Protocol", 5.3), ("APT", "Aptos", 9.4),
         ("OP", "Optimism", 2.1), ("PEPE", "Pepe", 0.000018))
COIN_WEIGHTS = (30, 18, 9, 5, 4, 3, 3, 2, 2, 2, 3, 3, 2, 2, 2, 1, 1, 2)


def _price(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:,.2f}"
    return f"{v:.4f}" if v >= 0.01 else f"{v:.8f}".rstrip("0")


class _Draw(dict[str, str]):
    """Template slots: fixed per story, anything else drawn fresh from the pools."""

    def __init__(self, rng: random.Random, fixed: dict[str, str]) -> None:
        super().__init__(fixed)
        self.rng = rng

    def __missing__(self, key: str) -> str:
        rng = self.rng
        if key.endswith("_cap"):
            value = self[key[:-4]]
            return value[0].upper() + value[1:]
        if key in ("org", "org2"):
            return rng.choice(POOLS[rng.choice(("exchange", "firm", "protocol"))])
        if key == "pct":
            return str(rng.choice((1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 18, 20, 25, 30, 40)))
        if key == "amount":
            return str(rng.choice((12, 25, 48, 75, 90, 120, 150, 210, 340, 500, 780, 1200)))
        if key == "year":
            return str(rng.randint(2013, 2022))
        pool = POOLS.get(key) or EXTRA.get(key) or SHORT[key]
        value = rng.choice(pool)
        return value.format_map(self) if "{" in value else value


def write_story(rng: random.Random, forum: bool) -> tuple[str, list[str]]:
    """A title and 2-4 sentences; one main coin per story, everything else drawn per sentence."""
    (t, name, price), (t2, name2, _) = rng.choices(COINS, weights=COIN_WEIGHTS, k=2)
    if t2 == t:
        t2, name2, _ = COINS[(COINS.index((t, name, price)) + 1) % len(COINS)]
    fixed = {"coin": name if rng.random() > 0.15 else f"${t}", "ticker": t, "coin2": name2,
             "price": _price(price * rng.uniform(0.85, 1.15))}
    def fill(frame: str) -> str:
        text = frame.format_map(_Draw(rng, fixed))
        return text[0].upper() + text[1:]

    if forum:
        title = fill(rng.choice(("{opinion_cap}?", "{coin} {title_move} {pct}%, what now?",
                                 "Thoughts on {coin} after {event}?", "Daily discussion: {coin} {reason}",
                                 "{coin} vs {coin2} for the next cycle", "Is {metric} on {coin} a warning sign?")))
        sentences = [fill("{opinion_cap}.") for _ in range(rng.randint(1, 3))]
        sentences += [fill(rng.choice(SENTENCE_FRAMES))]
    else:
        topic = rng.choice(tuple(TITLE_FRAMES))
        title = fill(rng.choice(TITLE_FRAMES[topic]))
        sentences = [fill(rng.choice(SENTENCE_FRAMES)) for _ in range(rng.randint(2, 4))]
    return title, sentences[:4]


NEWS_OUTLETS = (
    ("coinwire", "coinwire.example"), ("blockledger", "blockledger.example"),
    ("chaindaily", "chaindaily.example"), ("satoshi-times", "satoshitimes.example"),
    ("defi-desk", "defidesk.example"), ("hashrate-herald", "hashrateherald.example"),
    ("token-tribune", "tokentribune.example"), ("ledger-ledger", "ledgerledger.example"),
)
FORUM_OUTLETS = (("r-cryptomarkets", "forum.example"), ("r-ethfinance", "forum2.example"))

QUERIES: tuple[str, ...] = (
    "bitcoin ETF inflows", "spot ether ETF approval", "solana network outage", "SEC lawsuit against an exchange",
    "stablecoin regulation in Europe", "tether reserves", "ethereum staking withdrawals",
    "bitcoin miners selling coins", "XRP court ruling", "dogecoin rally", "chainlink oracle integration",
    "avalanche network upgrade", "arbitrum DAO governance vote", "toncoin and telegram", "sui token price",
    "cardano hard fork", "binance regulatory fine", "USDC supply record", "DeFi exploit flash loan",
    "bridge hack stolen funds", "layer 2 fees drop after upgrade", "bitcoin price falls below support",
    "long liquidations", "funding rates turn negative", "whales move coins to exchanges",
    "exchange reserves multi-year low", "fed rate decision and crypto", "inflation data bitcoin reaction",
    "crypto venture funding round", "exchange lays off staff", "memecoin mania", "tokenized treasuries",
    "restaking TVL", "ethereum gas fees", "bitcoin dominance rising", "altcoins lagging bitcoin",
    "hong kong crypto licensing", "crypto tax bill", "solana ETF filing", "is altseason coming",
    "should I sell my bitcoin", "hardware wallet self custody", "bear market sentiment", "short squeeze",
    "open interest record high", "north korea hackers crypto theft", "corporate bitcoin treasury",
    "exchange pauses withdrawals", "new perpetual futures listing", "crypto stocks fall",
)


@dataclass(frozen=True)
class SynthFeed:
    spec: FeedSpec
    body: bytes
    items: int


def build_feeds(n: int, per_feed: int, now: datetime, seed: int) -> list[SynthFeed]:
    """``n`` items over RSS 2.0 documents of ``per_feed`` items; about one feed in five is a forum."""
    rng = random.Random(seed)
    feeds: list[SynthFeed] = []
    counter = 0
    index = 0
    while counter < n:
        size = min(per_feed, n - counter)
        forum = index % 5 == 4
        name, domain = (FORUM_OUTLETS if forum else NEWS_OUTLETS)[index % (2 if forum else len(NEWS_OUTLETS))]
        spec = FeedSpec(name=name, url=f"https://{domain}/feed.xml", kind="forum" if forum else "news")
        entries = []
        for _ in range(size):
            counter += 1
            title, sentences = write_story(rng, forum)
            summary = " ".join(sentences)
            published = now - timedelta(seconds=rng.uniform(60, 3 * 86400))
            slug = "-".join(title.lower().replace("$", "").split()[:7]).strip("-?,.:'%")
            path = f"{published:%Y/%m/%d}/{slug}-{counter}"
            link = f"https://{domain}/{path}?utm_source=rss&utm_medium=feed"
            author = rng.choice(("Jane Doe", "Omar Haddad", "Li Wei", "Sam Carter", "u/hodl_forever", ""))
            # Real feeds wrap summaries in HTML; parse_feed strips it.
            html = f"<p>{escape(summary)}</p>" + ("<p><a href='https://x.example'>Read more</a></p>"
                                                 if rng.random() < 0.5 else "")
            categories = "".join(f"<category>{c}</category>" for c in rng.sample(("Markets", "Policy", "Tech",
                                                                                   "DeFi", "Bitcoin"), k=2))
            entries.append((published, (
                "<item>"
                f"<title>{escape(title)}</title>"
                f"<link>{escape(link)}</link>"
                f"<guid isPermaLink=\"false\">{domain}-{counter}</guid>"
                f"<pubDate>{format_datetime(published)}</pubDate>"
                + (f"<dc:creator>{escape(author)}</dc:creator>" if author else "")
                + categories
                + f"<description><![CDATA[{html}]]></description>"
                "</item>"
            )))
        entries.sort(key=lambda e: e[0], reverse=True)  # newest first, as feeds publish
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>{name}</title><link>https://{domain}/</link>"
            f"<description>Synthetic {spec.kind} feed</description>"
            f"<lastBuildDate>{format_datetime(now)}</lastBuildDate>"
            + "".join(e[1] for e in entries)
            + "</channel></rss>"
        ).encode("utf-8")
        feeds.append(SynthFeed(spec=spec, body=body, items=size))
        index += 1
    return feeds


# --------------------------------------------------------------------------------------
# Instrumentation
# --------------------------------------------------------------------------------------

class Timed:
    """Transparent proxy adding the wall time of each method call to ``sink['label.method']``."""

    def __init__(self, target: Any, label: str, sink: dict[str, float], calls: dict[str, int]) -> None:
        self._target, self._label, self._sink, self._calls = target, label, sink, calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        key = f"{self._label}.{name}"

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._sink[key] += time.perf_counter() - started
                self._calls[key] += 1
                if name == "query" and (kwargs.get("where") is not None or kwargs.get("ids") is not None):
                    self._calls[f"{key}[narrow]"] += 1

        return wrapper


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def machine_facts(embedder: Embedder) -> list[tuple[str, str]]:
    import chromadb
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return [
        ("cpu", cpu or "unknown"),
        ("cores (os.cpu_count / usable)", f"{os.cpu_count()} / {usable}"),
        ("embedder", f"{embedder.name} (torch imported: {'yes' if 'torch' in sys.modules else 'no'})"),
        ("python", platform.python_version()),
        ("onnxruntime / chromadb", f"{onnxruntime.__version__} / {chromadb.__version__}"),
        ("platform", platform.platform()),
    ]


def kv_table(title: str, rows: Sequence[tuple[str, str | Text]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(Text(key), Text(value) if isinstance(value, str) else value)
    return table


def verdict(ok: bool, detail: str) -> Text:
    return Text.assemble(("PASS" if ok else "FAIL", "bold green" if ok else "bold red"), f"  {detail}")


def loadavg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------

@dataclass
class IngestFigures:
    items: int
    feeds: int
    baseline_s: float
    e2e_s: float
    baseline_cpu: float
    e2e_cpu: float
    parse_s: float
    new: int
    near_duplicate: int
    duplicate: int
    breakdown: dict[str, float]
    calls: dict[str, int]
    vectors: np.ndarray  # the baseline's vectors, in parsed order
    parsed: list[Item]


def run_ingest(feeds: list[SynthFeed], embedder: Embedder, workdir: Path, watchlist: Watchlist,
               now: datetime) -> IngestFigures:
    """Embed-only baseline and end-to-end ingest (the real ``Ingestor``), interleaved by blocks of feeds in ABBA order.

    End to end is what `tapewatch ingest` runs: fetch (an in-process HTTP transport serving the documents), parse,
    embed ahead in the embedding worker, and store (near-duplicates, Chroma, the state DB) in the calling thread.
    """
    import httpx

    import tapewatch.ingest as ingest_module
    from tapewatch.clients import open_memory

    # Untimed pre-parse: the baseline needs exactly the texts the pipeline will embed.
    pre = [parse_feed(f.body, f.spec, watchlist, fetched_at=now).items for f in feeds]
    specs = [FeedSpec(name=f"{f.spec.name}-{n}", url=f"{f.spec.url.rsplit('/', 1)[0]}/feed-{n}.xml", kind=f.spec.kind)
             for n, f in enumerate(feeds)]
    bodies = {spec.url: feed.body for spec, feed in zip(specs, feeds, strict=True)}

    def serve(request: httpx.Request) -> httpx.Response:
        body = bodies[str(request.url)]
        return httpx.Response(200, content=body, headers={
            "Content-Type": "application/rss+xml; charset=utf-8", "ETag": f'"{hashlib.md5(body).hexdigest()}"'})

    settings = Settings(data_dir=workdir / "e2e", database_url=None, memory=MemorySettings())
    sink: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    memory = open_memory(settings, embed=embedder)
    # Same embedder object for both sides: same model, batch size and threads.
    memory.embedder = Timed(embedder, "embed", sink, calls)
    memory.vectors = Timed(memory.vectors, "chroma", sink, calls)
    memory.state = Timed(memory.state, "state", sink, calls)  # type: ignore[assignment]
    parse = ingest_module.parse_feed

    def timed_parse(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return parse(*args, **kwargs)
        finally:
            sink["parse_feed"] += time.perf_counter() - started
            calls["parse_feed"] += 1

    ingest_module.parse_feed = timed_parse  # type: ignore[assignment]
    client = httpx.Client(transport=httpx.MockTransport(serve))
    ingestor = ingest_module.Ingestor(memory, client, watchlist, max_body_bytes=settings.fetch.max_body_bytes,
                                      deadline_s=settings.fetch.deadline.total_seconds(),
                                      concurrency=settings.fetch.concurrency)
    baseline_s = e2e_s = baseline_cpu = e2e_cpu = 0.0
    new = near = dup = 0
    vectors: list[np.ndarray] = []

    def baseline(block: range) -> None:
        nonlocal baseline_s, baseline_cpu
        for n in block:
            texts = [i.embedding_text() for i in pre[n]]
            cpu = time.process_time()
            started = time.perf_counter()
            vecs = embedder.embed(texts)
            baseline_s += time.perf_counter() - started
            baseline_cpu += time.process_time() - cpu
            vectors.append(vecs)

    def end_to_end(block: range) -> None:
        nonlocal e2e_s, e2e_cpu, new, near, dup
        cpu = time.process_time()
        started = time.perf_counter()
        outcomes = ingestor.run([specs[n] for n in block])
        e2e_s += time.perf_counter() - started
        e2e_cpu += time.process_time() - cpu
        failed = [o for o in outcomes if o.status != "ok"]
        if failed:
            raise SystemExit(f"end-to-end ingest failed: {failed[0].name}: {failed[0].error}")
        new += sum(o.new for o in outcomes)
        near += sum(o.near_duplicate for o in outcomes)
        dup += sum(o.duplicate for o in outcomes)

    blocks = [range(len(feeds) * k // 4, len(feeds) * (k + 1) // 4) for k in range(4)]
    try:
        with console.status("ingest: embed-only baseline and end-to-end, interleaved") as status:
            for k, block in enumerate(b for b in blocks if len(b)):
                status.update(f"ingest: block {k + 1}/4 ({len(block)} feeds)")
                if k % 4 in (0, 3):  # ABBA: drift (thermal, caches, other load) hits both sides alike
                    baseline(block)
                    end_to_end(block)
                else:
                    end_to_end(block)
                    baseline(block)
    finally:
        ingest_module.parse_feed = parse  # type: ignore[assignment]
        client.close()
    memory.state.close()
    parse_s = sink.pop("parse_feed", 0.0)
    calls.pop("parse_feed", None)
    order = [n for block in blocks for n in block]
    by_feed = dict(zip(order, vectors, strict=True))
    return IngestFigures(
        items=sum(len(p) for p in pre), feeds=len(feeds), baseline_s=baseline_s, e2e_s=e2e_s, parse_s=parse_s,
        baseline_cpu=baseline_cpu, e2e_cpu=e2e_cpu,
        new=new, near_duplicate=near, duplicate=dup, breakdown=dict(sink), calls=dict(calls),
        vectors=np.concatenate([by_feed[n] for n in range(len(feeds))]), parsed=[i for p in pre for i in p],
    )


@dataclass
class BackendFigures:
    name: str
    items: int
    e2e_s: float
    state_s: float
    counts: tuple[int, int, int]  # new, near-duplicate, duplicate on the first pass
    again_new: int  # stored again by the second pass over the same feeds (must be 0)
    lost: int  # parsed items the state DB does not hold (must be 0)
    twice: int  # ids stored more than once (must be 0)


def run_backend(name: str, database_url: str | None, feeds: list[SynthFeed], embedder: Embedder,
                workdir: Path, watchlist: Watchlist) -> BackendFigures:
    """Ingest every feed twice with the state DB at ``database_url`` (None: SQLite); count what was stored."""
    from tapewatch.clients import open_memory

    settings = Settings(data_dir=workdir / f"backend-{name}", database_url=database_url, memory=MemorySettings())
    sink: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    memory = open_memory(settings, embed=embedder)
    state = memory.state
    memory.state = Timed(state, "state", sink, calls)  # type: ignore[assignment]
    parsed_ids: set[str] = set()
    counts = [0, 0, 0]
    again_new = 0
    e2e_s = 0.0
    for second in (False, True):
        for feed in feeds:
            started = time.perf_counter()
            fetched_at = datetime.now(UTC)
            parsed = parse_feed(feed.body, feed.spec, watchlist, fetched_at=fetched_at,
                                content_type="application/rss+xml; charset=utf-8")
            record = FetchRecord(source=feed.spec.name, kind=feed.spec.kind, url=feed.spec.url, started_at=fetched_at,
                                 finished_at=datetime.now(UTC), status="ok", http_status=200)
            result = memory.add(parsed.items, record)
            if second:
                again_new += result.new + result.near_duplicate
                continue
            e2e_s += time.perf_counter() - started
            parsed_ids.update(i.id for i in parsed.items)
            counts = [counts[0] + result.new, counts[1] + result.near_duplicate, counts[2] + result.duplicate]
        if not second:
            state_s = sum(v for k, v in sink.items() if k.startswith("state."))
    stored = state.item_ids()
    state.close()
    return BackendFigures(name=name, items=len(parsed_ids), e2e_s=e2e_s, state_s=state_s,
                          counts=(counts[0], counts[1], counts[2]), again_new=again_new,
                          lost=len(parsed_ids - set(stored)), twice=len(stored) - len(set(stored)))


def backends_table(figures: list[BackendFigures], skipped: str | None) -> Table:
    """The state-DB comparison: one row per backend, then the ratio."""
    table = Table(title="state DB backends (same feeds ingested twice on each; first pass timed)",
                  title_justify="left", caption_justify="left",
                  caption=skipped or "lost: parsed items not stored; twice: items stored again by the second "
                                     "pass or under one id twice")
    for col in ("backend", "items/s", "state DB s", "state share", "stories / near-dups", "2nd pass new", "lost",
                "twice"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for f in figures:
        table.add_row(f.name, f"{f.items / f.e2e_s:,.1f}", f"{f.state_s:.2f}", f"{f.state_s / f.e2e_s:.1%}",
                      f"{f.counts[0]:,} / {f.counts[1]:,}", str(f.again_new), str(f.lost), str(f.twice))
    if len(figures) == 2:
        sq, pg = figures
        table.add_row("PostgreSQL / SQLite", f"{(pg.items / pg.e2e_s) / (sq.items / sq.e2e_s):.2f}",
                      f"{pg.state_s / sq.state_s:.2f}", "", "same" if pg.counts == sq.counts else "DIFFER", "", "", "")
    return table


@dataclass
class FillFigures:
    total: int
    real: int
    synthetic: int
    chroma_s: float
    state_s: float
    gen_s: float
    mean_cos_to_base: float


def fill_search_store(memory: Memory, pool_items: list[Item], pool_vecs: np.ndarray, target: int, now: datetime,
                      seed: int) -> FillFigures:
    """Real items with their real vectors, topped up with noisy copies of them to ``target``."""
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    vectors: ChromaVectors = memory.vectors  # type: ignore[assignment]
    chroma_s = state_s = gen_s = 0.0
    cos_sum = 0.0
    chunk = 5000

    def put(items: list[Item], vecs: np.ndarray) -> None:
        nonlocal chroma_s, state_s
        started = time.perf_counter()
        vectors.upsert([i.id for i in items], vecs, [i.embedding_text() for i in items],
                       [vector_metadata(i) for i in items])
        chroma_s += time.perf_counter() - started
        started = time.perf_counter()
        memory.state.commit_batch(items, [], None)
        state_s += time.perf_counter() - started

    real = min(target, len(pool_items))
    for start in range(0, real, chunk):
        put(pool_items[start:start + chunk], pool_vecs[start:start + chunk])

    synthetic = target - real
    pool = pool_vecs.astype(np.float32)
    outlets = NEWS_OUTLETS + FORUM_OUTLETS
    done = 0
    with console.status("search store: inserting") as status:
        while done < synthetic:
            status.update(f"search store: {real + done:,}/{target:,} vectors")
            m = min(chunk, synthetic - done)
            started = time.perf_counter()
            base = rng.integers(0, len(pool), size=m)
            mix = rng.integers(0, len(pool), size=m)
            vecs = pool[base] + 0.35 * pool[mix] + rng.normal(0.0, 0.03, size=(m, pool.shape[1])).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = vecs.astype(np.float32)
            cos_sum += float(np.einsum("ij,ij->i", vecs, pool[base]).sum())
            items: list[Item] = []
            for row in range(m):
                k = done + row
                src = pool_items[int(base[row])]
                forum = prng.random() < 0.2
                name, domain = outlets[len(NEWS_OUTLETS) + k % 2] if forum else outlets[k % len(NEWS_OUTLETS)]
                published = now - timedelta(seconds=prng.uniform(60, 90 * 86400))
                items.append(Item(
                    id=hashlib.sha256(f"bench-synthetic:{k}".encode()).hexdigest()[:32],
                    kind="forum" if forum else "news", source=name,
                    url=f"https://{domain}/archive/{published:%Y/%m/%d}/{k}",
                    title=src.title, text=src.text, published_at=published, fetched_at=published,
                    author=src.author, tickers=src.tickers,
                ))
            gen_s += time.perf_counter() - started
            put(items, vecs)
            done += m
    return FillFigures(total=target, real=real, synthetic=synthetic, chroma_s=chroma_s, state_s=state_s,
                       gen_s=gen_s, mean_cos_to_base=cos_sum / synthetic if synthetic else float("nan"))


@dataclass
class Scenario:
    label: str
    kwargs: Callable[[datetime], dict[str, Any]]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("(a) unfiltered", lambda now: {}),
    Scenario("(b) tickers=[BTC]", lambda now: {"tickers": ["BTC"]}),
    Scenario("(c) since=24h", lambda now: {"since": now - timedelta(hours=24)}),
    Scenario("(d) kinds=[forum]", lambda now: {"kinds": ["forum"]}),
    Scenario("(e) since=7d + tickers=[ETH]", lambda now: {"since": now - timedelta(days=7), "tickers": ["ETH"]}),
    Scenario("(f) since=24h + tickers=[BTC]", lambda now: {"since": now - timedelta(hours=24), "tickers": ["BTC"]}),
)
# The filtered searches a desk runs most: a time window and a ticker.
WINDOW_AND_TICKER = ("(e) since=7d + tickers=[ETH]", "(f) since=24h + tickers=[BTC]")


def run_search(memory: Memory, embedder: Embedder, now: datetime) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    sink: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    raw_vectors, raw_state, raw_embedder = memory.vectors, memory.state, memory.embedder
    memory.vectors = Timed(raw_vectors, "chroma", sink, calls)
    memory.state = Timed(raw_state, "state", sink, calls)  # type: ignore[assignment]
    memory.embedder = Timed(raw_embedder, "embed", sink, calls)

    started = time.perf_counter()
    memory.search("bitcoin price", 10)
    cold_ms = (time.perf_counter() - started) * 1000

    embed_ms = []
    for q in QUERIES:
        started = time.perf_counter()
        embedder.embed([q])
        embed_ms.append((time.perf_counter() - started) * 1000)

    count_ms = []
    for _ in range(20):
        started = time.perf_counter()
        raw_vectors.count()
        count_ms.append((time.perf_counter() - started) * 1000)

    rows: list[tuple[str, ...]] = []
    p50s: dict[str, float] = {}
    for scenario in SCENARIOS:
        sink.clear()
        calls.clear()
        kwargs = scenario.kwargs(now)
        memory.search(QUERIES[0], 10, **kwargs)  # one warm-up per scenario
        sink.clear()
        calls.clear()
        total_ms = []
        hits = []
        for q in QUERIES:
            started = time.perf_counter()
            found = memory.search(q, 10, **kwargs)
            total_ms.append((time.perf_counter() - started) * 1000)
            hits.append(len(found))
        n = len(QUERIES)
        embed_mean = sink["embed.embed"] * 1000 / n
        chroma_ms = (sink["chroma.query"] + sink["chroma.count"]) * 1000 / n
        sqlite_ms = sum(v for k, v in sink.items() if k.startswith("state.")) * 1000 / n
        other_ms = float(np.mean(total_ms)) - embed_mean - chroma_ms - sqlite_ms
        p50s[scenario.label] = pct(total_ms, 50)
        rows.append((
            scenario.label, f"{pct(total_ms, 50):.1f}", f"{pct(total_ms, 95):.1f}", f"{np.mean(total_ms):.1f}",
            f"{embed_mean:.1f}", f"{chroma_ms:.1f}", f"{sqlite_ms:.1f}", f"{other_ms:.1f}",
            f"{calls['chroma.query[narrow]']}/{n}", f"{np.mean(hits):.1f}",
        ))
    memory.vectors, memory.state, memory.embedder = raw_vectors, raw_state, raw_embedder
    extra = {
        "cold_ms": cold_ms, "embed_p50": pct(embed_ms, 50), "embed_p95": pct(embed_ms, 95),
        "count_p50": pct(count_ms, 50), "p50s": p50s,
    }
    return rows, extra


def at_target(total: int, p50: float, target: float) -> Text | str:
    """PASS/FAIL at the target size, informational below it."""
    if total == SEARCH_TARGET_N:
        return verdict(p50 <= target, f"p50 {p50:.1f} ms")
    return f"n/a at {total:,} (informational: p50 {p50:.1f} ms)"


def ingest_peak_rss(feeds: list[SynthFeed], workdir: Path, choice: str, model_dir: Path | None) -> float:
    """Peak RSS (MB) of a real `tapewatch ingest` process fetching ``feeds`` from a loopback HTTP server."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    bodies = {f"/feed/{n}.xml": feed.body for n, feed in enumerate(feeds)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "tapewatch.toml"
    lines = [f'data_dir = "{workdir / "data"}"', 'samples = "never"', "[memory]", f'embedder = "{choice}"',
             *([f'model_dir = "{model_dir}"'] if model_dir else []),
             "[fetch]", "allow_private = true"]
    for n, feed in enumerate(feeds):
        lines += ["[[feeds]]", f'name = "{feed.spec.name}-{n}"', f'url = "http://127.0.0.1:{server.server_port}'
                  f'/feed/{n}.xml"', f'kind = "{feed.spec.kind}"']
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
    try:
        # Not this process's RUSAGE_CHILDREN: it would report this (large) process's size (bench/rss.py).
        done, peak = run_with_peak_rss([sys.executable, "-m", "tapewatch", "--config", str(config), "ingest"],
                                       env=env, timeout=1800)
    finally:
        server.shutdown()
    if done.returncode != 0:
        raise SystemExit(f"tapewatch ingest failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return peak


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tapewatch ingest + search benchmark")
    parser.add_argument("--n", type=int, default=None, help="items to ingest (default 5000; --quick: 300)")
    parser.add_argument("--search-n", type=int, default=None,
                        help="stored items for the search test (default 100000; --quick: 5000)")
    parser.add_argument("--per-feed", type=int, default=50, help="items per RSS document (default 50)")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--quick", action="store_true", help="N=300, search-n=5000: a fast sanity run")
    parser.add_argument("--sqlite-only", action="store_true", help="skip the PostgreSQL state-DB run")
    parser.add_argument("--embedder", choices=["minilm", "minilm-int8", "minilm-torch"], default="minilm",
                        help="memory.embedder (default: minilm, ONNX fp32)")
    parser.add_argument("--model-dir", type=Path, default=None, help="memory.model_dir (default: the venv's)")
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (300 if args.quick else INGEST_TARGET_N)
    search_n = args.search_n if args.search_n is not None else (5000 if args.quick else SEARCH_TARGET_N)
    if n < 1 or search_n < 1 or args.per_feed < 1:
        parser.error("--n, --search-n and --per-feed must be positive")

    wall_started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="tapewatch-bench-"))
    try:
        return _run(n, search_n, args.per_feed, args.seed, args.quick, workdir, wall_started, args.sqlite_only,
                    args.embedder, args.model_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(n: int, search_n: int, per_feed: int, seed: int, quick: bool, workdir: Path, wall_started: float,
         sqlite_only: bool = False, choice: str = "minilm", model_dir: Path | None = None) -> int:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    console.print(f"[bold]tapewatch bench/ingest.py[/bold]  N={n:,}  search-n={search_n:,}  per-feed={per_feed}"
                  f"  seed={seed}{'  (--quick)' if quick else ''}")
    console.print(f"started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC; temp dir {workdir} (removed at exit)")

    now = datetime.now(UTC)
    watchlist = Watchlist(DEFAULT_WATCHLIST)
    from tapewatch.clients import embedder as configured

    # Product defaults otherwise (threads: every core).
    settings = Settings(memory=MemorySettings(embedder=choice, model_dir=model_dir))
    embedder = configured(settings)
    started = time.perf_counter()
    embedder.embed(["warm-up: bitcoin rallies", "warm-up: ether ETF inflows"] * 4)  # load + one small batch
    load_s = time.perf_counter() - started
    console.print(kv_table("machine", [*machine_facts(embedder), ("model load + warm-up batch", f"{load_s:.1f} s"),
                                       ("load average at start", loadavg())]))

    started = time.perf_counter()
    feeds = build_feeds(n, per_feed, now, seed)
    gen_s = time.perf_counter() - started
    total_bytes = sum(len(f.body) for f in feeds)

    # ---- ingest ----
    ing = run_ingest(feeds, embedder, workdir, watchlist, now)
    base_rate = ing.items / ing.baseline_s
    e2e_rate = ing.items / ing.e2e_s
    ratio = e2e_rate / base_rate
    mean_chars = np.mean([len(i.embedding_text()) for i in ing.parsed])
    console.print(kv_table("ingest (ONE run; baseline and end-to-end in four blocks of feeds, ABBA order)", [
        ("corpus", f"{ing.items:,} synthetic items in {ing.feeds} RSS 2.0 documents ({total_bytes / 1e6:.1f} MB, "
                   f"generated in {gen_s:.1f} s); mean embedded text {mean_chars:.0f} chars"),
        ("embed-only baseline", f"{base_rate:,.1f} items/s  ({ing.baseline_s:.1f} s; {embedder.name} embed "
                                "per feed)"),
        ("end-to-end", f"{e2e_rate:,.1f} items/s  ({ing.e2e_s:.1f} s; Ingestor.run: fetch, parse, embed ahead, "
                       "store)"),
        ("CPU busy (process CPU-s / wall-s)", f"baseline {ing.baseline_cpu / ing.baseline_s:.2f}, end-to-end "
                                               f"{ing.e2e_cpu / ing.e2e_s:.2f} (2.0 = both cores busy for us)"),
        ("stored", f"{ing.new:,} stories, {ing.near_duplicate:,} near-duplicates linked, {ing.duplicate} duplicates"),
        ("ratio end-to-end / embed-only", f"{ratio:.3f}"),
        ("target ≥ 0.90 at N=5000",
         verdict(ratio >= INGEST_TARGET_RATIO, f"ratio {ratio:.3f}") if n == INGEST_TARGET_N
         else f"n/a at N={n:,} (informational: {'would pass' if ratio >= INGEST_TARGET_RATIO else 'would fail'})"),
    ]))
    b = ing.breakdown
    accounted = ing.parse_s + sum(b.values())
    table = Table(title="where end-to-end time goes", title_justify="left", caption_justify="left",
                  caption="stages overlap (each feed is embedded in the embedding worker while the one before is "
                          "stored), so their seconds can add up past the wall time")
    for col in ("stage", "seconds", "share", "calls"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    stages = [("parse_feed (feedparser + HTML clean + tickers)", ing.parse_s, ing.feeds)]
    stages += [(f"{key}", b[key], ing.calls.get(key, 0)) for key in sorted(b, key=lambda k: -b[k])]
    if ing.e2e_s - accounted > 0:
        stages.append(("other (fetch, near-dup matching, metadata, sorting)", ing.e2e_s - accounted, 0))
    for label, secs, count in stages:
        table.add_row(label, f"{secs:.2f}", f"{secs / ing.e2e_s:.1%}", str(count) if count else "")
    table.add_row("[bold]total end-to-end[/bold]", f"{ing.e2e_s:.2f}", "100.0%", "")
    table.add_row("(embed-only baseline, same texts)", f"{ing.baseline_s:.2f}", f"{ing.baseline_s / ing.e2e_s:.1%}",
                  str(ing.feeds))
    console.print(table)

    # ---- state DB backends ----
    backends_ok = True
    with console.status("state DB backends: SQLite"):
        figures = [run_backend("SQLite", None, feeds, embedder, workdir, watchlist)]
    skipped: str | None = "PostgreSQL skipped (--sqlite-only)" if sqlite_only else None
    if not sqlite_only:
        with throwaway_postgres() as (url, version):
            if url is None:
                skipped = f"PostgreSQL skipped: {version}"
            else:
                with console.status(f"state DB backends: {version}"):
                    figures.append(run_backend("PostgreSQL", url, feeds, embedder, workdir, watchlist))
                console.print(f"PostgreSQL: {version}, a throwaway cluster on loopback (fsync off)")
    console.print(backends_table(figures, skipped))
    for f in figures:
        backends_ok &= f.lost == 0 and f.twice == 0 and f.again_new == 0 and f.counts == figures[0].counts
    console.print(kv_table("state DB backends: nothing lost, nothing twice", [
        ("lost 0, twice 0, same counts on every backend", verdict(backends_ok, ", ".join(
            f"{f.name}: lost {f.lost}, twice {f.again_new + f.twice}" for f in figures))),
    ]))

    # ---- search ----
    client = chromadb.PersistentClient(path=str(workdir / "search" / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    vectors = ChromaVectors(client, "bench-search", embedder.name, embedder.dimension)
    state = StateDB(f"sqlite:///{workdir / 'search' / 'state.db'}")
    memory = Memory(vectors, state, embedder, deadline=Deadline(600))  # a loaded machine: upserts of 5,000 vectors
    fill = fill_search_store(memory, ing.parsed, ing.vectors, search_n, now, seed)
    console.print(kv_table("search store (SYNTHETIC-NOISE-AUGMENTED corpus)", [
        ("stored items", f"{fill.total:,} = {fill.real:,} real items (real MiniLM vectors, last 3 days) + "
                         f"{fill.synthetic:,} synthetic"),
        ("synthetic vectors", "normalise(real_i + 0.35·real_j + N(0, 0.03²)); mean cosine to real_i "
                              f"{fill.mean_cos_to_base:.3f}; kinds 80% news / 20% forum, dates over 90 days, "
                              "tickers and text copied from real_i"),
        ("insert", f"Chroma upsert {fill.chroma_s:.1f} s ({fill.total / fill.chroma_s:,.0f} vectors/s), "
                   f"StateDB.commit_batch {fill.state_s:.1f} s, generation {fill.gen_s:.1f} s"),
    ]))
    rows, extra = run_search(memory, embedder, now)
    table = Table(title=f"Memory.search(text, 10) latency at {fill.total:,} stored items, {len(QUERIES)} queries each",
                  title_justify="left", caption_justify="left",
                  caption="embed / chroma (query + count) / sqlite (hit resolution) / other: mean ms per search; "
                          "narrow: searches that also ran a second, id- or metadata-restricted query")
    for col in ("filter", "p50 ms", "p95 ms", "mean ms", "embed", "chroma", "sqlite", "other", "narrow",
                "hits"):
        table.add_column(col, justify="left" if col == "filter" else "right")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    unfiltered = extra["p50s"]["(a) unfiltered"]
    console.print(kv_table("search breakdown", [
        ("query embedding alone", f"p50 {extra['embed_p50']:.1f} ms, p95 {extra['embed_p95']:.1f} ms "
                                  "(embedder.embed([q]); included in every search above)"),
        ("vector lookup share (unfiltered p50)", f"≈ {unfiltered - extra['embed_p50']:.1f} ms "
                                                 "(search p50 − embed p50; includes SQLite hit resolution)"),
        ("collection.count() alone", f"p50 {extra['count_p50']:.2f} ms (a count() per query would add this)"),
        ("first search after fill (cold)", f"{extra['cold_ms']:.0f} ms"),
        ("query embedding share of a search", ", ".join(
            f"{label.split(' ', 1)[0]} {extra['embed_p50'] / p50:.0%}" for label, p50 in extra["p50s"].items())
         + " (embed p50 / search p50)"),
        ("target unfiltered p50 ≤ 8 ms at 100k", at_target(fill.total, unfiltered, SEARCH_TARGET_P50_MS)),
        *((f"target {label} p50 ≤ 15 ms at 100k", at_target(fill.total, extra["p50s"][label], FILTERED_TARGET_P50_MS))
          for label in WINDOW_AND_TICKER),
    ]))
    state.close()
    if not quick:
        peak = ingest_peak_rss(feeds[: max(1, INGEST_TARGET_N // per_feed)], workdir / "cli", choice, model_dir)
        console.print(kv_table("`tapewatch ingest` in a subprocess (its own process: import, model load, fetch "
                               "over loopback HTTP, store)", [
            ("peak RSS (ru_maxrss)", f"{peak:.0f} MB"),
            ("target ≤ 400 MB", verdict(peak <= INGEST_RSS_TARGET_MB, f"{peak:.0f} MB")),
        ]))
    console.print(f"load average at end: {loadavg()}")
    console.print(f"total wall time {time.perf_counter() - wall_started:.1f} s")
    return 0 if backends_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
