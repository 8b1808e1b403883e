"""Grounding under attack: catch rate per class of planted error, false-flag rate, publishable injection briefs.

Runs tests/grounding_suite.py: a stored day of news, posts and price snapshots; correct drafts in awkward
but legitimate forms; drafts with one planted error each; 50 injection posts with a scripted obedient
writer through the crew's real writer guardrail. The baseline is the validator before trust tiers (the
previous rule set, kept here as a function of the same inputs): a number passes if it appears in any
cited item, a ticker if any cited item names it (or a snapshot exists), a link if it is a cited item's URL.
It is loaded from git (commit BASELINE_COMMIT) so both run on the same drafts in the same process.

    python bench/grounding.py [--verbose]

Targets (issue "Grounding that a source cannot talk its way past"): >= 95% caught in every class,
<= 2% false flags, 0 publishable injection briefs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.grounding_suite import (
    CORRECT,
    DISCLAIMER,
    NOW,
    PLANTED,
    WATCH,
    build_world,
    carries_payload,
    draft_for,
    injections,
    removes_what_was_named,
    repeats,
    run_injection,
    validate_case,
)

BASELINE_COMMIT = "85e2ec4"  # the validator before trust tiers (the one the issue measured)


def baseline_validator(world: Any) -> Callable[[Any], Any] | None:
    """The previous validator, loaded from git into private modules, on the same stored day; None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        sources = {name: subprocess.run(["git", "show", f"{BASELINE_COMMIT}:crew/{name}.py"], cwd=root, check=True,
                                        capture_output=True, text=True).stdout for name in ("claims", "grounding")}
    except (OSError, subprocess.CalledProcessError):
        return None
    modules = {}
    for name in ("claims", "grounding"):
        module = types.ModuleType(f"baseline_{name}")
        sys.modules[module.__name__] = module
        code = sources[name].replace("from crew.claims import", "from baseline_claims import")
        exec(compile(code, f"{BASELINE_COMMIT}:crew/{name}.py", "exec"), module.__dict__)
        modules[name] = module
    old = modules["grounding"]
    context = old.GroundingContext(lookup=world.state.items_by_ids, watchlist=WATCH, prices=world.prices,
                                   disclaimer=DISCLAIMER, banned_phrases=OLD_BANNED, clock=lambda: NOW)
    return lambda draft: old.validate_draft(draft, context)


OLD_BANNED = ("guaranteed", "guarantee", "price target", "risk-free", "risk free", "can't lose", "cannot lose")


def rates(validate: Callable[[Any], Any], world: Any) -> tuple[float, dict[str, float]]:
    """False-flag rate on the correct drafts, and catch rate per class, for one validator."""
    flagged = sum(1 for t, k in CORRECT if not validate(draft_for(world, [(t, k)])).ok)
    caught = {name: sum(1 for t, k in cases if not validate(draft_for(world, [(t, k)])).ok) / len(cases)
              for name, cases in PLANTED.items()}
    return flagged / len(CORRECT), caught


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
        old = baseline_validator(world)
        if old is None:
            print("baseline: not in a git checkout, skipped")
        else:
            false_rate, caught = rates(old, world)
            print(f"baseline (the validator at {BASELINE_COMMIT}, same drafts): {false_rate:.0%} false flags; caught "
                  + ", ".join(f"{name} {rate:.0%}" for name, rate in caught.items()))
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
