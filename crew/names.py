"""Proper names in a claim: the exchanges, funds, projects and people it names, which its sources must name too.

Capitalised words other than a sentence's first word and everyday capitalised words (weekdays, months,
acronyms every crypto story uses). Known organisations (``sources/data/organisations.yaml``) are found
by ``crew.entities.organisations_in`` even as a sentence's first word.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PROPER = re.compile(r"(?<![\w$@#/.-])([A-Z][a-z]+(?:[A-Z][a-z]+)*|[A-Z]{2,}[a-z]?)(?:'s)?(?![\w/.-])")
_COMMON_CAPS = _words(
    "US USA UK EU ETF ETFs SEC CFTC CEO CTO UTC GMT AI X TVL DeFi NFT NFTs DEX CEX OTC API L1 L2 Fed FOMC "
    "IPO USD EUR GBP JPY OK Q1 Q2 Q3 Q4 YTD ATH ATL EOY EOD PM AM UN IMF ECB Monday Tuesday Wednesday "
    "Thursday Friday Saturday Sunday January February March April May June July August September October "
    "November December The A An In On At For Of And Or But As After Before While With From To By Its It "
    "This That These Those One Two Three Some Most Many Analysts Traders Investors Holders Per According "
    "Why What How When Where Risks Catalysts Contrarian Meanwhile Still Also However Elsewhere Overall "
    "Spot Net Average ")


def proper_names(sentence: str) -> list[str]:
    """Capitalised names in ``sentence`` other than its first word and everyday capitalised words."""
    words = sentence.lstrip("•-–—*\"' ").split(maxsplit=1)
    rest_start = len(sentence) - len(words[1]) if len(words) > 1 else len(sentence)
    out = []
    for m in _PROPER.finditer(sentence):
        name = m.group(1)
        if m.start() < rest_start and not name.isupper():
            continue  # the sentence's first word is capitalised anyway
        if name not in _COMMON_CAPS and name.rstrip("s") not in _COMMON_CAPS:
            out.append(name)
    return list(dict.fromkeys(out))
