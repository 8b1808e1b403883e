"""Compliance phrasing: banned wording by pattern families, and a disclaimer that is really there.

The families (guarantees, price targets, calls to action, certainty, dated hype) are data, in
``prompts/compliance/global.yaml`` (the "global" profile); the file's header explains how a pattern
is written. The per-jurisdiction profiles (``crew.profiles``) compile through the same ``compile_rules``,
topics included, so there is one matcher. Text is matched as a skeleton (``crew.textfold``), so look-alike
letters, dash variants, zero-width characters, emoji, spelled-out letters and leetspeak don't hide a phrase.

The disclaimer counts only when a reader sees it as written and meant: not negated ("not not financial
advice"), questioned or retracted ("Not financial advice? Think again", "(jk)"), contradicted ("this is
financial advice"), struck through, split by markup or moved into a link label. Pass each format as
rendered (the X text, the Telegram HTML, the Markdown), not reduced to plain text, so markup is seen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from crew.model import Problem
from crew.textfold import HIDDEN, LINK, Reading, Visible, display_char, readings, skeleton_pattern, visible
from sources.errors import ConfigError

PROFILE = "global.yaml"
GAP = r"(?:[\s\-:!]+)"  # a space in a pattern: spaces, line breaks, hyphens, colons, "!" ("risk ?free": or none)
# Letters and digits bound a pattern; CJK characters do not, since Chinese and Japanese run words together.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_EDGE_BEFORE, _EDGE_AFTER = rf"(?<![^\W_{_CJK}])", rf"(?![^\W_{_CJK}])"
_MACRO = re.compile(r"%([a-z_]+)%")
_SENTENCE_END = re.compile(r"[.!?;]+(?=[\s\"')\]]|$|[\u3000-\u9fff])|\u3002+|\n")


VERIFY = "verify before relying on it"
ACTIONS = ("block", "needs_override")


@dataclass(frozen=True)
class Source:
    """The document and article a rule rests on; ``verify`` when its wording could not be checked offline."""

    document: str
    article: str = ""
    verify: bool = False

    def cite(self) -> str:
        """"Yinfa [2026] No. 42, III (7) (verify before relying on it)"."""
        where = f"{self.document}, {self.article}" if self.article else self.document
        return f"{where} ({VERIFY})" if self.verify else where


@dataclass(frozen=True)
class Rule:
    """One compiled pattern of a family, the contexts that excuse it and those it needs (a topic's ``with``)."""

    pattern: re.Pattern[str]
    unless: tuple[re.Pattern[str], ...]
    needs: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Family:
    """A family of banned phrasing or a restricted topic, with its examples, action and source."""

    id: str
    label: str
    rule: str
    rules: tuple[Rule, ...]
    must_catch: tuple[str, ...]
    must_not_catch: tuple[str, ...]
    kind: str = "phrasing"  # or "topic"
    action: str = "needs_override"  # or "block": the channel is refused, no override
    reason: str = ""
    source: Source = Source("tapewatch house rules")
    profile: str = "global"

    def matches(self, texts: Sequence[Reading]) -> list[tuple[int, int]]:
        """Spans (indices into the visible text) this family flags in any reading of it."""
        spans = set()
        for rule in self.rules:
            for reading in texts:
                for m in rule.pattern.finditer(reading.text):
                    if m.end() > m.start() and not _excused(reading.text, m.start(), m.end(), rule.unless) \
                            and _needed(reading.text, m.start(), m.end(), rule.needs):
                        spans.add(_visible_span(reading, m.start(), m.end()))
        return _merged_spans(spans)


def _visible_span(reading: Reading, start: int, end: int) -> tuple[int, int]:
    return reading.origin[start], reading.last[end - 1] + 1


def _merged_spans(spans: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping matches of one family as one span: "to the moon" + "moon by Friday"."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def check_compliance(text: str, where: str, *, disclaimer: str, require_disclaimer: bool,
                     banned_phrases: Sequence[str] = (), rules: Sequence[Family] | None = None) -> list[Problem]:
    """Banned phrasing, restricted topics (``rules``: the global families unless given) and a missing, negated
    or altered disclaimer in ``text`` (plain, Telegram HTML or Markdown)."""
    vis = visible(text)
    texts = readings(vis)
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for family in families() if rules is None else rules:
        for start, end in family.matches(texts):
            words = _snippet(vis, start, end)
            key = (family.profile, family.id, words.casefold())
            if key not in seen:
                seen.add(key)
                problems.append(Problem("banned_phrase" if family.kind == "phrasing" else "restricted_topic",
                                        f"{family.label}: '{words}'", where, profile=family.profile,
                                        rule=family.id, source=family.source.cite(), action=family.action))
    for phrase, pattern in _phrase_patterns(tuple(banned_phrases)):
        # A configured phrase is named as configured, the way the old phrase list reported it.
        if any(m.end() > m.start() for r in texts for m in pattern.finditer(r.text)):
            problems.append(Problem("banned_phrase", f"banned phrase {phrase!r}", where))
    if require_disclaimer and disclaimer.strip():
        reason = disclaimer_problem(vis, disclaimer)
        if reason:
            problems.append(Problem("missing_disclaimer", f"the required disclaimer {disclaimer!r} {reason}", where))
    return problems


@cache
def families(profile: str = PROFILE) -> tuple[Family, ...]:
    """The families of a shipped profile file, compiled once."""
    try:
        data = yaml.safe_load(files("prompts").joinpath("compliance", profile).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"compliance profile {profile}: {' '.join(str(exc).split())}") from exc
    return compile_rules(data, profile)


def compile_rules(data: Mapping[str, Any], where: str) -> tuple[Family, ...]:
    """A profile's families and topics, compiled; ConfigError naming ``where`` and the rule when one is bad."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"compliance profile {where}: not a mapping of profile, families, topics")
    macros = {**(data.get("macros") or {}), **(data.get("shared") or {})}
    defaults = data.get("defaults") or {}
    out = []
    for kind, key in (("phrasing", "families"), ("topic", "topics")):
        for n, spec in enumerate(data.get(key) or [], 1):
            name = spec.get("id", f"#{n}") if isinstance(spec, Mapping) else f"#{n}"
            try:
                out.append(_family(spec, kind, macros, defaults, str(data.get("profile", where))))
            except re.error as exc:
                raise ConfigError(f"compliance profile {where}, rule {name}: a pattern does not compile "
                                  f"({exc})") from exc
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ConfigError(f"compliance profile {where}, rule {name}: {type(exc).__name__}: {exc}") from exc
    ids = [f.id for f in out]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise ConfigError(f"compliance profile {where}: rule ids repeat ({', '.join(repeated)})")
    return tuple(out)


def _family(spec: Mapping[str, Any], kind: str, macros: Mapping[str, str], defaults: Mapping[str, Any],
            profile: str) -> Family:
    shared_unless = [_expand(u, macros) for u in spec.get("unless", [])]
    if spec.get("negatable"):
        shared_unless.append(_expand(macros["negation"], macros))
    needs = tuple(_pattern(_expand(w, macros)) for w in spec.get("with", []))
    entries = list(spec.get("patterns", [])) + [_ticker(t) for t in spec.get("tickers", [])]
    if not entries:
        raise ValueError("no patterns or tickers")
    rules = []
    for entry in entries:
        entry = {"re": entry} if isinstance(entry, str) else entry
        unless = shared_unless + [_expand(u, macros) for u in entry.get("unless", [])]
        rules.append(Rule(_pattern(_expand(entry["re"], macros)),
                          tuple(re.compile(skeleton_pattern(u)) for u in unless), needs))
    action = str(spec.get("action", defaults.get("action", "needs_override")))
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    src = spec.get("source", defaults.get("source"))
    if not isinstance(src, Mapping) or not src.get("document"):
        raise ValueError("every rule names its source document (source: {document, article})")
    source = Source(str(src["document"]), str(src.get("article") or ""), bool(src.get("verify", False)))
    return Family(str(spec["id"]), str(spec["label"]), str(spec.get("rule", "")), tuple(rules),
                  tuple(map(str, spec.get("must_catch", []))), tuple(map(str, spec.get("must_not_catch", []))),
                  kind=kind, action=action, reason=str(spec.get("reason", defaults.get("reason", ""))),
                  source=source, profile=profile)


def _ticker(symbol: Any) -> str:
    """A ticker of a topic's set: as a cashtag always, as a bare word only from four letters ("usdt", not "op")."""
    sym = re.escape(str(symbol).strip().lower().lstrip("$"))
    if not re.fullmatch(r"[a-z0-9]{2,10}", sym):
        raise ValueError(f"ticker {symbol!r} is not 2-10 letters or digits")
    return f"\\${sym}" if len(sym) < 4 else f"\\$?{sym}"


def _expand(pattern: str, macros: Mapping[str, str]) -> str:
    for _ in range(5):  # macros may use macros; five levels is plenty and stops a cycle
        pattern = _MACRO.sub(lambda m: f"(?:{macros[m.group(1)]})", pattern)
    if _MACRO.search(pattern):
        raise ValueError(f"macros nest too deep in {pattern[:60]!r}")
    return pattern


def _pattern(source: str) -> re.Pattern[str]:
    """A family pattern: skeleton letters, spaces as word gaps, bounded by non-letters."""
    spaced = re.sub(r"(\\.)| ", lambda m: m.group(1) or GAP, skeleton_pattern(source))
    return re.compile(f"{_EDGE_BEFORE}(?:{spaced}){_EDGE_AFTER}")


@cache
def _phrase_patterns(phrases: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """User-configured literal phrases, matched on the same skeleton as the families."""
    out = []
    for phrase in phrases:
        words = readings(visible(phrase))[0].text.split()
        if words:
            out.append((phrase, re.compile(_EDGE_BEFORE + GAP.join(map(re.escape, words)) + _EDGE_AFTER)))
    return tuple(out)


def _excused(text: str, start: int, end: int, unless: Sequence[re.Pattern[str]]) -> bool:
    if not unless:
        return False
    sentence = _sentence(text, start, end)
    return any(u.search(sentence) for u in unless)


def _needed(text: str, start: int, end: int, needs: Sequence[re.Pattern[str]]) -> bool:
    """A topic with ``with`` counts only in a sentence that also says one of those things."""
    if not needs:
        return True
    sentence = _sentence(text, start, end)
    return any(n.search(sentence) for n in needs)


def _sentence(text: str, start: int, end: int) -> str:
    """The sentence around a match, the match replaced by "§"."""
    left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    right = next((m.start() for m in _SENTENCE_END.finditer(text, end)), len(text))
    return " ".join(f"{text[left:start]}§{text[end:right]}".split())


def _snippet(vis: Visible, start: int, end: int) -> str:
    """The flagged words as the reader sees them, zero-width characters dropped and spaces folded."""
    shown = "".join(c for c in vis.text[start:end] if not _invisible(c))
    return " ".join(shown.split())[:80]


def _invisible(ch: str) -> bool:
    return ch in "\u200b\u200c\u200d\u2060\ufeff\u00ad" or "\ufe00" <= ch <= "\ufe0f"


_NEGATORS = re.compile(r"\b(?:not|no|never|nor|hardly|without|so-called|supposedly|fake|ignore|disregard|forget)\b"
                       r"|n't\b")
_RETRACTIONS = re.compile(
    r"\b(?:jk|j/k|just kidding|kidding|not really|or is it|think again|yeah right|as if|lol|lmao|rofl|wink|"
    r"psych|sike|kappa|my foot|but it is|but it's|but actually|it is though|it actually is|or not|"
    r"ignore (?:that|this|the above|it)|disregard (?:that|this|it)|never mind|nvm|sarcasm)\b"
    r"|\b(?:it|this|that)(?:'s| (?:\w+ )?is)\s*(?:[).!]|$)|\(not\)|/s\b|;-?\)"  # "(it is)", "/s", ";)"
    r"|[\U0001F609\U0001F61C\U0001F60F\U0001F92B\U0001F92D\U0001F643\U0001F602\U0001F923\U0001F921\U0001F618"
    r"\U0001F61D]")  # winks, smirks, shushes, clowns
_AFFIRM = (r"\b(?:(?:this|that|it|which|post|thread|brief|tweet|above)(?:'s| is| was)|"
           r"consider (?:this|it)(?: as)?|take (?:this|it) as)"
           r"(?: (?:definitely|totally|actually|really|absolutely|100%|literally|very much|in fact))*"
           r" (?:a |some )?(?:pure |real |genuine |solid |sound )?")


def disclaimer_problem(vis: Visible, disclaimer: str) -> str:
    """Why ``disclaimer`` does not count in ``vis`` ("is missing", "is negated or altered: …"), or ''."""
    shown, origin = _display(vis)
    core = _display_text(disclaimer).strip().rstrip(".!。").strip()
    if not core:
        return ""
    finder = re.compile(r"(?<![^\W_])" + r"\s+".join(map(re.escape, core.split())))
    counted = False
    elsewhere = ""
    for m in finder.finditer(shown):
        s, e = m.span()
        where = (origin[s], origin[e - 1] + 1)
        altered = _altered(shown, s, e, vis, where)
        if altered:
            return f"is negated or altered: '{_snippet(vis, *_around(vis, where))}'"
        flags = set(vis.flags[where[0]:where[1]])
        if LINK in flags or (s > 0 and shown[s - 1] == "[" and shown[e:e + 2].lstrip(".!")[:1] == "]"):
            elsewhere = " (found only as a link label)"
        elif any(where[0] < c < where[1] for c in vis.cuts):
            elsewhere = " (found only split by markup)"
        else:
            counted = True
    affirmed = _affirmation(shown, core)
    if affirmed is not None:
        return f"is contradicted: '{_snippet(vis, origin[affirmed[0]], origin[affirmed[1] - 1] + 1)}'"
    return "" if counted else f"is missing{elsewhere}"


def _altered(shown: str, s: int, e: int, vis: Visible, where: tuple[int, int]) -> bool:
    """Negated before, questioned, extended or retracted after, or struck through."""
    if HIDDEN in vis.flags[where[0]:where[1]]:
        return True
    if e < len(shown) and (shown[e].isalnum() or re.match(r"-\w", shown[e:])):
        return True  # "advice-ish"
    start = max((m.end() for m in _SENTENCE_END.finditer(shown, 0, s)), default=0)
    clause = re.split(r"[,:;\u2014\u2013]|\s-\s", shown[start:s])[-1]
    if _NEGATORS.search(" ".join(clause.split()[-3:])):
        return True
    tail = shown[e:]
    if re.match(r"[.!]*\s*[?*\u2020\u2021]|\s*[,;:\u2014-]?\s*\(?but\b", tail):
        return True  # a question, a footnote that may take it back, or "…, but"
    ends = [m.end() for m in _SENTENCE_END.finditer(tail)]
    window = tail[:min(ends[1] if len(ends) > 1 else len(tail), (ends[0] if ends else 0) + 40)]
    return bool(_RETRACTIONS.search(window))


def _affirmation(shown: str, core: str) -> tuple[int, int] | None:
    """Where the text says what the disclaimer denies ("this is financial advice"), if the disclaimer denies."""
    words = core.split()
    claim = [w for w in words if w not in ("not", "no", "never")]
    if len(claim) == len(words) or not claim:
        return None
    m = re.search(_AFFIRM + r"\s+".join(map(re.escape, claim)), shown)
    return m.span() if m else None


def _around(vis: Visible, where: tuple[int, int]) -> tuple[int, int]:
    """A disclaimer occurrence with a few characters either side, for the reviewer."""
    return max(0, where[0] - 12), min(len(vis.text), where[1] + 16)


def _display_text(text: str) -> str:
    return "".join(display_char(c) for c in text)


def _display(vis: Visible) -> tuple[str, list[int]]:
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(vis.text):
        for c in display_char(ch):
            chars.append(c)
            origin.append(i)
    return "".join(chars), origin
