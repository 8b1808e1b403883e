"""Benchmark: the compliance profiles per jurisdiction, catch and false-flag rates, and their cost per text.

Cases: each profile's own must_catch / must_not_catch examples plus the held-out adversarial and legitimate
cases of tests/test_compliance_profiles.py (never in the YAML), and every profile's legitimate examples run
against every other profile. Baseline for ``cn``, in the same run: a naive term list (exchange names,
stablecoin tickers, "ICO", "RWA", 币安, 稳定币, 杠杆 …) matched as substrings after lower-casing, which is
what a keyword filter would do. Timing: all five profiles on one text against the global profile alone.

    python bench/profiles.py [--show-misses]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.profiles import Profile, profiles
from tests.test_compliance_profiles import ADVERSARIAL, LEGITIMATE

NAIVE_CN = ("binance", "okx", "bybit", "bitget", "kucoin", "coinbase", "usdt", "usdc", "stablecoin", "rwa",
            "ico", "ido", "presale", "leverage", "tokeniz", "tokenis", "cnh", "币安", "欧易", "交易所", "稳定币",
            "杠杆", "合约", "预售", "代币化", "人民币稳定币", "跟单")


def rules_hit(profile: Profile, text: str) -> set[str]:
    """Rule ids of ``profile`` that flag ``text`` (required wording left out: it is about what is missing)."""
    return {p.rule for p in profile.check(text, "telegram") if p.code != "missing_wording"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", action="store_true", help="list every miss and false flag")
    args = parser.parse_args()
    shipped = profiles()
    every_legit = sorted({t for p in shipped.values() for f in p.rules for t in f.must_not_catch}
                         | {t for texts in LEGITIMATE.values() for t in texts})
    print(f"{'profile/rule':<32}{'cases':>7}{'caught':>9}")
    for name, profile in shipped.items():
        for rule in profile.rules:
            cases = [*rule.must_catch, *ADVERSARIAL.get(name, {}).get(rule.id, [])]
            missed = [t for t in cases if rule.id not in rules_hit(profile, t)]
            print(f"{name + '/' + rule.id:<32}{len(cases):>7}{1 - len(missed) / len(cases):>9.1%}")
            if args.show_misses:
                for t in missed:
                    print(f"    missed: {t!r}")
    print(f"\n{'false flags':<32}{'cases':>7}{'flagged':>9}")
    for name, profile in shipped.items():
        flagged = {t: rules_hit(profile, t) for t in every_legit if rules_hit(profile, t)}
        # Another profile's "must not catch" may rightly be caught here (us holds a "#ad" post that eu lets
        # through): --show-misses lists them so each can be judged.
        print(f"{name:<32}{len(every_legit):>7}{len(flagged) / len(every_legit):>9.1%}")
        if args.show_misses:
            for t, rules in flagged.items():
                print(f"    flagged: {t!r} by {', '.join(sorted(rules))}")
    cn = shipped["cn"]
    cn_cases = [t for f in cn.rules for t in (*f.must_catch, *ADVERSARIAL["cn"].get(f.id, []))]
    cn_legit = [*LEGITIMATE["cn"], *(t for f in cn.rules for t in f.must_not_catch)]
    naive = [t for t in cn_cases if any(w in t.lower() for w in NAIVE_CN)]
    naive_false = [t for t in cn_legit if any(w in t.lower() for w in NAIVE_CN)]
    ours_false = [t for t in cn_legit if rules_hit(cn, t)]
    print(f"\ncn against a naive term list ({len(cn_cases)} promotional, {len(cn_legit)} legitimate):")
    print(f"  caught       profile {sum(bool(rules_hit(cn, t)) for t in cn_cases) / len(cn_cases):>6.1%}   "
          f"naive {len(naive) / len(cn_cases):>6.1%}")
    print(f"  false flags  profile {len(ours_false) / len(cn_legit):>6.1%}   "
          f"naive {len(naive_false) / len(cn_legit):>6.1%}")
    texts = [*cn_cases, *cn_legit] * 5
    glob = shipped["global"]
    started = time.perf_counter()
    for t in texts:
        glob.check(t, "telegram")
    base = time.perf_counter() - started
    started = time.perf_counter()
    for t in texts:
        for profile in shipped.values():
            profile.check(t, "telegram")
    every = time.perf_counter() - started
    print(f"\n{len(texts)} texts: global alone {base / len(texts) * 1e3:.2f} ms per text, all {len(shipped)} "
          f"profiles {every / len(texts) * 1e3:.2f} ms per text ({every / base:.2f}x)")


if __name__ == "__main__":
    main()
