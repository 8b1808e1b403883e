"""A brief's framing of the tickers it features (positive / negative / neutral): cleaned, derived, checked.

The framing is stored in the draft's ``meta["framing"]`` (ticker → word) and recorded with each call, so the
track record can say whether the direction matched (``crew.track``). Where it comes from:

- a crew brief: the writer gives it (``WrittenBrief.framing``); ``clean`` keeps only the three words and
  only tickers the brief's claims are about, and drops everything else (nothing is guessed);
- a data brief: ``derive`` reads it from what the brief reports about the ticker, its stated price move and
  its sentiment signal (see there).

``problems`` checks any draft's framing against the brief's own text: a ticker framed positive while the
brief states only falls for it and its sentiment signal is bearish (or the reverse) is a grounding
finding (``framing_contradicts``), which flags the draft like any ungrounded claim; the framing is kept as
given, so a reviewer sees what was claimed. Either piece of evidence alone is a judgement the writer may
make (a fall on good news), so it takes both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from crew.claims import sentences, without_urls
from crew.entities import Entities
from crew.model import DataBrief, Problem, Signals
from crew.numbers import numbers_in_sentence
from memory.calls import FRAMINGS
from memory.drafts import Draft

# A stated move smaller than this (in %) takes no side; a sentiment inside VADER's own neutral band neither.
MOVE_MIN_PCT = 1.0
TONE_MIN = 0.05
_TICKER = re.compile(r"^\$?([A-Z][A-Z0-9]{1,9})$")
_SIDE = {"positive": 1, "negative": -1}


def clean(entries: Iterable[tuple[str, str]], featured: Iterable[str]) -> dict[str, str]:
    """Ticker → framing for the featured tickers given one of the three words; anything else is dropped."""
    wanted = {t.upper() for t in featured}
    out: dict[str, str] = {}
    for ticker, word in entries:
        symbol = _TICKER.match(str(ticker).strip().upper())
        framing = str(word).strip().lower()
        if symbol and symbol.group(1) in wanted and framing in FRAMINGS:
            out.setdefault(symbol.group(1), framing)  # the first word given for a ticker stands
    return out


def derive(brief: DataBrief, signals: Signals) -> dict[str, str]:
    """The data brief's framing of each ticker it features, from what it reports about it.

    Two pieces of evidence: the price move the brief states for the ticker ("$SOL -4.2% over 24h", from the
    snapshots; one under 1% takes no side) and its sentiment signal (the mean tone of the window's items
    about it; inside ±0.05 takes no side). Both on one side, or one on a side and the other none: that
    side. On opposite sides: neutral; neither on a side: neutral when a move is stated, else no framing
    (the brief says nothing about direction).
    """
    lines = [*([brief.take] if brief.take else []), *(line for s in brief.sections for line in s.lines),
             *brief.thread]
    text = "\n".join(line.text for line in lines)
    by_ticker = {t.ticker: t for t in signals.tickers}
    out: dict[str, str] = {}
    for ticker in dict.fromkeys(line.ticker for line in lines if line.ticker):
        signal = by_ticker.get(ticker)
        if signal is None:
            continue
        move = signal.price_change_pct
        stated = move is not None and round(move, 1) != 0 and f"${ticker} {move:+.1f}%" in text
        sides = {_side(move if stated else None, MOVE_MIN_PCT), _side(signal.sentiment, TONE_MIN)} - {0}
        if len(sides) == 1:
            out[ticker] = "positive" if sides == {1} else "negative"
        elif sides or stated:
            out[ticker] = "neutral"
    return out


def problems(draft: Draft, texts: Mapping[str, str], entities: Entities) -> list[Problem]:
    """A ``framing_contradicts`` problem per ticker whose framing the brief's own text and signals contradict."""
    framing = draft.meta.get("framing") if isinstance(draft.meta, dict) else None
    if not isinstance(framing, Mapping):
        return []
    framed = clean(((str(t), str(f)) for t, f in framing.items()), draft.tickers)
    framed = {t: f for t, f in framed.items() if f in _SIDE}
    if not framed:
        return []
    moves = stated_moves(texts.values(), entities)
    tones = _tones(draft.signals)
    out = []
    for ticker, word in framed.items():
        want = _SIDE[word]
        said = moves.get(ticker, set())
        tone = _side(tones.get(ticker), TONE_MIN)
        if said == {-want} and tone == -want:
            reported = "falls" if want > 0 else "rises"
            news = "bearish" if want > 0 else "bullish"
            out.append(Problem("framing_contradicts", f"${ticker} is framed {word}, but the brief reports only "
                               f"{reported} for it and its sentiment signal is {news}; frame it as the text reads, "
                               "or neutral", "framing"))
    return out


def stated_moves(texts: Iterable[str], entities: Entities) -> dict[str, set[int]]:
    """Ticker → the directions (+1, -1) of the price moves the texts state about it."""
    out: dict[str, set[int]] = {}
    for text in texts:
        for sentence in sentences(without_urls(text)):
            for number in numbers_in_sentence(sentence, entities.mentions(sentence)):
                if number.kind == "pct" and number.role == "move" and number.ticker and number.direction:
                    out.setdefault(number.ticker, set()).add(number.direction)
    return out


def _tones(signals: Any) -> dict[str, float]:
    rows = signals.get("tickers") if isinstance(signals, Mapping) else None
    return {str(t.get("ticker", "")).upper(): float(t["sentiment"]) for t in rows or []
            if isinstance(t, Mapping) and isinstance(t.get("sentiment"), int | float)}


def _side(value: float | None, band: float) -> int:
    if value is None or abs(value) < band:
        return 0
    return 1 if value > 0 else -1
