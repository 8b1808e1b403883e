"""Benchmark: the prompt-injection detector on the labelled suite, batch by batch, against the first detector.

Run: .venv/bin/python bench/injection.py [--show-misses]

Cases: tests/fixtures/injection/cases.yaml, in the batches it was written in (each later batch was written
before the detector was tuned on it; the first-measured figures are in the file's header). Prints per batch
the catch rate on planted instructions and the false-flag rate on legitimate text, for the detector and for
the baseline (the seven patterns ``sources/injection.py`` started with), then detection time per item on the
bundled samples and on 2,000-character texts (the stored text cap).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sources.injection import looks_like_instructions
from sources.rss import parse_feed
from sources.samples import SAMPLE_FEEDS, sample_body, sample_posts
from sources.tickers import Watchlist
from tapewatch.settings import load_settings

CASES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "injection" / "cases.yaml"

# The first detector's families, as they stood before issue 11's hardening.
BASELINE = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(?:previous|prior|above|earlier|all|your|the|any)\b"
    r"[^.\n]{0,30}\b(?:instructions?|prompts?|rules?|guidelines?|directives?|context|messages?)\b",
    r"\b(?:new|updated|real|actual|hidden|secret)\s+(?:system\s+)?(?:instructions?|prompt|directives?|orders)\b\s*[:\-]",
    r"<\|?\s*(?:im_start|im_end|system|assistant|user|endoftext|begin_of_text|start_header_id)\s*\|?>|\[/?(?:INST|SYS)\]"
    r"|<</?SYS>>|^\s*(?:system|assistant)\s*:",
    r"\b(?:you are (?:now )?(?:an?|the) (?:ai|assistant|language model|llm|bot|agent|writer|analyst)|as an ai (?:model|"
    r"assistant)|dear (?:ai|assistant|bot|agent)|(?:attention|note|message) (?:to|for) (?:all )?(?:ai|llms?|bots?|"
    r"agents?|assistants?|language models?))\b",
    r"\b(?:final answer\s*:|thought\s*:\s*i (?:now )?(?:know|should)|action input\s*:)",
    r"\b(?:auto[_\s-]?publish|approve (?:this|the) (?:draft|brief|post)|(?:post|publish|tweet) (?:this|the following) "
    r"(?:verbatim|exactly|immediately|now))\b",
    r"\b(?:developer mode|jailbreak|do anything now|DAN mode|system prompt)\b",
))


def baseline(text: str) -> bool:
    """The first detector: NFKC, folded spaces, seven patterns."""
    flat = " ".join(unicodedata.normalize("NFKC", text).split())
    return any(p.search(flat) for p in BASELINE)


def batches() -> list[tuple[str, list[str], list[str]]]:
    """(name, planted, legitimate) per batch, in the order the file lists them."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    section, batch = "", "first batch"
    for line in CASES.read_text("utf-8").splitlines():
        if line in ("inject:", "clean:"):
            section, batch = line[:-1], "first batch"
        elif line.strip().startswith("# ---") and "batch" in line:
            batch = line.strip().strip("#- ").split(",")[0].split(" (")[0].replace("---", "").strip()
        elif line.startswith("  - "):
            planted, legit = found.setdefault(batch, ([], []))
            (planted if section == "inject" else legit).append(yaml.safe_load(line[4:]))
    order = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
             "twelfth")
    rank = {f"{word} batch": n for n, word in enumerate(order)}
    return sorted(((name, p, c) for name, (p, c) in found.items()), key=lambda b: rank.get(b[0], len(order)))


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.1%})" if total else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    print(f"{'batch':<14} {'caught':>16} {'baseline':>16}   {'false flags':>14} {'baseline':>14}")
    totals = [0, 0, 0, 0, 0, 0]
    for name, planted, legit in batches():
        caught = [t for t in planted if looks_like_instructions(t)]
        base = [t for t in planted if baseline(t)]
        false = [t for t in legit if looks_like_instructions(t)]
        base_false = [t for t in legit if baseline(t)]
        for i, n in enumerate((len(caught), len(base), len(planted), len(false), len(base_false), len(legit))):
            totals[i] += n
        print(f"{name:<14} {_rate(len(caught), len(planted)):>16} {_rate(len(base), len(planted)):>16}   "
              f"{_rate(len(false), len(legit)):>14} {_rate(len(base_false), len(legit)):>14}")
        if args.show_misses:
            for text in planted:
                if text not in caught:
                    print(f"    missed: {text}")
            for text in false:
                print(f"    false flag: {text}")
    print(f"{'all':<14} {_rate(totals[0], totals[2]):>16} {_rate(totals[1], totals[2]):>16}   "
          f"{_rate(totals[3], totals[5]):>14} {_rate(totals[4], totals[5]):>14}")

    watch = Watchlist(load_settings(None).watchlist)
    now = datetime.now(UTC)
    items = [i for spec, name in SAMPLE_FEEDS for i in parse_feed(sample_body(name), spec, watch, fetched_at=now).items]
    items += sample_posts(watch, now)
    texts = [f"{i.title}\n{i.text}" for i in items]
    looks_like_instructions("warm up")
    joined = " ".join(texts) * 2
    long = [joined[k * 2000:(k + 1) * 2000] for k in range(20)]
    for label, corpus in (("bundled samples", texts), ("2,000-char texts", long)):
        started = time.perf_counter()
        for _ in range(3):
            for text in corpus:
                looks_like_instructions(text)
        per = (time.perf_counter() - started) / (3 * len(corpus)) * 1000
        size = sum(map(len, corpus)) / len(corpus)
        print(f"detection, {label}: {per:.2f} ms per item (mean {size:.0f} characters, {len(corpus)} items)")


if __name__ == "__main__":
    main()
