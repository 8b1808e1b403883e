"""Rendering a DataBrief to an X thread, Telegram HTML and Markdown: limits, links, escaping."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from crew.model import BriefLine, BriefSection, DataBrief, SourceRef
from crew.render import render_markdown, render_telegram, render_x_thread, weighted_length

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from twitter_text import parse_tweet

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FOOTER = "Data from stored sources; not financial advice."
NUMBERING = re.compile(r"\n(\d+)/(\d+)$")


def src(n: int, outlet: str = "CoinDesk", url: str | None = None) -> SourceRef:
    return SourceRef(f"item-{n}", f"Story {n}", url or f"https://www.coindesk.com/markets/2026/11/20/story-{n}", outlet)


def line(text: str, *sources: SourceRef) -> BriefLine:
    return BriefLine(text, sources)


def brief(*sections: BriefSection, title: str = "tapewatch data brief", footer: str = FOOTER) -> DataBrief:
    return DataBrief(title=title, window_label="last 24h", generated_at=NOW, sections=sections, footer=footer)


def all_urls(b: DataBrief) -> list[str]:
    return [ln.sources[0].url for s in b.sections for ln in s.lines]


def assert_thread_ok(posts: list[str]) -> None:
    """Every post is a valid tweet by X's own counting, and numbering runs 1/n..n/n."""
    for post in posts:
        parsed = parse_tweet(post)
        assert parsed.weightedLength <= 280, post
        assert parsed.valid, post
    if len(posts) > 1:
        numbers = [NUMBERING.search(p) for p in posts]
        assert all(numbers), posts
        assert [(int(m.group(1)), int(m.group(2))) for m in numbers if m] == [
            (i, len(posts)) for i in range(1, len(posts) + 1)
        ]


# --- X thread ----------------------------------------------------------------------------------------


def test_weighted_length_uses_x_rules() -> None:
    long_url = "https://www.coindesk.com/" + "a" * 300
    assert weighted_length(long_url) == 23
    assert weighted_length("🚀🚀🚀") == 6
    assert weighted_length("比特币") == 6
    assert weighted_length("hello") == 5


def test_thread_title_lines_links_and_footer() -> None:
    b = brief(
        BriefSection("Top movers", (line("BTC mentions up 3x across 5 clusters", src(1)), line("ETH flat", src(2)))),
        BriefSection("Narratives", (line("Restaking yields compress", src(3, "Chainwire")),)),
    )
    posts = render_x_thread(b)
    assert_thread_ok(posts)
    assert posts[0].startswith("tapewatch data brief — last 24h")
    assert FOOTER in posts[-1]
    joined = "\n".join(posts)
    for ln in (ln for s in b.sections for ln in s.lines):
        # The line and its link share a post.
        assert any(ln.text in p and ln.sources[0].url in p for p in posts), ln.text
    # Short lines are packed under the title: one post, so no "1/1" numbering.
    assert len(posts) == 1
    assert posts[0].startswith("tapewatch data brief — last 24h\n\nTop movers\n• BTC mentions up 3x")
    assert "\n\nNarratives\n• Restaking" in posts[0]
    assert not NUMBERING.search(posts[0])
    assert joined.count("Top movers") == 1


def test_long_urls_count_23_so_lines_keep_full_text() -> None:
    long = [src(i, url=f"https://www.coindesk.com/markets/{'deep-path-' * 40}{i}") for i in range(6)]
    b = brief(BriefSection("Movers", tuple(line(f"Ticker {i} attention up {i + 2}x", long[i]) for i in range(6))))
    posts = render_x_thread(b)
    assert_thread_ok(posts)
    for i, source in enumerate(long):
        assert any(f"Ticker {i} attention up {i + 2}x {source.url}" in p for p in posts)
    # Each long URL weighs 23, so several fit in one post despite being ~400 characters each.
    assert any(p.count("https://") >= 3 for p in posts)


def test_emoji_and_cjk_heavy_lines_stay_within_280() -> None:
    emoji_line = line("🚀🔥💎🙌 " * 60 + "moon", src(1))
    cjk_line = line("比特币 以太坊 " * 50, src(2))
    family = line("👨‍👩‍👧‍👦" * 200, src(3))
    b = brief(BriefSection("热门", (emoji_line, cjk_line, family)))
    posts = render_x_thread(b)
    assert_thread_ok(posts)
    for ln in (emoji_line, cjk_line, family):
        url = ln.sources[0].url
        post = next(p for p in posts if url in p)
        assert "…" in post  # shortened, with the link kept whole
        assert f"… {url}" in post
    # Shortening never splits a ZWJ emoji sequence.
    family_post = next(p for p in posts if family.sources[0].url in p)
    body = family_post.split("• ", 1)[1].split("…", 1)[0]
    assert body and body.replace("👨‍👩‍👧‍👦", "") == ""


def test_enormous_line_is_shortened_at_a_word_boundary_and_keeps_its_url() -> None:
    words = " ".join(f"word{i}" for i in range(3000))
    url = "https://www.theblock.co/post/" + "x" * 500
    b = brief(BriefSection("Big", (line(words, src(1, "The Block", url)),)))
    posts = render_x_thread(b)
    assert_thread_ok(posts)
    post = next(p for p in posts if url in p)
    match = re.search(r"• (.*)… " + re.escape(url), post)
    assert match, post
    kept = match.group(1)
    assert words.startswith(kept) and words[len(kept)] == " "  # cut between words
    assert len(kept) > 150  # and the space was actually used


def test_single_word_longer_than_a_post_is_cut_mid_word() -> None:
    b = brief(BriefSection("S", (line("A" * 1000, src(1)),)))
    posts = render_x_thread(b)
    assert_thread_ok(posts)
    assert re.search(r"• A+… https://www\.coindesk\.com/", posts[1])


def test_link_x_cannot_shorten_falls_back_to_next_source_or_drops_the_line() -> None:
    too_long = "https://www.coindesk.com/" + "a" * 5000  # past X's URL length cap: counts in full
    b = brief(
        BriefSection(
            "S",
            (
                line("first", src(1, url=too_long), src(2)),
                line("second", src(3, url=too_long)),
                line("third", src(4)),
            ),
        )
    )
    posts = render_x_thread(b)
    assert_thread_ok(posts)
    joined = "\n".join(posts)
    assert f"• first {src(2).url}" in joined
    assert "second" not in joined and f"• third {src(4).url}" in joined
    assert "+1 more in the full brief" in posts[-1]


def test_every_source_url_appears_across_many_sections() -> None:
    sections = tuple(
        BriefSection(
            f"Section {s}", tuple(line(f"Claim {s}.{i} about token {s}{i}", src(s * 10 + i)) for i in range(3))
        )
        for s in range(3)
    )
    b = brief(*sections)
    posts = render_x_thread(b, max_posts=20)
    assert_thread_ok(posts)
    joined = "\n".join(posts)
    for url in all_urls(b):
        assert url in joined
    assert "more in the full brief" not in joined


def test_max_posts_cap_drops_last_lines_and_says_so() -> None:
    lines = tuple(line(f"Story number {i} " + "detail " * 30, src(i)) for i in range(20))
    b = brief(BriefSection("A", lines[:10]), BriefSection("B", lines[10:]))
    posts = render_x_thread(b, max_posts=5)
    assert_thread_ok(posts)
    assert len(posts) == 5
    joined = "\n".join(posts)
    shown = [i for i in range(20) if src(i).url in joined]
    assert shown == list(range(len(shown)))  # a prefix: the lowest lines went first
    match = re.search(r"\+(\d+) more in the full brief", posts[-1])
    assert match and int(match.group(1)) == 20 - len(shown)
    assert FOOTER in posts[-1]


def test_max_posts_two_keeps_title_and_note() -> None:
    lines = tuple(line("x " * 100, src(i)) for i in range(5))
    posts = render_x_thread(brief(BriefSection("A", lines)), max_posts=2)
    assert_thread_ok(posts)
    assert len(posts) == 2
    assert posts[0].startswith("tapewatch data brief — last 24h\n\nA\n• x x")
    assert src(0).url in posts[0]
    assert re.search(r"\+4 more in the full brief", posts[-1])


def test_empty_brief_is_one_post() -> None:
    posts = render_x_thread(brief())
    assert len(posts) == 1
    assert "Nothing to report" in posts[0]
    assert parse_tweet(posts[0]).valid
    # Sections with no lines are empty too.
    assert "Nothing to report" in render_x_thread(brief(BriefSection("Empty", ())))[0]


def test_huge_title_and_footer_are_shortened() -> None:
    b = brief(BriefSection("S", (line("one", src(1)),)), title="T " * 400, footer="F " * 400)
    posts = render_x_thread(b)
    assert_thread_ok(posts)
    assert posts[0].count("…") == 1


def test_line_without_sources_is_refused() -> None:
    b = brief(BriefSection("S", (BriefLine("ungrounded", ()),)))
    for render in (render_x_thread, render_telegram, render_markdown):
        with pytest.raises(ValueError, match="no sources"):
            render(b)


def test_max_posts_below_two_is_refused() -> None:
    with pytest.raises(ValueError):
        render_x_thread(brief(), max_posts=1)


# --- Telegram ----------------------------------------------------------------------------------------

ALLOWED_TAG = re.compile(r'^</?(b|i|code)>$|^<a href="[^"<>]*">$|^</a>$')


class TagChecker(HTMLParser):
    """Records the tag stack so tests can check nesting is balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(message: str) -> TagChecker:
    for tag in re.findall(r"<[^>]*>", message):
        assert ALLOWED_TAG.match(tag), tag
    checker = TagChecker()
    checker.feed(message)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    # No stray "&" that is not an entity.
    assert not re.search(r"&(?!(amp|lt|gt|quot|#x27);)", message)
    return checker


def hostile_brief() -> DataBrief:
    return brief(
        BriefSection(
            "<b>Movers</b> & <i>shakers",
            (
                line("<script>alert(1)</script> BTC & ETH <b>up</b>", src(1, "Chain<wire>")),
                line("Fine line", SourceRef("x", "t", 'https://evil.com/"><script>x</script>', 'Out"let')),
                line("Bad scheme", SourceRef("y", "t", "javascript:alert(1)", "Sneaky")),
            ),
        ),
        title="<b>Brief</b> <script>alert('t')</script> & co",
        footer="<i>not advice</i> & stuff",
    )


def test_telegram_escapes_untrusted_text_and_uses_only_allowed_tags() -> None:
    message = render_telegram(hostile_brief())
    checker = check_html(message)
    text = "".join(checker.text)
    assert "<script>alert('t')</script>" in text  # shown literally, not as markup
    assert "<script>alert(1)</script> BTC & ETH <b>up</b>" in text
    assert "<b>Movers</b> & <i>shakers" in text
    assert message.startswith("<b>&lt;b&gt;Brief&lt;/b&gt; &lt;script&gt;")
    assert "<i>&lt;i&gt;not advice&lt;/i&gt; &amp; stuff</i>" in message
    assert '<a href="https://www.coindesk.com/markets/2026/11/20/story-1">Chain&lt;wire&gt;</a>' in message
    # A quote in the href cannot break out of the attribute.
    assert 'https://evil.com/"><script>x</script>' in checker.hrefs
    assert "&quot;&gt;&lt;script&gt;" in message
    # Non-web schemes never become links.
    assert "javascript:" not in "".join(checker.hrefs)
    assert "• Bad scheme (Sneaky)" in text


def test_telegram_layout() -> None:
    b = brief(BriefSection("Top movers", (line("BTC up", src(1), src(2, "The Block")),)))
    message = render_telegram(b)
    assert message == (
        "<b>tapewatch data brief</b>\n<i>last 24h</i>\n\n<b>Top movers</b>\n"
        '• BTC up (<a href="https://www.coindesk.com/markets/2026/11/20/story-1">CoinDesk</a>, '
        '<a href="https://www.coindesk.com/markets/2026/11/20/story-2">The Block</a>)\n\n'
        f"<i>{FOOTER}</i>"
    )


def test_telegram_length_cap_drops_lines_from_the_end() -> None:
    lines = tuple(line(f"Line {i} & <more> " + "text " * 40, src(i, f"Outlet & {i}")) for i in range(60))
    b = brief(BriefSection("A", lines[:30]), BriefSection("B <x>", lines[30:]))
    full = render_telegram(b, limit=100_000)
    assert len(full) > 4096
    message = render_telegram(b)
    assert len(message) <= 4096
    check_html(message)
    match = re.search(r"…and (\d+) more", message)
    assert match
    shown = [i for i in range(60) if f"Line {i} &amp;" in message]
    assert shown == list(range(len(shown)))
    assert int(match.group(1)) == 60 - len(shown)
    assert message.endswith(f"<i>{FOOTER}</i>")
    small = render_telegram(b, limit=1000)
    assert len(small) <= 1000
    check_html(small)


def test_telegram_empty_and_too_small_limit() -> None:
    assert "Nothing to report" in render_telegram(brief())
    with pytest.raises(ValueError):
        render_telegram(hostile_brief(), limit=20)


# --- Markdown ----------------------------------------------------------------------------------------


def test_markdown_layout_and_links() -> None:
    b = brief(
        BriefSection("Top movers", (line("BTC up", src(1), src(2, "The Block")),)),
        BriefSection("Narratives", (line("ETH", src(3, url="https://x.com/a b(c)d")),)),
    )
    assert render_markdown(b) == (
        "# tapewatch data brief\n\n_last 24h_\n\n## Top movers\n\n"
        "- BTC up ([CoinDesk](https://www.coindesk.com/markets/2026/11/20/story-1), "
        "[The Block](https://www.coindesk.com/markets/2026/11/20/story-2))\n\n"
        "## Narratives\n\n- ETH ([CoinDesk](https://x.com/a%20b%28c%29d))\n\n"
        f"_{FOOTER}_\n"
    )


def test_markdown_escapes_injection_in_title_lines_and_outlets() -> None:
    b = brief(
        BriefSection(
            "*bold* _it_",
            (
                line("[click](javascript:alert(1)) `code` <img src=x>", src(1, "[Out](http://evil.com)")),
                line("# not a heading", src(2)),
                line("1. not a list\n## nor this", src(3)),
                line("Bad scheme", SourceRef("y", "t", "javascript:alert(1)", "Sneaky")),
            ),
        ),
        title="[x](javascript:alert(1))",
    )
    md = render_markdown(b)
    assert md.startswith(r"# \[x\](javascript:alert(1))" + "\n")
    assert r"## \*bold\* \_it\_" in md
    assert r"- \[click\](javascript:alert(1)) \`code\` \<img src=x\>" in md
    assert r"[\[Out\](http://evil.com)](https://www.coindesk.com/markets/2026/11/20/story-1)" in md
    assert r"- \# not a heading" in md
    assert r"- 1\. not a list \#\# nor this" not in md  # only the leading mark needs escaping
    assert r"- 1\. not a list ## nor this" in md
    assert "- Bad scheme (Sneaky)" in md
    # The only link targets are our http(s) sources: every "](" is preceded by an unescaped "]".
    targets = re.findall(r"(?<!\\)\]\(([^)]*)\)", md)
    assert targets and all(t.startswith("https://") for t in targets)


def test_markdown_empty_brief() -> None:
    md = render_markdown(brief(footer=""))
    assert md == "# tapewatch data brief\n\n_last 24h_\n\nNothing to report in this window.\n"
