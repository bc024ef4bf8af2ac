"""The performance assets end to end: findings that explain themselves, reports, history kept once."""

import json
import shutil
from datetime import UTC, datetime

import pytest

from phase8_assets.defs.perf import PerfContext, budgets_gate
from phase8_assets.evidence import benchmarks, perf_budgets
from phase8_assets.evidence.collect import EvidenceBatch, EvidenceFile
from phase8_assets.evidence.config import load_config
from phase8_assets.warehouse import connect, warehouse_path
from phase8_assets.warehouse.store import record_benchmarks, table_counts
from phase8_assets_tests.conftest import DATA, SCENARIOS, gate_report

pytestmark = pytest.mark.slow


def gate(report, name):
    return next(g for g in report["gates"] if g["gate"] == name)


def test_a_regression_finding_explains_itself(home):
    report = gate_report([SCENARIOS / "perf-regression"], home)
    (finding,) = gate(report, "perf_regressions")["findings"]
    assert finding["subject"] == "tests/perf/test_channels.py::test_list_channels[members=1000] / time"
    assert finding["rule"] == "relative:default-time" and finding["limit"].startswith("worse by at most +10%")
    assert finding["evidence"].endswith(".json") and "/scenarios/perf-regression/bench/pytest/" in finding["evidence"]
    assert finding["owner"] == "team:platform-reliability"
    assert finding["runbook"].endswith("docs/ops/perf-regressions.md")
    details = finding["details"]
    assert details["effect"] > 0.10 and details["q_value"] <= 0.05 and details["p_value"] <= details["q_value"]
    assert details["baseline_runs"] == 20 and details["p_value_samples"] is not None
    assert "p=" in finding["observed"] and "q=" in finding["observed"] and "vs baseline" in finding["observed"]
    (page,) = [p.read_text() for p in home.glob("reports/perf-regression-*/10.4.0/perf/regressions.html")]
    assert "test_list_channels" in page and "baseline \\u00b12 sd" in page
    with connect(warehouse_path(home)) as conn:
        points = conn.execute("SELECT benchmark, change FROM perf_change_points ORDER BY run_at").fetchall()
    # The demo history's story: a regression (day -140) fixed (day -100), a speed-up, an accepted slowdown.
    names = {b for b, _ in points}
    assert {"tests/perf/test_messages.py::test_post_message", "BenchmarkWebsocketFanout/clients=100"} <= names
    assert "tests/perf/test_search.py::test_search[query=short]" in names


def test_missing_budgets_fail_both_perf_gates_closed(tmp_path, home):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    (root / "policy/perf-budgets.yaml").unlink()
    report = gate_report([root], home)
    for name in ("perf_budgets", "perf_regressions"):
        rules = [f["rule"] for f in gate(report, name)["findings"] if f["severity"] == "error"]
        assert "budgets-present" in rules, (name, rules)


def test_no_candidate_run_fails_closed(tmp_path, home):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    shutil.rmtree(root / "evidence/bench/release")
    report = gate_report([root], home)
    assert [f["rule"] for f in gate(report, "perf_regressions")["findings"]] == ["candidate-present"]
    (finding,) = gate(report, "perf_budgets")["findings"]
    assert finding["rule"] == "candidate-present" and finding["evidence"] == str(root / "evidence/bench/**/*")


def test_a_budgeted_suite_that_did_not_run_for_the_release_fails_closed(tmp_path, home):
    """The other tools' release runs are there, the pytest suite's is not: its absolute budgets were
    not measured, which is not 'within budget'."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    shutil.rmtree(root / "evidence/bench/release/pytest")
    report = gate_report([root], home)
    budgets = gate(report, "perf_budgets")
    assert budgets["status"] == "fail"
    unmeasured = {f["subject"] for f in budgets["findings"] if "its suite's latest run" in f["observed"]}
    assert "tests/perf/test_export.py::test_export_tenant / time" in unmeasured
    assert all(f["evidence"].startswith(str(root / "evidence/bench/history/pytest")) for f in budgets["findings"])


def test_a_release_run_the_tool_failed_or_that_left_a_budgeted_benchmark_out_fails_closed(tmp_path, home):
    """pytest-benchmark leaves an errored benchmark out of its JSON; k6 fails a run whose thresholds
    are crossed: neither lets the budgets pass."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    (pytest_run,) = (root / "evidence/bench/release/pytest").glob("*.json")
    doc = json.loads(pytest_run.read_text())
    doc["benchmarks"] = [b for b in doc["benchmarks"] if not b["fullname"].endswith("test_export_tenant")]
    pytest_run.write_text(json.dumps(doc))
    (k6_run,) = (root / "evidence/bench/release/k6").glob("*.json")
    k6 = json.loads(k6_run.read_text())
    k6["metrics"]["http_req_duration"]["thresholds"] = {"p(95)<250": {"ok": False}}
    k6_run.write_text(json.dumps(k6))
    budgets = gate(gate_report([root], home), "perf_budgets")
    assert budgets["status"] == "fail"
    errors = {f["rule"]: f for f in budgets["findings"] if f["severity"] == "error"}
    assert set(errors) == {"absolute:export", "tool-reported-failure"}
    missing = errors["absolute:export"]
    assert missing["subject"] == "tests/perf/test_export.py::test_export_tenant / time"
    assert missing["observed"].startswith("not measured: no result for the release commit, though it was in its suite")
    assert "/evidence/bench/history/pytest/" in missing["evidence"]
    crossed = errors["tool-reported-failure"]
    assert (crossed["subject"], crossed["observed"]) == (
        "http_req_duration",
        "k6 threshold 'p(95)<250' crossed (k6 fails the run)",
    )
    assert crossed["evidence"] == str(k6_run) and crossed["runbook"].endswith("docs/ops/perf-budgets.md")
    assert "; 1 failure(s) the tool reported in the release's runs;" in budgets["summary"]


def test_a_benchmark_gone_before_the_suites_latest_run_is_history(tmp_path, home):
    """Renamed or removed once (that release decides): later releases are not held to the old name."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    newest = max((root / "evidence/bench/history/pytest").glob("*.json"))
    for run in [newest, *(root / "evidence/bench/release/pytest").glob("*.json")]:
        doc = json.loads(run.read_text())
        doc["benchmarks"] = [b for b in doc["benchmarks"] if not b["fullname"].endswith("test_export_tenant")]
        run.write_text(json.dumps(doc))
    budgets = gate(gate_report([root], home), "perf_budgets")
    assert budgets["status"] == "pass", budgets["findings"]


def test_a_budget_rule_whose_selector_matches_nothing_fails_its_gates(tmp_path, home):
    """A misspelt selector made the rule judge nothing and both gates pass: '4 of 4 within budget'."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    policy = root / "policy/perf-budgets.yaml"
    policy.write_text(policy.read_text().replace('"tests/perf/test_export.py::test_export_tenant"',
                                                 '"tests/perf/test_export.py::test_export_tenants"'))  # fmt: skip
    report = gate_report([root], home)
    for name, rule in (("perf_budgets", "absolute:export"), ("perf_regressions", "relative:export")):
        result = gate(report, name)
        assert result["status"] == "fail", result
        (finding,) = [f for f in result["findings"] if f["severity"] == "error"]
        assert finding["rule"] == rule and finding["subject"] == "tests/perf/test_export.py::test_export_tenants / time"
        assert "matches no benchmark in the history" in finding["observed"]
        assert "closest 'time' benchmarks: tests/perf/test_export.py::test_export_tenant" in finding["observed"]
        assert finding["evidence"] == str(policy) and finding["owner"] == "team:data-platform"


def test_budgets_with_only_relative_rules_leave_perf_budgets_nothing_to_judge(tmp_path):
    doc = (
        'apiVersion: phase8/v1\nkind: PerfBudgets\nreviewed: "2026-10-15"\n'
        'rules:\n  - {name: any-time, benchmark: "*", relative: "+10%", owner: "team:platform-reliability"}\n'
    )
    budgets = perf_budgets.read(doc.encode(), "policy/perf-budgets.yaml").records[0]
    context = PerfContext(
        ["/root"], [], "4f2c9e1a7b3d", "main", budgets, None, "policy/perf-budgets.yaml", tmp_path / "reports"
    )
    # No absolute rule: no budget check, and nothing missing (the benchmarks themselves did run).
    found, summary = budgets_gate(EvidenceBatch(roots=["/root"]), load_config([str(DATA)]), None, context, [])
    assert found == []
    assert (
        summary
        == "policy/perf-budgets.yaml sets no absolute limit: nothing to judge (its relative rules: perf_regressions)"
    )


def _file(path, data: bytes) -> EvidenceFile:
    result = benchmarks.read(data, str(path))
    return EvidenceFile(
        root="/root", kind="benchmarks", uri=str(path), sha256=str(hash(data)), size=len(data),
        observed_at=result.observed_at, timestamp_field=result.timestamp_field, summary=result.summary,
        warnings=result.warnings, records=result.records,
    )  # fmt: skip


def test_history_is_stored_once_per_version(home):
    path = next((DATA / "evidence/bench/history/pytest").glob("*.json"))
    data = path.read_bytes()
    reformatted = json.dumps(json.loads(data)).encode()  # other bytes, the same run
    with connect(warehouse_path(home)) as conn:
        first = record_benchmarks(conn, [_file(path, data)], datetime.now(UTC))
        before = table_counts(conn, ("bench_runs", "bench_results", "bench_samples"))
        again = record_benchmarks(conn, [_file(path, data)], datetime.now(UTC))
        other = record_benchmarks(conn, [_file("copy.json", reformatted)], datetime.now(UTC))
        after = table_counts(conn, ("bench_runs", "bench_results", "bench_samples"))
    assert first == [str(path)] and before["bench_results"] == 16 and before["bench_samples"] == 96
    assert again == []
    # another version is history too; which one counts is decided from the root (collect, bench_history)
    assert other == ["copy.json"] and after["bench_runs"] == before["bench_runs"] + 1


# What `k6 run --summary-export=summary.json --summary-trend-stats="avg,min,med,max,p(90),p(99)"` writes:
# the legacy export (values inline, a threshold's `true` means it failed), here with no p(95).
LEGACY_K6 = {
    "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e", "groups": {}, "checks": {}},
    "metrics": {
        "checks": {"passes": 5760, "fails": 0, "value": 1},
        "http_req_duration": {"avg": 149.37, "min": 46.3, "med": 138.91, "max": 609.72, "p(90)": 206.37,
                              "p(99)": 402.15, "thresholds": {"p(99)<500": False}},
        "http_req_failed": {"passes": 5, "fails": 5755, "value": 0.0008},
        "http_reqs": {"count": 5760, "rate": 96.4912},
        "iteration_duration": {"avg": 1150.2, "min": 1047.1, "med": 1139.8, "max": 1611.2, "p(90)": 1207.3,
                               "p(99)": 1402.6},
        "vus": {"value": 1, "min": 1, "max": 1},
    },
}  # fmt: skip


def test_a_budget_on_a_percentile_the_tool_did_not_report_fails_closed(tmp_path, home):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    (release,) = (root / "evidence/bench/release/k6").glob("*.json")
    release.write_text(json.dumps(LEGACY_K6, indent=2))
    with connect(warehouse_path(home)) as conn:
        record_benchmarks(conn, [_file(release, release.read_bytes())], datetime.now(UTC))
        p95 = conn.execute("SELECT p95 FROM bench_results WHERE measure = 'http_req_duration'").fetchall()
    assert p95 == [(None,)]  # stored as NULL; the gate must not read it as 0
    report = gate_report([root], home)
    budgets = gate(report, "perf_budgets")
    assert budgets["status"] == "fail"
    (finding,) = budgets["findings"]
    assert (finding["subject"], finding["rule"]) == ("http_req_duration / http_req_duration", "absolute:api-latency")
    assert (
        finding["observed"]
        == "not measured: the tool reported no p95 in this run (only max, mean, median, min, p90, p99)"
    )
    assert finding["evidence"] == str(release) and finding["details"]["unreported_in"] == [str(release)]
    assert finding["limit"] == "p95 <= 250ms" and finding["owner"] == "team:api"
