"""Bad replies, as a retry may show them: a short escaped excerpt, and the values a weak model copied from
the prompt's JSON examples instead of writing its own.

The tasks' examples (``prompts/tasks.yaml``) write every value as a ``<placeholder>``; a reply holding one,
with or without its angle brackets, parroted the example and is rejected as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml
from pydantic import BaseModel

from crew.datablocks import WITHHELD, neutralise
from sources.injection import instruction_markers

_PLACEHOLDER = re.compile(r"<([^<>\n]{3,80})>")
_WRAPPED = re.compile(r"^\s*<[^<>]{1,80}>\s*$")
EXCERPT_CHARS = 240


@lru_cache(maxsize=1)
def placeholders() -> frozenset[str]:
    """The placeholder phrases of the tasks' examples, normalised ("id of a data block", …)."""
    tasks = yaml.safe_load(files("prompts").joinpath("tasks.yaml").read_text(encoding="utf-8")) or {}
    found = {_norm(m.group(1)) for task in tasks.values() if isinstance(task, dict)
             for m in _PLACEHOLDER.finditer(str(task.get("expected_output", "")))}
    return frozenset(p for p in found if p and p != "...")


def _norm(text: str) -> str:
    return " ".join(text.strip().strip("<>\"'`.").lower().split())


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def echoed(reply: BaseModel) -> list[str]:
    """The values of ``reply`` that are the examples' placeholders rather than content."""
    known = placeholders()
    hits = [s for s in _strings(reply.model_dump()) if _WRAPPED.match(s) or (s.strip() and _norm(s) in known)]
    return list(dict.fromkeys(" ".join(h.split())[:60] for h in hits))


def echoed_text(raw: str) -> list[str]:
    """The examples' ``<placeholders>`` that a raw reply holds, found before it is even parsed."""
    text = " ".join(str(raw).lower().split())
    return [f"<{p}>" for p in sorted(placeholders()) if f"<{p}>" in text]


def excerpt(raw: str, limit: int = EXCERPT_CHARS) -> str:
    """What a retry shows of a bad reply: its first characters, escaped, and how long it was in all."""
    text = " ".join(str(raw).split())
    if not text:
        return "(an empty reply)"
    cut = text[:limit]
    # A reply may hold our JSON keys or crewAI's protocol words; any other sign of instructions withholds it.
    if set(instruction_markers(cut)) - {"agent_protocol"}:
        return WITHHELD
    if len(text) <= limit:
        return neutralise(cut)
    return f"{neutralise(cut)}… ({len(text):,} characters in all, the rest not shown)"
