"""The data brief: a brief built from signals alone, in plain sentences, every line citing stored items."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from crew.framing import derive as derive_framing
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
from crew.render import render_markdown, render_telegram, render_x
from memory.drafts import Draft
from sources.injection import is_suspect_row

FOOTER = "Compiled by tapewatch from stored sources and price data, without a language model."
DISCLAIMER = "Not financial advice."
# Growth is stated only when at least this many earlier windows hold data: a fresh install has no past to
# compare with, and "×41" against an empty memory is noise.
MIN_HISTORY = 3
_HEADLINE = 110  # characters of a story's title used as a narrative's name
_TRAILING = re.compile(r"[\s:;,.—–-]+$")


def window_label(window: timedelta) -> str:
    """'last 24h', 'last 7d', 'last 90m'."""
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"last {seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"last {seconds // 3600}h"
    return f"last {seconds // 60}m"


def _span(window: timedelta) -> str:
    """The window as a reader says it: 'over 24h', 'over 7d'."""
    return f"over {window_label(window).removeprefix('last ')}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 source', '3 sources', '1 story', '2 stories'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


LinkOf = Callable[[Any], "str | None"]


def compose(signals: Signals, rows: Mapping[str, Any], *, generated_at: datetime, ticker: str | None = None,
            story_ids: Sequence[str] | None = None, max_tickers: int = 5, max_narratives: int = 3,
            max_stories: int = 5, link_of: LinkOf | None = None, disclaimer: str = DISCLAIMER,
            permalink: str = "") -> DataBrief:
    """Turn signals into a take, thread posts and the full brief's sections; ``rows`` maps item ids to rows.

    ``link_of`` gives the link a cited item may be published with (``crew.trust.SourcePolicy.link``);
    None there means the item is cited without a link.
    """
    rows = _Rows(rows, link_of)
    window = signals.window_end - signals.window_start
    tickers = [t for t in signals.tickers if ticker is None or t.ticker == ticker.upper()]
    narratives = list(signals.narratives)
    if ticker:
        narratives = [n for n in narratives if ticker.upper() in n.tickers]
    if story_ids is not None:
        wanted = set(story_ids)
        narratives = [n for n in narratives if wanted & set(n.item_ids)]
        tickers = [t for t in tickers if wanted & set(t.item_ids)]
    by_ticker = {t.ticker: t for t in signals.tickers}
    groups = signals.groups
    # Each story is told once: a narrative named after a story keeps it out of "Most reported".
    named = {story.story_id for n in narratives[:max_narratives] if (story := _named_story(n, rows)) is not None}
    named |= {n.id for n in narratives[:max_narratives]}
    reported = _top_stories(rows, story_ids, ticker, max_stories, skip=named)
    ticker_lines = [tl for t in tickers[:max_tickers] if (tl := _ticker_line(t, rows, window, groups)).sources]
    take, lead, headline = _take(narratives, tickers, reported, rows, by_ticker, window, groups)
    # The take leads the full brief; its own development is not repeated below it.
    story_lines = [sl for n in narratives[:max_narratives] if n is not lead
                   and (sl := _narrative_line(n, rows, by_ticker, window)) is not None]
    reported = [line for line in reported if take is None or line.sources != take.sources]
    sections = []
    if story_lines:
        sections.append(BriefSection("Stories", tuple(story_lines)))
    if reported:
        sections.append(BriefSection("Most reported", tuple(reported)))
    if ticker_lines:
        sections.append(BriefSection("Tickers", tuple(ticker_lines)))
    subject = f"${ticker.upper()}" if ticker else "crypto"
    title = headline or f"{subject}: nothing stood out"
    thread = tuple(line for section in sections for line in section.lines)
    return DataBrief(
        title=title, window_label=window_label(window), generated_at=generated_at, sections=tuple(sections),
        footer=f"{FOOTER} {disclaimer}".strip(), take=take, thread=thread, permalink=permalink,
        disclaimer=disclaimer,
    )


class _Rows(dict[str, Any]):
    """Rows plus the policy that decides each one's publishable link, and each row's suspect verdict, once."""

    def __init__(self, rows: Mapping[str, Any], link_of: LinkOf | None) -> None:
        super().__init__(rows)
        self.link_of = link_of
        self._suspect: dict[str, bool] = {}

    def suspect(self, row: Any) -> bool:
        """``sources.injection.is_suspect_row``, remembered (it runs the detector on rows stored before it)."""
        if row.id not in self._suspect:
            self._suspect[row.id] = is_suspect_row(row)
        return self._suspect[row.id]


def _suspect(row: Any, rows: Mapping[str, Any]) -> bool:
    return rows.suspect(row) if isinstance(rows, _Rows) else is_suspect_row(row)


def _ref(item_id: str, rows: Mapping[str, Any]) -> SourceRef | None:
    row = rows.get(item_id)
    if row is None or _suspect(row, rows):
        return None  # counted in the signals, never quoted or cited
    link_of = rows.link_of if isinstance(rows, _Rows) else None
    url = (link_of(row) or "") if link_of is not None else row.url
    return SourceRef(item_id=row.id, title=row.title, url=url, outlet=row.source)


def _refs(ids: Sequence[str], rows: Mapping[str, Any], limit: int = 2) -> tuple[SourceRef, ...]:
    refs: list[SourceRef] = []
    for item_id in ids:  # lazily: each row may need the injection detector
        if len(refs) >= limit:
            break
        if (ref := _ref(item_id, rows)) is not None:
            refs.append(ref)
    return tuple(refs)


def _title_of(row: Any) -> str:
    """A story's title as a sentence: one line, clipped at a word, no trailing punctuation."""
    title = " ".join(str(row.title).split())
    if len(title) > _HEADLINE:
        cut = title[:_HEADLINE].rsplit(" ", 1)[0]
        title = _TRAILING.sub("", cut) + "…"
    return _TRAILING.sub("", title) if not title.endswith("…") else title


def _named_story(n: Narrative, rows: Mapping[str, Any]) -> Any | None:
    """The story that names a narrative: a headline (a news item) among its central stories, else the most central."""
    usable = [rows[i] for i in n.item_ids if i in rows and not _suspect(rows[i], rows)]
    return next((r for r in usable if r.kind == "news"), usable[0] if usable else None)


def _move(t: TickerSignal | None, window: timedelta) -> str:
    """'$SOL +3.6% over 24h' from the price snapshots, or '$SOL' when there are none."""
    if t is None:
        return ""
    if t.price_change_pct is None or round(t.price_change_pct, 1) == 0:
        return f"${t.ticker}"
    return f"${t.ticker} {t.price_change_pct:+.1f}% {_span(window)}"


def _breadth(groups: int, total: int) -> str:
    """'5 of 8 account groups' (breadth is the signal: independent circles saying the same thing)."""
    if total > groups > 0:
        return f"{groups} of {total} account groups"
    return counted(groups, "account group")


def _narrative_line(n: Narrative, rows: Mapping[str, Any], by_ticker: Mapping[str, TickerSignal],
                    window: timedelta) -> BriefLine | None:
    story = _named_story(n, rows)
    sources = _refs([story.id, *[i for i in n.item_ids if i != story.id]] if story else n.item_ids, rows)
    if story is None or not sources:
        return None
    text = f"{_title_of(story)}: {counted(n.size, 'story', 'stories')} from {counted(n.clusters, 'account group')}."
    return BriefLine(text=text, sources=sources, ticker=n.tickers[0] if n.tickers else None)


def _ticker_line(t: TickerSignal, rows: Mapping[str, Any], window: timedelta, total_groups: int) -> BriefLine:
    if t.clusters == total_groups and t.clusters > 1:
        breadth = f"all {t.clusters} account groups"
    else:
        more = " …" if t.clusters > 4 else ""
        breadth = f"{_breadth(t.clusters, total_groups)} ({', '.join(t.cluster_names[:4])}{more})"
    parts = [f"{_move(t, window)}: {counted(t.mentions, 'story', 'stories')} across {breadth}"]
    growth = _growth(t, window)
    if growth:
        parts.append(growth)
    return BriefLine(text="; ".join(parts) + ".", sources=_refs(t.item_ids, rows), ticker=t.ticker)


def _growth(t: TickerSignal, window: timedelta) -> str:
    """How attention compares with the windows before, only when enough of them hold data."""
    if t.baseline_windows < MIN_HISTORY:
        return ""
    per = {timedelta(hours=24): "a day", timedelta(days=7): "a week", timedelta(hours=1): "an hour"}.get(
        window, f"per {window_label(window).removeprefix('last ')}")
    average = round(t.baseline_mentions)
    if average == 0:
        return "barely mentioned before"
    if t.mentions >= 2 * t.baseline_mentions:
        return f"up from about {counted(average, 'story', 'stories')} {per} before"
    if t.mentions * 2 <= t.baseline_mentions:
        return f"down from about {counted(average, 'story', 'stories')} {per} before"
    return ""


def _take(narratives: Sequence[Narrative], tickers: Sequence[TickerSignal], reported: Sequence[BriefLine],
          rows: Mapping[str, Any], by_ticker: Mapping[str, TickerSignal], window: timedelta,
          total_groups: int) -> tuple[BriefLine | None, Narrative | None, str]:
    """The window's most important development, with its ticker's move and the breadth behind it, and the full
    brief's headline: a broad narrative, else the most reported story, else any narrative, else the top ticker."""
    broad = [n for n in narratives if n.size * n.clusters >= 6]
    for n in [*broad, *(() if reported else narratives)]:
        story = _named_story(n, rows)
        sources = _refs([story.id, *[i for i in n.item_ids if i != story.id]], rows, 3) if story else ()
        if story is None or not sources:
            continue
        lead = by_ticker.get(n.tickers[0]) if n.tickers else None
        counts = f"{counted(n.size, 'story', 'stories')} from {_breadth(n.clusters, total_groups)}"
        move = _move(lead, window)
        numbers = (f"{move}; {counts}." if "%" in move else f"{counts} on {move}." if move else f"{counts}.")
        line = BriefLine(text=f"{_title_of(story)}.\n{numbers}", sources=sources, ticker=lead.ticker if lead else None)
        # A headline stands alone as a claim: an outlet's headline may, a post's words only with the numbers.
        headline = _title_of(story) if story.kind == "news" else numbers.rstrip(".")
        return line, n, headline
    if reported:
        top = reported[0]
        move = _move(by_ticker.get(top.ticker or ""), window)
        text = f"{top.text.rstrip('.')}; {move}." if "%" in move else top.text
        return replace(top, text=text), None, top.text.partition(": reported by ")[0]
    for t in tickers:
        line = _ticker_line(t, rows, window, total_groups)
        if line.sources:
            head, _, rest = line.text.partition(": ")
            return replace(line, text=f"{head}.\n{rest[:1].upper()}{rest[1:]}"), None, head
    return None, None, ""


def _top_stories(rows: Mapping[str, Any], story_ids: Sequence[str] | None, ticker: str | None,
                 limit: int, skip: set[str] = frozenset()) -> list[BriefLine]:  # type: ignore[assignment]
    # One pass groups every report under its story, oldest first.
    reports: dict[str, list[Any]] = {}
    for row in sorted(rows.values(), key=lambda r: r.published_at):
        reports.setdefault(row.story_id, []).append(row)
    # A story counts as "most reported" only when more than one outlet told it; two items from one
    # outlet (an update, a repost) are not corroboration. A lead that reads as instructions is never quoted.
    outlets_of = {sid: {r.source for r in members} for sid, members in reports.items()}
    candidates = [sid for sid in reports if len(outlets_of[sid]) > 1 and sid in rows and sid not in skip]
    if story_ids is not None:
        wanted = set(story_ids)
        candidates = [sid for sid in candidates if sid in wanted]
    if ticker:
        candidates = [sid for sid in candidates if ticker.upper() in rows[sid].tickers.split()]
    candidates.sort(key=lambda sid: (-len(outlets_of[sid]), -len(reports[sid]), rows[sid].published_at))
    # The detector is the costly step: run it on the best candidates only, until enough are clean.
    lines: list[BriefLine] = []
    for sid in (sid for sid in candidates if not _suspect(rows[sid], rows)):
        if len(lines) >= limit:
            break
        outlets = sorted({r.source for r in reports[sid]})
        named = ", ".join(outlets[:4]) + (" …" if len(outlets) > 4 else "")
        text = f"{_title_of(rows[sid])}: reported by {counted(len(outlets), 'source')} ({named})."
        named_tickers = rows[sid].tickers.split()
        lines.append(BriefLine(text=text, sources=_refs([r.id for r in reports[sid]], rows),
                               ticker=named_tickers[0] if named_tickers else None))
    return lines


def to_draft(brief: DataBrief, signals: Signals, *, topic: str = "", shape: str = "take", max_posts: int = 4,
             public_id: str = "") -> Draft:
    """Render a data brief in all three formats (X in ``shape``) and wrap it as a pending draft."""
    lines = [*([brief.take] if brief.take else []), *(line for s in brief.sections for line in s.lines)]
    cited = tuple(dict.fromkeys(ref.item_id for line in lines for ref in line.sources))
    tickers = tuple(dict.fromkeys(line.ticker for line in lines if line.ticker))
    meta = brief_meta(brief, shape)
    if public_id:
        meta["public_id"] = public_id  # the archive's id for this brief, which its permalink names
    framing = derive_framing(brief, signals)
    if framing:
        meta["framing"] = framing  # derived from the moves and sentiment the brief reports (crew.framing.derive)
    return Draft(
        created_at=brief.generated_at, mode="data", window_start=signals.window_start,
        window_end=signals.window_end, x_thread=tuple(render_x(brief, shape, max_posts)),
        telegram_html=render_telegram(brief), markdown=render_markdown(brief), item_ids=cited,
        tickers=tickers, topic=topic, signals=signals_summary(signals), meta=meta,
    )


def brief_meta(brief: DataBrief, shape: str = "thread") -> dict[str, Any]:
    """What the grounding validator needs beyond the text: each line with the items it cites (a claim is checked
    against its own sources), the title and headings (labels, not claims), and the X shape and permalink."""
    lines = [*([brief.take] if brief.take else []), *(line for s in brief.sections for line in s.lines),
             *brief.thread]
    claims = [{"text": line.text, "item_ids": [ref.item_id for ref in line.sources]} for line in lines]
    labels = [brief.title, f"{brief.title} — {brief.window_label}", brief.window_label,
              *(s.heading for s in brief.sections)]
    meta: dict[str, Any] = {"claims": claims, "labels": labels, "shape": shape}
    if brief.permalink:
        meta["permalink"] = brief.permalink
    if brief.take is not None and brief.take.ticker:
        meta["lead_ticker"] = brief.take.ticker
    return meta


def signals_summary(signals: Signals) -> dict[str, Any]:
    """The signals a draft was built from, as plain data for storage (every count a line states is in it)."""
    return {
        "window_start": signals.window_start.isoformat(), "window_end": signals.window_end.isoformat(),
        "items": signals.items, "stories": signals.stories, "groups": signals.groups,
        "tickers": [{**vars(replace(t, item_ids=t.item_ids[:10])), "baseline_average": round(t.baseline_mentions)}
                    for t in signals.tickers[:20]],
        "narratives": [
            {**{k: v for k, v in vars(n).items() if k != "first_seen"}, "first_seen": n.first_seen.isoformat()}
            for n in signals.narratives[:10]
        ],
    }


def build(memory: Any, drafts: Any, *, now: datetime, window: timedelta = timedelta(hours=24),
          ticker: str | None = None, topic: str | None = None, prices: Any = None,
          validate: Callable[[Draft], ValidationReport] | None = None, link_of: LinkOf | None = None,
          shape: str = "take", max_posts: int = 4, permalink: str = "", public_id: str = "",
          disclaimer: str = DISCLAIMER,
          finish: Callable[[Draft, Signals], Draft] | None = None) -> tuple[Signals, Draft | None]:
    """Compute signals for the window and, if there is anything to report, save a data-brief draft.

    With ``validate`` (the grounding validator) the draft carries its report and is flagged if it fails;
    ``permalink`` is where the archive will serve the brief (public id ``public_id``), "" without one;
    ``finish`` completes the draft (its chart) before it is saved, since a saved draft is at once reviewable.
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
    brief = compose(signals, rows, generated_at=now, ticker=ticker, story_ids=story_ids, link_of=link_of,
                    disclaimer=disclaimer, permalink=permalink)
    if not brief.sections and brief.take is None:
        return signals, None
    label = topic or (f"${ticker.upper()}" if ticker else "")
    draft = to_draft(brief, signals, topic=label, shape=shape, max_posts=max_posts, public_id=public_id)
    if validate is not None:
        report = validate(draft)
        draft = replace(draft, validation=report.to_dict(), status="pending" if report.ok else "flagged")
    if finish is not None:
        draft = finish(draft, signals)
    return signals, drafts.save(draft)
