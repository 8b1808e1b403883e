"""Render a DataBrief as an X thread, a Telegram HTML message and Markdown; pure functions, no I/O."""

from __future__ import annotations

import functools
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
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~|])")
_MD_BLOCK_START = re.compile(r"^(\d+(?=[.)])|(?=[#+=-]))")  # would open a heading, list or rule: escape its mark
_URL_UNSAFE = re.compile(r"[\s()<>\\\x00-\x1f\x7f]")
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,15})(?![\w@])")
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{1,9})(?![\w])")
X_MAX_CASHTAGS = 4  # per post; X's automation rules frown on tag-stuffed posts


@functools.lru_cache(maxsize=4096)
def weighted_length(text: str) -> int:
    """X's weighted length of `text` (URLs 23, emoji and CJK 2)."""
    # Cached: twitter-text's emoji scan is slow, and the same posts are measured again on every page and pass.
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


def lead_line(brief: DataBrief) -> BriefLine | None:
    """The take's line: the brief's own take, else its first line."""
    if brief.take is not None:
        return brief.take
    lines = _lines(brief)
    return lines[0][1] if lines else None


def later_lines(brief: DataBrief) -> list[BriefLine]:
    """The thread's developments after the take: the brief's own, else the sections' other lines."""
    if brief.thread:
        return [line for line in brief.thread if line.sources]
    lead = lead_line(brief)
    return [line for _, line in _lines(brief) if line is not lead and line != lead]


def _x_disclaimer(brief: DataBrief) -> str:
    return _one_line(brief.disclaimer or brief.footer)


def _fits(text: str) -> bool:
    return weighted_length(text) <= X_LIMIT


def _post(text: str, link: str, tail: str = "") -> str | None:
    """`text`, then the link on its own line, then `tail`, the text shortened so all of it fits one post."""
    after = "".join(part for part in (f"\n\n{link}" if link else "", f"\n{tail}" if tail and link else
                                      f"\n\n{tail}" if tail else ""))
    body = _shorten(x_safe(_one_line(text)), lambda t: _fits(t + after))
    return None if body is None else _tag_capped(body + after)


def render_take(brief: DataBrief, *, linked: bool = True) -> str:
    """The take: one post with the most important development, its numbers, at most one link and the disclaimer.

    The link is the brief's permalink when there is one, else the lead's top source (none when not ``linked``).
    """
    lead = lead_line(brief)
    disclaimer = _x_disclaimer(brief)
    if lead is None:
        head = _shorten(x_safe(_one_line(brief.title)), lambda h: _fits(f"{h}\n{NOTHING_TO_REPORT}")) or ELLIPSIS
        post = f"{head}\n{NOTHING_TO_REPORT}"
        return f"{post}\n\n{disclaimer}" if disclaimer and _fits(f"{post}\n\n{disclaimer}") else post
    link = (brief.permalink or _x_link(lead)) if linked else ""
    for tail in (disclaimer, ""):
        for url in dict.fromkeys((link, _x_link(lead) if linked else "", "")):
            candidate = _post(lead.text, url, tail)
            if candidate is not None:
                return candidate
    raise ValueError("the take cannot fit one post")  # unreachable: "…" alone always fits


def render_x_thread(brief: DataBrief, max_posts: int = 4) -> list[str]:
    """The thread: the take, then one development per post, a link only where one source carries the claim,
    and a last post pointing to the full brief (when there is a permalink); at most `max_posts` posts."""
    if max_posts < 2:
        raise ValueError("max_posts must be at least 2: the take and one more")
    pointer = f"Full brief with sources:\n{brief.permalink}" if brief.permalink else ""
    # The last post links the full brief; the take need not link it too (a post with a link costs 13× more).
    take = render_take(brief, linked=not pointer)
    if lead_line(brief) is None:
        return [take]
    posts = [take]
    for line in later_lines(brief):
        if len(posts) >= max_posts:
            break
        link = _x_link(line) if len(line.sources) == 1 else ""
        post = _post(line.text, link) or (_post(line.text, "") if link else None)
        if post is not None:
            posts.append(post)
    while pointer:
        last = posts[-1]
        if len(posts) > 1 and not links_in(last) and _fits(f"{last}\n\n{pointer}"):
            posts[-1] = f"{last}\n\n{pointer}"  # one post fewer, and no second link in it
            break
        if len(posts) < max_posts:
            posts.append(pointer)
            break
        posts.pop()  # the full brief outranks the last development
    return posts


_SCHEME_URL = re.compile(r"https?://[^\s<>\"']+")


def links_in(post: str) -> list[str]:
    """The links in a post: those X finds, and any written out with a scheme."""
    return list(dict.fromkeys([*(e["url"] for e in extract_urls_with_indices(post)), *_SCHEME_URL.findall(post)]))


def render_x(brief: DataBrief, shape: str = "take", max_posts: int = 4) -> list[str]:
    """The brief on X in the given shape: "take" (one post) or "thread"."""
    if shape == "take":
        return [render_take(brief)]
    if shape == "thread":
        return render_x_thread(brief, max_posts)
    raise ValueError(f"unknown X shape {shape!r} (take or thread)")


# --- Telegram ----------------------------------------------------------------------------------------


def _is_web(url: str) -> bool:
    # Ingested URLs are untrusted: only http(s) becomes a link, never javascript:, data: or tg:.
    return url.strip().lower().startswith(("https://", "http://"))


def _tg_source(source: SourceRef) -> str:
    label = html.escape(_clip(source.outlet, _CLIP_OUTLET) or "source")
    return f'<a href="{html.escape(source.url.strip(), quote=True)}">{label}</a>' if _is_web(source.url) else label


def _tg_line(line: BriefLine, bullet: str = "• ", text: str | None = None) -> str:
    shown = _clip(line.text if text is None else text, _CLIP_LINE)
    return f"{bullet}{html.escape(shown)} ({', '.join(_tg_source(s) for s in line.sources)})"


def _lead_text(brief: DataBrief, line: BriefLine) -> str:
    """The take as the full brief's lead paragraph: without the sentence the headline already says."""
    text, title = _one_line(line.text), _one_line(brief.title).rstrip(".")
    rest = text[len(title):].lstrip(".:;, ") if title and text.startswith(title) else ""
    return f"{rest[:1].upper()}{rest[1:]}" if rest else line.text


def _tg_cut_note(brief: DataBrief, left: int) -> str:
    what = f"{left} more section{'s' if left != 1 else ''}"
    if brief.permalink and _is_web(brief.permalink):
        return f'\n\n<a href="{html.escape(brief.permalink, quote=True)}">Read the full brief</a> ({what}).'
    return f"\n\n<i>{what} cut for length.</i>"


def render_telegram(brief: DataBrief, limit: int = TELEGRAM_LIMIT) -> str:
    """The full brief as one Telegram HTML message of at most `limit` characters: headline, the take, then
    sections; past the limit whole sections are cut, with a link to the permalink."""
    lines = _lines(brief)
    head = f"<b>{html.escape(_clip(brief.title, _CLIP_TITLE))}</b>\n<i>{html.escape(_clip(brief.window_label, 64))}</i>"
    footer = f"\n\n<i>{html.escape(_clip(brief.footer, _CLIP_FOOTER))}</i>" if brief.footer.strip() else ""
    take = (f"\n\n{_tg_line(brief.take, '', _lead_text(brief, brief.take))}"
            if brief.take is not None and brief.take.sources else "")
    if not lines and not take:
        return f"{head}\n\n{html.escape(NOTHING_TO_REPORT)}{footer}"
    sections = [(f"\n\n<b>{html.escape(_clip(s.heading, _CLIP_HEADING))}</b>", [f"\n{_tg_line(ln)}" for ln in s.lines])
                for s in brief.sections if s.lines]

    def fits(message: str) -> bool:
        # Telegram counts UTF-16 code units; never fewer than Python's code points, so the safe measure.
        return len(message.encode("utf-16-le")) // 2 <= limit

    # Whole sections are dropped from the end, never characters, so no tag or entity is ever cut.
    for kept in range(len(sections), -1, -1):
        body = "".join(heading + "".join(items) for heading, items in sections[:kept])
        note = _tg_cut_note(brief, len(sections) - kept) if kept < len(sections) else ""
        message = f"{head}{take}{body}{note}{footer}"
        if fits(message):
            if kept == 0 and sections and not take:
                break  # not even one section fits: keep what of the first one does
            return message
    heading, items = sections[0] if sections else ("", [])
    for count in range(len(items), -1, -1):
        cut = len(items) - count
        note = f"\n\n{html.escape(f'…and {cut} more')}" if cut else ""
        message = f"{head}{take}{heading if count else ''}{''.join(items[:count])}{note}" \
                  f"{_tg_cut_note(brief, len(sections) - 1) if len(sections) > 1 else ''}{footer}"
        if fits(message):
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


def _md_line(line: BriefLine, bullet: str = "- ", text: str | None = None) -> str:
    shown = _clip(line.text if text is None else text, _CLIP_LINE)
    return f"{bullet}{_md(shown)} ({', '.join(_md_source(s) for s in line.sources)})"


def render_markdown(brief: DataBrief) -> str:
    """The full brief as a Markdown document: headline, the take, then its sections."""
    lines = _lines(brief)
    out = [f"# {_md(_clip(brief.title, _CLIP_TITLE))}", "", f"_{_md(_clip(brief.window_label, 64))}_"]
    if brief.take is not None and brief.take.sources:
        out += ["", _md_line(brief.take, "", _lead_text(brief, brief.take))]
    elif not lines:
        out += ["", _md(NOTHING_TO_REPORT)]
    for section in brief.sections:
        if section.lines:
            out += ["", f"## {_md(_clip(section.heading, _CLIP_HEADING))}", ""]
            out += [_md_line(line) for line in section.lines]
    if brief.footer.strip():
        out += ["", f"_{_md(_clip(brief.footer, _CLIP_FOOTER))}_"]
    return "\n".join(out) + "\n"
