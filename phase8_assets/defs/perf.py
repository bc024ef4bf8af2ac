"""Stream A, performance: benchmark runs into the long tables, history, change points, baselines,
regressions and budgets, with the ``perf_budgets`` and ``perf_regressions`` gates."""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.domains.gate_report import release_folder
from phase8_assets.domains.gates import Finding
from phase8_assets.domains.perf import (
    BudgetCheck,
    Comparison,
    Series,
    base_runs,
    budget_findings,
    check_budgets,
    drift_findings,
    format_value,
    judge_drift,
    judge_regressions,
    regression_findings,
    resolve_anchors,
    run_time,
    select_baselines,
    series_change_points,
    series_from_history,
    tool_failure_findings,
    unmatched_rule_findings,
)
from phase8_assets.domains.perf_charts import budget_figure, history_figure
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.evidence.perf_budgets import DEFAULT_FALSE_DISCOVERY_RATE, PerfBudgets
from phase8_assets.shared.clock import format_timestamp, now_utc
from phase8_assets.shared.reports import Section, markdown_table, render_markdown, write_html
from phase8_assets.warehouse.store import (
    bench_history,
    bench_samples,
    record_benchmarks,
    replace_change_points,
)

GROUP = "performance"
OWNERS = ["team:platform-reliability"]
DEFAULT_BUDGETS = PerfBudgets((), None, 20, 5, DEFAULT_FALSE_DISCOVERY_RATE, 0.001)
MAX_CHARTS = 24


@dataclass
class PerfContext:
    """What every performance asset needs: the history, the release and the budgets."""

    roots: list[str]
    series: list[Series]
    commit: str
    base_branch: str
    budgets: PerfBudgets
    budget_problem: str | None  # why there are no usable budgets (fail closed in both gates)
    budget_uri: str | None
    reports: Path  # this root's and release's report folder


def _budgets(batch: EvidenceBatch) -> tuple[PerfBudgets, str | None, str | None]:
    files = batch.files_of("perf_budgets")
    if len(files) == 1:
        return files[0].records[0], None, files[0].uri
    if files:
        return files[0].records[0], f"{len(files)} PerfBudgets files; exactly one expected", files[0].uri
    rejected = batch.rejections_of("perf_budgets")
    problem = f"rejected: {rejected[0].field}: {rejected[0].reason}" if rejected else "no PerfBudgets file"
    return DEFAULT_BUDGETS, problem, rejected[0].uri if rejected else None


def _comparison_chart(h: "PerfContext", c: Comparison, points: dict) -> Section:
    """A series' history with its baseline band, change points, budget line and the candidate."""
    key = (c.series.benchmark, c.series.params, c.series.measure)
    return Section(
        c.series.subject, figure=history_figure(c.series, h.commit, h.base_branch, points.get(key, []), c, h.budgets)
    )


def _report(h: PerfContext, name: str, title: str, sections: list[Section], subtitle: str) -> dict:
    path = write_html(h.reports / "perf" / f"{name}.html", title, sections, subtitle)
    return {
        "report": dg.MetadataValue.path(str(path)),
        "summary": dg.MetadataValue.md(render_markdown(title, [s for s in sections if s.figure is None], subtitle)),
    }


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Benchmark result files (pytest-benchmark, Google Benchmark, hyperfine, k6, go test) into the "
    "long tables bench_runs / bench_results / bench_samples, in SI units; each file once.",
)
def benchmark_runs(
    context: dg.AssetExecutionContext, evidence_files: EvidenceBatch, warehouse: Warehouse
) -> dg.MaterializeResult:
    files = evidence_files.files_of("benchmarks")
    with warehouse.get_connection() as conn:
        new_runs = record_benchmarks(conn, files, now_utc())
    collisions = [(lost.uri, kept.uri) for lost, kept in evidence_files.collisions if lost.kind == "benchmarks"]
    for uri, other in collisions:
        context.log.warning(f"{uri}: the same run (tool, commit, time, machine) as {other}, which counts instead")
    tools = Counter(f.records[0].run.tool for f in files)
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            "new_runs": len(new_runs),
            "duplicate_runs": dg.MetadataValue.md(
                markdown_table(["file set aside", "same run as (counts)"], collisions, empty="_none_")
            ),
            "measurements": sum(len(f.records[0].measurements) for f in files),
            "by_tool": dg.MetadataValue.md(markdown_table(["tool", "files"], sorted(tools.items()))),
        }
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    deps=[benchmark_runs],
    description="The benchmark history of the evidence root(s) from DuckDB, one series per benchmark, parameters "
    "and measure, with the release to judge and the budgets that apply.",
)
def benchmark_history(settings: Phase8Settings, warehouse: Warehouse, evidence_files: EvidenceBatch) -> dg.Output:
    import numpy as np

    config = settings.load()
    budgets, problem, uri = _budgets(evidence_files)
    roots = sorted({f.root for f in evidence_files.files_of("benchmarks")}) or config.root_uris
    with warehouse.get_connection() as conn:
        hist = {}
        for root in roots:
            current = [f.version for f in evidence_files.files_of("benchmarks") if f.root == root]
            part = bench_history(conn, root, current)
            hist = part if not hist else {k: np.concatenate([hist[k], part[k]]) for k in hist}
    series = series_from_history(hist) if hist else []
    base = budgets.base_branch or config.release.get("base_branch") or "main"
    reports = warehouse.reports_dir / release_folder(config.root_uris, config.release)
    ctx = PerfContext(roots, series, str(config.release["commit"]), base, budgets, problem, uri, reports)
    runs = len(set(hist["run_id"])) if hist else 0
    rows = [
        [s.subject, len(s.values), str(s.run_at[0])[:10], str(s.run_at[-1])[:10], format_value(s.values[-1], s.unit),
         s.direction]
        for s in series
    ]  # fmt: skip
    sections = [
        Section(
            "Series",
            f"{len(series)} series from {runs} runs; release commit {ctx.commit[:12]}, base branch {base}.",
            (["series", "runs", "first", "last", "latest mean", "better"], rows),
        ),
        *[
            Section(s.subject, figure=history_figure(s, ctx.commit, base, [], budgets=budgets))
            for s in series[:MAX_CHARTS]
        ],
    ]
    return dg.Output(
        ctx,
        metadata={
            "runs": runs,
            "series": len(series),
            "results": len(hist["run_id"]) if hist else 0,
            "release_commit": ctx.commit,
            "base_branch": base,
            "budgets": dg.MetadataValue.text(uri or problem or ""),
            **_report(ctx, "history", "Benchmark history", sections, ""),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Change points over each series' base-branch history (e-divisive means with a t-test, as in "
    "Apache Otava): before/after means and the commit where the level changed; stored in perf_change_points.",
)
def perf_change_points(warehouse: Warehouse, benchmark_history: PerfContext) -> dg.Output:
    h = benchmark_history
    points = series_change_points(h.series, h.commit, h.base_branch, h.budgets.change_point_p_value)
    rows, table = [], []
    for s in h.series:
        history = base_runs(s, h.commit, h.base_branch)
        cps = points[(s.benchmark, s.params, s.measure)]
        bounds = [0, *[i for i, _ in cps], len(history)]
        for n, (index, p) in enumerate(cps):
            before = float(s.values[history[bounds[n] : index]].mean())
            after = float(s.values[history[index : bounds[n + 2]]].mean())
            run = history[index]
            rows.append(
                (s.benchmark, s.params, s.measure, str(s.run_ids[run]), s.commits[run], run_time(s, run),
                 before, after, (after - before) / before, p)
            )  # fmt: skip
            table.append(
                [s.subject, format_timestamp(run_time(s, run)), str(s.commits[run] or "")[:10],
                 format_value(before, s.unit), format_value(after, s.unit), f"{(after - before) / before:+.1%}", f"{p:.1e}"]
            )  # fmt: skip
    if h.roots:
        with warehouse.get_connection() as conn:
            replace_change_points(conn, h.roots[0], rows)
    charted = [s for s in h.series if points[(s.benchmark, s.params, s.measure)]][:MAX_CHARTS]
    sections = [
        Section(
            "Change points",
            f"{len(rows)} change point(s) in {len(h.series)} series (p < {h.budgets.change_point_p_value}).",
            (["series", "first run after", "commit", "before", "after", "change", "p"], table),
        ),
        *[
            Section(
                s.subject, figure=history_figure(s, h.commit, h.base_branch, points[(s.benchmark, s.params, s.measure)])
            )
            for s in charted
        ],
    ]
    return dg.Output(
        points,
        metadata={"change_points": len(rows), **_report(h, "change-points", "Change points", sections, "")},
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Per series: the candidate runs (the release commit) and the baseline chosen for them — base-branch "
    "runs before the candidate, since the last change point, at most max_runs, at least min_runs.",
)
def perf_baselines(warehouse: Warehouse, benchmark_history: PerfContext, perf_change_points: dict) -> dg.Output:
    h = benchmark_history
    comparisons = select_baselines(h.series, h.commit, h.base_branch, h.budgets, perf_change_points)
    statuses = Counter(c.status for c in comparisons)
    rows = [
        [
            c.series.subject,
            len(c.candidate),
            len(c.baseline),
            format_value(c.baseline_mean, c.series.unit) if len(c.baseline) else "—",
            "yes" if c.since_change_point is not None else "no",
            c.status,
            c.note,
        ]
        for c in comparisons
    ]
    headers = ["series", "candidate runs", "baseline runs", "baseline mean", "since change point", "status", "note"]
    with_baseline = [c for c in comparisons if len(c.baseline) >= 2][:MAX_CHARTS]
    sections = [
        Section(
            "Baselines", f"max {h.budgets.max_runs}, min {h.budgets.min_runs} runs on {h.base_branch}.", (headers, rows)
        ),
        *[_comparison_chart(h, c, perf_change_points) for c in with_baseline],
    ]
    return dg.Output(
        comparisons,
        metadata={
            **{f"series_{k.replace('-', '_')}": v for k, v in sorted(statuses.items())},
            **_report(h, "baselines", "Performance baselines", sections, h.base_branch),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="The regression decision per series: one-sided test on run means (and Mann-Whitney on raw samples "
    "when present), Benjamini-Hochberg across the run, and the rule's minimum effect.",
)
def perf_regressions(
    warehouse: Warehouse, benchmark_history: PerfContext, perf_baselines: list[Comparison], perf_change_points: dict
) -> dg.Output:
    h = benchmark_history
    run_ids = sorted({str(c.series.run_ids[i]) for c in perf_baselines for i in [*c.candidate, *c.baseline[-5:]]})
    with warehouse.get_connection() as conn:
        samples = {}
        for root in h.roots:
            samples.update(bench_samples(conn, root, run_ids))
    comparisons = judge_regressions(perf_baselines, h.budgets, samples)
    judged = [c for c in comparisons if c.p is not None]
    worst = sorted(judged, key=lambda c: -(c.effect or 0))
    rows = [
        [c.series.subject, c.status, f"{c.effect:+.1%}", f"{c.p:.2g}", f"{c.q:.2g}", c.rule.relative_text,
         "samples" if c.p_sample is not None else "run means"]
        for c in worst
    ]  # fmt: skip
    charted = [c for c in worst if c.status == "regressed"] + [c for c in worst if c.status != "regressed"]
    sections = [
        Section(
            "Regressions",
            f"{sum(c.status == 'regressed' for c in comparisons)} regressed of {len(judged)} judged series; "
            f"false discovery rate {h.budgets.false_discovery_rate}.",
            (["series", "status", "effect", "p", "q", "limit", "test"], rows),
        ),
        *[_comparison_chart(h, c, perf_change_points) for c in charted[:MAX_CHARTS]],
    ]
    return dg.Output(
        comparisons,
        metadata={
            "judged": len(judged),
            "regressed": sum(c.status == "regressed" for c in comparisons),
            "insufficient_history": sum(c.status == "insufficient-history" for c in comparisons),
            "inconclusive": sum(c.status == "inconclusive" for c in comparisons),
            **_report(h, "regressions", f"Performance regressions: {h.commit[:10]}", sections, h.base_branch),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Absolute budgets on the release commit's runs (the worst candidate run must hold the limit).",
)
def perf_budget_status(warehouse: Warehouse, benchmark_history: PerfContext) -> dg.Output:
    h = benchmark_history
    checks = check_budgets(h.series, h.commit, h.budgets)
    rows = [
        [b.series.subject, b.rule.name, b.rule.absolute.text,
         b.problem or b.note or format_value(b.value, b.series.unit), "pass" if b.passed else "FAIL"]
        for b in checks
    ]  # fmt: skip
    sections = [
        Section(
            "Absolute budgets",
            f"release commit {h.commit[:12]}",
            (["series", "rule", "limit", "candidate", "status"], rows),
        ),
        Section("Candidate as a share of its limit", figure=budget_figure(checks)) if checks else Section("No budgets"),
    ]
    return dg.Output(
        checks,
        metadata={
            "checked": len(checks),
            "over_budget": sum(not b.passed for b in checks),
            **_report(h, "budgets", "Performance budgets", sections, ""),
        },
    )


def _no_budgets(h: PerfContext, config, gate: str) -> list[Finding]:
    if not h.budget_problem:
        return []
    return [
        Finding(
            "error", "perf budgets", "budgets-present", h.budget_problem, "one readable PerfBudgets file",
            h.budget_uri or config.paths_of("perf_budgets"), config.owner_for(gate, "perf_budgets"),
            config.runbook_for(gate), {"kind": "perf_budgets"},
        )
    ]  # fmt: skip


def budgets_gate(batch, config, at, benchmark_history: PerfContext, perf_budget_status: list[BudgetCheck]):
    h = benchmark_history
    found = _no_budgets(h, config, "perf_budgets") + budget_findings(perf_budget_status, config, "perf_budgets")
    found += unmatched_rule_findings(h.series, h.budgets, h.budget_uri, config, "perf_budgets")
    failures = tool_failure_findings(batch, h.commit, config, "perf_budgets")
    found += failures
    if not h.budget_problem and not any(r.absolute for r in h.budgets.rules):
        return found, f"{h.budget_uri} sets no absolute limit: nothing to judge (its relative rules: perf_regressions)"
    if not perf_budget_status and not h.budget_problem:
        found.append(
            Finding(
                "error", "benchmarks", "candidate-present",
                f"no benchmark with an absolute budget ran for release commit {h.commit}",
                "benchmark runs of the release commit", config.paths_of("benchmarks"),
                config.owner_for("perf_budgets", "benchmarks"), config.runbook_for("perf_budgets"),
                {"commit": h.commit, "budgets": h.budget_uri},
            )
        )  # fmt: skip
    passed = sum(b.passed for b in perf_budget_status)
    failed = f"; {len(failures)} failure(s) the tool reported in the release's runs" if failures else ""
    return found, f"{passed} of {len(perf_budget_status)} budgeted measure(s) within their absolute limit{failed}"


def anchors_of(batch: EvidenceBatch, budgets: PerfBudgets):
    """The drift rules' anchors among the ``perf_baselines`` evidence: see ``resolve_anchors``."""
    files = [(f.uri, f.records[0]) for f in batch.files_of("perf_baselines")]
    rejected = [(r.uri, r.field, r.reason) for r in batch.rejections_of("perf_baselines")]
    return resolve_anchors(budgets, files, rejected)


def regressions_gate(batch, config, at, benchmark_history: PerfContext, perf_regressions: list[Comparison]):
    h = benchmark_history
    anchors, anchor_uris, problems = anchors_of(batch, h.budgets)
    drifts = judge_drift(h.series, h.commit, h.budgets, anchors)
    found = (
        _no_budgets(h, config, "perf_regressions")
        + regression_findings(perf_regressions, h.budgets, config, "perf_regressions")
        + drift_findings(drifts, h.budgets, anchor_uris, problems, config, "perf_regressions")
        + unmatched_rule_findings(h.series, h.budgets, h.budget_uri, config, "perf_regressions")
    )
    if not h.series:
        found.append(
            Finding(
                "error", "benchmarks", "history-present", "no benchmark results in the warehouse for this root",
                "benchmark evidence", config.paths_of("benchmarks"), config.owner_for("perf_regressions", "benchmarks"),
                config.runbook_for("perf_regressions"), {},
            )
        )  # fmt: skip
    judged = sum(c.p is not None for c in perf_regressions)
    regressed = sum(c.status == "regressed" for c in perf_regressions)
    summary = f"{regressed} of {judged} judged series regressed (FDR {h.budgets.false_discovery_rate})"
    if drifts or problems:
        drifted = sum(d.status == "drifted" for d in drifts)
        summary += f"; {drifted} of {len(drifts)} drifted past their limit since the anchor"
    return found, summary


perf_budgets_gate = gate_asset(
    "perf_budgets",
    group=GROUP,
    owners=OWNERS,
    evaluate=budgets_gate,
    ins={"benchmark_history": dg.AssetIn("benchmark_history"), "perf_budget_status": dg.AssetIn("perf_budget_status")},
)
perf_regressions_gate = gate_asset(
    "perf_regressions",
    group=GROUP,
    owners=OWNERS,
    evaluate=regressions_gate,
    ins={"benchmark_history": dg.AssetIn("benchmark_history"), "perf_regressions": dg.AssetIn("perf_regressions")},
)
