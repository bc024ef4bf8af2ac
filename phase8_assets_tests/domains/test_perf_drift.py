"""The drift rule: a release judged against a frozen PerfBaseline anchor, pooled candidate runs, and
"inconclusive: needs N more runs" with N that really decides."""

import json
from datetime import UTC, datetime

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.domains.perf import (
    anchor_document,
    drift_findings,
    judge_drift,
    judge_regressions,
    regression_findings,
    resolve_anchors,
    select_baselines,
    series_change_points,
    series_from_files,
)
from phase8_assets.evidence import EvidenceError, read_evidence, readers
from phase8_assets.evidence.config import load_config
from phase8_assets.evidence.perf_baseline import Anchor, PerfBaseline
from phase8_assets.evidence.perf_budgets import read as read_budgets
from phase8_assets_tests.conftest import DATA
from phase8_assets_tests.domains.test_perf import CANDIDATE, series

ANCHOR = "policy/perf-baseline.yaml"


def budgets(drift: str = '{limit: "+8%", anchor: policy/perf-baseline.yaml}'):
    doc = f"""apiVersion: phase8/v1
kind: PerfBudgets
reviewed: "2026-10-01"
baseline: {{branch: main, max_runs: 20, min_runs: 5}}
rules:
  - {{name: time, benchmark: "*", relative: "+10%", drift: {drift}, owner: team:perf}}
"""
    return read_budgets(doc.encode(), "budgets.yaml").records[0]


def baseline(runs: np.ndarray, name="bench", direction="lower", measure="time") -> PerfBaseline:
    logs = np.log(runs)
    a = Anchor(name, "", measure, "s", direction, "a" * 40, "9.6.0", len(runs), float(np.mean(runs)),
               float(np.mean(logs)), float(np.std(logs, ddof=1)))  # fmt: skip
    return PerfBaseline("9.6.0", "a" * 40, datetime(2026, 1, 1, tzinfo=UTC), {a.key: a})


def noisy(rng, n, level=1e-3, cv=0.02):
    return level * rng.lognormal(0, cv, n)


def drift_of(history, candidate, anchor_runs, rule=None, **kw):
    b = rule or budgets()
    return judge_drift([series(history, candidate=candidate, **kw)], CANDIDATE, b, {ANCHOR: baseline(anchor_runs)})[0]


def test_a_creep_of_small_steps_passes_every_release_and_fails_the_drift_rule():
    rng = np.random.default_rng(3)
    anchor_runs = noisy(rng, 10)
    # eight releases, each 1.5 % slower than the last, three base-branch runs each, then the candidate
    history = np.concatenate([anchor_runs] + [noisy(rng, 3, 1e-3 * 1.015**k) for k in range(1, 8)])
    candidate = list(noisy(rng, 3, 1e-3 * 1.015**8))  # the release measured three times
    s = series(history, candidate=candidate)
    b = budgets()
    points = series_change_points([s], CANDIDATE, "main", b.change_point_p_value)
    per_release = judge_regressions(select_baselines([s], CANDIDATE, "main", b, points), b)[0]
    assert per_release.status == "ok" and per_release.effect < 0.10
    check = judge_drift([s], CANDIDATE, b, {ANCHOR: baseline(anchor_runs)})[0]
    assert check.status == "drifted", (check.drift, check.low)
    assert 0.08 < check.low < check.drift < check.high


def test_an_unchanged_benchmark_is_within_and_a_faster_one_too():
    rng = np.random.default_rng(4)
    anchor_runs = noisy(rng, 10)
    assert drift_of(noisy(rng, 20), list(noisy(rng, 1)), anchor_runs).status == "within"
    assert drift_of(noisy(rng, 20), list(noisy(rng, 1, 0.7e-3)), anchor_runs).status == "within"


def test_higher_is_better_drifts_when_throughput_falls():
    rng = np.random.default_rng(5)
    anchor_runs = noisy(rng, 10, 1000.0)
    s = series(noisy(rng, 20, 1000.0), candidate=list(noisy(rng, 2, 800.0)), measure="ops", direction="higher")
    b = PerfBaseline("9.6.0", "a" * 40, None, {("bench", "", "ops"): baseline(anchor_runs, measure="ops",
                     direction="higher").anchors[("bench", "", "ops")]})  # fmt: skip
    rule = read_budgets(
        b"""apiVersion: phase8/v1
kind: PerfBudgets
reviewed: "2026-10-01"
rules:
  - {name: ops, benchmark: "*", measure: ops, drift: {limit: "+8%", anchor: policy/perf-baseline.yaml}, owner: team:perf}
""",
        "b",
    ).records[0]
    check = judge_drift([s], CANDIDATE, rule, {ANCHOR: b})[0]
    assert check.status == "drifted" and check.drift == pytest.approx(0.25, abs=0.05)


def exact(rng, n, level, sd):
    """``n`` run means whose logs have exactly this mean and standard deviation."""
    z = rng.normal(0, 1, n)
    return level * np.exp((z - z.mean()) / z.std(ddof=1) * sd)


def test_near_the_limit_is_inconclusive_and_the_runs_it_asks_for_decide():
    rng = np.random.default_rng(6)
    anchor_runs = exact(rng, 20, 1e-3, 0.06)
    # 20 % worse: above the +8 % limit, but one run at 6 % run-to-run noise cannot tell
    check = drift_of(noisy(rng, 20), [1.2e-3], anchor_runs)
    assert check.status == "inconclusive" and check.runs_needed == 2
    decided = drift_of(noisy(rng, 20), list(exact(rng, 1 + check.runs_needed, 1.2e-3, 0.06)), anchor_runs)
    assert decided.status == "drifted", (decided.low, decided.runs_needed)


def test_an_anchor_too_short_to_decide_says_so():
    rng = np.random.default_rng(6)
    check = drift_of(noisy(rng, 20), [1.11e-3], exact(rng, 5, 1e-3, 0.06))
    assert check.status == "inconclusive" and check.runs_needed is None


def test_candidate_runs_pool_their_between_run_spread():
    anchor_runs = 1e-3 * np.exp(np.linspace(-0.03, 0.03, 10))
    tight = [1.12e-3 * f for f in (0.999, 1.0, 1.001, 1.0, 1.0)]
    spread = [1.12e-3 * f for f in (0.85, 1.15, 0.95, 1.05, 1.0)]
    t, s = drift_of(np.ones(20) * 1e-3, tight, anchor_runs), drift_of(np.ones(20) * 1e-3, spread, anchor_runs)
    assert (t.high - t.low) < (s.high - s.low)
    assert t.run_sd < s.run_sd


def test_a_benchmark_the_anchor_lacks_is_an_error_naming_the_anchor_file():
    config = load_config([str(DATA)], set(readers()))
    rng = np.random.default_rng(7)
    s = series(noisy(rng, 20), candidate=list(noisy(rng, 1)), name="other")
    b = budgets()
    checks = judge_drift([s], CANDIDATE, b, {ANCHOR: baseline(noisy(rng, 10))})
    [finding] = drift_findings(checks, b, {ANCHOR: "data/policy/perf-baseline.yaml"}, {}, config, "perf_regressions")
    assert (finding.severity, finding.rule, finding.evidence) == (
        "error",
        "drift:time",
        "data/policy/perf-baseline.yaml",
    )
    assert "has no entry for this benchmark" in finding.observed


@pytest.mark.parametrize("mode,severity", [("", "warning"), (", inconclusive: fail", "error")])
def test_an_inconclusive_drift_says_how_many_more_runs(mode, severity):
    config = load_config([str(DATA)], set(readers()))
    rng = np.random.default_rng(6)
    b = budgets('{limit: "+8%", anchor: policy/perf-baseline.yaml' + mode + "}")
    anchor_runs = exact(rng, 20, 1e-3, 0.06)
    checks = judge_drift([series(noisy(rng, 20), candidate=[1.2e-3])], CANDIDATE, b, {ANCHOR: baseline(anchor_runs)})
    [finding] = drift_findings(checks, b, {}, {}, config, "perf_regressions")
    assert finding.severity == severity
    assert f"inconclusive: needs {checks[0].runs_needed} more run(s) to decide at this noise" in finding.observed
    assert finding.owner == "team:perf" and finding.runbook and finding.details["runs_needed"] == checks[0].runs_needed


def test_anchor_files_missing_rejected_or_doubled_are_errors():
    b = budgets()
    rec = baseline(np.ones(3))
    cases = {
        "missing": ([], []),
        "rejected": ([], [("root/policy/perf-baseline.yaml", "benchmarks[0].runs", "expected >= 2")]),
        "doubled": ([("a/policy/perf-baseline.yaml", rec), ("b/policy/perf-baseline.yaml", rec)], []),
    }
    config = load_config([str(DATA)], set(readers()))
    for name, (files, rejected) in cases.items():
        found, _, problems = resolve_anchors(b, files, rejected)
        assert not found and ANCHOR in problems, name
        [finding] = drift_findings([], b, {}, problems, config, "perf_regressions")
        assert finding.severity == "error" and finding.rule == "drift:time", name
    assert "benchmarks[0].runs: expected >= 2" in problems_of(b, cases["rejected"])
    found, uris, problems = resolve_anchors(b, [("root/policy/perf-baseline.yaml", rec)], [])
    assert found[ANCHOR] is rec and not problems


def problems_of(b, case):
    return resolve_anchors(b, *case)[2][ANCHOR][1]


def test_perf_baseline_reader_names_the_field():
    doc = yaml.safe_load((DATA / "policy/perf-baseline.yaml").read_text())
    doc["benchmarks"][0]["runs"] = 1
    with pytest.raises(EvidenceError) as exc:
        read_evidence("perf_baselines", yaml.safe_dump(doc).encode(), "p.yaml")
    assert exc.value.field == "benchmarks[0].runs"
    doc["benchmarks"][0]["runs"] = 10
    doc["benchmarks"].append(doc["benchmarks"][0])
    with pytest.raises(EvidenceError, match="anchored twice"):
        read_evidence("perf_baselines", yaml.safe_dump(doc).encode(), "p.yaml")


def test_drift_rule_limits_are_checked_by_the_schema():
    with pytest.raises(EvidenceError) as exc:
        budgets('{limit: "8 percent", anchor: policy/perf-baseline.yaml}')
    assert exc.value.field == "rules[0].drift.limit"
    with pytest.raises(EvidenceError) as exc:
        budgets('{limit: "+8%", anchor: ../elsewhere/perf-baseline.yaml}')
    assert exc.value.field == "rules[0].drift.anchor" and "leaves the evidence root" in exc.value.reason
    rule = budgets().rules[0]
    assert (rule.drift.limit, rule.drift.inconclusive, rule.drift.anchor) == (0.08, "warn", ANCHOR)


def _scenario_series(folder):
    files = []
    for path in sorted((folder).rglob("*.json")):
        files.append((str(path), read_evidence("benchmarks", path.read_bytes(), str(path)).records[0]))
    return series_from_files(files)


def test_demo_creep_scenario_passes_per_release_and_drifts_since_its_anchor():
    root = DATA / "scenarios/perf-creep"
    commit = yaml.safe_load((root / "phase8.yaml").read_text())["release"]["commit"]
    b = read_budgets((DATA / "policy/perf-budgets.yaml").read_bytes(), "budgets").records[0]
    anchor = read_evidence("perf_baselines", (root / ANCHOR).read_bytes(), ANCHOR).records[0]
    all_series = _scenario_series(root / "bench")
    points = series_change_points(all_series, commit, "main", b.change_point_p_value)
    comparisons = judge_regressions(select_baselines(all_series, commit, "main", b, points), b)
    assert not [c.series.subject for c in comparisons if c.status == "regressed"]
    drifts = {d.series.benchmark: d.status for d in judge_drift(all_series, commit, b, {ANCHOR: anchor})}
    assert drifts == {
        "tests/perf/test_messages.py::test_post_message": "drifted",
        "tests/perf/test_messages.py::test_edit_message": "within",
    }


def test_freeze_writes_an_anchor_the_reader_accepts_and_the_gate_would_pass(tmp_path):
    out = tmp_path / "perf-baseline.yaml"
    runner = CliRunner()
    root = str(DATA / "scenarios/perf-creep")
    result = runner.invoke(main, ["perf", "baseline", "--evidence", root, "--freeze", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["written"] and data["baseline"]["release"]["version"] == "10.4.0"
    anchor = read_evidence("perf_baselines", out.read_bytes(), str(out)).records[0]
    key = ("tests/perf/test_messages.py::test_post_message", "", "time")
    assert anchor.anchors[key].runs == 10
    # accepting the creep: against the new anchor nothing has drifted
    b = read_budgets((DATA / "policy/perf-budgets.yaml").read_bytes(), "budgets").records[0]
    commit = yaml.safe_load((DATA / "scenarios/perf-creep/phase8.yaml").read_text())["release"]["commit"]
    all_series = _scenario_series(DATA / "scenarios/perf-creep/bench")
    assert "drifted" not in {d.status for d in judge_drift(all_series, commit, b, {ANCHOR: anchor})}
    dry = runner.invoke(main, ["perf", "baseline", "--evidence", root])
    assert dry.exit_code == 0 and "not written" in dry.output
    assert runner.invoke(main, ["perf", "baseline", "--evidence", root, "--freeze"]).exit_code == 2


def test_anchor_document_uses_the_release_runs_and_the_base_runs_before_them():
    rng = np.random.default_rng(9)
    s = series(noisy(rng, 30), candidate=list(noisy(rng, 2)))
    doc = anchor_document([s], CANDIDATE, "10.4.0", "main", 10, datetime(2026, 2, 1, tzinfo=UTC))
    [entry] = doc["benchmarks"]
    chosen = np.concatenate([s.values[20:30], s.values[30:]])[-10:]
    assert entry["runs"] == 10 and entry["mean"] == pytest.approx(float(np.mean(chosen)))
    assert entry["log_sd"] == pytest.approx(float(np.std(np.log(chosen), ddof=1)))


def test_a_per_release_effect_over_the_limit_but_not_significant_is_inconclusive_with_the_runs_that_decide():
    rng = np.random.default_rng(11)
    b = budgets()
    history = exact(rng, 20, 1e-3, 0.08)
    one = judge_regressions(select_baselines([series(history, candidate=[1.11e-3])], CANDIDATE, "main", b, {}), b)[0]
    assert one.status == "inconclusive" and one.runs_needed == 4, (one.p, one.runs_needed)
    more = list(exact(rng, 1 + one.runs_needed, 1.11e-3, 0.08))
    decided = judge_regressions(select_baselines([series(history, candidate=more)], CANDIDATE, "main", b, {}), b)[0]
    assert decided.status == "regressed", decided.p
    config = load_config([str(DATA)], set(readers()))
    [finding] = regression_findings([one], b, config, "perf_regressions")
    assert finding.severity == "warning" and finding.rule == "relative:time"
    assert finding.observed.startswith("inconclusive: needs 4 more run(s) to decide at this noise")
