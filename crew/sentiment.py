"""Lexicon sentiment for crypto text: VADER plus the market slang it does not know."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

# Valences on VADER's -4..4 scale. Stock VADER was built on general social media: it has no
# entry for most market slang ("rekt", "rugpull", "depeg") and scores "exploit" nearly neutral,
# which in crypto news almost always means a theft. Values here override VADER's own.
CRYPTO_LEXICON: dict[str, float] = {
    # direction of the market
    "bullish": 2.3, "bull": 1.2, "bearish": -2.3, "bear": -1.0,
    "moon": 2.2, "mooning": 2.6, "moons": 2.0, "pump": 1.4, "pumping": 1.6, "pumps": 1.4,
    "dump": -1.9, "dumping": -2.0, "dumps": -1.8, "dumped": -1.8,
    "rally": 1.9, "rallies": 1.9, "rallied": 1.9, "breakout": 1.8, "surge": 1.7, "surges": 1.7,
    "surged": 1.7, "soar": 2.0, "soars": 2.0, "soared": 2.0, "jumps": 1.2, "climbs": 1.0, "rebound": 1.4,
    "selloff": -2.0, "sell-off": -2.0, "plunge": -2.3, "plunges": -2.3, "plunged": -2.3,
    "tumble": -1.9, "tumbles": -1.9, "slump": -1.9, "slumps": -1.9, "slides": -1.2, "sags": -1.1,
    "crash": -2.6, "crashes": -2.6, "crashed": -2.6, "capitulation": -2.4, "correction": -0.8,
    "ath": 2.2, "inflow": 1.3, "inflows": 1.3, "outflow": -1.3, "outflows": -1.3,
    "accumulation": 1.0, "hodl": 1.2, "hodling": 1.2, "fomo": 0.6, "fud": -1.6, "wagmi": 1.8, "ngmi": -1.8,
    # losses and failures
    "rekt": -2.8, "liquidated": -2.2, "liquidation": -1.8, "liquidations": -1.8,
    "rug": -2.8, "rugged": -3.0, "rugpull": -3.2, "rugpulled": -3.2,
    "hack": -2.6, "hacked": -2.8, "hacker": -2.2, "hackers": -2.2, "exploit": -2.6, "exploited": -2.8,
    "drained": -2.6, "drain": -2.0, "stolen": -2.6, "theft": -2.6, "scam": -2.8, "scammers": -2.6,
    "ponzi": -3.0, "insolvent": -3.0, "insolvency": -3.0, "bankruptcy": -2.8, "bankrupt": -2.8,
    "depeg": -2.6, "depegged": -2.8, "delist": -2.0, "delisted": -2.2, "delisting": -2.0,
    "outage": -1.8, "halted": -1.6, "congestion": -1.0, "vulnerability": -1.8, "sued": -1.6,
    "crackdown": -1.8, "ban": -1.6, "banned": -1.8,
    # progress
    "approval": 1.8, "approved": 1.8, "launches": 0.8, "adoption": 1.4, "upgrade": 1.0, "upgraded": 1.0,
    "partnership": 1.2, "listing": 0.8, "listed": 0.6, "airdrop": 0.8,
}

_lock = threading.Lock()
_analyzer: Any = None


def _shared_analyzer() -> Any:
    """The one VADER analyzer, built on first use (reading its lexicon file costs a few ms)."""
    global _analyzer
    with _lock:
        if _analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            analyzer = SentimentIntensityAnalyzer()
            analyzer.lexicon.update(CRYPTO_LEXICON)
            _analyzer = analyzer
        return _analyzer


class Sentiment:
    """Compound sentiment of short market text, -1 (negative) .. 1 (positive)."""

    def __init__(self, max_chars: int = 400) -> None:
        # Headline and lead carry the tone; scoring whole articles costs time and dilutes it.
        self.max_chars = max_chars
        self._analyzer = _shared_analyzer()

    def score(self, text: str) -> float:
        """VADER compound score of ``text`` with crypto terms; 0.0 for empty text."""
        text = text.strip()[: self.max_chars]
        if not text:
            return 0.0
        return float(self._analyzer.polarity_scores(text)["compound"])


# Below this many texts a pool costs more to start than it saves.
POOL_MIN_TEXTS = 4000


def score_many(texts: Sequence[str], workers: int | None = None) -> list[float]:
    """``Sentiment().score`` of each text, in worker processes when there are many (VADER is pure Python and
    costs ~0.2 ms per 300-character text; a backtest's tens of thousands of them spread over the CPUs)."""
    workers = workers if workers is not None else len(os.sched_getaffinity(0))
    if workers <= 1 or len(texts) < POOL_MIN_TEXTS:
        return _scores(list(texts))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(texts) // (workers * 4))  # a few chunks per worker, so one slow chunk does not hold the rest
    chunks = [list(texts[i:i + size]) for i in range(0, len(texts), size)]
    # spawn, not fork: the caller may hold threads (database pools, a progress bar) that a fork would copy
    # mid-operation.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [tone for chunk in pool.map(_scores, chunks) for tone in chunk]


def _scores(texts: list[str]) -> list[float]:
    sentiment = Sentiment()
    return [sentiment.score(t) for t in texts]
