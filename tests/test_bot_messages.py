"""Telegram HTML split into messages: every part valid on its own, within the limit, no text lost."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.bot.messages import TAGS, clip, fit_html, plain_text, split_html, u16
from tests.fakes.telegram_api import html_error, html_plain

_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|lt|gt|amp|quot);")


def assert_valid(part: str, limit: int) -> None:
    """What Telegram checks: balanced known tags, every ``&`` an entity, within the limit, something to show."""
    assert html_error(part) is None, (html_error(part), part)
    assert all(_ENTITY.match(part, m.start()) for m in re.finditer("&", part)), part
    assert "<" not in re.sub(r"</?[a-z-]+(\s[^<>]*)?>", "", part), part
    assert u16(part) <= limit
    assert html_plain(part).strip()


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


_words = st.lists(st.sampled_from([*"abcxyz $%.,:;!?'\"&<>", "\n", "  ", "😀", "👍🏽", "é", "中", "e\u0301"]),
                  min_size=1, max_size=60).map(lambda t: html.escape("".join(t), quote=False))
_entities = st.sampled_from(["&amp;", "&lt;", "&gt;", "&quot;", "&#128512;", "&#x1F4A9;"])
_leaf = st.one_of(_words, _entities)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    simple = st.sampled_from(sorted(TAGS - {"a", "span", "tg-emoji"}))
    return st.one_of(
        st.tuples(simple, st.lists(children, max_size=4)).map(lambda t: f"<{t[0]}>{''.join(t[1])}</{t[0]}>"),
        st.lists(children, max_size=4).map(lambda c: f'<a href="https://e.com/?a=1&amp;b=2">{"".join(c)}</a>'),
        st.lists(children, max_size=3).map(lambda c: f'<span class="tg-spoiler">{"".join(c)}</span>'),
    )


telegram_html = st.lists(st.recursive(_leaf, _element, max_leaves=25), min_size=1, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(telegram_html, st.integers(min_value=60, max_value=600))
def test_every_part_of_valid_html_is_valid_and_nothing_is_lost(text: str, limit: int) -> None:
    parts = split_html(text, limit)
    for part in parts:
        assert_valid(part, limit)
    assert _squeeze("".join(html_plain(p) for p in parts)) == _squeeze(html_plain(text))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=800), st.integers(min_value=60, max_value=400))
def test_any_text_becomes_valid_parts(text: str, limit: int) -> None:
    """Stray markup, unknown tags, cut entities or unbalanced tags (a reviewer's edit) never yield a refused part."""
    for part in split_html(text, limit):
        assert_valid(part, limit)


@settings(max_examples=100, deadline=None)
@given(telegram_html)
def test_fit_keeps_the_beginning_and_marks_what_it_left_out(text: str) -> None:
    fitted = fit_html(text, 120, "\n<i>…more</i>")
    if html_plain(text).strip():
        assert_valid(fitted, 120)
        head = _squeeze(html_plain(fitted)).removesuffix("…more")
        assert _squeeze(html_plain(text)).startswith(head)


def test_tags_open_across_a_cut_close_and_reopen_with_their_attributes() -> None:
    text = '<b>bold\n' + "\n".join(f'<a href="https://e.com/{i}">link {i} &amp; more</a>' for i in range(40)) + "</b>"
    parts = split_html(text, 300)
    assert len(parts) > 2
    for part in parts:
        assert_valid(part, 300)
        assert part.startswith("<b>") and part.endswith("</b>")
    long_line = "<i>" + "word " * 400 + "</i>"  # one line longer than the limit: cut at a space, inside <i>
    assert all(p.startswith("<i>") and p.endswith("</i>") for p in split_html(long_line, 200))


def test_limit_counts_utf16_units_like_telegram() -> None:
    parts = split_html("😀" * 5000, 4096)  # 10,000 UTF-16 units
    assert len(parts) == 3 and all(u16(p) <= 4096 for p in parts)
    assert "".join(parts) == "😀" * 5000  # never half a surrogate pair


def test_lines_stay_whole_when_they_fit() -> None:
    text = "\n".join(f"• line {i} <a href=\"https://e.com/{i}\">[{i}]</a>" for i in range(400))
    parts = split_html(text, 4096)
    assert len(parts) > 1 and "\n".join(parts) == text


def test_unknown_markup_is_shown_not_refused() -> None:
    assert split_html("a<br>b & c > d <b>open", 100) == ["a&lt;br&gt;b &amp; c &gt; d <b>open</b>"]
    assert plain_text("<b>x &amp; y</b> <poison>") == "x & y <poison>"


def test_tags_nested_deeper_than_a_message_holds_go_out_as_plain_words() -> None:
    deep = "<b>" * 300 + "x &amp; y " * 100 + "</b>" * 300
    parts = split_html(deep, 200)
    for part in parts:
        assert_valid(part, 200)
    assert _squeeze("".join(html_plain(p) for p in parts)) == _squeeze("x & y " * 100)
    with pytest.raises(ValueError, match="too small"):
        split_html("anything", 8)


def test_a_plain_notice_is_clipped_in_utf16_units() -> None:
    assert clip("short") == "short"
    clipped = clip("😀" * 3000, 4096)
    assert u16(clipped) <= 4096 and clipped.endswith("…") and clipped.startswith("😀")
