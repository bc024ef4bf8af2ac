"""Performance budgets, regressions and change points: pure functions over the benchmark history.

**Series.** One per (benchmark, params, measure): the runs' means in time order, with the run's
commit and branch.

**Change points** (``change_points``): e-divisive-means-style binary segmentation as in Apache
Otava (Hunter): in a segment, the split that maximises the two-sample t statistic between the two sides
is a change point when its two-sided p-value (Student's t on the pooled variance, as Otava uses),
Bonferroni-corrected for the number of splits scanned, is below ``change_point_p_value`` (0.001) and both sides hold at least ``MIN_SEGMENT``
runs; then each side is searched again. Otava replaced the
permutation test of classic e-divisive with the same t-test for speed; each segment here costs
O(n) numpy work (cumulative sums give every split's statistic at once). As in Otava, the search also
runs in sliding windows of ``WINDOW`` runs, so a short regression that was later fixed is found,
and every change point is re-tested between its neighbours until all are significant.

**Baseline.** Runs on the base branch (or with no branch recorded) before the candidate, since
the last change point in that history, at most ``max_runs``; fewer than ``min_runs`` is too little
history (a warning that says so, never a pass or a block).

**Regression test.** Direction-aware (``lower`` or ``higher`` is better), one-sided.

- Run level, always: the candidate's run means against the baseline's run means — Welch's t-test
  with two or more candidate runs; with one, the prediction-interval t-test
  ``t = (c − mean_b) / (sd_b·√(1 + 1/n_b))`` on ``n_b − 1`` degrees of freedom. Run-to-run
  variance is what makes CI runners noisy, so it must be in the test.
- Sample level, when both sides have raw samples: Mann–Whitney U between the candidate's samples
  and those of the last ``SAMPLE_RUNS`` baseline runs. The p-value used is the larger of the two
  (an intersection–union test: both levels must agree), so samples add evidence but a tight
  within-run spread alone never raises an alarm.
- False alarms across the run are controlled with Benjamini–Hochberg over every test of the run
  (level ``false_discovery_rate``). A measure *regressed* when its q-value is within that level
  AND its effect (relative change in the bad direction) is at least the rule's relative limit.
  An effect at least the limit whose q-value is not within that level is *inconclusive*, never a
  silent pass: a warning with the candidate runs that would decide at the baseline's run-to-run
  noise (``runs_to_decide``, at the level ``false_discovery_rate / tests`` that a lone discovery needs).

**Drift** (``judge_drift``): the moving baseline follows a creep of small steps, so a rule may
also name a frozen anchor (``kind: PerfBaseline``). The drift is the log ratio of the candidate's
run means (several result files of the release commit pool with their run means as the unit, so
the between-run variance is in the estimate) to the anchor's; its uncertainty comes from the
between-run spread of both sides (pooled, on ``runs − 2`` degrees of freedom; a single candidate
run borrows the anchor's spread). One-sided ``DRIFT_CONFIDENCE`` bounds decide: lower bound above
the limit → *drifted* (an error); the bounds straddle the limit while the estimate is at least
half the limit → *inconclusive*, with the number of candidate runs that would decide at this noise
(the sample-size formula for ``DRIFT_POWER``), a warning unless the rule says ``inconclusive: fail``.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: the code location loads without it
    import numpy as np

from phase8_assets.domains.gates import Finding
from phase8_assets.domains.stats import mannwhitney_p, norm_ppf, t_ppf, t_sf, welch_p
from phase8_assets.evidence.perf_baseline import Anchor, PerfBaseline
from phase8_assets.evidence.perf_budgets import BudgetRule, PerfBudgets

MIN_SEGMENT = 5
DRIFT_CONFIDENCE = 0.95
DRIFT_POWER = 0.8
WINDOW = 20
SAMPLE_RUNS = 5


@dataclass
class Series:
    benchmark: str
    params: str
    measure: str
    unit: str
    direction: str
    run_ids: np.ndarray
    uris: np.ndarray
    commits: np.ndarray
    branches: np.ndarray
    run_at: np.ndarray  # datetime64[us]
    values: np.ndarray  # the run means
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        name = f"{self.benchmark}[{self.params}]" if self.params and "[" not in self.benchmark else self.benchmark
        return f"{name} / {self.measure}"


STAT_COLUMNS = ("mean", "median", "min", "max", "stddev", "p90", "p95", "p99", "n")


def series_from_history(hist: dict) -> list[Series]:
    """Split the history columns (sorted by benchmark, params, measure, time) into series."""
    import numpy as np

    n = len(hist["run_id"])
    if n == 0:
        return []
    keys = np.stack([hist["benchmark"], hist["params"], hist["measure"]], axis=1).astype(str)
    change = np.any(keys[1:] != keys[:-1], axis=1)
    bounds = np.concatenate([[0], np.nonzero(change)[0] + 1, [n]])
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        values = np.asarray(hist["mean"][lo:hi], dtype=float)
        out.append(
            Series(
                benchmark=str(hist["benchmark"][lo]),
                params=str(hist["params"][lo]),
                measure=str(hist["measure"][lo]),
                unit=str(hist["unit"][lo]),
                direction=str(hist["direction"][lo]),
                run_ids=hist["run_id"][lo:hi],
                uris=hist["uri"][lo:hi],
                commits=hist["commit"][lo:hi],
                branches=hist["branch"][lo:hi],
                run_at=np.asarray(hist["run_at"][lo:hi]),
                values=values,
                stats={k: np.asarray(hist[k][lo:hi], dtype=float) for k in STAT_COLUMNS if k in hist},
            )
        )
    return out


def series_from_files(files: list[tuple[str, object]]) -> list[Series]:
    """Series straight from read benchmark files ((uri, ``BenchmarkFile``) pairs), in the shape
    ``bench_history`` gives, for what reads a root without the warehouse (``phase8 perf baseline``)."""
    import numpy as np

    rows = []
    for uri, parsed in files:
        run = parsed.run
        for m in parsed.measurements:
            rows.append((m.benchmark, m.params, m.measure, run.time, uri, uri, run.commit or "", run.branch or "",
                         m.unit, m.direction, m.stats))  # fmt: skip
    rows.sort(key=lambda r: r[:5])
    hist = {
        "benchmark": np.array([r[0] for r in rows], dtype=object),
        "params": np.array([r[1] for r in rows], dtype=object),
        "measure": np.array([r[2] for r in rows], dtype=object),
        "run_at": np.array([np.datetime64(r[3].replace(tzinfo=None), "us") for r in rows]),
        "run_id": np.array([r[4] for r in rows], dtype=object),
        "uri": np.array([r[5] for r in rows], dtype=object),
        "commit": np.array([r[6] for r in rows], dtype=object),
        "branch": np.array([r[7] for r in rows], dtype=object),
        "unit": np.array([r[8] for r in rows], dtype=object),
        "direction": np.array([r[9] for r in rows], dtype=object),
    }
    for k in STAT_COLUMNS:
        hist[k] = np.array([r[10].get(k, np.nan) for r in rows], dtype=float)
    return series_from_history(hist)


def anchor_document(
    series: list[Series], commit: str, version: str, base_branch: str, runs: int, frozen_at: datetime
) -> dict:
    """A ``kind: PerfBaseline`` document: per series with runs of the release ``commit``, the
    statistics of those runs and of the base-branch runs just before them, ``runs`` in all."""
    import numpy as np

    from phase8_assets.shared.clock import format_timestamp

    entries = []
    for s in series:
        if s.direction not in ("lower", "higher"):
            continue
        cand = [i for i, c in enumerate(s.commits) if same_commit(c, commit) and np.isfinite(s.values[i])]
        if not cand:
            continue
        before = [int(i) for i in base_runs(s, commit, base_branch) if s.run_at[i] < s.run_at[cand].min()]
        chosen = sorted([*before, *cand], key=lambda i: s.run_at[i])[-runs:]
        if len(chosen) < 2:
            continue
        logs = np.log(s.values[chosen])
        entries.append(
            {
                "benchmark": s.benchmark,
                "params": s.params,
                "measure": s.measure,
                "unit": s.unit,
                "direction": s.direction,
                "commit": commit,
                "release": version,
                "runs": len(chosen),
                "mean": float(np.mean(s.values[chosen])),
                "median": float(np.median(s.values[chosen])),
                "log_mean": float(np.mean(logs)),
                "log_sd": float(np.std(logs, ddof=1)),
                "first_run": format_timestamp(run_time(s, chosen[0]).replace(tzinfo=UTC)),
                "last_run": format_timestamp(run_time(s, chosen[-1]).replace(tzinfo=UTC)),
            }
        )
    return {
        "apiVersion": "phase8/v1",
        "kind": "PerfBaseline",
        "description": f"Performance anchor frozen at release {version}; accept a creep by freezing a new one.",
        "frozen_at": format_timestamp(frozen_at),
        "release": {"version": version, "commit": commit.lower()},
        "benchmarks": entries,
    }


def _best_split(x: np.ndarray, min_size: int) -> tuple[int, float] | None:
    """The split index maximising |t| in ``x`` (every split at once via cumulative sums)."""
    import numpy as np

    n = len(x)
    if n < 2 * min_size:
        return None
    z = x / np.mean(x) if np.mean(x) else x  # scale-free: avoids cancellation for tiny timings
    c1, c2 = np.cumsum(z), np.cumsum(z * z)
    k = np.arange(min_size, n - min_size + 1)
    n1, n2 = k.astype(float), (n - k).astype(float)
    s1, q1 = c1[k - 1], c2[k - 1]
    s2, q2 = c1[-1] - s1, c2[-1] - q1
    m1, m2 = s1 / n1, s2 / n2
    pooled = (np.maximum(q1 - n1 * m1 * m1, 0) + np.maximum(q2 - n2 * m2 * m2, 0)) / (n - 2)
    se = np.sqrt(pooled * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, np.abs(m2 - m1) / se, np.where(m1 != m2, np.inf, 0.0))
    i = int(np.argmax(t))
    if not np.isfinite(t[i]):
        return int(k[i]), 0.0
    if t[i] == 0:
        return int(k[i]), 1.0
    # Student's t on the pooled variance (as Otava does; stable when one side is short), and
    # Bonferroni over the len(k) splits scanned, so false change points stay rare.
    return int(k[i]), float(min(1.0, 2 * t_sf(t[i], n - 2) * len(k)))


def _split_p(x: np.ndarray, k: int, splits: int) -> float:
    """Two-sided p-value of a level change at ``k`` in ``x`` (pooled t), Bonferroni over ``splits``."""
    import numpy as np

    left, right = x[:k], x[k:]
    n1, n2 = len(left), len(right)
    pooled = (np.sum((left - left.mean()) ** 2) + np.sum((right - right.mean()) ** 2)) / (n1 + n2 - 2)
    diff = abs(right.mean() - left.mean())
    if pooled <= 0:
        return 0.0 if diff > 0 else 1.0
    t = diff / np.sqrt(pooled * (1 / n1 + 1 / n2))
    return float(min(1.0, 2 * t_sf(t, n1 + n2 - 2) * splits))


def _segment(values: np.ndarray, lo: int, hi: int, p_threshold: float, min_size: int, found: dict) -> None:
    stack = [(lo, hi)]
    while stack:
        a, b = stack.pop()
        best = _best_split(values[a:b], min_size)
        if best is None or best[1] >= p_threshold:
            continue
        split = a + best[0]
        found[split] = min(found.get(split, 1.0), best[1])
        stack += [(a, split), (split, b)]


def change_points(
    values: np.ndarray, p_threshold: float = 0.001, min_size: int = MIN_SEGMENT, window: int = WINDOW
) -> list[tuple[int, float]]:
    """Indices where a new level starts, with each one's p-value.

    Binary segmentation over the whole series and over sliding windows of ``window`` runs (as
    Otava does: a short regression that was later fixed hides from a whole-series split, because
    both sides then hold the old level); candidates closer than ``min_size`` are merged; then the
    weakest change point is dropped, and the rest re-tested between their neighbours, until every
    one is significant.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2 * min_size:
        return []
    found: dict[int, float] = {}
    _segment(values, 0, n, p_threshold, min_size, found)
    for lo in range(0, max(n - window, 0) + 1, max(window // 2, 1)):
        _segment(values, lo, min(lo + window, n), p_threshold, min_size, found)
    merged: list[int] = []
    for index in sorted(found):
        if merged and index - merged[-1] < min_size:
            if found[index] < found[merged[-1]]:
                merged[-1] = index
            continue
        merged.append(index)
    splits = max(min(window, n) - 2 * min_size + 1, 1)
    while merged:
        bounds = [0, *merged, n]
        ps = [
            _split_p(values[bounds[j - 1] : bounds[j + 1]], bounds[j] - bounds[j - 1], splits)
            for j in range(1, len(bounds) - 1)
        ]
        worst = int(np.argmax(ps))
        if ps[worst] < p_threshold:
            return list(zip(merged, ps, strict=True))
        merged.pop(worst)
    return []


def same_commit(a: object, b: object) -> bool:
    a, b = str(a or ""), str(b or "")
    return len(a) >= 7 and len(b) >= 7 and (a.startswith(b) or b.startswith(a))


@dataclass
class Comparison:
    series: Series
    status: str  # regressed | inconclusive | ok | insufficient-history | not-judged | no-candidate | unmeasured
    rule: BudgetRule | None
    direction: str
    candidate: np.ndarray  # indices into the series
    baseline: np.ndarray  # indices into the series
    since_change_point: int | None  # index of the change point the baseline starts at
    effect: float | None = None
    p_run: float | None = None
    p_sample: float | None = None
    p: float | None = None
    q: float | None = None
    runs_needed: int | None = None  # for an inconclusive one: more candidate runs that would decide
    note: str = ""

    @property
    def candidate_mean(self) -> float:
        import numpy as np

        return float(np.mean(self.series.values[self.candidate]))

    @property
    def baseline_mean(self) -> float:
        import numpy as np

        return float(np.mean(self.series.values[self.baseline]))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), monotone, capped at 1."""
    import numpy as np

    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def run_level_p(candidate: np.ndarray, baseline: np.ndarray, sign: float) -> float:
    """One-sided p-value that the candidate is worse (``sign`` +1: larger is worse)."""
    import numpy as np

    mb, sb, nb = float(np.mean(baseline)), float(np.std(baseline, ddof=1)), len(baseline)
    diff = sign * (float(np.mean(candidate)) - mb)
    if len(candidate) >= 2 and (sb > 0 or np.std(candidate) > 0):
        p = welch_p(candidate.tolist(), baseline.tolist(), "greater" if sign > 0 else "less")
        return p if math.isfinite(p) else 1.0
    if sb == 0:
        return 0.0 if diff > 0 else 1.0
    t = diff / (sb * np.sqrt(1 + 1 / nb))
    return t_sf(t, nb - 1)


def sample_level_p(candidate: list[float], baseline: list[float], sign: float) -> float | None:
    if len(candidate) < 3 or len(baseline) < 3:
        return None
    return mannwhitney_p(candidate, baseline, "greater" if sign > 0 else "less")


def base_runs(s: Series, candidate_commit: str, base_branch: str) -> np.ndarray:
    """Indices of the series' base-branch history: runs on ``base_branch`` (or with no branch
    recorded) that are not the candidate and whose tool reported the mean, in time order."""
    import numpy as np

    return np.array(
        [
            i
            for i, (b, c) in enumerate(zip(s.branches, s.commits, strict=True))
            if (not b or str(b) == base_branch) and not same_commit(c, candidate_commit) and np.isfinite(s.values[i])
        ],
        dtype=int,
    )


def select_baselines(
    series: list[Series], candidate_commit: str, base_branch: str, budgets: PerfBudgets, points: dict[tuple, list]
) -> list[Comparison]:
    """Per series: the candidate runs, and the baseline (base-branch runs before the candidate,
    since the last change point, at most ``max_runs``); too little history is said, not guessed."""
    import numpy as np

    out: list[Comparison] = []
    for s in series:
        cand = np.array([i for i, c in enumerate(s.commits) if same_commit(c, candidate_commit)], dtype=int)
        rule = budgets.rule_for(s.benchmark, s.measure, "relative")
        direction = s.direction if s.direction in ("lower", "higher") else (rule.direction if rule else None)
        if len(cand) == 0:
            out.append(Comparison(s, "no-candidate", rule, direction or "unknown", cand, cand, None))
            continue
        history = base_runs(s, candidate_commit, base_branch)
        eligible = history[s.run_at[history] < s.run_at[cand].min()]
        cps = [(i, p) for i, p in points.get((s.benchmark, s.params, s.measure), []) if i < len(eligible)]
        start = cps[-1][0] if cps else 0
        base = eligible[start:][-budgets.max_runs :]
        comp = Comparison(s, "ok", rule, direction or "unknown", cand, base, int(eligible[start]) if cps else None)
        unmeasured = [int(i) for i in cand if not np.isfinite(s.values[i])]
        if rule is None or direction is None:
            comp.status = "not-judged"
            comp.note = "no relative limit applies" if rule is None else "the measure's direction is unknown"
        elif unmeasured:
            comp.status = "unmeasured"
            comp.note = f"the tool reported no mean of {s.measure} in this run"
            comp.candidate = np.array(unmeasured, dtype=int)
        elif len(base) < budgets.min_runs:
            comp.status = "insufficient-history"
            since = f" since the change point of {np.datetime_as_string(s.run_at[eligible[start]], 'D')}" if cps else ""
            comp.note = f"{len(base)} baseline run(s){since}; at least {budgets.min_runs} needed"
        out.append(comp)
    return out


def judge_regressions(
    comparisons: list[Comparison], budgets: PerfBudgets, samples: dict[tuple, list[float]] | None = None
) -> list[Comparison]:
    """Run the tests on every comparison that has a baseline; BH across the run; decide."""
    import numpy as np

    samples = samples or {}
    tested = []
    for comp in comparisons:
        if comp.status != "ok":
            continue
        s = comp.series
        sign = 1.0 if comp.direction == "lower" else -1.0
        cv, bv = s.values[comp.candidate], s.values[comp.baseline]
        comp.effect = sign * (float(np.mean(cv)) - float(np.mean(bv))) / abs(float(np.mean(bv)))
        comp.p_run = run_level_p(cv, bv, sign)
        key = (s.benchmark, s.params, s.measure)
        cs = [v for i in comp.candidate for v in samples.get((s.run_ids[i], *key), [])]
        bs = [v for i in comp.baseline[-SAMPLE_RUNS:] for v in samples.get((s.run_ids[i], *key), [])]
        comp.p_sample = sample_level_p(cs, bs, sign) if cs and bs else None
        comp.p = max(comp.p_run, comp.p_sample) if comp.p_sample is not None else comp.p_run
        tested.append(comp)
    qs = benjamini_hochberg(np.array([c.p for c in tested], dtype=float))
    for comp, q in zip(tested, qs, strict=True):
        comp.q = float(q)
        if comp.q <= budgets.false_discovery_rate and comp.effect >= comp.rule.relative:
            comp.status = "regressed"
        elif comp.effect >= comp.rule.relative:
            comp.status = "inconclusive"
            s = comp.series
            # at the level a lone discovery among this run's tests needs: enough whatever BH ranks it
            alpha = budgets.false_discovery_rate / len(tested)
            comp.runs_needed = runs_to_decide(s.values[comp.candidate], s.values[comp.baseline], comp.effect, alpha)
    return comparisons


def runs_to_decide(candidate: np.ndarray, baseline: np.ndarray, effect: float, alpha: float) -> int | None:
    """More candidate runs that would make an ``effect`` this large significant at ``alpha`` with
    power ``DRIFT_POWER``, at the run-to-run noise of the baseline (and of the candidate runs, pooled);
    None when more candidate runs cannot (the baseline itself is too short or too noisy)."""
    import numpy as np

    logs_b, logs_c = np.log(baseline), np.log(candidate)
    df = len(logs_b) - 1 + max(len(logs_c) - 1, 0)
    ss = np.sum((logs_b - logs_b.mean()) ** 2) + (np.sum((logs_c - logs_c.mean()) ** 2) if len(logs_c) > 1 else 0.0)
    sd = float(np.sqrt(ss / df)) if df > 0 else 0.0
    z = norm_ppf(1 - alpha) + norm_ppf(DRIFT_POWER)
    if sd <= 0:
        return 1
    inverse = (np.log1p(effect) / (z * sd)) ** 2 - 1 / len(logs_b)
    return max(int(np.ceil(1 / inverse)) - len(logs_c), 1) if inverse > 0 else None


def series_change_points(series: list[Series], candidate_commit: str, base_branch: str, p_threshold: float) -> dict:
    """Change points of every series' base-branch history: key -> [(index into that history, p)]."""
    return {
        (s.benchmark, s.params, s.measure): change_points(
            s.values[base_runs(s, candidate_commit, base_branch)], p_threshold
        )
        for s in series
    }


@dataclass
class BudgetCheck:
    series: Series
    rule: BudgetRule
    value: float | None  # the worst candidate value of the rule's statistic
    passed: bool
    run_index: int | None  # the candidate run that gave it, or the first one that did not report it
    note: str = ""
    unreported: tuple[int, ...] = ()  # candidate runs whose tool did not report the statistic
    problem: str = ""  # the limit cannot be compared with the measure (its unit): not judged


def _unmeasured(sibling: Series, measure: str) -> Series:
    """A measure the rule needs but the tool never reported for this benchmark: every value missing."""
    import numpy as np

    missing = np.full(len(sibling.values), np.nan)
    return replace(sibling, measure=measure, unit="", direction="unknown", values=missing, stats={})


def check_budgets(series: list[Series], candidate_commit: str, budgets: PerfBudgets) -> list[BudgetCheck]:
    """Absolute limits on the candidate runs: the worst candidate run must hold the limit.

    A statistic (or measure) the tool did not report in a candidate run is missing, never 0: the
    budget then fails closed, naming the statistic and the run's file, whatever the other runs say.
    So is a budgeted benchmark that was in its suite's latest run before the release and is not in
    the release's run of that suite: it errored (pytest-benchmark leaves an errored benchmark out of
    its JSON), was skipped, or was renamed or removed, which the budget's owner decides once (narrow
    the budget, or a waiver); a benchmark already missing from an earlier run of its suite is not.
    A suite none of whose benchmarks ran for the release (its file not published) fails the same way:
    the budget was not measured.
    """
    import numpy as np

    out = []
    present = {(s.benchmark, s.params, s.measure) for s in series}
    ran = {(s.benchmark, s.params) for s in series if any(same_commit(c, candidate_commit) for c in s.commits)}
    members: dict[object, set[tuple[str, str]]] = {}
    latest: dict[tuple[str, str], object] = {}  # (benchmark, params) -> its newest run before the release
    for s in series:
        for run, commit, when in zip(s.run_ids, s.commits, s.run_at, strict=True):
            members.setdefault(run, set()).add((s.benchmark, s.params))
            if not same_commit(commit, candidate_commit):
                key = (s.benchmark, s.params)
                latest[key] = max(latest.get(key, when), when)
    measures = sorted({r.measure for r in budgets.rules if r.absolute is not None})
    judged = list(series)
    for s in series:
        if s.measure == "time" and any(same_commit(c, candidate_commit) for c in s.commits):
            judged += [
                _unmeasured(s, m)
                for m in measures
                if (s.benchmark, s.params, m) not in present and budgets.rule_for(s.benchmark, m, "absolute")
            ]
    for s in judged:
        rule = budgets.rule_for(s.benchmark, s.measure, "absolute")
        if rule is None:
            continue
        cand = [i for i, c in enumerate(s.commits) if same_commit(c, candidate_commit)]
        if not cand:
            last = int(np.argmax(s.run_at))
            suite = members[s.run_ids[last]]
            # With no release result at all, the gate's candidate-present finding says so once.
            if ran and s.run_at[last] >= max(latest.get(k, s.run_at[last]) for k in suite):
                others = suite & ran
                note = (
                    f"no result for the release commit, though it was in its suite's latest run (the evidence) and "
                    f"{len(others)} other benchmark(s) of that run have one: it errored, was skipped, or was renamed "
                    "or removed"
                    if others
                    else "no result for the release commit: its suite's latest run (the evidence) has no benchmark "
                    "that ran for the release, so the suite did not run or its results were not published (narrow "
                    "the budget if the suite was retired)"
                )
                out.append(BudgetCheck(s, rule, None, False, last, note))
            continue
        problem = rule.absolute.unit_problem(s.unit) if s.stats else None
        if problem:
            out.append(BudgetCheck(s, rule, None, False, cand[0], problem=problem))
            continue
        column = s.stats.get(rule.absolute.stat)
        values = [(float(column[i]), i) for i in cand if column is not None and np.isfinite(column[i])]
        missing = tuple(i for i in cand if column is None or not np.isfinite(column[i]))
        worst = (max if rule.absolute.op.startswith("<") else min)(values) if values else None
        if missing:
            what = rule.absolute.stat if s.stats else f"measure {s.measure!r}"
            reported = sorted(k for k, col in s.stats.items() if np.isfinite(col[missing[0]]))
            note = f"the tool reported no {what} in this run" + (f" (only {', '.join(reported)})" if reported else "")
            out.append(BudgetCheck(s, rule, worst[0] if worst else None, False, missing[0], note, missing))
            continue
        out.append(BudgetCheck(s, rule, worst[0], rule.absolute.holds(worst[0]), worst[1]))
    return out


@dataclass
class DriftCheck:
    series: Series
    rule: BudgetRule
    anchor: Anchor | None
    status: str  # drifted | inconclusive | within | no-anchor-entry | unmeasured
    candidate: np.ndarray  # indices into the series
    drift: float | None = None  # relative change since the anchor, in the bad direction (+0.12: 12 % worse)
    low: float | None = None  # one-sided DRIFT_CONFIDENCE bounds of the drift
    high: float | None = None
    run_sd: float | None = None  # between-run standard deviation (log scale, ~ relative)
    runs_needed: int | None = None  # more candidate runs that would decide; None when more cannot
    note: str = ""


def drift_estimate(candidate: np.ndarray, anchor: Anchor, sign: float, limit: float) -> dict:
    """The drift of the candidate run means since the anchor, its one-sided bounds, and how many
    candidate runs in all would decide it against ``limit`` at the observed between-run noise."""
    import numpy as np

    logs = np.log(candidate)
    n_c, n_a = len(logs), anchor.runs
    d = sign * (float(np.mean(logs)) - anchor.log_mean)
    if n_c >= 2:
        var = ((n_a - 1) * anchor.log_sd**2 + (n_c - 1) * float(np.var(logs, ddof=1))) / (n_a + n_c - 2)
        df = n_a + n_c - 2
    else:
        var, df = anchor.log_sd**2, n_a - 1
    sd = float(np.sqrt(var))
    half = t_ppf(DRIFT_CONFIDENCE, df) * sd * np.sqrt(1 / n_c + 1 / n_a)
    gap = abs(d - np.log1p(limit))
    z = norm_ppf(DRIFT_CONFIDENCE) + norm_ppf(DRIFT_POWER)
    inverse = (gap / (z * sd)) ** 2 - 1 / n_a if sd > 0 else np.inf
    total = int(np.ceil(1 / inverse)) if inverse > 0 and np.isfinite(inverse) else None
    return {
        "log_drift": d,
        "log_low": d - half,
        "log_high": d + half,
        "sd": sd,
        "runs_needed": max(total - n_c, 1) if total is not None else None,
    }


def judge_drift(
    series: list[Series], candidate_commit: str, budgets: PerfBudgets, anchors: dict[str, PerfBaseline]
) -> list[DriftCheck]:
    """Every candidate series under a drift rule whose anchor file was read (``anchors``: path ->
    PerfBaseline) against that anchor; a series the anchor lacks is said, never passed."""
    import numpy as np

    out = []
    for s in series:
        rule = budgets.rule_for(s.benchmark, s.measure, "drift")
        if rule is None or rule.drift.anchor not in anchors:
            continue
        cand = np.array([i for i, c in enumerate(s.commits) if same_commit(c, candidate_commit)], dtype=int)
        if not len(cand):
            continue
        anchor = anchors[rule.drift.anchor].anchors.get((s.benchmark, s.params, s.measure))
        check = DriftCheck(s, rule, anchor, "within", cand)
        values = s.values[cand]
        if anchor is None:
            check.status, check.note = "no-anchor-entry", f"{rule.drift.anchor} has no entry for this benchmark"
            out.append(check)
            continue
        if not np.all(np.isfinite(values)):
            check.status = "unmeasured"
            check.note = f"the tool reported no mean of {s.measure} in this run"
            check.candidate = cand[~np.isfinite(values)]
            out.append(check)
            continue
        sign = 1.0 if anchor.direction == "lower" else -1.0
        est = drift_estimate(values, anchor, sign, rule.drift.limit)
        limit = np.log1p(rule.drift.limit)
        check.drift, check.low, check.high = (float(np.expm1(est[k])) for k in ("log_drift", "log_low", "log_high"))
        check.run_sd, check.runs_needed = est["sd"], est["runs_needed"]
        if est["log_low"] > limit:
            check.status = "drifted"
        elif est["log_high"] > limit and est["log_drift"] >= limit / 2:
            check.status = "inconclusive"
        out.append(check)
    return out


def format_value(value: float | None, unit: str) -> str:
    """A value in a readable unit: 0.00123 s -> '1.23 ms'."""
    import numpy as np

    if value is None or not np.isfinite(value):
        return "—"
    if unit == "s":
        for factor, name in ((1, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
            if abs(value) >= factor or name == "ns":
                return f"{value / factor:.4g} {name}"
    if unit == "B":
        for factor, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "KB"), (1, "B")):
            if abs(value) >= factor or name == "B":
                return f"{value / factor:.4g} {name}"
    if unit == "ratio":
        return f"{value:.4g}"
    return f"{value:.4g} {unit}".strip()


def run_time(s: Series, index: int) -> datetime:
    return s.run_at[index].astype("datetime64[us]").astype(datetime)


def _runbook(config, rule: BudgetRule | None, gate_runbook: str) -> str:
    if rule and rule.runbook:
        return config.runbooks.base.uri_of(f"{config.runbooks.path}/{rule.runbook}".strip("/"))
    return gate_runbook


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def regression_findings(comparisons: list[Comparison], budgets: PerfBudgets, config, gate: str) -> list[Finding]:
    """Errors for significant regressions; warnings for too little history and missing candidates."""
    gate_runbook = config.runbook_for(gate)
    out = []
    for c in comparisons:
        s = c.series
        owner = c.rule.owner if c.rule else config.owner_for(gate, "benchmarks")
        runbook = _runbook(config, c.rule, gate_runbook)
        evidence = str(s.uris[c.candidate[0]]) if len(c.candidate) else str(s.uris[-1])
        details = {
            "benchmark": s.benchmark,
            "params": s.params,
            "measure": s.measure,
            "unit": s.unit,
            "direction": c.direction,
            "rule": c.rule.name if c.rule else None,
            "candidate_runs": len(c.candidate),
            "baseline_runs": len(c.baseline),
        }
        if c.status == "regressed":
            base_from, base_to = run_time(s, c.baseline[0]), run_time(s, c.baseline[-1])
            details.update(
                effect=round(c.effect, 6),
                p_value=c.p,
                p_value_runs=c.p_run,
                p_value_samples=c.p_sample,
                q_value=c.q,
                false_discovery_rate=budgets.false_discovery_rate,
                candidate_mean=c.candidate_mean,
                baseline_mean=c.baseline_mean,
                baseline_window=[base_from.isoformat(), base_to.isoformat()],
                baseline_since_change_point=c.since_change_point is not None,
            )
            out.append(
                Finding(
                    "error",
                    s.subject,
                    f"relative:{c.rule.name}",
                    f"{_pct(c.effect)} ({format_value(c.candidate_mean, s.unit)} vs baseline "
                    f"{format_value(c.baseline_mean, s.unit)} over {len(c.baseline)} runs), p={c.p:.2g}, q={c.q:.2g}",
                    f"worse by at most {c.rule.relative_text} ({'lower' if c.direction == 'lower' else 'higher'} is better)",
                    evidence,
                    owner,
                    runbook,
                    details,
                )
            )
        elif c.status == "inconclusive":
            need = (
                f"needs {c.runs_needed} more run(s) to decide at this noise"
                if c.runs_needed is not None
                else f"more candidate runs cannot decide: the baseline's {len(c.baseline)} runs are too few or noisy"
            )
            details.update(effect=round(c.effect, 6), p_value=c.p, q_value=c.q, runs_needed=c.runs_needed,
                           false_discovery_rate=budgets.false_discovery_rate)  # fmt: skip
            out.append(
                Finding(
                    "warning", s.subject, f"relative:{c.rule.name}",
                    f"inconclusive: {need} ({_pct(c.effect)} vs baseline over {len(c.baseline)} runs, "
                    f"q={c.q:.2g} > {budgets.false_discovery_rate}, {len(c.candidate)} candidate run(s))",
                    f"worse by at most {c.rule.relative_text}, decided at q <= {budgets.false_discovery_rate}", evidence,
                    owner, runbook, details,
                )
            )  # fmt: skip
        elif c.status == "unmeasured":
            out.append(
                Finding(
                    "error", s.subject, f"relative:{c.rule.name}", f"not measured: {c.note}",
                    f"a mean to compare with the baseline, worse by at most {c.rule.relative_text}", evidence, owner,
                    runbook, details,
                )
            )  # fmt: skip
        elif c.status == "insufficient-history":
            out.append(
                Finding(
                    "warning", s.subject, "baseline-history", c.note, f"{budgets.min_runs} baseline runs", evidence,
                    owner, runbook, details,
                )
            )  # fmt: skip
    candidates = {c.series.benchmark for c in comparisons if len(c.candidate)}
    if comparisons and not candidates:
        commit = config.release.get("commit")
        out.append(
            Finding(
                "error", "benchmarks", "candidate-present", f"no benchmark run for release commit {commit}",
                "benchmark runs of the release commit", config.paths_of("benchmarks"), config.owner_for(gate, "benchmarks"),
                gate_runbook, {"commit": commit},
            )
        )  # fmt: skip
    missing = sorted({c.series.subject for c in comparisons if c.status == "no-candidate" and c.rule})
    if candidates and missing:
        out.append(
            Finding(
                "warning", "benchmarks", "candidate-complete",
                f"{len(missing)} measure(s) in history have no candidate run, e.g. {missing[0]}",
                "every benchmark with a budget runs for the release", config.paths_of("benchmarks"),
                config.owner_for(gate, "benchmarks"), gate_runbook, {"missing": missing[:50]},
            )
        )  # fmt: skip
    return out


def _on_path(uri: str, path: str) -> bool:
    """Whether the evidence file ``uri`` is the root's file at ``path`` (normalised, relative)."""
    return uri == path or uri.endswith("/" + path)


def resolve_anchors(
    budgets: PerfBudgets, files: list[tuple[str, PerfBaseline]], rejections: list[tuple[str, str, str]]
) -> tuple[dict[str, PerfBaseline], dict[str, str], dict[str, tuple[str | None, str]]]:
    """The anchor of every drift rule, by the path the rule names, among the ``perf_baselines``
    evidence read (``files``: uri, record) or rejected (``rejections``: uri, field, reason).
    Returns (path -> PerfBaseline, path -> its file's uri, path -> (uri, why it cannot be used))."""
    found: dict[str, PerfBaseline] = {}
    uris: dict[str, str] = {}
    problems: dict[str, tuple[str | None, str]] = {}
    for path in sorted({r.drift.anchor for r in budgets.rules if r.drift}):
        hits = [(uri, rec) for uri, rec in files if _on_path(uri, path)]
        bad = [(uri, f"{field}: {reason}") for uri, field, reason in rejections if _on_path(uri, path)]
        if len(hits) == 1 and not bad:
            found[path], uris[path] = hits[0][1], hits[0][0]
        elif bad:
            problems[path] = (bad[0][0], f"rejected: {bad[0][1]}")
        elif hits:
            problems[path] = (hits[0][0], f"{len(hits)} PerfBaseline files match {path}; exactly one expected")
        else:
            problems[path] = (None, f"no PerfBaseline file {path} among the perf_baselines evidence")
    return found, uris, problems


def drift_findings(
    checks: list[DriftCheck], budgets: PerfBudgets, anchor_uris: dict[str, str], problems: dict, config, gate: str
) -> list[Finding]:
    """Errors for a significant drift, an anchor missing or unreadable, or a benchmark the anchor
    lacks; inconclusive drifts as warnings (errors where the rule says ``inconclusive: fail``)."""
    import numpy as np

    gate_runbook = config.runbook_for(gate)
    out = []
    for rule in budgets.rules:
        if rule.drift and rule.drift.anchor in problems:
            uri, why = problems[rule.drift.anchor]
            out.append(
                Finding(
                    "error", f"perf anchor {rule.drift.anchor}", f"drift:{rule.name}", why,
                    f"one readable PerfBaseline at {rule.drift.anchor} (phase8 perf baseline --freeze)",
                    uri or config.paths_of("perf_baselines"), rule.owner, _runbook(config, rule, gate_runbook),
                    {"anchor": rule.drift.anchor, "rule": rule.name},
                )
            )  # fmt: skip
    for c in checks:
        if c.status == "within":
            continue
        s, drift, a = c.series, c.rule.drift, c.anchor
        anchor_uri = anchor_uris.get(drift.anchor, drift.anchor)
        evidence = str(s.uris[c.candidate[0]])
        details = {
            "benchmark": s.benchmark,
            "params": s.params,
            "measure": s.measure,
            "rule": c.rule.name,
            "anchor": anchor_uri,
            "candidate_runs": len(c.candidate),
        }
        limit = f"drift since the anchor at most {drift.limit_text}"
        runbook = _runbook(config, c.rule, gate_runbook)
        if c.status in ("no-anchor-entry", "unmeasured"):
            observed = c.note if c.status == "no-anchor-entry" else f"not measured: {c.note}"
            evidence = anchor_uri if c.status == "no-anchor-entry" else evidence
            out.append(Finding("error", s.subject, f"drift:{c.rule.name}", observed, limit, evidence, c.rule.owner,
                               runbook, details))  # fmt: skip
            continue
        details.update(
            drift=round(c.drift, 6),
            drift_low=round(c.low, 6),
            drift_high=round(c.high, 6),
            confidence=DRIFT_CONFIDENCE,
            run_to_run_sd=round(c.run_sd, 6),
            anchor_release=a.release,
            anchor_commit=a.commit,
            anchor_runs=a.runs,
            anchor_mean=a.mean,
            candidate_mean=float(np.mean(s.values[c.candidate])),
            runs_needed=c.runs_needed,
        )
        since = (
            f"{_pct(c.drift)} since {a.release} ({format_value(float(np.mean(s.values[c.candidate])), s.unit)} vs "
            f"anchor {format_value(a.mean, s.unit)} over {a.runs} runs), {DRIFT_CONFIDENCE:.0%} bounds "
            f"{_pct(c.low)}…{_pct(c.high)}"
        )
        if c.status == "drifted":
            out.append(Finding("error", s.subject, f"drift:{c.rule.name}", since, limit, evidence, c.rule.owner,
                               runbook, details))  # fmt: skip
            continue
        if c.runs_needed is None:
            need = f"more candidate runs cannot decide: the anchor's {a.runs} runs are too few (freeze it from more)"
        else:
            need = f"needs {c.runs_needed} more run(s) to decide at this noise"
        observed = f"inconclusive: {need} (run-to-run sd {c.run_sd:.1%}, {len(c.candidate)} candidate run(s)); {since}"
        severity = "error" if drift.inconclusive == "fail" else "warning"
        out.append(Finding(severity, s.subject, f"drift:{c.rule.name}", observed, limit, evidence, c.rule.owner,
                           runbook, details))  # fmt: skip
    return out


def unmatched_rules(series: list[Series], budgets: PerfBudgets, wants: tuple[str, ...]) -> list[BudgetRule]:
    """The rules setting any of ``wants`` (absolute, relative, drift) whose selector matches no series
    of the history: a misspelt name or measure, or a benchmark no longer in any run. Such a rule
    judges nothing, so it is said, never passed. A rule needs a series of its benchmark and measure;
    an absolute one may instead name a benchmark with a ``time`` series (a measure the tool did not
    report beside it is then ``check_budgets``' "not measured")."""
    timed = {s.benchmark for s in series if s.measure == "time"}
    pairs = {(s.benchmark, s.measure) for s in series}
    out = []
    for rule in budgets.rules:
        if not any(getattr(rule, want) is not None for want in wants):
            continue
        hit = any(rule.matches(name, measure) for name, measure in pairs)
        if not hit and rule.absolute is not None and "absolute" in wants:
            hit = any(rule.matches(name, rule.measure) for name in timed)
        if not hit:
            out.append(rule)
    return out


def unmatched_rule_findings(
    series: list[Series], budgets: PerfBudgets, budget_uri: str | None, config, gate: str
) -> list[Finding]:
    """Errors for the rules of this gate (``perf_budgets``: absolute; ``perf_regressions``: relative
    and drift) whose selector matches no benchmark of the history. With no history at all the
    gate's own finding says so instead."""
    if not series:
        return []
    wants = ("absolute",) if gate == "perf_budgets" else ("relative", "drift")
    measures: dict[str, set[str]] = {}
    for s in series:
        measures.setdefault(s.measure, set()).add(s.benchmark)
    out = []
    for rule in unmatched_rules(series, budgets, wants):
        kind = next(w for w in wants if getattr(rule, w) is not None)
        same = sorted(measures.get(rule.measure, ()))
        literal = re.sub(r"[*?\[\]^$\\]", "", rule.benchmark.removeprefix("re:"))
        close = difflib.get_close_matches(literal, same, n=3, cutoff=0.6)
        if close:
            holds = f"closest {rule.measure!r} benchmarks: {', '.join(close)}"
        elif same:
            holds = f"the history's {rule.measure!r} benchmarks: {', '.join(same[:5])}{' …' if len(same) > 5 else ''}"
        else:
            holds = f"no series of measure {rule.measure!r}; the history's measures: {', '.join(sorted(measures))}"
        out.append(
            Finding(
                "error", f"{rule.benchmark} / {rule.measure}", f"{kind}:{rule.name}",
                f"the rule's selector {rule.benchmark!r} (measure {rule.measure!r}) matches no benchmark in the "
                f"history ({len(series)} series): it judges nothing; {holds}",
                "a selector that matches a benchmark the tools report (fix the name, or remove the rule)",
                budget_uri or config.paths_of("perf_budgets"), rule.owner, _runbook(config, rule, config.runbook_for(gate)),
                {"rule": rule.name, "benchmark": rule.benchmark, "measure": rule.measure, "series": len(series)},
            )
        )  # fmt: skip
    return out


def tool_failure_findings(batch, commit: str, config, gate: str) -> list[Finding]:
    """Errors for what the benchmark tool itself reports as failed in the release commit's runs (a
    benchmark that errored, a command that exited non-zero, a crossed k6 threshold, which fails a k6
    run), each naming the benchmark: a budget cannot pass on a run its tool failed."""
    return [
        Finding(
            "error", failure["benchmark"], "tool-reported-failure", failure["failure"], "benchmark runs of the "
            "release commit that the tool reports as complete and passing", f.uri, config.owner_for(gate, "benchmarks"),
            config.runbook_for(gate), {"tool": f.summary.get("tool"), "commit": f.summary.get("commit")},
        )
        for f in batch.files_of("benchmarks")
        if same_commit(f.summary.get("commit"), commit)
        for failure in f.summary.get("failures") or []
    ]  # fmt: skip


def budget_findings(checks: list[BudgetCheck], config, gate: str) -> list[Finding]:
    gate_runbook = config.runbook_for(gate)
    out = []
    for b in checks:
        if b.passed:
            continue
        s, a = b.series, b.rule.absolute
        observed = (
            f"not judged: {b.problem}"
            if b.problem
            else f"not measured: {b.note}"
            if b.note
            else f"{a.stat} {format_value(b.value, s.unit)}"
        )
        out.append(
            Finding(
                "error",
                s.subject,
                f"absolute:{b.rule.name}",
                observed,
                a.text,
                str(s.uris[b.run_index]) if b.run_index is not None else None,
                b.rule.owner,
                _runbook(config, b.rule, gate_runbook),
                {
                    "benchmark": s.benchmark,
                    "params": s.params,
                    "measure": s.measure,
                    "stat": a.stat,
                    "value": b.value,
                    "limit": a.limit,
                    "unit": s.unit,
                    "rule": b.rule.name,
                    "unreported_in": [str(s.uris[i]) for i in b.unreported],
                },
            )
        )
    return out
