"""A deterministic detector for ingested text that reads as instructions to an AI (prompt injection).

An item it flags is stored ``suspect``: counted in signals, but never quoted to an agent, linked in a
brief or used as a claim's only support. It runs on sanitised text (``sources.plaintext``), so hidden
and look-alike characters are already gone; it also folds case and spacing itself.
"""

from __future__ import annotations

import re
import unicodedata

# Each pattern is one family of instruction-to-a-model phrasing; the name says which in reports.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("override", r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(?:previous|prior|above|earlier|"
                     r"all|your|the|any)\b[^.\n]{0,30}\b(?:instructions?|prompts?|rules?|guidelines?|directives?|"
                     r"context|messages?)\b"),
        ("new_instructions", r"\b(?:new|updated|real|actual|hidden|secret)\s+(?:system\s+)?(?:instructions?|"
                             r"prompt|directives?|orders)\b\s*[:\-]"),
        ("role_tag", r"<\|?\s*(?:im_start|im_end|system|assistant|user|endoftext|begin_of_text|start_header_id)"
                     r"\s*\|?>|\[/?(?:INST|SYS)\]|<</?SYS>>|^\s*(?:system|assistant)\s*:"),
        ("address_ai", r"\b(?:you are (?:now )?(?:an?|the) (?:ai|assistant|language model|llm|bot|agent|writer|"
                       r"analyst)|as an ai (?:model|assistant)|dear (?:ai|assistant|bot|agent)|(?:attention|note|"
                       r"message) (?:to|for) (?:all )?(?:ai|llms?|bots?|agents?|assistants?|language models?))\b"),
        ("agent_protocol", r"\b(?:final answer\s*:|thought\s*:\s*i (?:now )?(?:know|should)|action input\s*:)"),
        ("publish_command", r"\b(?:auto[_\s-]?publish|approve (?:this|the) (?:draft|brief|post)|"
                            r"(?:post|publish|tweet) (?:this|the following) (?:verbatim|exactly|immediately|now))\b"),
        ("jailbreak", r"\b(?:developer mode|jailbreak|do anything now|DAN mode|system prompt)\b"),
    )
)


def _folded(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def instruction_markers(text: str) -> list[str]:
    """The names of the instruction families ``text`` matches, in a fixed order (empty: looks like data)."""
    flat = _folded(text)
    return [name for name, pattern in _PATTERNS if pattern.search(flat)]


def looks_like_instructions(text: str) -> bool:
    """True when ``text`` reads as instructions to an AI rather than as news or commentary."""
    return bool(instruction_markers(text))
