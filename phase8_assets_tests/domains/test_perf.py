"""Regression detection and change points on synthetic series with known answers."""

from dataclasses import replace

import numpy as np
import pytest

from phase8_assets.domains.perf import (
    Series,
    benjamini_hochberg,
    change_points,
    check_budgets,
    judge_regressions,
    run_level_p,
    select_baselines,
    series_change_points,
    unmatched_rules,
)
from phase8_assets.evidence.perf_budgets import read as read_budgets

CANDIDATE = "c0ffee0" + "0" * 33
BUDGETS = read_budgets(
    b"""apiVersion: phase8/v1
kind: PerfBudgets
reviewed: "2026-10-01"
baseline: {branch: main, max_runs: 20, min_runs: 5}
false_discovery_rate: 0.05
rules:
  - {name: time, benchmark: "*", relative: "+10%", owner: team:perf}
  - {name: ops, benchmark: "*", measure: ops, relative: "+10%", absolute: "ops >= 300", owner: team:perf}
  - {name: p95, benchmark: "api", absolute: "p95 <= 250ms", owner: team:api}
""",
    "x",
).records[0]


def budgets_with(rules: str):
    """A PerfBudgets document with these ``rules:`` lines (YAML, indented two spaces)."""
    text = f'apiVersion: phase8/v1\nkind: PerfBudgets\nreviewed: "2026-10-01"\nrules:\n{rules}'
    return read_budgets(text.encode(), "x").records[0]


def series(values, name="bench", measure="time", direction="lower", candidate=(), p95=None) -> Series:
    """History on main, then the candidate runs (release commit, release branch)."""
    values = list(values) + list(candidate)
    n, h = len(values), len(values) - len(candidate)
    commits = [f"{i:07x}abc" for i in range(h)] + [CANDIDATE] * len(candidate)
    return Series(
        benchmark=name,
        params="",
        measure=measure,
        unit="s" if measure == "time" else "1/s",
        direction=direction,
        run_ids=np.array([f"run{i}" for i in range(n)], dtype=object),
        uris=np.array([f"bench/{i}.json" for i in range(n)], dtype=object),
        commits=np.array(commits, dtype=object),
        branches=np.array(["main"] * h + ["release/1"] * len(candidate), dtype=object),
        run_at=np.array([np.datetime64("2026-01-01") + np.timedelta64(i, "D") for i in range(n)]),
        values=np.asarray(values, dtype=float),
        stats={
            "mean": np.asarray(values, dtype=float),
            "p95": np.asarray(p95 if p95 is not None else values, dtype=float),
        },
    )


def judge(all_series, samples=None, budgets=BUDGETS):
    points = series_change_points(all_series, CANDIDATE, "main", budgets.change_point_p_value)
    return judge_regressions(select_baselines(all_series, CANDIDATE, "main", budgets, points), budgets, samples)


def noise(rng, n, cv, level=1.0):
    return level * (1 + rng.normal(0, cv, n))


def test_change_points_find_known_shifts_and_not_noise():
    rng = np.random.default_rng(8)
    x = np.r_[noise(rng, 60, 0.02), noise(rng, 40, 0.02, 1.15), noise(rng, 50, 0.02)]
    found = [i for i, _ in change_points(x)]
    assert len(found) == 2 and abs(found[0] - 60) <= 2 and abs(found[1] - 100) <= 2
    assert change_points(noise(rng, 200, 0.05)) == []
    assert change_points(np.full(50, 3.0)) == []
    assert change_points(np.r_[np.full(10, 1.0), np.full(10, 2.0)])[0][0] == 10
    # Scale-free: nanosecond timings give the same answer as seconds.
    assert [i for i, _ in change_points(x * 1e-9)] == found


def test_benjamini_hochberg_matches_the_textbook_example():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert len(benjamini_hochberg(np.array([]))) == 0


def test_direction_decides_what_worse_means():
    base = np.array([100.0, 101, 99, 100, 102, 98])
    assert run_level_p(np.array([115.0]), base, +1) < 0.01  # latency up: worse
    assert run_level_p(np.array([115.0]), base, -1) > 0.99  # throughput up: better
    assert run_level_p(np.array([85.0]), base, -1) < 0.01  # throughput down: worse


def test_a_12_percent_regression_blocks_a_2_percent_move_on_a_noisy_benchmark_does_not():
    rng = np.random.default_rng(3)
    regressed = series(noise(rng, 40, 0.02), "steady", candidate=[1.12])
    noisy = series(noise(rng, 40, 0.06), "noisy", candidate=[1.02])
    improved = series(noise(rng, 40, 0.02), "faster", candidate=[0.8])
    throughput = series(noise(rng, 40, 0.02, 500), "ops", "ops", "higher", candidate=[430])
    result = {c.series.benchmark: c for c in judge([regressed, noisy, improved, throughput])}
    assert result["steady"].status == "regressed" and result["steady"].effect == pytest.approx(0.12, abs=0.03)
    assert result["noisy"].status == "ok"
    assert result["faster"].status == "ok" and result["faster"].effect < 0
    assert result["ops"].status == "regressed"  # 14 % less throughput
    assert all(c.q is not None and c.q >= c.p for c in result.values())


def test_significant_but_small_is_not_a_regression():
    rng = np.random.default_rng(4)
    tight = series(noise(rng, 40, 0.002), "tight", candidate=[1.05])  # 5 %: very significant, under +10 %
    (comp,) = judge([tight])
    assert comp.p < 1e-6 and comp.status == "ok"


def test_samples_are_used_when_both_sides_have_them():
    rng = np.random.default_rng(5)
    s = series(noise(rng, 30, 0.02), "s", candidate=[1.15])
    samples = {
        (s.run_ids[i], "s", "", "time"): list(s.values[i] * (1 + rng.normal(0, 0.03, 12))) for i in range(len(s.values))
    }
    (comp,) = judge([s], samples)
    assert comp.p_sample is not None and comp.p == max(comp.p_run, comp.p_sample)
    assert comp.status == "regressed"


def test_too_little_history_warns_instead_of_deciding():
    rng = np.random.default_rng(6)
    (short,) = judge([series(noise(rng, 3, 0.02), candidate=[1.5])])
    assert short.status == "insufficient-history" and "3 baseline run(s)" in short.note
    # Right after a change point the baseline restarts there: 6 runs since the shift, 8 needed.
    history = np.r_[noise(rng, 40, 0.01), noise(rng, 6, 0.01, 1.3)]
    (after_shift,) = judge([series(history, candidate=[1.3])], budgets=replace(BUDGETS, min_runs=8))
    assert after_shift.status == "insufficient-history" and "since the change point" in after_shift.note


def test_an_accepted_regression_becomes_the_baseline_once_shipped():
    """After a waived +12 % ships, main runs at the new level; the next release is judged against it."""
    rng = np.random.default_rng(7)
    history = np.r_[noise(rng, 40, 0.015), noise(rng, 15, 0.015, 1.12)]
    (comp,) = judge([series(history, candidate=[1.13])])
    assert comp.since_change_point == 40 and len(comp.baseline) == 15
    assert comp.status == "ok"
    # Without the change point the old level would have been the baseline: a false regression.
    assert (1.13 - history[:40].mean()) / history[:40].mean() > 0.10


def test_no_candidate_and_unknown_direction():
    rng = np.random.default_rng(9)
    (missing,) = judge([series(noise(rng, 20, 0.02))])
    assert missing.status == "no-candidate"
    (custom,) = judge([series(noise(rng, 20, 0.02), measure="time", direction="unknown", candidate=[2.0])])
    assert custom.status == "not-judged" and "direction" in custom.note


def test_absolute_budgets_use_the_worst_candidate_run_and_fail_closed():
    api = series([0.2] * 10, "api", candidate=[0.2, 0.21], p95=[0.24] * 10 + [0.24, 0.26])
    (check,) = [c for c in check_budgets([api], CANDIDATE, BUDGETS) if c.rule.name == "p95"]
    assert (check.passed, check.value, check.run_index) == (False, 0.26, 11)
    api.stats.pop("p95")
    (check,) = [c for c in check_budgets([api], CANDIDATE, BUDGETS) if c.rule.name == "p95"]
    assert not check.passed and check.value is None and "no p95" in check.note
    ops = series([500.0] * 10, "x", "ops", "higher", candidate=[290.0])
    (check,) = check_budgets([ops], CANDIDATE, BUDGETS)
    assert not check.passed and check.rule.name == "ops"


def test_a_measure_the_tool_never_reported_fails_its_absolute_budget():
    # pytest-benchmark 2.x writes no ops: the "ops >= 300" budget cannot hold by default.
    old = series([0.002] * 10, "old", candidate=[0.002])
    (check,) = [c for c in check_budgets([old], CANDIDATE, BUDGETS) if c.rule.name == "ops"]
    assert not check.passed and check.series.subject == "old / ops" and check.run_index == 10
    assert check.note == "the tool reported no measure 'ops' in this run"


def test_one_candidate_run_without_the_statistic_fails_the_budget():
    api = series([0.2] * 10, "api", candidate=[0.2, 0.2], p95=[0.24] * 11 + [np.nan])
    (check,) = [c for c in check_budgets([api], CANDIDATE, BUDGETS) if c.rule.name == "p95"]
    assert (check.passed, check.value, check.run_index, check.unreported) == (False, 0.24, 11, (11,))
    assert check.note == "the tool reported no p95 in this run (only mean)"


def test_a_candidate_without_a_mean_is_unmeasured_and_history_without_one_is_skipped():
    values = [1.0] * 19 + [np.nan]  # the last history run reported no mean: not a baseline run
    (comp,) = judge([series(values, candidate=[np.nan])])
    assert comp.status == "unmeasured" and list(comp.candidate) == [20]
    assert comp.note == "the tool reported no mean of time in this run"
    (ok,) = judge([series(values, candidate=[1.0])])
    assert ok.status == "ok" and len(ok.baseline) == 19


def test_charts_choose_their_unit_from_the_data():
    from phase8_assets.domains.perf_charts import display_unit

    assert display_unit("s", [4.2e-5, 4.5e-5, float("nan")]) == (1e6, "µs")
    assert display_unit("s", [0.25, 0.3]) == (1e3, "ms")
    assert display_unit("s", [3e-9]) == (1e9, "ns")
    assert display_unit("s", [12.0]) == (1.0, "s")
    assert display_unit("B", [2.5e6]) == (1e-6, "MB")
    assert display_unit("ops/s", [300.0]) == (1.0, "ops/s")


def _history_with_graph_objects(s, points, comparison, budgets):
    """The history chart built the way plotly's own API builds it: the reference for the dict."""
    import plotly.graph_objects as go

    from phase8_assets.domains.perf import base_runs
    from phase8_assets.domains.perf_charts import display_unit

    factor, unit = display_unit(s.unit, s.values)
    history = base_runs(s, CANDIDATE, "main")
    x = [np.datetime_as_string(t, "s") for t in s.run_at]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[x[i] for i in history],
            y=(s.values[history] * factor).round(9).tolist(),
            mode="lines+markers",
            name="main history",
            text=[str(s.commits[i] or "")[:10] for i in history],
            hovertemplate="%{x}<br>%{y:.4g} " + unit + "<br>%{text}<extra></extra>",
        )
    )
    base = s.values[comparison.baseline] * factor
    mean, sd = float(np.mean(base)), float(np.std(base, ddof=1))
    xs = [x[comparison.baseline[0]], x[comparison.baseline[-1]]]
    fig.add_trace(
        go.Scatter(
            x=xs + xs[::-1],
            y=[mean + 2 * sd] * 2 + [mean - 2 * sd] * 2,
            fill="toself",
            mode="none",
            name="baseline ±2 sd",
            opacity=0.25,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[x[i] for i in comparison.candidate],
            y=(s.values[comparison.candidate] * factor).round(9).tolist(),
            mode="markers",
            marker={"size": 12, "symbol": "diamond", "color": "#d1242f"},
            name=f"candidate ({comparison.status})",
        )
    )
    for index, _p in points:
        fig.add_vline(x=x[history[index]], line_dash="dash", line_color="#8250df")
    rule = budgets.rule_for(s.benchmark, s.measure, "absolute")
    fig.add_hline(y=rule.absolute.limit * factor, line_color="#bc4c00", annotation_text=f"budget {rule.absolute.text}")
    fig.update_layout(
        title=f"{s.subject} (higher is better)",
        yaxis_title=unit,
        height=320,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h"},
    )
    return fig


def test_history_charts_render_the_same_page_as_plotly_graph_objects():
    from phase8_assets.domains.perf_charts import history_figure
    from phase8_assets.shared.reports import Section, render_html

    rng = np.random.default_rng(5)
    ops = series(list(noise(rng, 20, 0.01, 400)) + list(noise(rng, 20, 0.01, 500)), "ops", "ops", "higher", [430])
    points = series_change_points([ops], CANDIDATE, "main", BUDGETS.change_point_p_value)
    (comparison,) = judge([ops])
    key = (ops.benchmark, ops.params, ops.measure)
    assert comparison.status == "regressed" and points[key]  # every part of the chart is drawn
    figure = history_figure(ops, CANDIDATE, "main", points[key], comparison, BUDGETS)
    reference = _history_with_graph_objects(ops, points[key], comparison, BUDGETS)
    assert render_html("t", [Section("ops", figure=figure)]) == render_html("t", [Section("ops", figure=reference)])


def test_a_rule_whose_selector_matches_no_series_is_named():
    """A misspelt name or measure judges nothing: said, never a silent pass. An absolute rule needs
    only a benchmark of that name (its measure missing is check_budgets' 'not measured')."""
    budgets = budgets_with(
        """\
  - {name: all, benchmark: "*", relative: "+10%", owner: team:perf}
  - {name: typo, benchmark: "tests/test_mesages.py::*", absolute: "mean <= 3ms", relative: "+10%", owner: team:perf}
  - {name: cpu, benchmark: "*", measure: cpu-time, relative: "+10%", owner: team:perf}
  - {name: re, benchmark: "re:^tests/test_messages", absolute: "ops >= 300", owner: team:perf}
  - {name: gone, benchmark: "BenchmarkOld", drift: {limit: "+8%", anchor: policy/a.yaml}, owner: team:perf}
  - {name: k6, benchmark: "http_req_duration", absolute: "p(95) < 250", owner: team:api}
"""
    )
    history = [series([1.0] * 5, "tests/test_messages.py::test_post")]
    history.append(series([0.2] * 5, "http_req_duration", "http_req_duration"))
    # k6's own threshold syntax: 'p(95)' reads as a measure no series has, of a benchmark with no time
    assert [r.name for r in unmatched_rules(history, budgets, ("absolute",))] == ["typo", "k6"]
    assert [r.name for r in unmatched_rules(history, budgets, ("relative", "drift"))] == ["typo", "cpu", "gone"]


def test_an_absolute_limit_in_another_unit_than_its_measure_is_not_judged():
    """k6 writes its thresholds in ms without a unit ('p(95)<250'): 'p95 <= 250' on a measure in
    seconds read as 250 s and every run passed; a limit in bytes on a time passed or failed at random."""
    budgets = budgets_with(
        """\
  - {name: bare, benchmark: "api", absolute: "p95 <= 250", owner: team:api}
  - {name: bytes, benchmark: "page", absolute: "mean <= 64KB", owner: team:web}
  - {name: ok, benchmark: "ok", absolute: "mean <= 250ms", owner: team:web}
  - {name: ops, benchmark: "x", measure: ops, absolute: "ops >= 300", owner: team:web}
"""
    )
    history = [
        series([0.2] * 5, "api", candidate=[0.262], p95=[0.24] * 5 + [0.262]),
        series([0.01] * 5, "page", candidate=[0.01]),
        series([0.2] * 5, "ok", candidate=[0.2]),
        series([500.0] * 5, "x", "ops", "higher", candidate=[400.0]),
    ]
    checks = {c.rule.name: c for c in check_budgets(history, CANDIDATE, budgets)}
    assert not checks["bare"].passed and checks["bare"].value is None
    assert "gives no unit for a measure in seconds" in checks["bare"].problem
    assert (
        not checks["bytes"].passed and checks["bytes"].problem == "'mean <= 64KB' is in KB (B) but the measure is in s"
    )
    assert checks["ok"].passed and checks["ops"].passed and not checks["ok"].problem
