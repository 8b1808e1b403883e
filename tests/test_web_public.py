"""The public side: published briefs only, by public id; hostile ingested text stays inert; the Atom feed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from memory.drafts import DraftStore
from memory.prices import PriceSnapshot, PriceStore
from memory.state import FetchRecord
from memory.store import Memory
from publish.archive import public_id
from publish.review import ReviewQueue
from sources.item import Item, item_id_for_url
from tests.fakes.publishing import REVIEWERS, add_draft
from tests.web_support import add_users, client_for, sign_in, web_deps

HOSTILE_TITLE = '<script>alert("title")</script><img src=x onerror=alert(1)>'
HOSTILE_TEXT = '</textarea><script>alert("text")</script><a href="javascript:alert(2)">x</a>'


@pytest.fixture
def deps(tmp_path: Path, memory: Memory) -> Any:
    d = web_deps(tmp_path, memory)
    add_users(d)
    return d


def _publish(deps: Any, tag: str, **kwargs: Any) -> Any:
    draft = add_draft(deps.state, tag, **kwargs)
    queue = ReviewQueue(deps.state, reviewers=REVIEWERS)
    queue.approve(draft.id, "alice", override="test")
    queue.finish(draft.id, "published")
    return DraftStore(deps.state).get(draft.id)


def _hostile_item(deps: Any) -> str:
    now = datetime.now(UTC)
    item = Item(id=item_id_for_url("https://evil.example/p"), kind="news", source="wire", url="javascript:alert(3)",
                title=HOSTILE_TITLE, text=HOSTILE_TEXT, published_at=now - timedelta(hours=1),
                fetched_at=now - timedelta(hours=1), tickers=("SOL",))
    fetch = FetchRecord(source="wire", kind="news", url="https://news.example/feed.xml", started_at=now,
                        finished_at=now, status="ok", new=1)
    deps.state.commit_batch([item], [], fetch)
    return item.id


def test_an_unpublished_draft_is_404_on_the_public_side_however_it_is_named(deps: Any) -> None:
    client = client_for(deps)
    for status in ("pending", "flagged", "approved", "rejected", "failed"):
        draft = add_draft(deps.state, status, status=status)
        for path in (f"/b/{public_id(draft)}", f"/b/{draft.id}", f"/b/{draft.id[:12]}"):
            response = client.get(path)
            assert response.status_code == 404, path
        for path in ("/", "/feed.atom", "/t/SOL"):
            assert draft.id not in client.get(path).text and public_id(draft) not in client.get(path).text
    assert client.get("/b/../../etc/passwd").status_code == 404


def test_a_published_brief_has_its_permalink_with_sources_prices_grounding_and_provenance(deps: Any) -> None:
    now = datetime.now(UTC)
    PriceStore(deps.state).add([PriceSnapshot("SOL", now - timedelta(hours=h), 140.0 + h, 2.5, 1e9, 6e10,
                                              "coingecko", "solana") for h in range(0, 20, 2)], now)
    draft = _publish(deps, "a")
    DraftStore(deps.state).update_meta(draft.id, models={"writer": "ollama/qwen3"}, prompt_version="p-42")
    page = client_for(deps).get(f"/b/{public_id(draft)}")
    assert page.status_code == 200
    html = page.text
    assert draft.id not in html  # never the internal id
    assert "solana validators ship a new client" in html  # the text
    assert '<svg class="chart"' in html  # the chart
    assert 'href="https://news.example/a" rel="noopener nofollow"' in html and "wire" in html  # its source
    assert "$SOL" in html and "coingecko" in html  # the price snapshot used
    assert "ollama/qwen3" in html and "p-42" in html and "data brief" in html  # provenance
    assert 'id="grounding"' in html


def test_the_atom_feed_parses_and_lists_the_published_briefs(deps: Any) -> None:
    one, two = _publish(deps, "a"), _publish(deps, "b")
    add_draft(deps.state, "c", status="approved")
    body = client_for(deps).get("/feed.atom")
    assert body.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(body.content)
    assert not feed.bozo, feed.bozo_exception
    links = {e.link for e in feed.entries}
    assert links == {f"http://testserver/b/{public_id(one)}", f"http://testserver/b/{public_id(two)}"}
    assert all(e.title and e.published_parsed for e in feed.entries)
    assert any("solana validators" in e.content[0].value for e in feed.entries)


def test_the_feed_links_to_the_configured_archive_url(tmp_path: Path, memory: Memory) -> None:
    deps = web_deps(tmp_path, memory, archive_url="https://briefs.example.org")
    draft = _publish(deps, "a")
    feed = feedparser.parse(client_for(deps).get("/feed.atom").content)
    assert [e.link for e in feed.entries] == [f"https://briefs.example.org/b/{public_id(draft)}"]


def _inert(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html and "<img src=\"x\"" not in html
    assert not re.search(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", html, re.I)  # never a link target
    assert not re.search(r"<[^>]+\sonerror=", html)
    scripts = re.findall(r"<script[^>]*>", html)
    assert all(re.fullmatch(r'<script src="/static/htmx.min.js" defer>', s) for s in scripts), scripts


def test_hostile_ingested_text_stays_inert_on_every_page(deps: Any) -> None:
    item = _hostile_item(deps)
    draft = add_draft(deps.state, "e", item_ids=(item,))
    store = DraftStore(deps.state)
    store.update_meta(draft.id, claims=[{"text": "a claim", "item_ids": [item]}])
    with deps.state.engine.begin() as conn:  # the brief's own text carries it too (a crew echoing a source)
        from sqlalchemy import update

        from memory import schema
        conn.execute(update(schema.drafts).where(schema.drafts.c.id == draft.id).values(
            markdown=f"# Brief\n{HOSTILE_TITLE}\n[x](javascript:alert(4))", telegram_html=HOSTILE_TEXT,
            topic=HOSTILE_TITLE))
    queue = ReviewQueue(deps.state, reviewers=REVIEWERS)
    queue.approve(draft.id, "alice", override="test")
    queue.finish(draft.id, "published")
    client = client_for(deps)
    pages = ["/", f"/b/{public_id(draft)}", "/t/SOL", "/narratives"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        _inert(response.text)
    sign_in(client, "rita")
    for path in ("/desk?status=open", f"/desk/drafts/{draft.id}", "/desk/status"):
        response = client.get(path)
        assert response.status_code == 200, path
        _inert(response.text)
    detail = client.get(f"/desk/drafts/{draft.id}").text
    assert "&lt;script&gt;alert(&#34;text&#34;)&lt;/script&gt;" in detail or "&lt;script&gt;" in detail
    feed = client.get("/feed.atom").text
    assert "<script>" not in feed


def test_narratives_are_computed_once_per_ttl_however_many_readers(tmp_path: Path, memory: Memory) -> None:
    from dataclasses import replace

    from memory.store import NearDuplicatePolicy
    from tests.test_narratives import HALCYON, make_item

    memory.policy = NearDuplicatePolicy(threshold=0.6, kinds=())  # paraphrases stay separate stories
    now = [datetime.now(UTC)]
    deps = replace(web_deps(tmp_path, memory), clock=lambda: now[0])
    client = client_for(deps)
    assert "No narrative" in client.get("/narratives").text
    memory.add([make_item(t, x, at=now[0] - timedelta(hours=3 - k), tickers=("SOL",), source=f"h{k}")
                for k, (t, x) in enumerate(HALCYON)])
    assert "No narrative" in client.get("/narratives").text  # served from the computation a moment ago
    now[0] += deps.settings.web.narratives_ttl
    page = client.get("/narratives").text
    assert "No narrative" not in page and "Halcyon" in page


def test_a_brief_with_links_renders_them_safe_on_its_permalink_and_the_desk(deps: Any) -> None:
    draft = _publish(deps, "a")
    from dataclasses import replace

    from memory.drafts import DraftStore as Store
    hostile = replace(draft, id="f" * 32, markdown=f"{draft.markdown}\n\n[click](javascript:alert(1)) "
                      "[ok](https://news.example/a) <img src=x onerror=alert(1)>")
    Store(deps.state).save(hostile)
    client = client_for(deps)
    page = client.get(f"/b/{public_id(draft)}")
    assert page.status_code == 200
    assert '<a href="https://news.example/a" rel="noopener nofollow">source</a>' in page.text
    sign_in(client, "rita")
    desk = client.get(f"/desk/drafts/{hostile.id}")
    assert desk.status_code == 200 and 'href="javascript:' not in desk.text and "<img src=x" not in desk.text
    assert '<a href="https://news.example/a" rel="noopener nofollow">ok</a>' in desk.text
