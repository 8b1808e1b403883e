"""Text as a reader sees it and as the compliance patterns match it, with every character traced to the input.

Two steps, both pure:

- ``visible``: Telegram HTML or Markdown reduced to the characters a reader sees, remembering which sit
  inside a link label or struck-through/spoiler/comment text, and where markup was cut out between two
  characters (so "Not <b>financial</b> advice" is known to be split);
- ``folded``: those characters reduced for matching: NFKC, case folded, combining marks, zero-width and
  format characters removed, dash and quote variants folded, Cyrillic/Greek/small-capital look-alikes
  folded to Latin, emoji read as spaces, letter-by-letter spelling ("g-u-a-r-a-n-t-e-e-d") joined,
  whitespace folded, apostrophes inside words dropped, repeated letters read once, and "i" read as "l";
  a second reading also folds leetspeak inside words (4→a, 3→e, 0→o, 1→l, 5→s, 7→t, @→a, $→s, !→i), so
  "1", "l" and "i" are one letter, as a reader may take them, while "10x", "Q4" and "$5" stay as written
  in the first reading.

Patterns are compiled against the same skeleton (see ``skeleton_pattern``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

LINK = 1  # inside a link label
HIDDEN = 2  # struck through, in a spoiler or in an HTML comment

_TOKEN = re.compile(r"""
    (?P<comment><!--(?P<body>.*?)(?:-->|\Z))
  | (?P<tag></?(?P<name>[a-zA-Z][\w-]*)(?P<attrs>(?:\s[^<>]*)?)/?>)
  | (?P<entity>&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|\#[0-9]{1,7}|\#[xX][0-9a-fA-F]{1,6});)
  | (?P<mdlink>!?\[(?P<label>[^\[\]\n]*)\]\((?P<target>[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+"[^"\n]*")?\))
  | (?P<escape>\\[\\`*_{}\[\]()#+\-.!|>~<])
  | (?P<marker>\*\*|__|~~|\|\||[*_`])
""", re.DOTALL | re.VERBOSE)
_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5",
                         "h6", "tr", "td", "th", "hr", "table"})
_HIDING_TAGS = frozenset({"s", "strike", "del", "tg-spoiler"})
_HIDING_MARKERS = frozenset({"~~", "||"})

_CONFUSABLES = str.maketrans({
    # Cyrillic (lower case: text is case folded first)
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l",
    "ԛ": "q", "ԝ": "w", "ү": "y", "ѵ": "v", "ь": "b", "ɡ": "g", "п": "n", "г": "r", "ш": "w",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ς": "s", "ζ": "z", "μ": "u",
    # Latin look-alikes and small capitals
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʟ": "l", "ɪ": "i", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d",
    "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ᴊ": "j", "ᴋ": "k", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "օ": "o", "ℓ": "l", "ʊ": "u",
    "ɐ": "a", "ǝ": "e", "ɔ": "c", "ɯ": "m", "ʌ": "v", "ɵ": "o", "ø": "o", "đ": "d", "ħ": "h", "ł": "l",
})
# Letters drawn as symbols (enclosed and regional-indicator letters, "ß" for "B"), read before NFKC.
_LETTER_SYMBOLS = {chr(base + k): chr(ord("a") + k) for base in (0x1F130, 0x1F150, 0x1F170, 0x1F1E6) for k in range(26)}
_LETTER_SYMBOLS["ß"] = "b"
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d\u2e3a\u2e3b\u2053")
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u02bc": "'", "\u2032": "'",
           "\u00b4": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"',
           "\u00bb": '"'}
_LINE_BREAKS = frozenset("\n\r\u2028\u2029\x0b\x0c\x85")
# Single characters spelled out with one repeated separator: "g-u-a-r-a-n-t-e-e-d", "b u y", "b.u.y".
_SPELLED = re.compile(r"(?<![^\W_])[^\W_$@](?P<sep>[-. _*~/|]+)(?:[^\W_$@](?P=sep))+[^\W_$@](?![^\W_])")
_WORDISH = re.compile(r"[a-z0-9@$!|]+")
_LEET = {"4": "a", "3": "e", "0": "o", "1": "l", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
_NUMBERISH = re.compile(r"\$?\d[\d.,]*[a-z]{0,3}$|[qh][1-4]$")
_INNER_ONLY = frozenset("@$!|")  # read as letters only between letters: "$SOL" and "@user" stay


@dataclass(frozen=True)
class Visible:
    """The characters a reader sees, each with its index in the input, its flags and the markup cuts."""

    text: str
    origin: tuple[int, ...]
    flags: tuple[int, ...]
    cuts: frozenset[int]  # i: markup was removed between text[i-1] and text[i]


@dataclass(frozen=True)
class Reading:
    """One matching skeleton of a text, each character with its index in the ``Visible`` text."""

    text: str
    origin: tuple[int, ...]  # the first visible character each one stands for
    last: tuple[int, ...]  # the last one ("eee" read as one "e" stands for all three)


class _Builder:
    def __init__(self) -> None:
        self.chars: list[str] = []
        self.origin: list[int] = []
        self.flags: list[int] = []
        self.cuts: set[int] = set()

    def add(self, text: str, at: int, flags: int) -> None:
        for ch in text:
            self.chars.append(ch)
            self.origin.append(at)
            self.flags.append(flags)

    def cut(self) -> None:
        self.cuts.add(len(self.chars))


def visible(raw: str) -> Visible:
    """``raw`` (plain text, Telegram HTML or Markdown) as a reader sees it."""
    out = _Builder()
    _scan(raw, 0, len(raw), 0, out)
    return Visible("".join(out.chars), tuple(out.origin), tuple(out.flags), frozenset(out.cuts))


def _scan(raw: str, start: int, end: int, flags: int, out: _Builder) -> None:
    links = hidden = 0
    spans: list[bool] = []  # open <span>s, True for a spoiler
    toggled: set[str] = set()  # open ~~ / || markers
    pos = start
    for m in _TOKEN.finditer(raw, start, end):
        _plain(raw, pos, m.start(), _flags(flags, links, hidden, toggled), out)
        pos = m.end()
        here = _flags(flags, links, hidden, toggled)
        if m.group("comment") is not None:
            out.cut()
            out.add(m.group("body"), m.start("body"), here | HIDDEN)
            out.cut()
        elif m.group("tag") is not None:
            name, closing = m.group("name").lower(), m.group("tag").startswith("</")
            step = -1 if closing else 1
            if name == "a":
                links = max(0, links + step)
            elif name in _HIDING_TAGS:
                hidden = max(0, hidden + step)
            elif name == "span":
                if closing and spans:
                    hidden -= spans.pop()
                elif not closing:
                    spans.append("spoiler" in m.group("attrs").lower())
                    hidden += spans[-1]
            if name in _BLOCK_TAGS:
                out.add("\n", m.start(), here)
            else:
                out.cut()
        elif m.group("entity") is not None:
            out.add(html.unescape(m.group("entity")), m.start(), here)
        elif m.group("mdlink") is not None:
            out.cut()
            _scan(raw, m.start("label"), m.end("label"), here | LINK, out)
            out.cut()
        elif m.group("escape") is not None:
            out.add(m.group("escape")[1], m.start() + 1, here)
        else:
            marker = m.group("marker")
            if marker in _HIDING_MARKERS:
                toggled ^= {marker}
            out.cut()
    _plain(raw, pos, end, _flags(flags, links, hidden, toggled), out)


def _flags(base: int, links: int, hidden: int, toggled: set[str]) -> int:
    return base | (LINK if links else 0) | (HIDDEN if hidden or toggled else 0)


def _plain(raw: str, start: int, end: int, flags: int, out: _Builder) -> None:
    for i in range(start, end):
        out.add(raw[i], i, flags)


def display_char(ch: str) -> str:
    """One character as compared for wording: NFKC, case folded, dashes, quotes and spaces unified."""
    if ch in _LINE_BREAKS:
        return "\n"
    if ch.isspace():
        return " "
    folded = unicodedata.normalize("NFKC", ch).casefold()
    return "".join("-" if c in _DASHES else _QUOTES.get(c, c) for c in folded)


def readings(vis: Visible) -> tuple[Reading, ...]:
    """The matching skeletons of ``vis``: as written, and with leetspeak read as letters."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(vis.text):
        if ch.isupper() and i > 0 and vis.text[i - 1].islower() and _in_hashtag(vis.text, i):
            chars.append(" ")  # "#BuyNow" reads as "buy now"
            origin.append(i)
        for c in _fold_char(ch):
            chars.append(c)
            origin.append(i)
    text = "".join(chars)
    # Join spelled-out words before whitespace is folded: "b u y  n o w" keeps its word gap.
    keep = [True] * len(text)
    for m in _SPELLED.finditer(text):
        sep = m.group("sep")
        for j in range(m.start(), m.end()):
            if text[j] in sep:
                keep[j] = False
    chars, origin = _squeeze([c for c, k in zip(chars, keep, strict=True) if k],
                             [o for o, k in zip(origin, keep, strict=True) if k])
    text = "".join(chars)
    leet = _leet(text)  # one character for one, so both readings start from the same origin
    return tuple(_finish(t, origin) for t in dict.fromkeys((text, leet)))


def _finish(text: str, origin: list[int]) -> Reading:
    """"i" read as "l", apostrophes inside words dropped, repeated letters read once ("guaranteeeed", "moooon")."""
    text = text.replace("i", "l")
    out_c: list[str] = []
    out_o: list[int] = []
    out_l: list[int] = []
    for j, (c, o) in enumerate(zip(text, origin, strict=True)):
        if c == "'" and out_c and out_c[-1].isalpha() and text[j + 1:j + 2].isalpha():
            continue
        if out_c and c == out_c[-1] and "a" <= c <= "z":
            out_l[-1] = o
            continue
        out_c.append(c)
        out_o.append(o)
        out_l.append(o)
    return Reading("".join(out_c), tuple(out_o), tuple(out_l))


def _in_hashtag(text: str, i: int) -> bool:
    start = i
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return start > 0 and text[start - 1] == "#"


def _fold_char(ch: str) -> str:
    if ch in _LINE_BREAKS:
        return "\n"
    if ch.isspace() or ch in "§\u2122\u00ae\u00a9\u2120":  # § stands for a match in "unless" patterns
        return " "
    if ch in _LETTER_SYMBOLS:
        return _LETTER_SYMBOLS[ch]
    out = []
    for c in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", ch).casefold()):
        category = unicodedata.category(c)
        if category in ("Mn", "Me", "Cf"):
            continue
        c = c.translate(_CONFUSABLES).replace("\u27a1", "\u2192")  # the arrow emoji is an arrow, not a gap
        if c in _DASHES or category == "Pd":
            c = "-"
        elif c in _QUOTES:
            c = _QUOTES[c]
        elif c.isspace():
            c = "\n" if c in _LINE_BREAKS else " "
        elif category in ("So", "Sk", "Cs", "Co", "Cn"):
            c = " "  # emoji and pictographs between words read as a gap
        out.append(c)
    return "".join(out)


def _squeeze(chars: list[str], origin: list[int]) -> tuple[list[str], list[int]]:
    """Runs of whitespace folded to one space, or one line break when the run holds one."""
    out_c: list[str] = []
    out_o: list[int] = []
    for c, o in zip(chars, origin, strict=True):
        if c in " \n" and out_c and out_c[-1] in " \n":
            if c == "\n":
                out_c[-1] = "\n"
            continue
        out_c.append(c)
        out_o.append(o)
    return out_c, out_o


def _leet(text: str) -> str:
    """Digits read as letters in words with a letter ("guar4nteed", "t0"), symbols only between letters ("ca$h")."""
    def word(m: re.Match[str]) -> str:
        token = m.group()
        if not any(c.isalpha() for c in token) or _NUMBERISH.match(token):
            return token  # "$5", "10x", "24h", "$1k", "Q4" are numbers, not words
        out = []
        for j, c in enumerate(token):
            inner = 0 < j < len(token) - 1 and token[j - 1] not in _INNER_ONLY and token[j + 1] not in _INNER_ONLY
            out.append(_LEET[c] if c in _LEET and (c not in _INNER_ONLY or inner) else c)
        return "".join(out)
    return _WORDISH.sub(word, text)


def skeleton_pattern(pattern: str) -> str:
    """A pattern written in plain lower case, read like the text: "i" as "l", no apostrophes, letters once."""
    pattern = re.sub(r"(\\.)|i", lambda m: m.group(1) or "l", pattern)
    pattern = re.sub(r"(\\.)|'\??", lambda m: m.group(1) or "", pattern)
    return re.sub(r"(\\.)|([a-z])\2+", lambda m: m.group(1) or m.group(2), pattern)
