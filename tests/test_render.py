"""Rendering a DataBrief to an X thread, Telegram HTML and Markdown: limits, links, escaping."""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from crew.model import BriefLine, BriefSection, DataBrief, SourceRef
from crew.render import (
    links_in,
    render_markdown,
    render_take,
    render_telegram,
    render_x,
    render_x_thread,
    weighted_length,
)
from memory.public_ids import permalink

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from twitter_text import parse_tweet

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FOOTER = "Data from stored sources; not financial advice."


def src(n: int, outlet: str = "CoinDesk", url: str | None = None) -> SourceRef:
    return SourceRef(f"item-{n}", f"Story {n}", url or f"https://www.coindesk.com/markets/2026/11/20/story-{n}", outlet)


def line(text: str, *sources: SourceRef) -> BriefLine:
    return BriefLine(text, sources)


def brief(*sections: BriefSection, title: str = "tapewatch data brief", footer: str = FOOTER) -> DataBrief:
    return DataBrief(title=title, window_label="last 24h", generated_at=NOW, sections=sections, footer=footer)


def all_urls(b: DataBrief) -> list[str]:
    return [ln.sources[0].url for s in b.sections for ln in s.lines]


def assert_thread_ok(posts: list[str]) -> None:
    """Every post is a valid tweet by X's own counting, with at most one link."""
    for post in posts:
        parsed = parse_tweet(post)
        assert parsed.weightedLength <= 280, post
        assert parsed.valid, post
        assert len(links_in(post)) <= 1, post


# --- X thread ----------------------------------------------------------------------------------------


def test_weighted_length_uses_x_rules() -> None:
    long_url = "https://www.coindesk.com/" + "a" * 300
    assert weighted_length(long_url) == 23
    assert weighted_length("🚀🚀🚀") == 6
    assert weighted_length("比特币") == 6
    assert weighted_length("hello") == 5


def test_take_is_one_post_with_the_lead_its_link_and_the_disclaimer() -> None:
    b = brief(
        BriefSection("Top movers", (line("BTC mentions up 3x across 5 clusters", src(1), src(2)),
                                    line("ETH flat", src(3)))),
        BriefSection("Narratives", (line("Restaking yields compress", src(4, "Chainwire")),)),
    )
    take = render_take(b)
    assert_thread_ok([take])
    # Without a permalink the take links its top source, and only that.
    assert take == f"BTC mentions up 3x across 5 clusters\n\n{src(1).url}\n{FOOTER}"
    assert len(links_in(take)) == 1
    assert render_x(b, "take") == [take]


def test_take_links_the_permalink_when_there_is_one() -> None:
    lead = line("SOL validators move to the new client.\n9 stories from 5 of 6 account groups.", src(1), src(2))
    b = replace(brief(BriefSection("S", (line("other", src(3)),))), take=lead,
                permalink=permalink("https://briefs.example.com/", "Pub1d-abc") or "", disclaimer="NFA.")
    assert b.permalink == "https://briefs.example.com/b/Pub1d-abc"
    take = render_take(b)
    assert links_in(take) == [b.permalink]
    assert "9 stories from 5 of 6 account groups." in take and take.endswith("NFA.")
    assert "other" not in take


def test_thread_is_the_take_then_one_development_per_post_and_a_pointer() -> None:
    lines = tuple(line(f"Development {i} in plain words.", src(i), src(i + 100)) for i in range(6))
    solo = line("One outlet says the upgrade ships Friday.", src(50, "The Block"))
    b = replace(brief(BriefSection("A", (lines[0], solo, *lines[1:]))), take=line("The lead.", src(99)),
                permalink="https://briefs.example.com/b/abc")
    pointer = "Full brief with sources:\nhttps://briefs.example.com/b/abc"
    posts = render_x_thread(b, max_posts=4)
    assert_thread_ok(posts)
    assert len(posts) == 4
    # The take leads without a link: the last post links the full brief.
    assert posts[0] == render_take(b, linked=False) == "The lead.\n\nData from stored sources; not financial advice."
    # One development per post; a link only where one source carries the claim.
    assert posts[1].startswith("Development 0") and links_in(posts[1]) == []
    assert posts[2].startswith("One outlet says") and links_in(posts[2]) == [solo.sources[0].url]
    # The last post points to the full brief, sharing a post with a development that has no link of its own.
    assert posts[3] == f"Development 1 in plain words.\n\n{pointer}"
    # With room for less, the pointer still ends the thread; it never shares a post with another link.
    short = render_x_thread(b, max_posts=3)
    assert_thread_ok(short)
    assert short == [posts[0], f"Development 0 in plain words.\n\n{pointer}"]
    assert render_x_thread(b, max_posts=2) == short


def test_thread_without_permalink_has_no_pointer_and_respects_max_posts() -> None:
    lines = tuple(line(f"Story number {i} " + "detail " * 30, src(i)) for i in range(20))
    b = brief(BriefSection("A", lines[:10]), BriefSection("B", lines[10:]))
    for most in (2, 3, 4, 6):
        posts = render_x_thread(b, max_posts=most)
        assert_thread_ok(posts)
        assert len(posts) == most
        assert "Full brief" not in "\n".join(posts)
        # The take, then the next lines in order.
        assert [p.split(" ", 3)[2] for p in posts] == [str(i) for i in range(most)]


def test_long_urls_count_23_so_lines_keep_full_text() -> None:
    long = [src(i, url=f"https://www.coindesk.com/markets/{'deep-path-' * 40}{i}") for i in range(6)]
    b = brief(BriefSection("Movers", tuple(line(f"Ticker {i} attention up {i + 2}x", long[i]) for i in range(6))))
    posts = render_x_thread(b, max_posts=6)
    assert_thread_ok(posts)
    for i, source in enumerate(long):
        assert any(p.startswith(f"Ticker {i} attention up {i + 2}x\n\n{source.url}") for p in posts)


def test_emoji_and_cjk_heavy_lines_stay_within_280() -> None:
    emoji_line = line("🚀🔥💎🙌 " * 60 + "moon", src(1))
    cjk_line = line("比特币 以太坊 " * 50, src(2))
    family = line("👨‍👩‍👧‍👦" * 200, src(3))
    b = brief(BriefSection("热门", (emoji_line, cjk_line, family)))
    posts = render_x_thread(b, max_posts=3)
    assert_thread_ok(posts)
    for ln in (emoji_line, cjk_line, family):
        url = ln.sources[0].url
        post = next(p for p in posts if url in p)
        assert f"…\n\n{url}" in post  # shortened, with the link kept whole
    # Shortening never splits a ZWJ emoji sequence.
    family_post = next(p for p in posts if family.sources[0].url in p)
    body = family_post.split("…", 1)[0]
    assert body and body.replace("👨‍👩‍👧‍👦", "") == ""


def test_enormous_line_is_shortened_at_a_word_boundary_and_keeps_its_url() -> None:
    words = " ".join(f"word{i}" for i in range(3000))
    url = "https://www.theblock.co/post/" + "x" * 500
    b = brief(BriefSection("Big", (line(words, src(1, "The Block", url)),)))
    take = render_take(b)
    assert_thread_ok([take])
    match = re.match(r"(.*)…\n\n" + re.escape(url), take)
    assert match, take
    kept = match.group(1)
    assert words.startswith(kept) and words[len(kept)] == " "  # cut between words
    assert len(kept) > 150  # and the space was actually used


def test_single_word_longer_than_a_post_is_cut_mid_word() -> None:
    b = brief(BriefSection("S", (line("A" * 1000, src(1)),)))
    take = render_take(b)
    assert_thread_ok([take])
    assert re.match(r"A+…\n\nhttps://www\.coindesk\.com/", take)


def test_link_x_cannot_shorten_falls_back_to_next_source_or_goes_without() -> None:
    too_long = "https://www.coindesk.com/" + "a" * 5000  # past X's URL length cap: counts in full
    b = brief(BriefSection("S", (line("first", src(1, url=too_long), src(2)), line("second", src(3, url=too_long)))))
    take = render_take(b)
    assert_thread_ok([take])
    assert take.startswith(f"first\n\n{src(2).url}")
    posts = render_x_thread(b, max_posts=2)
    assert_thread_ok(posts)
    assert posts[1].startswith("second") and too_long not in posts[1]


def test_empty_brief_is_one_post() -> None:
    for shape in ("take", "thread"):
        posts = render_x(brief(), shape)
        assert len(posts) == 1
        assert "Nothing to report" in posts[0]
        assert parse_tweet(posts[0]).valid
    # Sections with no lines are empty too.
    assert "Nothing to report" in render_take(brief(BriefSection("Empty", ())))


def test_huge_footer_is_shortened_or_left_out_but_the_post_stays_valid() -> None:
    b = brief(BriefSection("S", (line("one " * 200, src(1)),)), title="T " * 400, footer="F " * 400)
    take = render_take(b)
    assert_thread_ok([take])
    assert take.startswith("one one")


def test_line_without_sources_is_refused() -> None:
    b = brief(BriefSection("S", (BriefLine("ungrounded", ()),)))
    for render in (render_take, render_telegram, render_markdown):
        with pytest.raises(ValueError, match="no sources"):
            render(b)


def test_max_posts_below_two_and_unknown_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        render_x_thread(brief(), max_posts=1)
    with pytest.raises(ValueError, match="shape"):
        render_x(brief(), "megathread")


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


def test_telegram_cuts_whole_sections_with_a_link_to_the_permalink() -> None:
    sections = tuple(BriefSection(f"Section {k} <x>", tuple(line(f"Line {k}.{i} & <more> " + "text " * 30,
                                                                  src(k * 10 + i, f"Outlet & {i}")) for i in range(4)))
                     for k in range(8))
    b = replace(brief(*sections), take=line("The lead & more", src(99)), permalink="https://briefs.example.com/b/x1")
    full = render_telegram(b, limit=100_000)
    assert len(full) > 4096
    message = render_telegram(b)
    assert len(message) <= 4096
    check_html(message)
    shown = [k for k in range(8) if f"Section {k} &lt;x&gt;" in message]
    assert shown == list(range(len(shown))) and 0 < len(shown) < 8
    # Every line of a shown section is there: cuts fall between sections, never inside one.
    for k in shown:
        assert all(f"Line {k}.{i} &amp;" in message for i in range(4))
    assert f'<a href="https://briefs.example.com/b/x1">Read the full brief</a> ({8 - len(shown)} more sections).' \
        in message
    assert message.startswith("<b>tapewatch data brief</b>\n<i>last 24h</i>\n\nThe lead &amp; more (")
    assert message.endswith(f"<i>{FOOTER}</i>")
    # Without a permalink the cut is said plainly.
    plain = render_telegram(replace(b, permalink=""))
    assert f"{8 - len(shown)} more sections cut for length." in plain and "<a href=\"https://briefs" not in plain


def test_telegram_one_huge_section_keeps_the_lines_that_fit() -> None:
    lines = tuple(line(f"Line {i} & <more> " + "text " * 40, src(i, f"Outlet & {i}")) for i in range(60))
    b = brief(BriefSection("A", lines[:30]), BriefSection("B <x>", lines[30:]))
    for limit in (4096, 1000):
        message = render_telegram(b, limit=limit)
        assert len(message) <= limit
        check_html(message)
        shown = [i for i in range(60) if f"Line {i} &amp;" in message]
        assert shown == list(range(len(shown))) and shown
        match = re.search(r"…and (\d+) more", message)
        assert match and int(match.group(1)) == 30 - len(shown)
        assert "1 more section cut for length." in message


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
