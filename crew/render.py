"""Render a DataBrief as an X thread, a Telegram HTML message and Markdown; pure functions, no I/O."""

from __future__ import annotations

import html
import re
import unicodedata
import warnings
from collections.abc import Callable

from crew.model import BriefLine, DataBrief, SourceRef

# twitter-text-parser 3.0 imports pkg_resources, which warns on every fresh import; the warning is not ours to fix.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from twitter_text import extract_emojis_with_indices, extract_urls_with_indices, parse_tweet

X_LIMIT = 280
TELEGRAM_LIMIT = 4096  # characters of one Telegram message
ELLIPSIS = "…"
NOTHING_TO_REPORT = "Nothing to report in this window."
# Telegram and Markdown have no per-post limit, but one runaway field must not crowd out the rest of the brief.
_CLIP_TITLE, _CLIP_HEADING, _CLIP_LINE, _CLIP_OUTLET, _CLIP_FOOTER = 256, 128, 1000, 64, 512
_HEADING_WEIGHT = 60  # X: a heading is a prefix; most of the post belongs to the line and its link
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~|])")
_MD_BLOCK_START = re.compile(r"^(\d+(?=[.)])|(?=[#+=-]))")  # would open a heading, list or rule: escape its mark
_URL_UNSAFE = re.compile(r"[\s()<>\\\x00-\x1f\x7f]")
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,15})(?![\w@])")
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{1,9})(?![\w])")
X_MAX_CASHTAGS = 4  # per post; X's automation rules frown on tag-stuffed posts


def weighted_length(text: str) -> int:
    """X's weighted length of `text` (URLs 23, emoji and CJK 2)."""
    return int(parse_tweet(text).weightedLength)


def _one_line(text: str) -> str:
    # Untrusted text may carry newlines that would forge headings or list items in every format.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _protected(text: str) -> set[int]:
    """Indices where a cut would split a URL or an emoji sequence."""
    inside: set[int] = set()
    for entity in [*extract_urls_with_indices(text), *extract_emojis_with_indices(text)]:
        start, end = entity["indices"]
        inside.update(range(start + 1, end))
    return inside


def _shorten(text: str, fits: Callable[[str], bool]) -> str | None:
    """The longest of `text` or a prefix of it ending in "…" that fits; None when not even "…" fits."""
    if fits(text):
        return text
    word_cuts = [i for i in range(1, len(text)) if text[i].isspace()]
    for cuts in (word_cuts, None):  # a word boundary first; mid-word only when the first word is too long
        if cuts is None:
            blocked = _protected(text)
            cuts = [i for i in range(1, len(text)) if i not in blocked]
        best: str | None = None
        lo, hi = 0, len(cuts) - 1
        while lo <= hi:  # weight grows with the prefix, so binary search
            mid = (lo + hi) // 2
            candidate = text[: cuts[mid]].rstrip(" ,;:-—") + ELLIPSIS
            if fits(candidate):
                best, lo = candidate, mid + 1
            else:
                hi = mid - 1
        if best is not None and best != ELLIPSIS:
            return best
    return ELLIPSIS if fits(ELLIPSIS) else None


def _clip(text: str, max_chars: int) -> str:
    """`text` on one line, shortened at a word boundary to at most `max_chars`."""
    return _shorten(_one_line(text), lambda s: len(s) <= max_chars) or ""


def _lines(brief: DataBrief) -> list[tuple[int, BriefLine]]:
    """Every (section index, line) in order; a line without sources is an ungrounded claim and an error."""
    out = []
    for index, section in enumerate(brief.sections):
        for line in section.lines:
            if not line.sources:
                raise ValueError(f"brief line has no sources (ungrounded claim): {line.text[:80]!r}")
            out.append((index, line))
    return out


def _header(brief: DataBrief) -> str:
    return f"{_one_line(brief.title)} — {_one_line(brief.window_label)}"


# --- X -----------------------------------------------------------------------------------------------


def _x_link(line: BriefLine) -> str:
    # Prefer a source X will shorten to 23; a URL it does not recognise counts in full and may not fit.
    for source in line.sources:
        url = source.url.strip()
        if [e["indices"] for e in extract_urls_with_indices(url)] == [[0, len(url)]]:
            return url
    return line.sources[0].url.strip()


def x_safe(text: str) -> str:
    """Text as it may appear in an X post: no @mention (X forbids unsolicited ones; "@alice" becomes "alice")."""
    return MENTION.sub(r"\1", text)


def _tag_capped(post: str, most: int = X_MAX_CASHTAGS) -> str:
    """A post with cashtags past the ``most``-th written as plain symbols ("$SOL" → "SOL")."""
    seen = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return match.group(0) if seen <= most else match.group(1)

    return _CASHTAG.sub(keep, post)


def _x_block(prefix: str, line: BriefLine, fits: Callable[[str], bool]) -> str | None:
    """`prefix` + "• text link", the text shortened so the block fits one post; None if the link alone cannot."""
    link = _x_link(line)
    text = _shorten(x_safe(_one_line(line.text)), lambda t: fits(f"{prefix}• {t} {link}"))
    return None if text is None else f"{prefix}• {text} {link}"


def _pack(blocks: list[tuple[str, bool]], fits: Callable[[str], bool], most: int) -> list[tuple[str, int]]:
    """Greedily fill posts with blocks in order, as (body, number of blocks); stops past `most` posts."""
    posts: list[tuple[str, int]] = []
    body, count = "", 0
    for text, starts_section in blocks:
        candidate = f"{body}{chr(10) * (2 if starts_section else 1)}{text}" if body else text
        if body and not fits(candidate):
            posts.append((body, count))
            if len(posts) > most:  # parse_tweet is slow (~2 ms); a thread past the cap is never used whole
                return posts
            body, count = text, 1
        else:
            body, count = candidate, count + 1
    if body:
        posts.append((body, count))
    return posts


def render_x_thread(brief: DataBrief, max_posts: int = 12) -> list[str]:
    """The brief as an X thread of at most `max_posts` posts, each line with a source link."""
    if max_posts < 2:
        raise ValueError("max_posts must be at least 2: a title post and one more")
    lines = _lines(brief)
    # Reserve the widest numbering the thread can have, so packing never has to be redone after numbering.
    reserve = f"\n{max_posts}/{max_posts}"

    def fits(text: str) -> bool:
        return weighted_length(text + reserve) <= X_LIMIT

    worst_note = f"+{len(lines)} more in the full brief"
    footer = _shorten(_one_line(brief.footer), lambda f: fits(f"{worst_note}\n\n{f}")) or ""
    if not lines:
        post = _shorten(_header(brief), lambda h: fits(f"{h}\n{NOTHING_TO_REPORT}")) or ELLIPSIS
        post = f"{post}\n{NOTHING_TO_REPORT}"
        return [f"{post}\n\n{footer}" if footer and fits(f"{post}\n\n{footer}") else post]
    header = _shorten(x_safe(_header(brief)), fits) or ELLIPSIS

    blocks: list[tuple[str, bool]] = []
    started: set[int] = set()
    for section_index, line in lines:
        starts = section_index not in started
        heading = _one_line(brief.sections[section_index].heading) if starts else ""
        prefix = f"{_shorten(heading, lambda h: weighted_length(h) <= _HEADING_WEIGHT) or ''}\n" if starts else ""
        block = _x_block(prefix, line, fits)
        if block is not None:  # an unpostable link drops its line; the "+N more" note counts it
            blocks.append((block, starts))
            started.add(section_index)

    def build(kept: int) -> list[str]:
        # The title leads the first post; lines fill the rest of it rather than spend a post on the title alone.
        bodies = [body for body, _ in _pack([(header, False), *blocks[:kept]], fits, max_posts)]
        omitted = len(lines) - kept
        tail = "\n\n".join(p for p in (f"+{omitted} more in the full brief" if omitted else "", footer) if p)
        if tail and fits(f"{bodies[-1]}\n\n{tail}"):
            bodies[-1] = f"{bodies[-1]}\n\n{tail}"
        elif tail:
            bodies.append(tail)
        return bodies

    kept = len(blocks)
    bodies = build(kept)
    if len(bodies) > max_posts:
        # Packing is prefix-stable: start from what the first max_posts posts hold, then back off.
        kept = sum(count for _, count in _pack([(header, False), *blocks], fits, max_posts)[:max_posts]) - 1
        bodies = build(kept)
        while len(bodies) > max_posts and kept > 0:
            kept -= 1
            bodies = build(kept)
    bodies = [_tag_capped(body) for body in bodies]
    total = len(bodies)
    return [f"{body}\n{i}/{total}" for i, body in enumerate(bodies, 1)] if total > 1 else bodies


# --- Telegram ----------------------------------------------------------------------------------------


def _is_web(url: str) -> bool:
    # Ingested URLs are untrusted: only http(s) becomes a link, never javascript:, data: or tg:.
    return url.strip().lower().startswith(("https://", "http://"))


def _tg_source(source: SourceRef) -> str:
    label = html.escape(_clip(source.outlet, _CLIP_OUTLET) or "source")
    return f'<a href="{html.escape(source.url.strip(), quote=True)}">{label}</a>' if _is_web(source.url) else label


def render_telegram(brief: DataBrief, limit: int = TELEGRAM_LIMIT) -> str:
    """The brief as one Telegram HTML message of at most `limit` characters."""
    lines = _lines(brief)
    head = f"<b>{html.escape(_clip(brief.title, _CLIP_TITLE))}</b>\n<i>{html.escape(_clip(brief.window_label, 64))}</i>"
    footer = f"\n\n<i>{html.escape(_clip(brief.footer, _CLIP_FOOTER))}</i>" if brief.footer.strip() else ""
    if not lines:
        return f"{head}\n\n{html.escape(NOTHING_TO_REPORT)}{footer}"
    headings = [f"\n\n<b>{html.escape(_clip(s.heading, _CLIP_HEADING))}</b>" for s in brief.sections]
    items = [
        f"\n• {html.escape(_clip(line.text, _CLIP_LINE))} ({', '.join(_tg_source(s) for s in line.sources)})"
        for _, line in lines
    ]

    def build(kept: int) -> str:
        # Whole lines are dropped, never characters, so no tag or entity is ever cut.
        parts, current = [head], -1
        for (section_index, _), item in zip(lines[:kept], items, strict=False):
            if section_index != current:
                parts.append(headings[section_index])
                current = section_index
            parts.append(item)
        if kept < len(lines):
            parts.append(f"\n\n{html.escape(f'…and {len(lines) - kept} more')}")
        return "".join(parts) + footer

    for kept in range(len(lines), -1, -1):
        message = build(kept)
        # Telegram counts UTF-16 code units; never fewer than Python's code points, so the safe measure.
        if len(message.encode("utf-16-le")) // 2 <= limit:
            return message
    raise ValueError(f"Telegram limit {limit} is too small for the brief's title and footer")


# --- Markdown ----------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Untrusted text as literal Markdown: no links, emphasis, HTML or block syntax."""
    return _MD_BLOCK_START.sub(r"\1\\", _MD_SPECIAL.sub(r"\\\1", _one_line(text)), count=1)


def _md_url(url: str) -> str:
    # Inside "(...)" a space ends the destination and ")" closes it; percent-encode them and their kin.
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url.strip())


def _md_source(source: SourceRef) -> str:
    label = _md(_clip(source.outlet, _CLIP_OUTLET) or "source")
    return f"[{label}]({_md_url(source.url)})" if _is_web(source.url) else label


def render_markdown(brief: DataBrief) -> str:
    """The brief as a Markdown document."""
    lines = _lines(brief)
    out = [f"# {_md(_clip(brief.title, _CLIP_TITLE))}", "", f"_{_md(_clip(brief.window_label, 64))}_"]
    if not lines:
        out += ["", _md(NOTHING_TO_REPORT)]
    for section in brief.sections:
        if section.lines:
            out += ["", f"## {_md(_clip(section.heading, _CLIP_HEADING))}", ""]
            out += [
                f"- {_md(_clip(line.text, _CLIP_LINE))} ({', '.join(_md_source(s) for s in line.sources)})"
                for line in section.lines
            ]
    if brief.footer.strip():
        out += ["", f"_{_md(_clip(brief.footer, _CLIP_FOOTER))}_"]
    return "\n".join(out) + "\n"
