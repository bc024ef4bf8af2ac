"""How well the perf_regressions gate tells regressions from noise, next to two common rules.

A labelled suite, generated here: releases of 20 benchmarks each, with 40 runs of main-branch
history per benchmark (run-to-run noise, lognormal; 12 raw samples per run, ±3 %), a past level
shift in a third of the histories (±15 %, the kind of change point that ruins a naive baseline), and
a candidate run that is either unchanged or regressed by 2-30 %. Three rules judge every candidate:

- gate:  the product (baseline since the last change point, one-sided test with run-to-run
         variance and Mann-Whitney on samples, Benjamini-Hochberg per release, minimum effect);
- naive: candidate / previous run > 1 + limit (github-action-benchmark's alert threshold);
- t-test: candidate vs the last 20 runs, one-sided t at 99 % (Bencher's default t-test threshold),
         no effect size, no correction, no change points.

Prints, per noise level: false alarms on unchanged benchmarks, recall for regressions >= 10 %, and
precision, side by side; the gate at each false discovery rate given (default 0.01 and 0.05: the
numbers behind the product's default). Targets: false alarms <= 1 %, recall >= 90 % for >= 10 % at
the demo's noise (2 % run to run).

Two more suites (``--histories``, each judged at its final release):

- **creep**: an anchor of 10 runs, then eight releases (three base-branch runs each) of 1-2 % each
  (+8.3 % to +17.2 % in all), or eight unchanged releases; the drift rule (limit +8 %, anchor
  frozen before the first step) next to the per-release gate, naive and t-test rules, with 1 and 3
  candidate runs. "drift" blocks only when significantly above the limit; "drift+inc" also blocks
  the inconclusive ones (``inconclusive: fail``). Targets: recall >= 0.9, false alarms <= 2 %.
- **multi-run**: 6 % run-to-run noise, candidates regressed by 10 % or unchanged, measured once or
  five times (each run its own result file); the gate pools the run means. Target: recall with 5
  runs at least double the single-run figure.

The t-test rule is SciPy's (a test dependency: ``pip install -e '.[test]'``), the reference the
gate's own statistics are checked against.

    python benchmarks/perf_accuracy.py [--releases 150] [--seed 8] [--limit 0.05] [--fdr 0.01 0.05]
                                       [--histories 400] [--suites main creep multirun]
"""

import argparse
import time

import numpy as np
from scipy import stats

from phase8_assets.domains.perf import (
    Series,
    judge_drift,
    judge_regressions,
    select_baselines,
    series_change_points,
)
from phase8_assets.evidence.perf_baseline import Anchor, PerfBaseline
from phase8_assets.evidence.perf_budgets import read as read_budgets

CANDIDATE = "c0ffee0" + "0" * 33
SIZES = [0.02, 0.05, 0.10, 0.15, 0.20, 0.30]
HISTORY = 40
BENCHMARKS = 20
REGRESSED_PER_RELEASE = 4


ANCHOR = "policy/perf-baseline.yaml"
DRIFT_LIMIT = 0.08


def budgets(limit: float, fdr: float, drift: str = ""):
    doc = f"""apiVersion: phase8/v1
kind: PerfBudgets
reviewed: "2026-10-01"
baseline: {{branch: main, max_runs: 20, min_runs: 5}}
false_discovery_rate: {fdr}
rules:
  - {{name: time, benchmark: "*", relative: "+{limit * 100:g}%", owner: team:perf{drift}}}
"""
    return read_budgets(doc.encode(), "suite").records[0]


def make_series(name: str, values: np.ndarray, candidates: int = 1) -> Series:
    n = len(values)
    return Series(
        benchmark=name,
        params="",
        measure="time",
        unit="s",
        direction="lower",
        run_ids=np.array([f"{name}#{i}" for i in range(n)], dtype=object),
        uris=np.array([f"{name}/{i}.json" for i in range(n)], dtype=object),
        commits=np.array([f"{i:07x}abc" for i in range(n - candidates)] + [CANDIDATE] * candidates, dtype=object),
        branches=np.array(["main"] * (n - candidates) + ["release"] * candidates, dtype=object),
        run_at=np.array([np.datetime64("2026-01-01") + np.timedelta64(i, "h") for i in range(n)]),
        values=values,
    )


def release(rng: np.random.Generator, cv: float):
    """20 benchmarks: (series, samples, true regression size)."""
    regressed = set(rng.choice(BENCHMARKS, REGRESSED_PER_RELEASE, replace=False))
    out, samples = [], {}
    for b in range(BENCHMARKS):
        size = float(rng.choice(SIZES)) if b in regressed else 0.0
        level = np.ones(HISTORY + 1) * rng.uniform(1e-4, 1e-2)
        if rng.random() < 1 / 3:  # a past change point
            at = int(rng.integers(8, HISTORY - 8))
            level[at:] *= 1 + rng.choice([-0.15, 0.15])
        level[-1] *= 1 + size
        values = level * rng.lognormal(0, cv, HISTORY + 1)
        s = make_series(f"b{b}", values)
        for i, v in enumerate(values):
            samples[(s.run_ids[i], s.benchmark, "", "time")] = list(v * rng.lognormal(0, 0.03, 12))
        out.append((s, size))
    return out, samples


def naive(s: Series, limit: float) -> bool:
    return s.values[-1] / s.values[-2] > 1 + limit


def ttest(s: Series) -> bool:
    base = s.values[:-1][-20:]
    t = (s.values[-1] - base.mean()) / (base.std(ddof=1) * np.sqrt(1 + 1 / len(base)))
    return stats.t.sf(t, len(base) - 1) < 0.01


def naive_runs(s: Series, candidates: int, limit: float) -> bool:
    return float(np.mean(s.values[-candidates:])) / s.values[-candidates - 1] > 1 + limit


def ttest_runs(s: Series, candidates: int) -> bool:
    if candidates == 1:
        return ttest(s)
    cand, base = s.values[-candidates:], s.values[:-candidates][-20:]
    return stats.ttest_ind(cand, base, equal_var=False, alternative="greater").pvalue < 0.01


def per_release_gate(series: list[Series], b) -> list[bool]:
    points = series_change_points(series, CANDIDATE, "main", b.change_point_p_value)
    return [
        c.status == "regressed" for c in judge_regressions(select_baselines(series, CANDIDATE, "main", b, points), b)
    ]


def anchor_of(name: str, runs: np.ndarray) -> Anchor:
    logs = np.log(runs)
    return Anchor(name, "", "time", "s", "lower", "a" * 40, "9.6.0", len(runs), float(np.mean(runs)),
                  float(np.mean(logs)), float(np.std(logs, ddof=1)))  # fmt: skip


def creep_history(rng: np.random.Generator, cv: float, candidates: int, creeping: bool, name: str):
    """An anchor of 10 runs, eight releases of three runs (1-2 % worse each when creeping), the
    candidate runs at the eighth release's level; (series, anchor, total creep)."""
    steps = rng.uniform(0.01, 0.02, 8) if creeping else np.zeros(8)
    levels = np.cumprod(1 + steps)
    level = np.concatenate([np.ones(10), np.repeat(levels[:-1], 3), np.full(candidates, levels[-1])])
    values = level * rng.uniform(1e-4, 1e-2) * rng.lognormal(0, cv, len(level))
    return make_series(name, values, candidates), anchor_of(name, values[:10]), float(levels[-1] - 1)


def creep_suite(rng: np.random.Generator, histories: int, limit: float, cv: float = 0.02) -> None:
    drift = f', drift: {{limit: "+{DRIFT_LIMIT * 100:g}%", anchor: {ANCHOR}}}'
    b = budgets(limit, 0.05, drift)
    print(f"\ncreep: {histories} creeping + {histories} stable histories per row; {cv:.0%} run-to-run noise;")
    print(f"drift limit +{DRIFT_LIMIT:.0%}, per-release limit +{limit:.0%}; judged at the eighth release")
    print(f"{'runs':>5} {'rule':>10} {'recall':>8} {'false alarms':>13}")
    for candidates in (1, 3):
        counts = {r: [0, 0] for r in ("drift", "drift+inc", "gate", "naive", "t-test")}
        for creeping in (True, False):
            for start in range(0, histories, BENCHMARKS):
                items = [creep_history(rng, cv, candidates, creeping, f"b{start + i}") for i in range(BENCHMARKS)]
                series = [s for s, _, _ in items]
                baseline = PerfBaseline("9.6.0", "a" * 40, None, {a.key: a for _, a, _ in items})
                status = [d.status for d in judge_drift(series, CANDIDATE, b, {ANCHOR: baseline})]
                flags = {
                    "drift": [x == "drifted" for x in status],
                    "drift+inc": [x in ("drifted", "inconclusive") for x in status],
                    "gate": per_release_gate(series, b),
                    "naive": [naive_runs(s, candidates, limit) for s in series],
                    "t-test": [ttest_runs(s, candidates) for s in series],
                }
                for rule, fs in flags.items():
                    counts[rule][0 if creeping else 1] += sum(fs)
        for rule, (tp, fa) in counts.items():
            print(f"{candidates:>5} {rule:>10} {tp / histories:>8.1%} {fa / histories:>13.2%}")


def multirun_suite(rng: np.random.Generator, releases: int, limit: float, cv: float = 0.06) -> None:
    b = budgets(limit, 0.05)
    print(f"\nmulti-run: {releases} releases x {BENCHMARKS} benchmarks per row; {cv:.0%} run-to-run noise,")
    print(f"{REGRESSED_PER_RELEASE} regressed by 10 % per release; relative limit +{limit:.0%}")
    print(f"{'runs':>5} {'rule':>10} {'recall@10%':>11} {'false alarms':>13}")
    for candidates in (1, 5):
        counts = {r: [0, 0, 0, 0] for r in ("gate", "naive", "t-test")}
        for _ in range(releases):
            regressed = set(rng.choice(BENCHMARKS, REGRESSED_PER_RELEASE, replace=False))
            series = []
            for i in range(BENCHMARKS):
                level = np.ones(HISTORY + candidates)
                level[HISTORY:] *= 1.10 if i in regressed else 1.0
                values = level * rng.uniform(1e-4, 1e-2) * rng.lognormal(0, cv, len(level))
                series.append(make_series(f"b{i}", values, candidates))
            flags = {
                "gate": per_release_gate(series, b),
                "naive": [naive_runs(s, candidates, limit) for s in series],
                "t-test": [ttest_runs(s, candidates) for s in series],
            }
            for rule, fs in flags.items():
                for i, flagged in enumerate(fs):
                    c = counts[rule]
                    c[0 if i in regressed else 2] += flagged
                    c[1 if i in regressed else 3] += 1
        for rule, (tp, pos, fa, null) in counts.items():
            print(f"{candidates:>5} {rule:>10} {tp / pos:>11.1%} {fa / null:>13.2%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=150)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--limit", type=float, default=0.05, help="the relative limit (minimum effect), e.g. 0.05")
    parser.add_argument("--fdr", type=float, nargs="+", default=[0.01, 0.05], help="false discovery rates to compare")
    parser.add_argument("--histories", type=int, default=400, help="creep histories per row (and stable ones)")
    parser.add_argument("--suites", nargs="+", default=["main", "creep", "multirun"], help="main, creep, multirun")
    args = parser.parse_args()
    started = time.perf_counter()
    if "main" in args.suites:
        main_suite(args)
    if "creep" in args.suites:
        creep_suite(np.random.default_rng(args.seed + 1), args.histories, args.limit)
    if "multirun" in args.suites:
        multirun_suite(np.random.default_rng(args.seed + 2), args.releases, args.limit)
    print(f"({time.perf_counter() - started:.1f} s)")


def main_suite(args) -> None:
    levels = {f"gate@{fdr:g}": budgets(args.limit, fdr) for fdr in args.fdr}
    b = next(iter(levels.values()))
    rng = np.random.default_rng(args.seed)
    print(f"{args.releases} releases x {BENCHMARKS} benchmarks per noise level; relative limit +{args.limit:.0%}")
    print(f"{'noise':>6} {'rule':>10} {'false alarms':>13} {'recall>=10%':>12} {'precision':>10}   recall by size")
    for cv in (0.01, 0.02, 0.05):
        counts = {rule: {"fa": 0, "null": 0, "tp": 0, "pos": 0, "flag": 0, "by": {x: [0, 0] for x in SIZES}}
                  for rule in (*levels, "naive", "t-test")}  # fmt: skip
        for _ in range(args.releases):
            items, samples = release(rng, cv)
            series = [s for s, _ in items]
            points = series_change_points(series, CANDIDATE, "main", b.change_point_p_value)
            verdicts = {
                rule: [
                    c.status == "regressed"
                    for c in judge_regressions(select_baselines(series, CANDIDATE, "main", lb, points), lb, samples)
                ]
                for rule, lb in levels.items()
            }
            verdicts |= {
                "naive": [naive(s, args.limit) for s in series],
                "t-test": [ttest(s) for s in series],
            }
            for rule, flags in verdicts.items():
                c = counts[rule]
                for (_, size), flagged in zip(items, flags, strict=True):
                    c["flag"] += flagged
                    if size == 0:
                        c["null"] += 1
                        c["fa"] += flagged
                    else:
                        c["by"][size][0] += flagged
                        c["by"][size][1] += 1
                        if size >= 0.10:
                            c["pos"] += 1
                            c["tp"] += flagged
        for rule, c in counts.items():
            true_flags = sum(v[0] for v in c["by"].values())
            by = " ".join(f"{int(s * 100)}%:{v[0] / max(v[1], 1):.0%}" for s, v in c["by"].items())
            print(
                f"{cv:>6.0%} {rule:>10} {c['fa'] / c['null']:>13.2%} {c['tp'] / c['pos']:>12.1%} "
                f"{true_flags / max(c['flag'], 1):>10.1%}   {by}"
            )


if __name__ == "__main__":
    main()
