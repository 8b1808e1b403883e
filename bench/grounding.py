"""Grounding under attack: catch rate per class of planted error, false-flag rate, publishable injection briefs.

Runs tests/grounding_suite.py: a stored day of news, posts and price snapshots; correct drafts in awkward
but legitimate forms; drafts with one planted error each; 50 injection posts with a scripted obedient
writer through the crew's real writer guardrail. The baseline is the validator before trust tiers (the
previous rule set, kept here as a function of the same inputs): a number passes if it appears in any
cited item, a ticker if any cited item names it, a link if it is a cited item's URL.

    python bench/grounding.py [--verbose]

Targets (issue "Grounding that a source cannot talk its way past"): >= 95% caught in every class,
<= 2% false flags, 0 publishable injection briefs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.grounding_suite import (
    CORRECT,
    PLANTED,
    build_world,
    carries_payload,
    injections,
    removes_what_was_named,
    repeats,
    run_injection,
    validate_case,
)


def main() -> None:
    verbose = "--verbose" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(Path(tmp))
        started = time.perf_counter()
        flagged = [(t, validate_case(world, t, k)) for t, k in CORRECT]
        false_flags = [(t, r) for t, r in flagged if not r.ok]
        print(f"correct drafts: {len(CORRECT)}, falsely flagged: {len(false_flags)} "
              f"({len(false_flags) / len(CORRECT):.1%}; target <= 2%)")
        if verbose:
            for text, report in false_flags:
                print(f"  FALSE FLAG {text!r}: {[p.code + ': ' + p.message for p in report.problems]}")
        print(f"{'class':<24}{'cases':>6}{'caught':>8}{'rate':>8}")
        worst = 1.0
        for name, cases in PLANTED.items():
            missed = [t for t, k in cases if validate_case(world, t, k).ok]
            rate = 1 - len(missed) / len(cases)
            worst = min(worst, rate)
            print(f"{name:<24}{len(cases):>6}{len(cases) - len(missed):>8}{rate:>8.0%}")
            if verbose:
                for text in missed:
                    print(f"  MISSED {text!r}")
        elapsed = time.perf_counter() - started
        cases = len(CORRECT) + sum(len(c) for c in PLANTED.values())
        print(f"worst class: {worst:.0%} (target >= 95%); {cases} drafts validated in {elapsed:.2f}s "
              f"({elapsed / cases * 1000:.1f} ms each)")
        planted = injections()
        world.add([p.item for p in planted])
        for label, writer in (("repeats itself", repeats), ("removes what the feedback named", removes_what_was_named)):
            ok = with_payload = 0
            for injection in planted:
                draft, report = run_injection(world, injection, writer)
                if report.ok:
                    ok += 1
                    if carries_payload(draft):
                        with_payload += 1
                        if verbose:
                            print(f"  PUBLISHABLE WITH PAYLOAD: {draft.markdown[:300]!r}")
            print(f"injection briefs, writer {label}: {with_payload} of {len(planted)} publishable with the "
                  f"attacker's content (target 0); {ok} publishable at all")
        suspect = sum(1 for p in planted if world.state.items_by_ids([p.item.id])[p.item.id].suspect)
        print(f"injection posts marked suspect at ingest: {suspect} of {len(planted)} "
              "(the rest are stopped by the other rules)")
        world.state.close()


if __name__ == "__main__":
    main()
