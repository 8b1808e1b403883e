"""A deterministic detector for ingested text that reads as instructions to an AI (prompt injection).

An item it flags is stored ``suspect``: counted in signals, but never quoted to an agent, linked in a
brief or used as a claim's only support. Text is normalised before matching: Unicode compatibility
forms, invisible and tag characters, look-alike Cyrillic/Greek letters, leetspeak digits, letters spaced
out or dotted apart, and base64-wrapped payloads. The families of wording are in
``sources.injection_patterns`` (with the rule for quoted versus reported wording), ``injection_tags`` and
``injection_languages``.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from re import _constants as _sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

from sources import injection_patterns as fam
from sources.injection_languages import NATIVE
from sources.injection_tags import CASED, TAGS

# Look-alikes of Latin letters (after case folding) from Cyrillic, Greek, Armenian and IPA; NFKC already
# folds full-width and mathematical letters.
_CONFUSABLES = str.maketrans({
    "а": "a", "б": "b", "в": "b", "г": "r", "е": "e", "ё": "e", "з": "3", "и": "u", "й": "u", "к": "k",
    "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ь": "b",
    "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "һ": "h", "ү": "y",
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "ς": "c", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ɑ": "a", "ɡ": "g", "ı": "i", "ȷ": "j", "ℓ": "l",
    "ɩ": "i", "ʀ": "r", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ꜱ": "s", "ᴛ": "t",
    "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "\u2018": "'", "\u2019": "'", "\u02bc": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
})
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "9": "g", "@": "a", "$": "s"}
_LEET_TOKEN = re.compile(r"\S*[a-z]\S*")
_LEET_CHAR = re.compile(r"(?<=[a-z0-9])[013457@$9]|[0134579](?=[a-z])")  # "$zen", "@grok": a cashtag, a handle
# Letters spelled apart: "i g n o r e", "i.g.n.o.r.e", "i-g-n-o-r-e".
_SPACED = re.compile(r"(?<![a-z])(?:[a-z][ .\-_*·•~+|/]{1,2}){3,}[a-z](?![a-z])")
_JOINERS = re.compile(r"(?<=[a-z])(?:[_*·•~+]+|-)(?=[a-z])")
_PUNCTUATED = re.compile(r"(?:\b[a-z]{2,}[^\w\s]+\s*){3,}[a-z]{2,}")
_SLANG_WORDS = {"ur": "your", "u": "you", "pls": "please", "plz": "please", "da": "the", "ya": "you", "yr": "your"}
_SLANG = re.compile(r"\b(?:" + "|".join(_SLANG_WORDS) + r")\b")
_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_TAG_CHARS = re.compile("[\U000e0020-\U000e007e]+")
_LEAD_END = re.compile(r"(?:[^\w\s]|\b(?:" + fam.LEAD_WORDS + r"))\s*$", re.IGNORECASE)
_WINDOW = 80  # characters of context around a match that gating looks at
_REACH = 400  # a match lies within this many characters of a literal it requires (patterns span less)

_FLAGS = re.IGNORECASE | re.DOTALL


Compiled = tuple[str, re.Pattern[str], str, frozenset[str], frozenset[str]]


def _required(items: Any) -> set[str] | None:
    """Literal strings one of which every match of a parsed pattern contains (None: no such set)."""
    best: set[str] | None = None
    prefix = ""

    def keep(found: set[str] | None) -> None:
        nonlocal best
        if found and (best is None or min(map(len, found)) > min(map(len, best))):
            best = found

    for op, arg in [*items, (None, None)]:
        if op is _sre.LITERAL:
            prefix += chr(arg)
            continue
        if len(prefix) >= 2:
            keep({prefix})
        prefix = ""
        if op is _sre.SUBPATTERN:
            keep(_required(arg[-1]))
        elif op is _sre.BRANCH:
            options = [_required(branch) for branch in arg[1]]
            if all(options):
                keep(set().union(*options))  # type: ignore[arg-type]
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and arg[0] >= 1:
            keep(_required(arg[2]))
    return best


def _starts(items: Any) -> set[str] | None:
    """The literal strings every match of a parsed pattern starts with (None: it can start otherwise)."""
    prefix = ""
    for op, arg in items:
        if op is _sre.AT and not prefix:
            continue
        if op is _sre.LITERAL:
            prefix += chr(arg)
            continue
        if prefix:
            return {prefix}
        if op is _sre.SUBPATTERN:
            return _starts(arg[-1])
        if op is _sre.BRANCH:
            options = [_starts(branch) for branch in arg[1]]
            return set().union(*options) if all(options) else None  # type: ignore[arg-type]
        return None
    return {prefix} if prefix else None


def _compile(name: str, pattern: str, gate: str, flags: int) -> Compiled:
    # Two shortcuts, both exact: a pattern whose matches all start with known literals is tried only where
    # one occurs; any other runs only near a literal every match contains. Most text holds few of either,
    # and substring search costs far less than the regex engine trying every position.
    parsed = _parser.parse(pattern, flags)
    starts, needed = _starts(parsed), _required(parsed) or set()
    if flags & re.IGNORECASE:
        needed = {word.casefold() for word in needed}
        starts = {word.casefold() for word in starts} if starts else None
    return name, re.compile(pattern, flags), gate, frozenset(needed), frozenset(starts or ())


@lru_cache(maxsize=1)
def _compiled() -> dict[str, list[Compiled]]:
    return {
        "latin": [_compile(name, p, gate, _FLAGS) for name, p, gate in fam.LATIN],
        "native": [_compile(name, p, gate, _FLAGS) for name, p, gate in NATIVE],
        "tags": [_compile(name, p, "any", _FLAGS) for name, p in TAGS],
        "cased": [_compile(name, p, "any", re.DOTALL) for name, p in CASED],
        "squashed": [_compile(name, p, "any", 0) for name, p in fam.SQUASHED],
    }


def _hidden_payloads(text: str) -> list[str]:
    """Text smuggled as Unicode tag characters or base64 that decodes to readable words."""
    runs = ["".join(chr(ord(c) - 0xE0000) for c in run) for run in _TAG_CHARS.findall(text)]
    found = [" ".join(runs)] if runs else []
    for token in _B64.findall(text):
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = raw.decode("utf-8", "replace")
        readable = sum(ch.isprintable() and ord(ch) < 0x3000 for ch in decoded)
        if " " in decoded and readable >= 0.9 * len(decoded):
            found.append(decoded)
    return found


def _base(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # Format characters (zero-width, bidi, soft hyphen, tags) carry no meaning in news text.
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _joined(run: re.Match[str]) -> str:
    """Letters spelled apart, joined: "i.g.n.o.r.e y.o.u.r" keeps its spaces as word gaps, "i g n o r e" cannot."""
    text = run.group(0)
    if re.search(r"[a-z][.\-_*·•~+|/]", text):
        return " ".join(re.sub(r"[^a-z ]", "", text).split())
    return re.sub(r"[^a-z]", "", text)


def _deleet(text: str, one: str) -> str:
    table = {**_LEET, "1": one}

    def token(m: re.Match[str]) -> str:
        return _LEET_CHAR.sub(lambda c: table[c.group(0)], m.group(0))

    return _LEET_TOKEN.sub(token, text)


def _views(text: str) -> dict[str, list[str]]:
    """The normalised forms of ``text`` each family is matched against."""
    cased = " ".join(_base(text).split())
    native = cased.casefold()
    # Accents off, look-alikes to Latin, joiners and hyphens between letters to spaces.
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", native) if not unicodedata.combining(ch))
    folded = _JOINERS.sub(" ", folded.translate(_CONFUSABLES))
    spaced = bool(_SPACED.search(folded))
    joined = _SPACED.sub(_joined, folded) if spaced else folded
    joined = _SLANG.sub(lambda m: _SLANG_WORDS[m.group(0)], joined)
    latin = [_deleet(joined, "i")]
    if "1" in joined:
        latin.append(_deleet(joined, "l"))
    if _PUNCTUATED.search(joined):
        # "IGNORE. ALL. PREVIOUS." reads as one phrase once the stops between its words are gone.
        latin.append(" ".join(re.sub(r"[^\w\s']", " ", latin[0]).split()))
    squashed = [re.sub(r"[^a-z]", "", v) for v in latin] if spaced else []
    return {"cased": [cased], "native": [native], "tags": [native, folded], "latin": latin, "squashed": squashed}


def _imperative(view: str, start: int) -> bool:
    """The match at ``start`` begins a command: at the start, after a symbol, a softener or a modal."""
    before = view[max(0, start - _WINDOW):start]
    return not before.strip() or bool(_LEAD_END.search(before))


def _named(view: str, start: int, end: int) -> bool:
    """The phrase is named as a thing ("the 'ignore previous instructions' attack"), not said."""
    before, after = view[max(0, start - _WINDOW):start], view[end:end + _WINDOW]
    if not fam.MENTION_AFTER.search(after):
        return False
    quoted = before.rstrip().endswith(("'", '"', "\u201c")) and after.lstrip()[:1] in ("'", '"', "\u201d")
    return quoted or bool(fam.MENTION_BEFORE.search(before))


def _passes(gate: str, view: str, match: re.Match[str]) -> bool:
    if gate == "any":
        return True
    if _named(view, match.start(), match.end()):
        return False
    if gate == "lead":
        return _imperative(view, match.start())
    if _imperative(view, match.start()):
        return True
    return not fam.REPORTED.search(view[max(0, match.start() - _WINDOW):match.start()])


def _spans(view: str, needed: frozenset[str]) -> list[tuple[int, int]]:
    """Where a pattern can match in ``view``: near an occurrence of a literal it requires (anywhere: none known)."""
    if not needed:
        return [(0, len(view))]
    spots: list[tuple[int, int]] = []
    for word in needed:
        at = view.find(word)
        while at >= 0:
            spots.append((max(0, at - _REACH), min(len(view), at + len(word) + _REACH)))
            at = view.find(word, at + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spots):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _families(views: dict[str, list[str]]) -> Iterable[str]:
    for kind, patterns in _compiled().items():
        for view in views[kind]:
            for name, pattern, gate, needed, starts in patterns:
                # Positions stay those of the whole view, so anchors, lookbehinds and the gates see the context.
                if starts:
                    found: Iterable[re.Match[str] | None] = (pattern.match(view, at) for at in _offsets(view, starts))
                else:
                    found = (m for start, end in _spans(view, needed) for m in pattern.finditer(view, start, end))
                if any(m is not None and _passes(gate, view, m) for m in found):
                    yield name


def _offsets(view: str, words: frozenset[str]) -> list[int]:
    """Every position in ``view`` where one of ``words`` begins, in order."""
    found = set()
    for word in words:
        at = view.find(word)
        while at >= 0:
            found.add(at)
            at = view.find(word, at + 1)
    return sorted(found)


def instruction_markers(text: str) -> list[str]:
    """The names of the instruction families ``text`` matches, in a fixed order (empty: looks like data)."""
    if not text:
        return []
    found: set[str] = set()
    for part in (text, *_hidden_payloads(text)):
        found.update(_families(_views(part)))
    return [name for name in fam.ORDER if name in found]


def looks_like_instructions(text: str) -> bool:
    """True when ``text`` reads as instructions to an AI rather than as news or commentary."""
    return bool(instruction_markers(text))


def is_suspect_row(row: Any) -> bool:
    """A stored item to count but never quote: flagged at ingest, or by today's detector (older rows)."""
    if bool(getattr(row, "suspect", 0)):
        return True
    return looks_like_instructions(f"{getattr(row, 'title', '') or ''}\n{getattr(row, 'text', '') or ''}")
