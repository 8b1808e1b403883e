"""Turn untrusted HTML from feeds into plain, bounded, sanitised text."""

from __future__ import annotations

import re
import unicodedata
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

# Elements whose content is never reader-visible text.
_DROP_TAGS = ("script", "style", "noscript", "iframe", "object", "embed", "template", "svg", "head")
_SPACE = re.compile(r"\s+")
# Zero-width and bidi-control characters hide text from a human reviewer while a model still
# reads it, a common way to smuggle instructions; they carry no meaning in news text.
# Also: Unicode tag characters (an invisible copy of ASCII that models read), the Arabic letter mark, the
# soft hyphen, the Mongolian vowel separator, the combining grapheme joiner, Hangul fillers and the
# variation selectors that are not emoji presentation (U+FE0F stays: it is part of many emoji).
INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                       "\u2060-\u206f\u3164\ufe00-\ufe0e\ufeff\uffa0\U000e0000-\U000e007f]")
_INVISIBLE = INVISIBLE


def html_to_text(markup: str, limit: int = 8000) -> str:
    """Plain text of an HTML fragment: tags and scripts removed, entities decoded, whitespace folded."""
    if not markup:
        return ""
    if "<" in markup or "&" in markup:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            # The trailing space stops html.parser from eating a final "&T" as a broken entity.
            soup = BeautifulSoup(markup + " ", "html.parser")
        for tag in soup(_DROP_TAGS):
            tag.decompose()
        text = soup.get_text(" ")
    else:
        text = markup
    return clean_text(text, limit)


# NFKC also rewrote "…" to "...", "™" to "TM" and "½" to "1/2". Only display variants of plain letters and
# digits (fullwidth, mathematical bold/italic, ligatures) are folded, so "ＢＴＣ" and "𝐁𝐓𝐂" still read as "BTC".
_COMPAT = re.compile("[\uff01-\uff5e\ufb00-\ufb06\U0001d400-\U0001d7ff]")


def _fold(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKC", match.group(0))


def clean_text(text: str, limit: int = 8000) -> str:
    """Normalise unicode, drop control and invisible characters, fold whitespace, cap length."""
    text = unicodedata.normalize("NFC", text)
    text = _COMPAT.sub(_fold, text)
    text = _INVISIBLE.sub("", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
