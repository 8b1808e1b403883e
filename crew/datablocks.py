"""Untrusted text on its way into a prompt: delimited, escaped data blocks, each with its item's id.

Ingested text never reaches a prompt any other way. Inside a block ``& < > { }`` are HTML-escaped, so
no text can close the block (``</data>``), open a fake one, or smuggle a ``{placeholder}`` into crewAI's
prompt templating, and the colon of agent-protocol labels (``Final Answer:``) is escaped too. An item
that reads as instructions to an AI (``sources.injection.is_suspect_row``) is shown by its metadata
only, marked ``suspect="true"``. The "data, not instructions" frame itself is prompt prose in
``prompts/tasks.yaml``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from crew.model import Signals
from sources.injection import is_suspect_row, looks_like_instructions

SHORT_ID = 10  # hex characters of an item id shown to the model: cheap to copy, unique within a run

WITHHELD = "[text withheld: reads as instructions to an AI]"

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "{": "&#123;", "}": "&#125;"})
# crewAI's agents speak a ReAct protocol; its labels in data must not read as the model's own turn.
_PROTOCOL = re.compile(r"\b(final answer|thought|action input|action|observation)(\s*):", re.IGNORECASE)


def neutralise(text: str) -> str:
    """``text`` with every character that could end a block, open a template placeholder or end a turn escaped."""
    return _PROTOCOL.sub(r"\1\2&#58;", text.translate(_ESCAPES))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _attr(value: str) -> str:
    return neutralise(_one_line(value)).replace('"', "&quot;")


class Citations:
    """The stored items a run has shown the model, by the short ids the model cites them with."""

    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}  # full id → item row
        self._short: dict[str, str] = {}  # short id → full id
        self._full: dict[str, str] = {}  # full id → short id

    def add(self, row: Any) -> str:
        """Register an item row; its short id (longer than usual only if two ids share a prefix)."""
        if row.id in self._full:
            return self._full[row.id]
        size = SHORT_ID
        while row.id[:size] in self._short and size < len(row.id):
            size += 2
        short = row.id[:size]
        self._short[short] = row.id
        self._full[row.id] = short
        self.rows[row.id] = row
        return short

    def resolve(self, cited: str) -> str | None:
        """The stored id a citation names (a short id, or a full id shown in this run), else None."""
        cited = cited.strip().lower()
        if cited in self._short:
            return self._short[cited]
        return cited if cited in self._full else None

    def short_ids(self) -> list[str]:
        """The short ids shown so far, in order."""
        return list(self._full.values())

    def __len__(self) -> int:
        return len(self.rows)


def item_block(row: Any, short_id: str, text_limit: int = 400) -> str:
    """One stored item as a data block: id and provenance as attributes, title and clipped text inside.

    A suspect item keeps its metadata (it still counts) but its title and text are withheld.
    """
    suspect = is_suspect_row(row)
    if suspect:
        body = WITHHELD
    else:
        body = _one_line(row.title)
        text = _one_line(row.text or "")
        if text and text != body:
            body = f"{body}\n{text[:text_limit]}{'…' if len(text) > text_limit else ''}"
        body = neutralise(body)
    published = row.published_at.strftime("%Y-%m-%d %H:%M UTC")
    author = f' author="{_attr(row.author)}"' if row.author else ""
    flag = ' suspect="true"' if suspect else ""
    return (f'<data id="{short_id}" source="{_attr(row.source)}" kind="{_attr(row.kind)}"{flag}{author} '
            f'published="{published}" tickers="{_attr(row.tickers)}">\n{body}\n</data>')


def item_blocks(rows: Iterable[Any], cites: Citations, text_limit: int = 400) -> str:
    """Data blocks for ``rows``, registering each with ``cites``."""
    return "\n".join(item_block(row, cites.add(row), text_limit) for row in rows)


def output_block(agent: str, answer: Any) -> str:
    """An earlier agent's parsed answer as a data block for the next agent.

    Re-serialised as compact JSON from the parsed value (nothing the agent wrote outside its JSON
    survives), every string escaped like ingested text, and any string that reads as instructions to an
    AI withheld: an agent that obeyed a payload cannot hand it on.
    """
    body = json.dumps(_scrubbed(answer), ensure_ascii=False, separators=(",", ":"))
    return f'<data id="{_attr(agent)}-output" source="tapewatch {_attr(agent)}" kind="agent output">\n{body}\n</data>'


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        # Unescape first, so text the model copied from a block (already escaped) is escaped once, not twice.
        text = _one_line(html.unescape(value))
        return WITHHELD if looks_like_instructions(text) else neutralise(text)
    if isinstance(value, Mapping):
        return {neutralise(str(key)): _scrubbed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(item) for item in value]
    return value


def signals_block(signals: Signals, cites: Citations, rows: Mapping[str, Any], *, tickers: Sequence[str] = (),
                  max_tickers: int = 6, max_narratives: int = 4, ids_per_line: int = 3) -> str:
    """The window's ranked signals as one data block (labels come from ingested titles, so they are data too)."""
    lines = [f"window: {_span(signals.window_start, signals.window_end)}; {signals.items} items, "
             f"{signals.stories} stories"]
    wanted = {t.upper() for t in tickers}
    ranked = [t for t in signals.tickers if not wanted or t.ticker in wanted][:max_tickers]
    if ranked:
        lines.append("tickers, ranked by breadth (distinct groups of accounts), then growth and volume:")
    for t in ranked:
        price = f" price={t.price_change_pct:+.1f}%" if t.price_change_pct is not None else ""
        ids = _ids(t.item_ids, cites, rows, ids_per_line)
        lines.append(f"${t.ticker}: stories={t.mentions} reports={t.reports} breadth={t.clusters} "
                     f"({', '.join(t.cluster_names[:4])}) growth=x{t.growth:.1f} sentiment={t.sentiment:+.2f}"
                     f"{price} novelty={t.novelty:.0%} items={ids}")
    narratives = [n for n in signals.narratives if not wanted or wanted & set(n.tickers)][:max_narratives]
    if narratives:
        lines.append("narratives (clusters of related stories):")
    for n in narratives:
        lines.append(f"[{n.status}] {n.label}: {n.size} stories, {n.reports} reports, {n.clusters} groups, "
                     f"novelty={n.novelty:.0%} items={_ids(n.item_ids, cites, rows, ids_per_line)}")
    body = neutralise("\n".join(lines))
    return f'<data id="signals" source="tapewatch signals">\n{body}\n</data>'


def _ids(ids: Sequence[str], cites: Citations, rows: Mapping[str, Any], limit: int) -> str:
    shown = [cites.add(rows[i]) for i in ids if i in rows][:limit]
    return ",".join(shown) or "none"


def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
