"""The data brief: a brief built from signals alone, every line citing stored items."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from crew.model import (
    BriefLine,
    BriefSection,
    DataBrief,
    Narrative,
    Signals,
    SourceRef,
    TickerSignal,
    ValidationReport,
)
from crew.render import render_markdown, render_telegram, render_x_thread
from memory.drafts import Draft
from sources.injection import is_suspect_row

FOOTER = "Built from stored sources by deterministic signals (no language model). Not financial advice."


def window_label(window: timedelta) -> str:
    """'last 24h', 'last 7d', 'last 90m'."""
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"last {seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"last {seconds // 3600}h"
    return f"last {seconds // 60}m"


LinkOf = Callable[[Any], "str | None"]


def compose(signals: Signals, rows: Mapping[str, Any], *, generated_at: datetime, ticker: str | None = None,
            story_ids: Sequence[str] | None = None, max_tickers: int = 5, max_narratives: int = 3,
            max_stories: int = 5, link_of: LinkOf | None = None) -> DataBrief:
    """Turn signals into brief sections; ``rows`` maps item ids to stored item rows for citations.

    ``link_of`` gives the link a cited item may be published with (``crew.trust.SourcePolicy.link``);
    None there means the item is cited without a link.
    """
    if link_of is not None:
        rows = _Linked(rows, link_of)
    tickers = [t for t in signals.tickers if ticker is None or t.ticker == ticker.upper()]
    narratives = list(signals.narratives)
    if ticker:
        narratives = [n for n in narratives if ticker.upper() in n.tickers]
    if story_ids is not None:
        wanted = set(story_ids)
        narratives = [n for n in narratives if wanted & set(n.item_ids)]
        tickers = [t for t in tickers if wanted & set(t.item_ids)]
    sections = []
    lines = [_narrative_line(n, rows) for n in narratives[:max_narratives]]
    if lines := [line for line in lines if line.sources]:
        sections.append(BriefSection("Narratives", tuple(lines)))
    lines = [_ticker_line(t, rows) for t in tickers[:max_tickers]]
    if lines := [line for line in lines if line.sources]:
        sections.append(BriefSection("Tickers", tuple(lines)))
    stories = _top_stories(rows, story_ids, ticker, max_stories)
    if stories:
        sections.append(BriefSection("Most reported", tuple(stories)))
    subject = f"${ticker.upper()}" if ticker else "crypto markets"
    return DataBrief(
        title=f"tapewatch data brief: {subject}",
        window_label=window_label(signals.window_end - signals.window_start),
        generated_at=generated_at,
        sections=tuple(sections),
        footer=FOOTER,
    )


class _Linked(dict[str, Any]):
    """Rows plus the policy that decides each one's publishable link."""

    def __init__(self, rows: Mapping[str, Any], link_of: LinkOf) -> None:
        super().__init__(rows)
        self.link_of = link_of


def _ref(item_id: str, rows: Mapping[str, Any]) -> SourceRef | None:
    row = rows.get(item_id)
    if row is None or is_suspect_row(row):
        return None  # counted in the signals, never quoted or cited
    url = (rows.link_of(row) or "") if isinstance(rows, _Linked) else row.url
    return SourceRef(item_id=row.id, title=row.title, url=url, outlet=row.source)


def _refs(ids: Sequence[str], rows: Mapping[str, Any], limit: int = 2) -> tuple[SourceRef, ...]:
    refs = [r for r in (_ref(i, rows) for i in ids) if r is not None]
    return tuple(refs[:limit])


def _ticker_line(t: TickerSignal, rows: Mapping[str, Any]) -> BriefLine:
    parts = [f"${t.ticker}: {t.mentions} {'story' if t.mentions == 1 else 'stories'}"]
    if t.reports > t.mentions:
        parts[0] += f" ({t.reports} reports)"
    if t.baseline_mentions == 0:
        parts.append("none in the baseline windows")
    else:
        parts.append(f"×{t.growth:.1f} vs baseline")
    groups = ", ".join(t.cluster_names[:4]) + (", …" if len(t.cluster_names) > 4 else "")
    parts.append(f"{t.clusters} {'group' if t.clusters == 1 else 'groups'} ({groups})")
    parts.append(f"sentiment {t.sentiment:+.2f}")
    if t.price_change_pct is not None:
        parts.append(f"price {t.price_change_pct:+.1f}%")
    return BriefLine(text="; ".join(parts), sources=_refs(t.item_ids, rows), ticker=t.ticker)


def _narrative_line(n: Narrative, rows: Mapping[str, Any]) -> BriefLine:
    lead = rows.get(n.id)
    headline = f" ({lead.title})" if lead is not None and not is_suspect_row(lead) else ""
    text = (f"{n.status.capitalize()}: {n.label}{headline}: {n.size} stories, {n.reports} reports "
            f"from {n.clusters} {'group' if n.clusters == 1 else 'groups'}")
    return BriefLine(text=text, sources=_refs(n.item_ids, rows),
                     ticker=n.tickers[0] if n.tickers else None)


def _top_stories(rows: Mapping[str, Any], story_ids: Sequence[str] | None, ticker: str | None,
                 limit: int) -> list[BriefLine]:
    # One pass groups every report under its story, oldest first.
    reports: dict[str, list[Any]] = {}
    for row in sorted(rows.values(), key=lambda r: r.published_at):
        reports.setdefault(row.story_id, []).append(row)
    # A story counts as "most reported" only when more than one outlet told it; two items from one
    # outlet (an update, a repost) are not corroboration. A lead that reads as instructions is never quoted.
    outlets_of = {sid: {r.source for r in members} for sid, members in reports.items()}
    candidates = [sid for sid in reports if len(outlets_of[sid]) > 1 and sid in rows and not is_suspect_row(rows[sid])]
    if story_ids is not None:
        wanted = set(story_ids)
        candidates = [sid for sid in candidates if sid in wanted]
    if ticker:
        candidates = [sid for sid in candidates if ticker.upper() in rows[sid].tickers.split()]
    candidates.sort(key=lambda sid: (-len(outlets_of[sid]), -len(reports[sid]), rows[sid].published_at))
    lines = []
    for sid in candidates[:limit]:
        outlets = sorted({r.source for r in reports[sid]})
        text = f"{rows[sid].title}: reported by {len(outlets)} sources ({', '.join(outlets[:4])})"
        lines.append(BriefLine(text=text, sources=_refs([r.id for r in reports[sid]], rows)))
    return lines


def to_draft(brief: DataBrief, signals: Signals, *, topic: str = "") -> Draft:
    """Render a data brief in all three formats and wrap it as a pending draft."""
    cited = tuple(dict.fromkeys(ref.item_id for s in brief.sections for line in s.lines for ref in line.sources))
    tickers = tuple(dict.fromkeys(line.ticker for s in brief.sections for line in s.lines if line.ticker))
    return Draft(
        created_at=brief.generated_at, mode="data", window_start=signals.window_start,
        window_end=signals.window_end, x_thread=tuple(render_x_thread(brief)),
        telegram_html=render_telegram(brief), markdown=render_markdown(brief), item_ids=cited,
        tickers=tickers, topic=topic, signals=signals_summary(signals), meta=brief_meta(brief),
    )


def brief_meta(brief: DataBrief) -> dict[str, Any]:
    """What the grounding validator needs beyond the text: each line with the items it cites (a claim is checked
    against its own sources), and the title and headings (labels, not claims)."""
    lines = [{"text": line.text, "item_ids": [ref.item_id for ref in line.sources]}
             for section in brief.sections for line in section.lines]
    labels = [brief.title, f"{brief.title} — {brief.window_label}", brief.window_label,
              *(s.heading for s in brief.sections)]
    return {"claims": lines, "labels": labels}


def signals_summary(signals: Signals) -> dict[str, Any]:
    """The signals a draft was built from, as plain data for storage."""
    return {
        "window_start": signals.window_start.isoformat(), "window_end": signals.window_end.isoformat(),
        "items": signals.items, "stories": signals.stories,
        "tickers": [dict(vars(replace(t, item_ids=t.item_ids[:10]))) for t in signals.tickers[:20]],
        "narratives": [
            {**{k: v for k, v in vars(n).items() if k != "first_seen"}, "first_seen": n.first_seen.isoformat()}
            for n in signals.narratives[:10]
        ],
    }


def build(memory: Any, drafts: Any, *, now: datetime, window: timedelta = timedelta(hours=24),
          ticker: str | None = None, topic: str | None = None, prices: Any = None,
          validate: Callable[[Draft], ValidationReport] | None = None,
          link_of: LinkOf | None = None) -> tuple[Signals, Draft | None]:
    """Compute signals for the window and, if there is anything to report, save a data-brief draft.

    With ``validate`` (the grounding validator) the draft carries its report and is flagged if it fails.
    """
    from crew.signals import compute_signals

    recent = drafts.recent(now - timedelta(days=2))
    signals = compute_signals(memory.state, memory.vectors, now=now, window=window, recent_drafts=recent,
                              prices=prices)
    if signals.items == 0:
        return signals, None
    rows = {row.id: row for row in memory.state.window_items(signals.window_start, signals.window_end)}
    story_ids = None
    if topic:
        hits = memory.search(topic, 30, since=signals.window_start, until=signals.window_end)
        story_ids = [rows[h.id].story_id for h in hits if h.id in rows and h.score >= 0.25]
    brief = compose(signals, rows, generated_at=now, ticker=ticker, story_ids=story_ids, link_of=link_of)
    if not brief.sections:
        return signals, None
    label = topic or (f"${ticker.upper()}" if ticker else "")
    draft = to_draft(brief, signals, topic=label)
    if validate is not None:
        report = validate(draft)
        draft = replace(draft, validation=report.to_dict(), status="pending" if report.ok else "flagged")
    return signals, drafts.save(draft)
