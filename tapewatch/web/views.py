"""What the pages show, made safe for a browser: Markdown and Telegram HTML as inert HTML, links, SVG charts."""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from markupsafe import Markup

OUTBOUND_REL = "noopener nofollow"
# What Telegram's HTML parse mode knows; anything else is shown as text.
_TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote",
                  "tg-spoiler"}


def safe_url(url: object) -> str:
    """``url`` when it is an absolute http(s) URL, else ``#`` (a ``javascript:`` link from a feed stays inert)."""
    text = str(url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return "#"
    return text if parts.scheme in ("http", "https") and parts.netloc else "#"


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    md.disable("image")  # a brief never embeds remote images (they would be fetched by every reader)

    def link_open(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
        # markdown-it-py binds a render rule to the renderer, so it is called with the renderer first.
        token = tokens[idx]
        href = str(token.attrGet("href") or "")
        token.attrSet("href", safe_url(href))
        token.attrSet("rel", OUTBOUND_REL)
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _markdown()


def markdown_html(text: str) -> Markup:
    """A brief's Markdown as HTML: raw HTML is escaped, links are http(s) only and carry rel=noopener nofollow."""
    return Markup(_rendered(text))


@functools.lru_cache(maxsize=1024)
def _rendered(text: str) -> str:
    # A published brief's text never changes and its page is read again and again: parse it once per process.
    return str(_MD.render(text))


def telegram_html(text: str) -> Markup:
    """A Telegram message as it will look: its tags kept, everything else (scripts, attributes) made text."""
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup.find_all(True):
        if tag.name not in _TELEGRAM_TAGS:
            tag.replace_with(str(tag) if tag.name in ("script", "style") else tag.get_text())
            continue
        href = tag.get("href") if tag.name == "a" else None
        tag.attrs = {}
        if tag.name == "a":
            tag.attrs = {"href": safe_url(href), "rel": OUTBOUND_REL}
    # replace_with(str) inserts text nodes, which BeautifulSoup escapes on output.
    return Markup(str(soup))


def title_of(markdown: str, fallback: str = "Market brief") -> str:
    """The first heading (or line) of a brief's Markdown, as plain text."""
    for line in markdown.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line.replace("\\", "")[:200]
    return fallback


def excerpt(text: str, most: int = 280) -> str:
    """The first ``most`` characters of ``text`` on one line, cut at a word."""
    one = " ".join(str(text or "").split())
    if len(one) <= most:
        return one
    return one[:most].rsplit(" ", 1)[0] + "…"


def price_chart(points: Sequence[tuple[datetime, float]], *, width: int = 640, height: int = 180,
                label: str = "") -> Markup:
    """An inline SVG line chart of (time, price) points; no script and no style attribute (CSP)."""
    if len(points) < 2:
        return Markup('<p class="muted">Not enough price snapshots for a chart.</p>')
    pad = 36
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    low, high = min(p for _, p in points), max(p for _, p in points)
    span_t, span_p = (t1 - t0) or 1.0, (high - low) or max(abs(high) * 0.01, 1e-9)

    def xy(when: datetime, price: float) -> str:
        x = pad + (when.timestamp() - t0) / span_t * (width - 2 * pad)
        y = height - pad / 2 - (price - low) / span_p * (height - pad)
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(t, p) for t, p in points)
    change = (points[-1][1] / points[0][1] - 1) * 100 if points[0][1] else 0.0
    colour = "#1a7f37" if change >= 0 else "#cf222e"
    title = html.escape(f"{label} {points[0][0]:%Y-%m-%d %H:%M} to {points[-1][0]:%Y-%m-%d %H:%M} UTC, "
                        f"{change:+.2f}%".strip())
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>'
        f'<text x="2" y="14" font-size="11" fill="#57606a">${_num(high)}</text>'
        f'<text x="2" y="{height - 4}" font-size="11" fill="#57606a">${_num(low)}</text>'
        f'<text x="{width - 2}" y="14" font-size="11" text-anchor="end" fill="{colour}">{change:+.2f}%</text></svg>')


def _num(value: float) -> str:
    return f"{value:,.2f}" if value >= 1 else f"{value:.6g}"
