"""When two reports tell one story: cosine plus the facts they share or contradict.

A cosine alone links two days' ETF-flow reports (same words, different numbers and days) and misses
one story told in different words. So each report's facts are pulled out (named entities and
tickers, quantities such as "$412 million" or "25 basis points", the days it names), and a pair's
score is its cosine moved up by facts in common and down by facts in conflict, by the time between
the reports and by their coming from the same outlet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_WORD = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:[.-][A-Z][A-Za-z0-9]*)*\b")
# Capitalised words that name nothing in particular (sentence starts, headline words), and names
# so common in crypto news that sharing them says nothing about sharing a story.
_NOT_ENTITIES = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "their", "there", "here", "his", "her", "he",
    "she", "they", "we", "our", "you", "your", "i", "after", "as", "at", "by", "for", "from", "in", "into", "of",
    "on", "onto", "over", "to", "under", "with", "without", "within", "and", "but", "or", "nor", "so", "yet", "if",
    "while", "when", "where", "why", "how", "what", "who", "which", "whose", "all", "any", "some", "several", "many",
    "more", "most", "less", "few", "each", "every", "about", "above", "across", "against", "along", "among",
    "around", "before", "behind", "below", "beside", "between", "beyond", "during", "since", "through", "toward",
    "towards", "upon", "via", "per", "than", "then", "now", "new", "old", "one", "two", "three", "four", "five",
    "six", "seven", "eight", "nine", "ten", "first", "second", "third", "last", "next", "another", "other", "such",
    "same", "both", "either", "neither", "no", "not", "also", "just", "only", "still", "even", "already", "again",
    "once", "up", "down", "out", "off", "back", "top", "big", "biggest", "largest", "record", "is", "are", "was",
    "were", "be", "been", "being", "has", "have", "had", "do", "does", "did", "will", "would", "can", "could", "may",
    "might", "must", "shall", "should", "says", "said", "report", "reports", "reported", "reporting", "according",
    "data", "show", "shows", "showed", "analysts", "analyst", "traders", "trader", "investors", "investor", "users",
    "user", "customers", "prices", "price", "trading", "markets", "market", "shares", "stock", "stocks", "updated",
    "update", "net", "spot", "inflows", "outflows", "flows", "funds", "fund", "volume", "volumes", "network",
    "networks", "exchange", "exchanges", "token", "tokens", "coin", "coins", "crypto", "cryptocurrency", "bitcoin",
    "btc", "ethereum", "ether", "eth", "etf", "etfs", "etp", "etps", "u.s", "us", "usa", "america", "american",
    "usd", "dollar", "dollars", "stablecoin", "stablecoins", "defi", "nft", "nfts", "web3", "blockchain", "solana",
    "sol", "xrp", "doge", "dogecoin", "bnb", "cardano", "ada", "breaking", "exclusive", "opinion", "analysis",
    "watch", "live", "today", "yesterday", "tomorrow", "week", "weekend", "month", "year", "q1", "q2", "q3", "q4",
    "ceo", "cfo", "cto", "chief", "ai",
    # Feed boilerplate, and the data providers and agencies reports cite for their figures: every
    # ETF-flow report names Farside, every mint Whale Alert, whatever the story.
    "read", "continue", "click", "subscribe", "newsletter", "sponsored", "advertisement",
    "farside", "santiment", "cryptoquant", "glassnode", "coinglass", "kaiko", "arkham", "nansen", "lookonchain",
    "whale", "alert", "defillama", "coingecko", "coinmarketcap", "dune", "messari", "reuters", "bloomberg",
})
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = {m: n for n, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
    ("november", "nov"), ("december", "dec"),
), start=1) for m in names}
_MONTH = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_MONTH_DAY = re.compile(
    rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b|\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b", re.IGNORECASE)
_WEEKDAY = re.compile(r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|yesterday)(?:'s)?\b",
                      re.IGNORECASE)
# One institution, several names: outlets write "the Fed", "the Federal Reserve" or "the FOMC".
_ALIAS = re.compile(r"\b(?:Federal Reserve|FOMC)\b")
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9,
          "trillion": 1e12, "tn": 1e12, "t": 1e12}
_NUMBER = re.compile(
    # Not inside a word or a name such as "S-1" or "layer-2"; a range's second end ("3.50%-3.75%") counts.
    r"(?<![\w.])(?<![A-Za-z]-)(?P<cur>[$€£])?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<scale>(?i:thousand|million|billion|trillion|mn|bn|tn|[kmbt]))\b)?"
    r"(?:\s?(?P<unit>(?i:%|percent\b|per cent\b|basis points?\b|bps?\b|bitcoins?\b)|[A-Z]{2,5}\b))?",
)


@dataclass(frozen=True)
class Quantity:
    """A number as a report states it: value and what it counts (usd, pct, bp, a ticker, or a count)."""

    value: float
    unit: str
    scaled: bool = False  # written in millions or more: "$412 million", "1.2bn"
    step: float = 1.0  # the value of its last written digit: 1e6 for "$412 million", 1e5 for "$412.3 million"

    def matches(self, other: Quantity) -> bool:
        """The same figure as written by two outlets: "$412.3 million" is "$412 million", 156 is not 155."""
        if not self.comparable(other):
            return False
        diff = abs(self.value - other.value)
        # Within the rounding of the less precise one, and never more than 2% apart.
        big = max(abs(self.value), abs(other.value))
        return diff == 0 or (diff < max(self.step, other.step) and diff <= 0.02 * big)

    @property
    def telling(self) -> bool:
        """Whether sharing it says much: "$412.3 million" does; a round "1 billion" or a price does not."""
        digits = f"{abs(self.value):.6g}".replace(".", "").replace("-", "").split("e")[0].strip("0")
        # "$97,500" or "$3,790" is an asset's price: every report of that day may quote it.
        price = self.unit == "usd" and not self.scaled and 1_000 <= self.value < 1_000_000
        return len(digits) >= 2 and not price

    def comparable(self, other: Quantity) -> bool:
        """Counts of the same thing: "1,200 BTC" and "1,200 more bitcoin", never "$1,200" and "1,200%"."""
        if self.unit == other.unit:
            return True
        units = {self.unit, other.unit}
        return "count" in units and not units & {"usd", "pct", "bp"}


@dataclass(frozen=True)
class Facts:
    """What a report states that a paraphrase keeps and a different story changes."""

    entities: frozenset[str]
    quantities: tuple[Quantity, ...]
    dates: frozenset[date]


@dataclass(frozen=True)
class Evidence:
    """How two reports compare, beyond their cosine."""

    cosine: float
    entities: int  # distinctive names and tickers in common
    numbers: float  # quantities in common; a round one ("1 billion") or a price ("$97,000") counts half
    number_clash: bool  # both state quantities of one kind, and none agree
    date_shared: bool
    date_clash: bool  # both name days, and no day is the same
    gap_hours: float
    same_outlet: bool


@dataclass(frozen=True)
class StoryRule:
    """A linear score in cosine units: two reports are one story when it reaches ``threshold``."""

    threshold: float = 0.62
    floor: float = 0.30  # below this cosine no amount of shared facts links two reports
    entity: float = 0.05  # per shared entity, up to three
    number: float = 0.12  # per shared quantity, up to two
    number_clash: float = 0.25
    date_shared: float = 0.03
    date_clash: float = 0.25
    per_day: float = 0.20  # per 24 hours between the reports
    same_outlet: float = 0.10

    @classmethod
    def cosine_only(cls, threshold: float) -> StoryRule:
        """The old rule: a single cosine threshold, nothing else."""
        return cls(threshold=threshold, floor=threshold, entity=0, number=0, number_clash=0, date_shared=0,
                   date_clash=0, per_day=0, same_outlet=0)

    def score(self, e: Evidence) -> float:
        """The pair's cosine moved by its evidence; -1 below the floor."""
        if e.cosine < self.floor:
            return -1.0
        return (e.cosine + self.entity * min(e.entities, 3) + self.number * min(e.numbers, 2)
                - self.number_clash * e.number_clash + self.date_shared * e.date_shared
                - self.date_clash * e.date_clash - self.per_day * e.gap_hours / 24
                - self.same_outlet * e.same_outlet)


def facts_of(title: str, text: str, published_at: datetime, tickers: tuple[str, ...] = ()) -> Facts:
    """Entities, quantities and dates stated in a report (title and text)."""
    body = text if text != title else ""
    whole = f"{title}\n{body}"
    return Facts(
        entities=_entities(_ALIAS.sub("Fed", title), _ALIAS.sub("Fed", body))
        | {t.lower() for t in tickers if t.lower() not in _NOT_ENTITIES},
        quantities=_quantities(_MONTH_DAY.sub(" ", whole)),  # "November 24" is a date, not a count of 24
        dates=_dates(whole, published_at.date()),
    )


def compare(a: Facts, b: Facts, cosine: float, a_at: datetime, b_at: datetime, same_outlet: bool) -> Evidence:
    """The evidence that two reports are (or are not) one story."""
    mine = {(q.unit, q.value): q for q in a.quantities if any(q.matches(r) for r in b.quantities)}
    theirs = {(r.unit, r.value) for r in b.quantities if any(r.matches(q) for q in a.quantities)}
    # One figure each side: "$3,800" and "$3,790" against one "$3,800" is one number in common.
    shared = sorted(mine.values(), key=lambda q: not q.telling)[: len(theirs)]
    kinds = any(q.comparable(r) for q in a.quantities for r in b.quantities)
    return Evidence(
        cosine=cosine,
        entities=len(a.entities & b.entities),
        # Round figures and prices recur by coincidence; precise amounts ("$412.3 million") don't.
        numbers=sum(1.0 if q.telling else 0.5 for q in shared),
        number_clash=not shared and kinds,
        date_shared=bool(a.dates & b.dates),
        date_clash=bool(a.dates) and bool(b.dates) and not a.dates & b.dates,
        gap_hours=abs((a_at - b_at).total_seconds()) / 3600,
        same_outlet=same_outlet,
    )


def _entities(title: str, body: str) -> frozenset[str]:
    words = title.split()
    # A Title Case Headline capitalises every word, so only its unusual capitals (IBIT, BlackRock) count.
    title_case = len(words) >= 4 and sum(w[:1].isupper() for w in words) / len(words) > 0.6
    found: set[str] = set()
    for part, strict in ((title, title_case), (body, False)):
        for match in _WORD.finditer(part):
            word = match.group(0)
            if strict and not (word.isupper() or any(c.isupper() for c in word[1:])):
                continue
            name = re.sub(r"'s$", "", word).lower()
            if name not in _NOT_ENTITIES and name not in _WEEKDAYS and name not in _MONTHS and len(name) > 1:
                found.add(name)
    return frozenset(found)


def _quantities(text: str) -> tuple[Quantity, ...]:
    out: list[Quantity] = []
    for m in _NUMBER.finditer(text):
        written = m.group("num").replace(",", "")
        value = float(written)
        decimals = written.split(".")[1] if "." in written else ""
        step = 10.0 ** -len(decimals) if decimals else 10.0 ** (len(written) - len(written.rstrip("0")))
        scale = (m.group("scale") or "").lower()
        unit = (m.group("unit") or "").strip()
        if scale in ("m", "b", "t", "k") and not m.group("cur") and unit == "":
            # A bare "3m" or "8b" is ambiguous (minutes, a block?) unless money or a ticker follows.
            scale = ""
        scaled = _SCALE.get(scale, 1.0) >= 1e6  # "$97.5K" is still a price; "$412 million" is not
        value *= _SCALE.get(scale, 1.0)
        step *= _SCALE.get(scale, 1.0)
        low = unit.lower()
        if m.group("cur"):
            kind = "usd" if m.group("cur") == "$" else m.group("cur")
        elif low in ("%", "percent", "per cent"):
            kind = "pct"
        elif low.startswith("basis") or low in ("bp", "bps"):
            kind = "bp"
        elif low.startswith("bitcoin"):
            kind = "BTC"
        elif unit.isupper() and unit:
            kind = unit
        else:
            kind = "count"
        # Years, and small bare counts ("2 days", "layer 2"), say nothing about which story it is.
        if kind == "count" and (value < 10 or (1990 <= value <= 2100 and value == int(value))):
            continue
        out.append(Quantity(value, kind, scaled, step))
    return tuple(out)


def _dates(text: str, published: date) -> frozenset[date]:
    found: set[date] = set()
    for m in _WEEKDAY.finditer(text):
        word = m.group(1).lower()
        if word == "today":
            found.add(published)
        elif word == "yesterday":
            found.add(published - timedelta(days=1))
        else:
            # A report names the latest such day: "Monday" in Tuesday's paper is yesterday.
            back = (published.weekday() - _WEEKDAYS.index(word)) % 7
            found.add(published - timedelta(days=back))
    for m in _MONTH_DAY.finditer(text):
        month_name = (m.group(1) or m.group(4) or "").lower().rstrip(".")
        day = int(m.group(2) or m.group(3))
        month = _MONTHS.get(month_name) or _MONTHS.get(month_name[:3])
        if month is None or not 1 <= day <= 31:
            continue
        try:
            when = date(published.year, month, day)
        except ValueError:
            continue
        # Early January's report about "December 30" means last year.
        if when - published > timedelta(days=180):
            when = date(published.year - 1, month, day)
        found.add(when)
    return frozenset(found)


# The evidence rule's threshold per embedder (memory.near_duplicate_threshold unset), calibrated with
# bench/stories.py on tests/fixtures/stories and the bundled samples (figures in README, "Near-duplicates").
CALIBRATED_THRESHOLDS: dict[str, float] = {
    "all-MiniLM-L6-v2": 0.62,  # torch (sentence-transformers)
    "all-MiniLM-L6-v2/onnx": 0.62,  # fp32: torch's vectors to cosine 0.9999999
    # int8 keeps 1.00 / 1.00 up to 0.65 (fp32 up to 0.64); 0.63 keeps fp32's margin below that edge and links
    # as many reports of the synthetic corpus as fp32 at 0.62 (39; int8 at 0.62: 48).
    "all-MiniLM-L6-v2/onnx-int8": 0.63,
}


def calibrated_threshold(embedder_name: str) -> float:
    """The story threshold calibrated for an embedder (the rule's default for one never calibrated)."""
    return CALIBRATED_THRESHOLDS.get(embedder_name, StoryRule.threshold)
