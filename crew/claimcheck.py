"""One claim at a time: its tickers, numbers and time words against the evidence its cited items give.

A claim is a sentence of a rendered format (boilerplate such as the disclaimer and thread numbering
removed). Its support is the items its line cites (``Draft.meta["claims"]``), or every item the draft
cites when the text was edited by hand. See ``crew.grounding`` for the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from crew.claims import sentences, without_urls
from crew.entities import Entities, organisations_in
from crew.evidence import Backing, Source, backing, independent_groups, read_source
from crew.model import ClaimCheck, Problem
from crew.names import proper_names
from crew.numbers import DURATION_NOUNS, TIME_FRAMES, Number, numbers_in_sentence
from crew.timewords import TimeSpan, time_spans
from memory.drafts import Draft

_TIME_SLACK = timedelta(hours=6)
_SNAPSHOT_ROLES = frozenset({"price", "move", "volume", "mcap"})
_BOILERPLATE = (
    re.compile(r"^\s*\d{1,2}/\d{1,2}(?=\s|$)|(?<=\s)\d{1,2}/\d{1,2}\s*$", re.M),  # thread numbering
    re.compile(r"\+\d+ more in the full brief"),
    re.compile(r"…and \d+ more"),
    re.compile(r"^\s*[•·\-]\s*", re.M),
)
_LABELS = re.compile(r"^\s*#+\s*|(?<!\w)_|_(?!\w)", re.M)  # Markdown heading marks and italics
_ATTRIBUTED = re.compile(
    r"\b(?:according to|per (?:a|one|an)\b|reportedly|unverified|unconfirmed|allegedly|"
    r"(?:a|one|an|the) (?:post|posts|account|user|trader|thread|tweet|commenter|influencer|forum post|reddit post|"
    r"reddit user|forum user|x user|x account|poster)\b[^.]{0,80}?\b(?:claims?|claimed|says|said|alleges?|alleged|"
    r"writes|wrote|argues?|argued|suggests?|suggested|reports?|reported|asserts?|asserted|posted|shared))",
    re.IGNORECASE)
_STOP = frozenset([
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "by", "at", "from", "as", "is", "are",
    "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "their", "there", "than", "then",
    "into", "over", "under", "after", "before", "while", "about", "which", "who", "what", "when", "where", "will",
    "would", "could", "should", "may", "might", "can", "has", "have", "had", "not", "but", "also", "more", "most",
    "less", "least", "new", "says", "said", "one", "two", "per", "via", "amid", "just", "still", "only", "some",
    "any", "each", "other"])
_WORD = re.compile(r"[a-z][a-z'-]{3,}")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[…\s]+", " ", text.lower()).split()).strip(" .;:,")


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}


@dataclass
class _Claim:
    text: str
    standing: str = "unsupported"
    tier: str = ""
    basis: list[str] = field(default_factory=list)


class ClaimChecker:
    """Checks the claims of one draft; collects one ``ClaimCheck`` per distinct claim."""

    def __init__(self, draft: Draft, context: Any, entities: Entities, sources: list[Source]) -> None:
        self.draft = draft
        self.ctx = context
        self.entities = entities
        self.sources = {s.id: s for s in sources}
        self.signal_tickers, self.signal_numbers = _signals(draft.signals)
        self.claim_items = _claim_items(draft.meta)
        # The title and headings label the brief; they are checked for tickers and numbers, not for support.
        labels = draft.meta.get("labels") if isinstance(draft.meta, dict) else None
        self.labels = {_norm(str(x)) for x in labels or []}
        self._claims: dict[str, _Claim] = {}
        self._ticker_verdicts: dict[str, str | None] = {}
        # Outlet and account names label a line's sources; they are not claims.
        self._labels = sorted({n for s in sources for n in (s.row.source, s.row.author) if n and len(n) > 2},
                              key=len, reverse=True)
        self._boiler = sorted((b for b in (context.disclaimer, _ai_note(), _data_footer(),
                                            "Nothing to report in this window.") if b), key=len, reverse=True)

    def results(self) -> tuple[ClaimCheck, ...]:
        """One check per distinct claim, in order of appearance."""
        return tuple(ClaimCheck(c.text[:160], c.standing, c.tier, tuple(dict.fromkeys(c.basis))[:6])
                     for c in self._claims.values())

    # --- claims -------------------------------------------------------------------------------------------

    def check_text(self, text: str, where: str) -> list[Problem]:
        """Every claim of one format."""
        for phrase in self._boiler:
            text = text.replace(phrase, " ")
        for pattern in _BOILERPLATE:
            text = pattern.sub(" ", text)
        problems: list[Problem] = []
        # A data brief's line is one claim (about signals) even when the headline it quotes has sentences.
        parts = without_urls(text).splitlines() if self.draft.mode == "data" else sentences(without_urls(text))
        for sentence in parts:
            sentence = _LABELS.sub(" ", sentence)
            for label in self._labels:
                sentence = sentence.replace(label, " ")
            sentence = " ".join(sentence.split()).strip(" ()[],;")
            if len(sentence.split()) < 5 and not self.entities.mentions(sentence) and not numbers_in_sentence(
                    sentence, []):
                continue  # a heading, a window label or a source label: nothing to ground
            problems += self._check(sentence, where)
        return problems

    def _check(self, sentence: str, where: str) -> list[Problem]:
        key = _norm(sentence)[:200]
        claim = self._claims.setdefault(key, _Claim(sentence))
        support = self._support(sentence)
        mentions = self.entities.mentions(sentence)
        tickers = {t for m in mentions for t in (m.ticker.split("/") if m.pair else (m.ticker,))}
        problems = self.tickers(sentence, where, mentions=tickers)
        stating: dict[str, Source] = {}
        backed: list[Backing] = []
        snapshot = signal = False
        spans = time_spans(sentence, self.draft.window_end)
        for number in numbers_in_sentence(sentence, mentions):
            if number.ticker and number.role in _SNAPSHOT_ROLES:
                verdict = self._snapshot(number, spans)
                if verdict is None or verdict.startswith("basis:"):
                    snapshot = True
                    if verdict:
                        claim.basis.append(verdict[6:])
                    continue
                if not verdict.startswith("fallback"):
                    problems.append(Problem(verdict.split(":", 1)[0], verdict.split(":", 1)[1].strip(), where))
                    continue
            if number.role == "signal_count" and self._signal_count(number, support):
                signal = True
                continue
            found, miss = backing(number, support)
            if not found and number.noun in DURATION_NOUNS and round(number.value) in TIME_FRAMES and not miss:
                continue  # "in 24 hours", "over 7 days": a time frame, not a fact to source
            if found:
                backed += found
                stating.update({b.source.id: b.source for b in found})
            else:
                about = f" about {number.entity}" if number.entity else ""
                code = miss or "unverified_number"
                text = {"wrong_asset": f"{number.text} is stated by the cited items, but about another asset",
                        "wrong_direction": f"{number.text}{about} is stated by the cited items in the other "
                                           "direction"}.get(code, f"{number.text}{about} is stated by none of the "
                                                                  "claim's cited items")
                problems.append(Problem(code, text, where))
        price_led = snapshot and not backed  # what the claim states is price data; items only give context
        if not stating and tickers:
            stating = {s.id: s for s in support if not s.suspect and s.tickers & tickers}
        if not stating and not snapshot and not signal:
            lexical = _stems(sentence)
            stating = {s.id: s for s in support if not s.suspect and lexical & _stems(
                " ".join(st.text for st in s.statements))}
            if not stating and (lexical or tickers) and _norm(sentence) not in self.labels:
                code = "suspect_source" if support and all(s.suspect for s in support) else "unsupported_claim"
                problems.append(Problem(code, f"claim {_clip(sentence)!r} is not stated by any usable cited item",
                                        where))
        if spans and stating and (backed or not (snapshot or signal)):
            # Time words about a price move are the snapshots' business, checked above.
            problems += self._times(spans, backed, list(stating.values()), tickers, where)
        if stating and not price_led and _norm(sentence) not in self.labels:
            problems += self._names(sentence, list(stating.values()), where)
        if signal and self.draft.mode == "data":
            # A data-brief line about signals (stories, reports, groups from N groups): its breadth is the signal
            # itself; a headline it quotes as a label still had its numbers checked above.
            stating = {}
        problems += self._standing(claim, sentence, list(stating.values()), snapshot, signal, where, price_led)
        if problems:
            claim.standing = "unsupported"
        return problems

    def _line(self, sentence: str) -> tuple[str, tuple[str, ...]] | None:
        """The brief line (text, cited ids) a sentence belongs to, if the draft recorded its lines."""
        key = _norm(sentence)
        for text, ids in self.claim_items:
            if key and (key in text or text.startswith(key[:60]) or text in key):
                return text, ids
        return None

    def _support(self, sentence: str) -> list[Source]:
        line = self._line(sentence)
        if line is not None:
            return [self.sources[i] for i in line[1] if i in self.sources]
        return list(self.sources.values())

    def _standing(self, claim: _Claim, sentence: str, stating: list[Source], snapshot: bool, signal: bool,
                  where: str, price_led: bool = False) -> list[Problem]:
        claim.basis += [s.label() for s in stating]
        if not stating or price_led:
            claim.standing = "price data" if snapshot else "signals" if signal else claim.standing
            return []
        tiers = {s.tier for s in stating}
        claim.tier = next(t for t in ("official", "media", "social", "forum") if t in tiers)
        if "official" in tiers:
            claim.standing = "official"
        elif len(independent_groups(stating)) >= 2:
            claim.standing = "corroborated"
        elif "media" in tiers:
            claim.standing = "single-source (media)"
        elif self.ctx.single_source_policy == "attribute" and (
                _ATTRIBUTED.search(sentence) or _ATTRIBUTED.search((self._line(sentence) or ("",))[0])):
            # Attribution at the start of a line covers its later sentences.
            claim.standing = "single-source (attributed)"
        else:
            hint = ("word it as that source's claim (\"a post on X claims ...\") or " if
                    self.ctx.single_source_policy == "attribute" else "")
            return [Problem("single_source", f"claim {_clip(sentence)!r} rests on one {claim.tier} source; "
                            f"{hint}add an independent source", where)]
        return []

    def _names(self, sentence: str, stating: list[Source], where: str) -> list[Problem]:
        """Every proper name in the claim (an exchange, a fund, a project) is in one of the sources it rests on."""
        text = " ".join(f"{s.row.title} {s.row.text or ''} {s.row.source} {s.row.author or ''}"
                        for s in stating).lower()
        known = {t.lower() for s in stating for t in s.tickers}
        missing = [name for name in proper_names(sentence) if name.lower() not in text and name.lower() not in known
                   and not self.entities.tickers(name)]
        # Known organisations count even as a sentence's first word ("Kraken halted withdrawals").
        missing += [names[0] for names in organisations_in(sentence)
                    if not any(re.search(rf"(?<!\w){re.escape(n.lower())}(?!\w)", text) for n in names)
                    and names[0] not in missing]
        if missing:
            return [Problem("unsupported_entity", f"claim {_clip(sentence)!r} names {', '.join(missing[:3])}, which "
                            "its sources do not mention", where)]
        return []

    # --- tickers ------------------------------------------------------------------------------------------

    def tickers(self, text: str, where: str, mentions: Iterable[str] | None = None) -> list[Problem]:
        """Every ticker named in ``text`` is a watchlist ticker with signals or independently corroborated."""
        names = set(mentions) if mentions is not None else self.entities.tickers(text)
        problems = []
        for ticker in sorted(names):
            verdict = self._ticker(ticker)
            if verdict:
                problems.append(Problem("uncorroborated_ticker", verdict, where))
        return problems

    def _ticker(self, ticker: str) -> str | None:
        if ticker in self._ticker_verdicts:
            return self._ticker_verdicts[ticker]
        verdict: str | None = None
        watched = ticker in self.ctx.watchlist.aliases
        if not (watched and ticker in self.signal_tickers):
            naming = [s for s in self.sources.values() if ticker in s.tickers]
            if self.ctx.ticker_items is not None:
                known = set(self.sources)
                extra = [r for r in self.ctx.ticker_items(ticker, self.draft.window_start, self.draft.window_end)
                         if r.id not in known]
                naming += [read_source(r, self.entities, self.ctx.policy) for r in extra[:50]]
            groups = independent_groups(naming)
            need = self.ctx.min_independent_sources
            vetted = any(s.tier in ("media", "official") for s in naming if not s.suspect)
            why = "a watchlist ticker without signals in the window" if watched else "not on the watchlist"
            if len(groups) < need:
                verdict = (f"${ticker} is named by {len(groups)} independent source group(s) (at least {need} "
                           f"needed) and is {why}")
            elif not vetted and need > 1:
                # Chatter alone (posts, forums) is how a ticker gets pushed: one outlet or official source must name it.
                verdict = (f"${ticker} is named only by social and forum sources ({len(groups)} groups) and is {why}")
        self._ticker_verdicts[ticker] = verdict
        return verdict

    # --- numbers ------------------------------------------------------------------------------------------

    def _snapshot(self, n: Number, spans: list[TimeSpan]) -> str | None:
        """None / "basis: …" when snapshots back ``n``; "code: message" when they contradict it; "fallback" when
        there is no snapshot value for a volume or market cap (then a cited item may state it)."""
        ctx, ticker = self.ctx, n.ticker
        assert ticker is not None
        snap = ctx.prices.latest(ticker, self.draft.window_end) if ctx.prices is not None else None
        if snap is None:
            if n.role in ("volume", "mcap"):
                return "fallback"
            return (f"unverified_price: ${ticker} {'move' if n.role == 'move' else 'price'} {n.text} has no stored "
                    "price snapshot to check against (items cannot ground a price)")
        when = f"{snap.observed_at:%Y-%m-%d %H:%M} UTC"
        if n.role == "price":
            tol = abs(snap.price_usd) * ctx.price_tolerance_pct / 100
            if abs(n.value - snap.price_usd) <= n.slack + tol:
                return f"basis:price snapshot {ticker} {when}"
            low_high = self._range(ticker, spans)
            if low_high and low_high[0] - tol - n.slack <= n.value <= low_high[1] + tol + n.slack:
                return f"basis:price snapshots {ticker} in the period"
            return (f"price_mismatch: ${ticker} price given as {n.text} but the stored price is "
                    f"${snap.price_usd:,.2f} ({when}, ±{ctx.price_tolerance_pct:g}%)")
        if n.role in ("volume", "mcap"):
            stored = snap.volume_24h_usd if n.role == "volume" else snap.market_cap_usd
            if stored is None:
                return "fallback"
            if abs(n.value - stored) <= n.slack + abs(stored) * ctx.volume_tolerance_pct / 100:
                return f"basis:price snapshot {ticker} {when}"
            label = "24h volume" if n.role == "volume" else "market cap"
            return f"price_mismatch: ${ticker} {label} given as {n.text} but the stored one is ${stored:,.0f}"
        changes = self._changes(ticker, spans, snap)
        if not changes:
            return f"unverified_price: ${ticker} move {n.text} has no stored change to check against"
        value = n.direction * abs(n.value) if n.direction else n.value
        signs = (value,) if n.direction or n.value < 0 or n.text.lstrip().startswith("+") else (value, -value)
        tol = n.slack + ctx.percent_tolerance_pp
        if any(abs(v - c) <= tol for v in signs for c in changes):
            return f"basis:price snapshots {ticker} (change)"
        shown = " or ".join(f"{c:+.2f}%" for c in changes)
        if any(abs(-v - c) <= tol for v in signs for c in changes) and abs(value) > tol:
            return f"wrong_direction: ${ticker} move given as {n.text} but stored changes are {shown}"
        return (f"price_mismatch: ${ticker} move given as {n.text} but stored changes are {shown} "
                f"(±{ctx.percent_tolerance_pp:g} pp)")

    def _changes(self, ticker: str, spans: list[TimeSpan], snap: Any) -> list[float]:
        prices = self.ctx.prices
        out = [snap.change_24h_pct] if snap.change_24h_pct is not None else []
        periods = [(self.draft.window_start, self.draft.window_end)] + [(s.start, self.draft.window_end)
                                                                       for s in spans]
        for start, end in periods:
            change = prices.change_pct(ticker, start, end) if prices is not None else None
            if change is not None:
                out.append(change)
        return out

    def _range(self, ticker: str, spans: list[TimeSpan]) -> tuple[float, float] | None:
        lookup = getattr(self.ctx.prices, "price_range", None)
        if lookup is None:
            return None
        start = min([self.draft.window_start, *(s.start for s in spans)])
        end = max([self.draft.window_end, *(min(s.end, self.draft.window_end) for s in spans)])
        found = lookup(ticker, start, end)
        return (float(found[0]), float(found[1])) if found else None

    def _signal_count(self, n: Number, support: list[Source]) -> bool:
        value = round(n.value)
        if value in self.signal_numbers or value == len(independent_groups(support)):
            return True
        # "reported by N sources": the story's reports, at most every item of the window.
        total = self.draft.signals.get("items") if isinstance(self.draft.signals, dict) else None
        return n.noun in ("sources", "outlets", "reports") and isinstance(total, int) and value <= total

    # --- time words ---------------------------------------------------------------------------------------

    def _times(self, spans: list[TimeSpan], backed: list[Backing], stating: list[Source], tickers: set[str],
               where: str) -> list[Problem]:
        if backed:
            # A source's dated sentence ("... on Tuesday") says more than its undated headline.
            dated = {b.source.id for b in backed if time_spans(b.statement.text, b.source.row.published_at)}
            times = [b.statement.when for b in backed
                     if b.source.id not in dated or time_spans(b.statement.text, b.source.row.published_at)]
        else:
            times = [st.when for s in stating for st in s.statements if not tickers or st.tickers & tickers]
            times = times or [s.row.published_at for s in stating]
        for span in spans:
            if not any(span.holds(t, _TIME_SLACK) for t in times):
                dates = ", ".join(sorted({f"{t:%a %Y-%m-%d}" for t in times}))[:80]
                return [Problem("time_mismatch", f"the claim says {span.word!r} but its sources report it on {dates}",
                                where)]
        return []


def _clip(text: str, size: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _signals(signals: Any) -> tuple[set[str], set[int]]:
    """Tickers the draft's stored signals back, and every whole number those signals hold."""
    if not isinstance(signals, dict):
        return set(), set()
    tickers = {str(t.get("ticker")) for t in signals.get("tickers", []) if isinstance(t, dict)}
    numbers: set[int] = set()
    for key in ("items", "stories"):
        if isinstance(signals.get(key), int):
            numbers.add(signals[key])
    for group in ("tickers", "narratives"):
        for entry in signals.get(group, []) or []:
            if isinstance(entry, dict):
                numbers.update(int(v) for v in entry.values() if isinstance(v, int) and not isinstance(v, bool))
    return tickers, numbers


def _claim_items(meta: Any) -> list[tuple[str, tuple[str, ...]]]:
    claims = meta.get("claims") if isinstance(meta, dict) else None
    out = []
    for claim in claims or []:
        if isinstance(claim, dict) and isinstance(claim.get("item_ids"), list):
            out.append((_norm(str(claim.get("text", ""))), tuple(str(i) for i in claim["item_ids"])))
    return out


def _ai_note() -> str:
    from crew.guardrails import AI_NOTE  # lazily: guardrails imports the validator

    return AI_NOTE


def _data_footer() -> str:
    from crew.databrief import FOOTER

    return FOOTER


