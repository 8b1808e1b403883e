"""The values the analysis stage hands on: signals, narratives and the data brief."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TickerSignal:
    """Attention on one ticker in the window, against its baseline."""

    ticker: str
    mentions: int  # distinct stories in the window (one story told by ten outlets counts once)
    reports: int  # items in the window, near-duplicates included
    authors: int  # distinct authors (outlet when a news item has no author)
    clusters: int  # distinct author clusters: breadth
    cluster_names: tuple[str, ...]
    baseline_mentions: float  # mean stories per window over the baseline windows
    baseline_clusters: float  # mean clusters per window over the baseline windows
    growth: float  # (mentions + 1) / (baseline_mentions + 1)
    zscore: float  # robust z of mentions against the baseline windows (median / MAD)
    engagement: float  # engagement-weighted mentions
    sentiment: float  # mean compound sentiment of the window's items, -1..1
    price_change_pct: float | None  # from price snapshots when there are any
    novelty: float  # share of this ticker's stories not used by recent briefs, 0..1
    score: float  # ranking: breadth first, then growth, then volume
    item_ids: tuple[str, ...]  # story ids, most engaged first
    baseline_windows: int = 0  # earlier windows memory holds any item in (growth means little below a few)


@dataclass(frozen=True)
class Narrative:
    """A cluster of recent stories about one thing."""

    id: str  # id of its most central story
    label: str  # top terms and tickers
    terms: tuple[str, ...]
    tickers: tuple[str, ...]
    size: int  # stories
    reports: int  # items, near-duplicates included
    clusters: int  # distinct author clusters (breadth)
    growth: float  # second half of the window vs first half, smoothed
    first_seen: datetime
    status: str  # emerging | hot | cooling | steady
    item_ids: tuple[str, ...]  # representative story ids, most central first
    novelty: float = 1.0


@dataclass(frozen=True)
class Signals:
    """Everything computed for one window."""

    window_start: datetime
    window_end: datetime
    baseline_start: datetime
    items: int
    stories: int
    tickers: tuple[TickerSignal, ...]
    narratives: tuple[Narrative, ...]
    groups: int = 0  # distinct account groups (author clusters) in the window


@dataclass(frozen=True)
class SourceRef:
    """A stored item a brief line cites."""

    item_id: str
    title: str
    url: str
    outlet: str


@dataclass(frozen=True)
class BriefLine:
    """One claim in plain text (no markup) with the stored items that back it."""

    text: str
    sources: tuple[SourceRef, ...]
    ticker: str | None = None


@dataclass(frozen=True)
class BriefSection:
    """A titled group of lines."""

    heading: str
    lines: tuple[BriefLine, ...]


@dataclass(frozen=True)
class DataBrief:
    """A brief before rendering: its take (the one X post), the thread's later posts, the full brief's sections."""

    title: str
    window_label: str
    generated_at: datetime
    sections: tuple[BriefSection, ...]
    footer: str = ""
    take: BriefLine | None = None  # the window's most important development; None: the first line stands in
    thread: tuple[BriefLine, ...] = ()  # one development per later post; empty: the sections' lines stand in
    permalink: str = ""  # where the full brief is read (the public archive); "" when there is none
    disclaimer: str = ""  # what an X post carries of the footer; "" means the footer itself


@dataclass(frozen=True)
class Problem:
    """One reason a draft is not publishable: a machine code, a readable message, the offending text."""

    code: str  # e.g. unknown_source, unknown_ticker, price_mismatch, foreign_link, too_long, banned_phrase
    message: str
    where: str = ""  # the format ("x", "telegram", "markdown") or part it was found in
    # A compliance rule's problem: its profile, rule id, cited source, and action ("block": the channels in
    # ``where`` are refused whatever a reviewer says; "needs_override": like any other problem).
    profile: str = ""
    rule: str = ""
    source: str = ""
    action: str = ""

    @property
    def blocks(self) -> bool:
        """True when this problem refuses its channels rather than the whole draft."""
        return self.action == "block"

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels or formats named in ``where``."""
        return tuple(w.strip() for w in self.where.split(",") if w.strip())

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        out = {"code": self.code, "message": self.message, "where": self.where}
        out.update({k: v for k in ("profile", "rule", "source", "action") if (v := getattr(self, k))})
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Problem:
        """Inverse of ``to_dict``."""
        return cls(*(str(data.get(k) or "") for k in ("code", "message", "where", "profile", "rule", "source",
                                                       "action")))


@dataclass(frozen=True)
class ClaimCheck:
    """What grounded one claim of a draft, for reviewers: its standing, the best tier behind it, and the basis."""

    text: str  # the claim, clipped
    standing: str  # corroborated | price data | official | single-source (media) | single-source (attributed) |
    #                signals | unsupported
    tier: str = ""  # the best tier among the sources that ground it ("" for price data and signals)
    basis: tuple[str, ...] = ()  # e.g. "price snapshot BTC 2026-12-01 16:00 UTC", "coindesk (media)"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"text": self.text, "standing": self.standing, "tier": self.tier, "basis": list(self.basis)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ClaimCheck:
        """Inverse of ``to_dict``."""
        basis = data.get("basis")
        return cls(str(data.get("text", "")), str(data.get("standing", "")), str(data.get("tier", "")),
                   tuple(str(b) for b in basis) if isinstance(basis, list) else ())


@dataclass(frozen=True)
class ValidationReport:
    """The grounding validator's verdict on a draft; stored as ``Draft.validation``."""

    problems: tuple[Problem, ...] = ()
    checked_at: datetime | None = None
    claims: tuple[ClaimCheck, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing blocks publication (a channel a compliance profile blocks is refused on its own)."""
        return not self.blocking

    @property
    def blocking(self) -> tuple[Problem, ...]:
        """The problems that hold up the whole draft until they are fixed or overridden."""
        return tuple(p for p in self.problems if not p.blocks)

    def blocked(self) -> dict[str, list[Problem]]:
        """Channel → the compliance problems that refuse it."""
        out: dict[str, list[Problem]] = {}
        for p in self.problems:
            if p.blocks:
                for channel in p.channels:
                    out.setdefault(channel, []).append(p)
        return out

    @property
    def summary(self) -> str:
        """One line for reviewers: "7 claims: 5 corroborated, 2 single-source (attributed)" and any problems."""
        counts: dict[str, int] = {}
        for claim in self.claims:
            counts[claim.standing] = counts.get(claim.standing, 0) + 1
        parts = ", ".join(f"{n} {standing}" for standing, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        head = f"{len(self.claims)} claim{'s' if len(self.claims) != 1 else ''}" + (f": {parts}" if parts else "")
        tail = ""
        if self.problems:
            tail = f"; {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        blocked = self.blocked()
        if blocked:
            tail += "; blocked on " + ", ".join(sorted(blocked))
        return head + tail

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (what ``Draft.validation`` holds)."""
        return {
            "ok": self.ok,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "summary": self.summary,
            "problems": [p.to_dict() for p in self.problems],
            "claims": [c.to_dict() for c in self.claims],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ValidationReport:
        """Inverse of ``to_dict``; an empty dict is a report that was never run (``ok`` but unchecked)."""
        raw = data.get("problems")
        items = raw if isinstance(raw, list) else []
        problems = tuple(Problem.from_dict(p) for p in items if isinstance(p, dict))
        raw_claims = data.get("claims")
        claims = tuple(ClaimCheck.from_dict(c) for c in raw_claims if isinstance(c, dict)) if isinstance(
            raw_claims, list) else ()
        at = data.get("checked_at")
        return cls(problems, datetime.fromisoformat(at) if isinstance(at, str) else None, claims)
