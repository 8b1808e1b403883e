"""Benchmark: compliance phrasing families against the old 7-phrase substring check.

Run: .venv/bin/python bench/compliance.py [--show-misses]

Cases: each family's must_catch / must_not_catch examples from prompts/compliance/global.yaml plus the
adversarial and legitimate cases in tests/test_compliance.py. Prints, per family, the catch rate of the
families and of the baseline (the substring check crew/grounding.py did with the old default
compliance.banned_phrases), the false-flag rate of both over everything legitimate, and for the
disclaimer how many altered/hidden ones are caught and how many honest ones are refused, against the
old substring check on the plain text.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.claims import markdown_plain, telegram_plain
from crew.compliance import check_compliance, families
from tests.test_compliance import (
    ADVERSARIAL,
    DISCLAIMER,
    HIDDEN_DISCLAIMERS,
    KEPT_DISCLAIMERS,
    LEGITIMATE,
    NEGATED_DISCLAIMERS,
)

OLD_DEFAULT = ("guaranteed", "guarantee", "price target", "risk-free", "risk free", "can't lose", "cannot lose")


def baseline(text: str) -> bool:
    """The old check: a banned phrase as a whole-word substring after folding spaces and curly apostrophes."""
    flat = " ".join(text.replace("\u2019", "'").split()).lower()
    return any(re.search(rf"(?<![\w]){re.escape(p)}(?![\w])", flat) for p in OLD_DEFAULT)


def old_disclaimer_ok(text: str) -> bool:
    """The old check on the plain text the grounding check saw: the disclaimer as a substring."""
    plain = markdown_plain(telegram_plain(text))
    return " ".join(DISCLAIMER.split()).lower() in " ".join(plain.replace("\u2019", "'").split()).lower()


def disclaimer_ok(text: str) -> bool:
    """Whether the disclaimer counts in ``text`` as rendered."""
    problems = check_compliance(text, "telegram", disclaimer=DISCLAIMER, require_disclaimer=True)
    return not any(p.code == "missing_disclaimer" for p in problems)


def flagged_by(text: str) -> set[str]:
    """Family labels that flag ``text``."""
    problems = check_compliance(text, "x", disclaimer="", require_disclaimer=False)
    return {p.message.split(":")[0] for p in problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", action="store_true", help="list every miss and false flag")
    args = parser.parse_args()
    fams = families()
    started = time.perf_counter()
    checks = 0
    print(f"{'catch rate':<16}{'cases':>7}{'families':>11}{'old 7':>9}")
    for family in fams:
        cases = [*family.must_catch, *ADVERSARIAL.get(family.id, [])]
        missed = [t for t in cases if family.label not in flagged_by(t)]
        old = sum(baseline(t) for t in cases)
        checks += len(cases)
        print(f"{family.id:<16}{len(cases):>7}{1 - len(missed) / len(cases):>10.1%}{old / len(cases):>9.1%}")
        if args.show_misses:
            for t in missed:
                print(f"    missed: {t!r}")
    legit = [*LEGITIMATE, *(t for f in fams for t in f.must_not_catch)]
    false = {t: sorted(flagged_by(t)) for t in legit if flagged_by(t)}
    old_false = sum(baseline(t) for t in legit)
    checks += len(legit)
    print(f"{'false flags':<16}{len(legit):>7}{len(false) / len(legit):>10.1%}{old_false / len(legit):>9.1%}")
    if args.show_misses:
        for t, labels in false.items():
            print(f"    flagged: {t!r} by {', '.join(labels)}")
    bad = [*NEGATED_DISCLAIMERS, *HIDDEN_DISCLAIMERS]
    checks += len(bad) + len(KEPT_DISCLAIMERS)
    print(f"{'disclaimer:':<16}{'cases':>7}{'families':>11}{'old':>9}")
    print(f"{'  altered caught':<16}{len(bad):>7}{sum(not disclaimer_ok(t) for t in bad) / len(bad):>10.1%}"
          f"{sum(not old_disclaimer_ok(t) for t in bad) / len(bad):>9.1%}")
    print(f"{'  kept refused':<16}{len(KEPT_DISCLAIMERS):>7}"
          f"{sum(not disclaimer_ok(t) for t in KEPT_DISCLAIMERS) / len(KEPT_DISCLAIMERS):>10.1%}"
          f"{sum(not old_disclaimer_ok(t) for t in KEPT_DISCLAIMERS) / len(KEPT_DISCLAIMERS):>9.1%}")
    elapsed = time.perf_counter() - started
    print(f"{checks} checks in {elapsed:.2f}s ({elapsed / checks * 1e3:.2f} ms per text, patterns compiled once)")


if __name__ == "__main__":
    main()
