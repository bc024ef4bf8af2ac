"""Print what every evidence reader does with the bad-input corpus: cases, read, rejected, crashed.

    .venv/bin/python scripts/bad_input_report.py            # the demo files' mutations (+ real samples)
    .venv/bin/python scripts/bad_input_report.py --all      # every demo file, not the first of each kind
    .venv/bin/python scripts/bad_input_report.py --cases    # one line per case, not per reader

The corpus is ``phase8_assets_tests/corpus/bad_inputs.py``; ``test_bad_input_corpus.py`` asserts the
same outcomes. Exit status 1 when any case crashed a reader or took longer than the per-case limit.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phase8_assets.evidence import readers  # noqa: E402
from phase8_assets_tests.corpus.bad_inputs import CASE_LIMIT_S, cases, demo_seeds, outcome, real_seeds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="mutate every demo file, not the first of each kind")
    parser.add_argument("--cases", action="store_true", help="print one line per case")
    args = parser.parse_args()
    seeds = demo_seeds(per_kind=None if args.all else 1)
    for kind, found in real_seeds().items():
        seeds.setdefault(kind, []).extend(found)
    for kind in readers():
        seeds.setdefault(kind, [])
    counts: dict[str, Counter] = {kind: Counter() for kind in sorted(seeds)}
    slowest: dict[str, float] = dict.fromkeys(counts, 0.0)
    bad = 0
    for case in cases(seeds):
        verdict, why, seconds = outcome(case.kind, case.data, f"corpus/{case.seed}")
        counts[case.kind][verdict] += 1
        slowest[case.kind] = max(slowest[case.kind], seconds)
        bad += verdict == "crashed" or seconds > CASE_LIMIT_S
        if args.cases or verdict == "crashed":
            print(f"{verdict:8} {seconds:6.2f}s {case.id}  {why[:100]}")
    print(f"{'reader (evidence kind)':24} {'cases':>6} {'read':>6} {'rejected':>9} {'crashed':>8} {'slowest':>8}")
    for kind, n in counts.items():
        total = sum(n.values())
        print(f"{kind:24} {total:6} {n['read']:6} {n['rejected']:9} {n['crashed']:8} {slowest[kind]:7.2f}s")
    all_counts = sum(counts.values(), Counter())
    print(f"{'all':24} {sum(all_counts.values()):6} {all_counts['read']:6} {all_counts['rejected']:9} "
          f"{all_counts['crashed']:8}  (limit {CASE_LIMIT_S:g} s per case)")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
