"""Replies for the fake LLM server that play the crew's three agents as a well-behaved model would.

The researcher states the titles of the data blocks it was shown (links removed) and cites their ids;
the analyst and the writer reuse those facts. Every claim is thus grounded by construction, so a test
changes one reply to make exactly the mistake it wants to see caught.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from tests.fakes.llm_server import Reply

ROLES = {"researcher": "Market Researcher", "analyst": "Market Analyst", "writer": "Brief Writer"}
_BLOCK = re.compile(r'<data id="([0-9a-f]+)"[^>]*? kind="([a-z]+)"[^>]*?tickers="([^"]*)"[^>]*>\n(.*?)\n</data>',
                    re.DOTALL)
_URL = re.compile(r"\S*https?://\S+|\S+\.example/\S*")


def role_of(body: dict[str, Any]) -> str | None:
    """Which agent a request comes from (crewAI puts the role in the system message)."""
    system = "\n".join(str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "system")
    return next((name for name, role in ROLES.items() if role in system), None)


def all_text(body: dict[str, Any]) -> str:
    """Every message's content, tool results included."""
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def blocks(text: str) -> list[tuple[str, list[str], str]]:
    """(id, tickers, first line) of each item data block in ``text``, unescaped.

    A post or forum thread is one voice: its line comes attributed ("A post claims ..."), as the grounding
    rules ask of a claim resting on a single social or forum source.
    """
    out = []
    for bid, kind, tickers, body in _BLOCK.findall(text):
        line = html.unescape(body.split("\n", 1)[0])
        if kind in ("social", "forum") and line:
            line = f"A {'post' if kind == 'social' else 'forum post'} claims: {line}"
        out.append((bid, tickers.split(), line))
    return out


def _clean(title: str) -> str:
    return " ".join(_URL.sub(" ", title).replace("…", "").split())[:200]


def facts_of(text: str) -> list[dict[str, Any]]:
    """The researcher's facts, found in a later agent's context."""
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r'\{\s*"focus"', text)]:
        try:
            data, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("facts"), list):
            return [f for f in data["facts"] if isinstance(f, dict)]
    return []


def previous_brief(text: str) -> dict[str, Any] | None:
    """The brief a writer sent last time, quoted in a guardrail retry's context."""
    marker = text.find("### Previous result:")
    start = text.find("{", marker) if marker >= 0 else -1
    if start < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "sections" in data else None


def research(body: dict[str, Any], n: int = 4) -> Reply:
    """A fact sheet stating the first ``n`` data blocks' titles."""
    # A careful model states nothing from a withheld (suspect) block.
    found = [b for b in blocks(all_text(body)) if _clean(b[2]) and not b[2].startswith("[text withheld")][:n]
    facts = [{"text": _clean(title), "item_ids": [bid], "tickers": tickers} for bid, tickers, title in found]
    return Reply.json({"focus": "the window's top signals", "facts": facts})


def analysis(body: dict[str, Any]) -> Reply:
    """An analysis whose points restate the facts."""
    facts = facts_of(all_text(body))
    points = [{"text": f"{f['text']} This is what the desk is watching.", "item_ids": f["item_ids"]}
              for f in facts[:3]]
    return Reply.json({"why_it_matters": points[:2], "catalysts": points[2:3], "risks": points[:1],
                       "contrarian": points[1:2]})


def brief(body: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> Reply:
    """A brief whose claims are the facts, plus ``extra`` claims a test wants to slip in.

    On a guardrail retry (no facts in the context, only its last answer) it sends the same brief again.
    """
    text = all_text(body)
    facts = facts_of(text)
    if not facts and (previous := previous_brief(text)) is not None:
        return Reply.json(previous)
    claims = [{"text": f["text"], "item_ids": f["item_ids"], "ticker": (f.get("tickers") or [""])[0]}
              for f in facts]
    sections = [{"heading": "What happened", "claims": claims[:3] or claims}]
    if extra:
        sections.append({"heading": "Why it matters", "claims": extra})
    return Reply.json({"title": "Flows, upgrades and a Fed cut", "take": claims[0], "thread": claims[1:3],
                       "sections": sections})


def well_behaved(body: dict[str, Any]) -> Reply:
    """The reply a careful model would give, by agent."""
    role = role_of(body)
    if role == "researcher":
        return research(body)
    if role == "analyst":
        return analysis(body)
    if role == "writer":
        return brief(body)
    return Reply.fail(500, "fake LLM: request from no crew agent")


_EXAMPLES = {"researcher": '{"focus": "<', "analyst": '{"why_it_matters": [{"text": "<', "writer": '{"title": "<'}


def echo_example(body: dict[str, Any]) -> Reply:
    """A weak model that answers with its task's JSON example, placeholders and all (as Gemma 3 270M did)."""
    role = role_of(body)
    text = all_text(body)
    start = text.find(_EXAMPLES.get(role or "", "\0"))
    if start < 0:
        return Reply(content="I cannot help with that.")
    example = text[start:].replace("[...]", "[]")
    data, _ = json.JSONDecoder().raw_decode(example)
    return Reply.json(data)


def echo_prompt(body: dict[str, Any]) -> Reply:
    """A model that repeats its prompt back: long, and no JSON object of the asked shape."""
    users = [str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "user"]
    return Reply(content=(users[-1] if users else all_text(body)).replace("{", "(").replace("}", ")"))
