"""release_gate end to end, in-process: demo data, every scenario, reports, re-runs, isolation."""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.domains.gate_report import root_id
from phase8_assets.domains.gates import GATES
from phase8_assets.gate_run import run_gate
from phase8_assets.shared.artifacts import check_schema
from phase8_assets.warehouse import audit, connect, warehouse_path
from phase8_assets.warehouse.store import table_counts
from phase8_assets_tests.conftest import DATA, REPO, SCENARIOS, env_without_pytest, gate_report
from phase8_assets_tests.ocsf import validate as validate_ocsf

pytestmark = pytest.mark.slow


DEMO_STATUSES = {
    "evidence_validity": "warn",
    "evidence_freshness": "pass",
    "drill_evidence": "pass",
    "perf_budgets": "pass",
    "perf_regressions": "warn",  # the noisiest benchmark moved +12.6 % in one run: inconclusive
    "slo_burn_rate": "pass",
    "error_budget": "pass",
    "upgrade_preflight": "pass",
    "rollback_integrity": "pass",
    "cost_budgets": "pass",
    "policy_compliance": "warn",  # exception GOV-298 expires within 14 days
    "policy_exceptions": "warn",
    "supportability": "pass",
    "tenancy_isolation": "pass",
    "plugin_signatures": "pass",
    "plugin_capabilities": "pass",
    "program_completeness": "pass",
}


def statuses(report):
    return {g["gate"]: g["status"] for g in report["gates"]}


def gate(report, name):
    return next(g for g in report["gates"] if g["gate"] == name)


def scenario_table():
    """The scenarios README is the spec: scenario -> the gates it fails (none: it passes)."""
    rows = re.findall(
        r"^\| `([\w-]+)` \| ((?:`\w+`(?:, )?)+|none \(passes\)) \|", (SCENARIOS / "README.md").read_text(), re.M
    )
    return [(name, sorted(re.findall(r"`(\w+)`", gates))) for name, gates in rows]


def test_demo_data_passes_with_a_warning(tmp_path, home):
    outcome = run_gate([str(DATA)], out=tmp_path / "out", as_of=None, home=home)
    report = outcome.report
    assert outcome.exit_code == 0 and report["verdict"] == "pass"
    assert statuses(report) == DEMO_STATUSES
    warning = gate(report, "evidence_validity")["findings"][0]
    assert warning["rule"] == "timestamp-has-zone" and warning["owner"] == "team:sre"
    assert warning["runbook"].endswith("docs/ops/evidence-validity.md")
    # The three report files, the JSON valid against its published schema.
    written = json.loads((tmp_path / "out/gate-report.json").read_text())
    check_schema(written, "GateReport", "gate-report.json")
    assert written == json.loads(json.dumps(report))
    ET.parse(tmp_path / "out/gate-report.xml")
    assert "Release gate: PASS" in (tmp_path / "out/gate-report.md").read_text()
    assert (tmp_path / "out/gate-report.html").stat().st_size > 1000
    scorecard = (tmp_path / "out/program-scorecard.md").read_text()  # the program, item by item, for a CI summary
    assert "| chaos_drills | resilience | team:sre |" in scorecard and "8 kept their cadence" in scorecard
    # A fresh home: the statuses are this run's own, written when its gates completed, not a run behind.
    assert f"Gate statuses of this run ({outcome.run_id})" in scorecard and "none recorded" not in scorecard
    assert "program_completeness (pass)" in scorecard and "policy_compliance (warn)" in scorecard


def test_evidence_from_the_future_is_an_error_and_never_the_newest_run(tmp_path, home):
    """Failing evidence dated in 2030 beside the demo's: had any gate taken it as the newest run, that
    gate would fail on what the file holds; instead each future file is a `timestamp-not-in-future`
    error, in evidence_freshness once per file and in every gate of its kind (a root may switch
    evidence_freshness off), and no gate reports anything else of it."""
    root, future = tmp_path / "root", tmp_path / "root/future"

    def put(rel, text):
        (future / rel).parent.mkdir(parents=True, exist_ok=True)
        (future / rel).write_text(text)

    journal = json.loads((DATA / "evidence/drills/db-failover/2026-11-17.json").read_text())
    journal["deviated"] = True
    put("drills/db-failover.json", json.dumps(journal).replace("2026-11-17T", "2030-11-17T"))
    rollback = json.loads((DATA / "evidence/upgrade/rollback/drill-10.4.0-staging.json").read_text())
    rollback["generated_at"], rollback["tables"][0]["rows_after"] = "2030-11-17T12:00:00Z", 1
    put("rollback/drill.json", json.dumps(rollback))
    preflight = json.loads((DATA / "evidence/upgrade/preflight/acme-prod.json").read_text())
    preflight["generated_at"], preflight["checks"][0]["status"] = "2030-11-19T12:00:00Z", "fail"
    put("preflight/acme-prod.json", json.dumps(preflight))
    [k6] = (DATA / "evidence/bench/release/k6").glob("*.json")
    put(f"bench/k6/{k6.name.replace('2026-', '2030-')}", k6.read_text().replace('"p(95)": ', '"p(95)": 9'))
    (root / "phase8.yaml").write_text(
        f"apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: {os.path.relpath(DATA / 'phase8.yaml', root)}\n"
        "evidence:\n"
        "  drill_journals: {extra_paths: [future/drills/*.json]}\n"
        "  rollback_reports: {extra_paths: [future/rollback/*.json]}\n"
        "  preflight_reports: {extra_paths: [future/preflight/*.json]}\n"
        "  benchmarks: {extra_paths: [future/bench/**/*.json]}\n"
    )
    # Evaluated in 2031 first, the same files are history, stored in this home ...
    later = gate_report([root], home, as_of="2031-01-01T00:00:00Z")
    assert statuses(later)["perf_budgets"] == "fail"
    # ... which must not count once the evaluation time is before them again.
    report = gate_report([root], home)
    of_future_kinds = ["drill_evidence", "rollback_integrity", "upgrade_preflight", "perf_budgets", "perf_regressions",
                       "program_completeness", "evidence_freshness"]  # fmt: skip
    assert statuses(report) == {**DEMO_STATUSES, **dict.fromkeys(of_future_kinds, "fail")}, report["gates"]
    for name in of_future_kinds:
        rules = {f["rule"] for f in gate(report, name)["findings"] if f["severity"] == "error"}
        assert rules == {"timestamp-not-in-future"}, (name, rules)
    errors = [f for f in gate(report, "evidence_freshness")["findings"] if f["severity"] == "error"]
    assert sorted((f["subject"], f["rule"], f["evidence"]) for f in errors) == [
        ("benchmarks", "timestamp-not-in-future", str(future / f"bench/k6/{k6.name.replace('2026-', '2030-')}")),
        ("drill_journals", "timestamp-not-in-future", str(future / "drills/db-failover.json")),
        ("preflight_reports", "timestamp-not-in-future", str(future / "preflight/acme-prod.json")),
        ("rollback_reports", "timestamp-not-in-future", str(future / "rollback/drill.json")),
    ]


SCENARIO_TABLE = scenario_table()


@pytest.fixture(scope="module")
def scenario_home(tmp_path_factory):
    """One home for the scenarios (of a test worker): each verdict must not depend on the others'."""
    return tmp_path_factory.mktemp("scenarios") / "phase8-home"


def test_the_scenarios_readme_lists_the_scenarios():
    assert len(SCENARIO_TABLE) >= 6
    assert sorted(name for name, _ in SCENARIO_TABLE) == sorted(
        p.name for p in SCENARIOS.iterdir() if (p / "phase8.yaml").exists()
    )


@pytest.mark.parametrize(("name", "failing_gates"), SCENARIO_TABLE, ids=[name for name, _ in SCENARIO_TABLE])
def test_every_scenario_fails_exactly_the_gates_its_readme_names(name, failing_gates, scenario_home):
    report = gate_report([SCENARIOS / name], scenario_home)
    failed = sorted(g for g, s in statuses(report).items() if s in ("fail", "error"))
    assert failed == failing_gates, (name, report["gates"])
    assert report["verdict"] == ("blocked" if failing_gates else "pass"), name


def test_cost_never_blocks_a_release(home):
    report = gate_report([SCENARIOS / "cost-forecast-over-budget"], home)
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    assert (gate["status"], gate["blocking"], report["verdict"]) == ("warn", False, "pass")
    finding = next(f for f in gate["findings"] if f["rule"] == "forecast>=100%")
    assert finding["subject"] == "acme-monthly" and finding["owner"] == "team:finops"
    assert finding["details"]["forecast"] > finding["details"]["amount"]


def test_findings_explain_themselves(home):
    report = gate_report([SCENARIOS / "broken-evidence"], home)
    gate = next(g for g in report["gates"] if g["gate"] == "evidence_validity")
    error = next(f for f in gate["findings"] if f["severity"] == "error")
    assert error["subject"].endswith("TEST-isolation.files.TenantFilesTest.xml")
    assert error["evidence"] == error["subject"]
    assert error["observed"].startswith("line ") and "not well-formed XML" in error["observed"]
    assert error["owner"] == "team:tenancy" and error["runbook"].endswith("evidence-validity.md")
    assert error["details"]["kind"] == "isolation_results"


ROLLBACK_WAIVER = """\
apiVersion: phase8/v1
kind: Waiver
id: MSG-1
gate: rollback_integrity
subject: "posts (tenant globex)"
rule: identical-after-rollback
owner: {owner}
reason: the lost rows are a known drift, fixed next release
ticket: MSG-1
requested_by: lena@chatterbox.example
approved_by: {approved_by}
approved_at: "2026-11-19T09:00:00Z"
expires: "2026-12-15T00:00:00Z"
"""


def test_a_team_cannot_waive_a_blocking_gate_it_does_not_own(home, tmp_path):
    """The exception's owner is whatever its requester writes: the messaging team named itself the
    owner of a waiver of rollback_integrity (team:data-platform's gate) and a teammate approved it;
    the lost rows shipped. An exception to a blocking gate is approved by the gate's owner or a
    release manager; the exception's own team only approves one to a warn-level gate."""
    root = tmp_path / "root"  # the demo with the rollback-row-mismatch scenario's drill (12 rows lost)
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    for drill in (SCENARIOS / "rollback-row-mismatch" / "rollback").glob("*.json"):
        shutil.copy(drill, root / "evidence/upgrade/rollback" / drill.name)
    waiver = root / "waivers" / "msg-1.yaml"
    waiver.write_text(ROLLBACK_WAIVER.format(owner="team:messaging", approved_by="marco@chatterbox.example"))
    report = gate_report([root], home)
    assert report["verdict"] == "blocked"
    failed = {g["gate"]: g for g in report["gates"] if g["status"] == "fail"}
    assert set(failed) == {"rollback_integrity", "policy_exceptions"}
    [refused] = [f for f in failed["policy_exceptions"]["findings"] if f["rule"] == "exception-refused"]
    assert refused["observed"] == "the access policy does not let marco@chatterbox.example approve it"
    # the gate's owner (team:data-platform in phase8.yaml) may approve it; so may a release manager
    for approver in ("mei@chatterbox.example", "ruth@chatterbox.example"):
        waiver.write_text(ROLLBACK_WAIVER.format(owner="team:messaging", approved_by=approver))
        assert gate_report([root], home)["verdict"] == "pass", approver


def test_waived_and_skipped_are_visible(home):
    waived = gate_report([SCENARIOS / "waived-broken-evidence"], home)
    finding = next(f for g in waived["gates"] for f in g["findings"] if f["severity"] == "waived")
    assert finding["details"]["waiver"]["ticket"] == "CHAT-4821"
    off = gate_report([SCENARIOS / "gate-switched-off"], home)
    gate = next(g for g in off["gates"] if g["gate"] == "evidence_freshness")
    assert gate["status"] == "skipped" and "CHAT-4900" in gate["summary"]
    # ...and in the audit trail: who waived what, under which ticket; which gate was switched off and why
    with connect(warehouse_path(home)) as conn:
        records = audit.rows(conn)
        assert audit.verify(conn).ok
    by_run = {(r["run_id"], r["event_type"]): r for r in records}
    assert by_run[(waived["run_id"], "gate.verdict")]["outcome"] == waived["verdict"]
    digests = by_run[(waived["run_id"], "gate.verdict")]["record"]["unmapped"]["phase8"]["details"]["evidence_digests"]
    assert digests["files"] > 0 and len(digests["sha256"]) == 64
    tickets = {r["record"]["unmapped"]["phase8"]["ticket"] for r in records if r["event_type"] == "finding.waived"}
    assert "CHAT-4821" in tickets
    switched = by_run[(off["run_id"], "gate.switched_off")]
    assert "CHAT-4900" in switched["record"]["unmapped"]["phase8"]["reason"] and switched["actor_source"]
    for r in records:
        validate_ocsf(r["record"])


def test_as_of_overrides_the_pinned_time(home):
    report = gate_report([DATA], home, as_of="2027-03-01T00:00:00Z")
    assert report["evaluated_at"] == "2027-03-01T00:00:00Z"
    assert statuses(report)["evidence_freshness"] == "fail"


def test_rerun_adds_rows_only_to_the_gate_run_log_and_the_audit_trail(home):
    gate_report([DATA], home)
    with connect(warehouse_path(home)) as conn:
        before = table_counts(conn)
    gate_report([DATA], home)
    with connect(warehouse_path(home)) as conn:
        after = table_counts(conn)
    assert before["evidence_files"] > 0
    changed = sorted(t for t in after if after[t] != before[t])
    assert changed and all(t.startswith("gate_run") or t == "audit_events" for t in changed)
    assert after["audit_events"] > before["audit_events"]  # the second run's verdict is audited too


def test_same_bytes_under_two_paths_count_once(tmp_path, home):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    shutil.copy(root / "evidence/isolation/data.xml", root / "evidence/isolation/data-copy.xml")
    report = gate_report([root], home)
    assert "1 duplicate path(s) counted once" in gate(report, "evidence_validity")["summary"]
    with connect(warehouse_path(home)) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM evidence_files GROUP BY kind").fetchall())
    assert kinds["isolation_results"] == 3


def test_roots_sharing_a_home_do_not_influence_each_other(home):
    broken = gate_report([SCENARIOS / "broken-evidence"], home)
    good = gate_report([DATA], home)
    again = gate_report([SCENARIOS / "broken-evidence"], home)
    assert (broken["verdict"], good["verdict"], again["verdict"]) == ("blocked", "pass", "blocked")
    # Each root keeps its own reports: the scenario's run never overwrote the demo's.
    kept = {
        path.parent.parent.name: json.loads(path.read_text())["verdict"]
        for path in home.glob("reports/*/10.4.0/gate-report.json")
    }
    assert kept == {root_id(str(DATA)): "pass", root_id(str(SCENARIOS / "broken-evidence")): "blocked"}


def test_several_evidence_roots_merge(tmp_path, home):
    extra = tmp_path / "extra"
    (extra / "results").mkdir(parents=True)
    shutil.copy(SCENARIOS / "broken-evidence/isolation/TEST-isolation.files.TenantFilesTest.xml", extra / "results")
    (extra / "phase8.yaml").write_text(
        'apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: "0", commit: "abcdef1"}\n'
        'evidence:\n  isolation_results: {paths: ["results/*.xml"], max_age: P1D}\n'
    )
    report = gate_report([DATA, extra], home)
    assert report["evidence_roots"] == [str(DATA), str(extra)]
    assert report["release"]["version"] == "10.4.0"
    assert statuses(report)["evidence_validity"] == "fail"


def test_a_root_without_an_isolation_matrix_fails_closed_unless_the_gate_is_switched_off(tmp_path, home):
    root = tmp_path / "root"
    shutil.copytree(DATA / "evidence/isolation", root / "results")
    config = (
        'apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: "1.0.0", commit: "abcdef1"}\n'
        'evaluation_time: "2026-11-20T12:00:00Z"\n'
        'evidence:\n  isolation_results: {paths: ["results/*.xml"], max_age: P7D}\n'
    )
    (root / "phase8.yaml").write_text(config)
    isolation = gate(gate_report([root], home), "tenancy_isolation")
    assert isolation["status"] == "fail"
    assert [f["rule"] for f in isolation["findings"] if f["severity"] == "error"] == ["matrix-present"]
    (root / "phase8.yaml").write_text(config + "gates:\n  tenancy_isolation: {enabled: false, reason: CHAT-5100}\n")
    off = gate(gate_report([root], home), "tenancy_isolation")
    assert off["status"] == "skipped" and "CHAT-5100" in off["summary"]


def test_cli_exit_codes_and_one_line_errors(tmp_path, home):
    runner = CliRunner()
    ok = runner.invoke(main, ["gate", "--evidence", str(DATA), "--home", str(home), "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("verdict: PASS (release 10.4.0")
    blocked = runner.invoke(main, ["gate", "--evidence", str(SCENARIOS / "stale-evidence"), "--home", str(home)])
    assert blocked.exit_code == 1 and "evidence_freshness: isolation_results: max-age" in blocked.output
    stale = home / "reports/program" / root_id(str(SCENARIOS / "stale-evidence")) / "scorecard.md"
    assert "evidence_freshness (fail)" in stale.read_text() and "| tenancy_isolation (fail) |" in stale.read_text()
    missing = runner.invoke(main, ["gate", "--evidence", str(tmp_path / "nope"), "--home", str(home)])
    assert missing.exit_code == 2
    assert (
        missing.output.strip()
        == f"phase8: error: {tmp_path / 'nope'}: evidence root not found (expected a folder or s3://bucket/prefix)"
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: 1}\nevidence: {}\n"
    )
    invalid = runner.invoke(main, ["gate", "--evidence", str(bad), "--home", str(home)])
    assert invalid.exit_code == 2
    assert (
        invalid.output.count("\n") == 1
        and "phase8.yaml: release.version: expected the release's version string, got 1" in invalid.output
    )
    assert runner.invoke(main, ["gate"]).exit_code == 2  # usage


def test_second_gate_on_the_same_home_waits_then_exits_2(home):
    home.mkdir(parents=True)
    with open(home / "gate.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        result = CliRunner().invoke(main, ["gate", "--evidence", str(DATA), "--home", str(home), "--lock-wait", "1"])
    assert result.exit_code == 2
    assert "another phase8 command is running on this PHASE8_HOME (waited 1 s)" in result.output
    assert "Traceback" not in result.output


def test_a_warehouse_needing_an_upgrade_exits_2(home):
    from phase8_assets.warehouse import migrate

    with connect(warehouse_path(home), check_schema=False) as conn:
        migrate(conn, 1)
    result = CliRunner().invoke(main, ["gate", "--evidence", str(DATA), "--home", str(home)])
    assert result.exit_code == 2 and "phase8 upgrade apply" in result.output


def test_a_dagster_home_whose_instance_cannot_be_opened_exits_2_naming_it(home, tmp_path, monkeypatch):
    """Not a traceback with exit 1 (which CI reads as "blocked by findings"): no gate was evaluated."""
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("storage:\n  postgres:\n    postgres_db:\n      username: dagster\n")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    result = CliRunner().invoke(main, ["gate", "--evidence", str(DATA), "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert (
        f"DAGSTER_HOME={dagster_home}: the Dagster instance cannot be opened (DagsterInvalidConfigError"
        in result.output
    )
    assert "db_name" in result.output and "no gate was evaluated" in result.output


def test_validate_command(real_samples):
    runner = CliRunner()
    good = runner.invoke(main, ["validate", str(DATA)])
    assert good.exit_code == 0 and "INVALID" not in good.output
    bad = runner.invoke(main, ["validate", str(real_samples / "junit"), str(real_samples / "chaos")])
    assert bad.exit_code == 1
    assert "INVALID" in bad.output and "mikepenz_TEST-test.CorruptTest_truncated.xml: line" in bad.output
    lines = bad.output.splitlines()
    # Problems first, then what is valid, then the count.
    assert lines[0].startswith("INVALID ") and lines[-2].startswith("ok      ")
    invalid = sum(line.startswith("INVALID ") for line in lines)
    assert lines[-1] == f"{invalid} invalid, {len(lines) - 1 - invalid} valid"
    data = json.loads(runner.invoke(main, ["validate", str(real_samples / "junit"), "--json"]).output)
    assert data["invalid"] and data["summary"].endswith("valid")


def _cli(*args, env=None, cwd=REPO):
    return subprocess.run(args, capture_output=True, text=True, env=env or env_without_pytest(), cwd=cwd, timeout=300)


def test_dagster_job_execute_exit_code_follows_the_verdict(tmp_path):
    dagster = str(REPO / ".venv/bin/dagster") if (REPO / ".venv/bin/dagster").exists() else "dagster"
    base = {**env_without_pytest(), "PHASE8_HOME": str(tmp_path / "home"), "DAGSTER_HOME": ""}
    base.pop("DAGSTER_HOME")
    cmd = [dagster, "job", "execute", "-m", "phase8_assets.definitions", "-j", "release_gate"]
    passing = _cli(*cmd, env={**base, "PHASE8_EVIDENCE": str(DATA)}, cwd=tmp_path)
    assert passing.returncode == 0, passing.stderr[-2000:]
    blocked = _cli(*cmd, env={**base, "PHASE8_EVIDENCE": str(SCENARIOS / "broken-evidence")}, cwd=tmp_path)
    assert blocked.returncode != 0 and "blocking asset check failed" in blocked.stderr
    # The same gate run as `phase8 gate`'s: in the run log, with its reports.
    with connect(warehouse_path(tmp_path / "home")) as conn:
        verdicts = [v for (v,) in conn.execute("SELECT verdict FROM gate_runs").fetchall()]
        results = conn.execute("SELECT count(*) FROM gate_run_results").fetchone()[0]
    assert sorted(verdicts) == ["blocked", "pass"] and results == 2 * len(GATES)
    report = tmp_path / "home/reports" / root_id(str(SCENARIOS / "broken-evidence")) / "10.4.0/gate-report.json"
    assert json.loads(report.read_text())["verdict"] == "blocked"


def test_a_run_outside_phase8_gate_whose_upstream_step_crashes_still_completes_with_a_verdict(tmp_path):
    """Launched as the UI or `dagster job execute` launch it: no `phase8 gate` completes the run. A
    step that crashes (here its output cannot be stored: a folder stands where the file goes) stops
    the gates downstream of it; they are recorded as error naming the step, the run gets its
    blocked verdict, its audit record and its reports."""
    import dagster as dg

    from phase8_assets.definitions import defs

    storage, home = tmp_path / "storage", tmp_path / "home"
    (storage / "slo_burn_rates").mkdir(parents=True)
    run_config = {
        "resources": {
            "settings": {"config": {"evidence": [str(DATA)]}},
            "warehouse": {"config": {"database": str(warehouse_path(home))}},
            "io_manager": {"config": {"base_dir": str(storage)}},
        }
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("release_gate").execute_in_process(
            run_config=run_config, instance=instance, raise_on_error=False
        )
    assert not result.success
    assert [e.step_key for e in result.all_events if e.is_step_failure] == ["slo_burn_rates"]
    with connect(warehouse_path(home)) as conn:
        recorded = {g: (s, m) for g, s, m in conn.execute(
            "SELECT gate, status, summary FROM gate_run_results WHERE run_id = ?", [result.run_id]).fetchall()}  # fmt: skip
        verdicts = conn.execute(
            "SELECT outcome FROM audit_events WHERE event_type = 'gate.verdict' AND run_id = ?", [result.run_id]
        ).fetchall()
    assert set(recorded) == set(GATES)
    stopped = {g for g, (status, _summary) in recorded.items() if status == "error"}
    assert stopped == {"slo_burn_rate", "error_budget"}
    # The step and what it raised: in the report, not only in a step log the reader may not have.
    crash = "upstream step failed (slo_burn_rates: IsADirectoryError: [Errno 21] Is a directory: "
    assert all(crash in recorded[g][1] and recorded[g][1].endswith(")") for g in stopped), recorded
    assert verdicts == [("blocked",)]
    report = json.loads((home / "reports" / root_id(str(DATA)) / "10.4.0" / "gate-report.json").read_text())
    assert report["verdict"] == "blocked" and report["run_id"] == result.run_id
    for gate in (g for g in report["gates"] if g["gate"] in stopped):  # who looks into it, and where
        (finding,) = gate["findings"]
        assert finding["rule"] == "gate-evaluated" and finding["owner"] and finding["runbook"], finding
        assert finding["observed"].startswith(crash) and str(storage / "slo_burn_rates") in finding["observed"]
    assert CliRunner().invoke(main, ["audit", "verify", "--home", str(home)]).exit_code == 0


def test_phase8_gate_names_what_a_crashed_step_raised(tmp_path, monkeypatch):
    """``phase8 gate``'s Dagster instance (and the step's log) is gone when it ends: the ``error``
    gates' finding is all the user has, so it carries what the step raised, not only its name."""
    import phase8_assets.defs.evidence as evidence_defs

    def crash(*_args, **_kwargs):
        raise RuntimeError("the evidence share went away (ESTALE)")

    monkeypatch.setattr(evidence_defs, "collect", crash)
    monkeypatch.setenv("PHASE8_PREFETCH", "0")  # the step reads the evidence itself, and crashes
    result = CliRunner().invoke(main, ["gate", "--evidence", str(DATA), "--home", str(tmp_path / "h"), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output[result.output.index("{") :])
    errored = [g for g in report["gates"] if g["status"] == "error"]
    assert errored and all(
        g["findings"][0]["observed"]
        == "upstream step failed (evidence_files: RuntimeError: the evidence share went away (ESTALE))"
        for g in errored
    ), errored[0]


@pytest.mark.parametrize("step", ["evidence_files", "gates__drill_evidence"])
def test_phase8_gate_records_a_crashed_step_as_the_jobs_failure_hook_does(step, tmp_path, monkeypatch):
    """On its own instance ``phase8 gate`` runs ``release_gate`` without the failure hook and records
    each failed step's gates itself when the run is over; on a ``DAGSTER_HOME`` instance the hook does.
    The report is the same either way, for an upstream step and for a gate's own step."""
    import dagster as dg

    import phase8_assets.defs.evidence as evidence_defs
    from phase8_assets.shared import telemetry

    def crash(*_args, **_kwargs):
        raise RuntimeError("the evidence share went away (ESTALE)")

    count = telemetry.count

    def crash_drill_evidence(name, value, attributes=None, **kwargs):
        if (attributes or {}).get("phase8.gate") == "drill_evidence":
            raise RuntimeError("the collector is gone")
        return count(name, value, attributes, **kwargs)

    if step == "evidence_files":
        monkeypatch.setattr(evidence_defs, "collect", crash)
        monkeypatch.setenv("PHASE8_PREFETCH", "0")  # the step reads the evidence itself, and crashes
    else:
        monkeypatch.setattr(telemetry, "count", crash_drill_evidence)
    reports = {}
    for hooked in (False, True):
        if hooked:
            (tmp_path / "dagster").mkdir()
            (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        home = tmp_path / f"home-{hooked}"
        result = CliRunner().invoke(main, ["gate", "--evidence", str(DATA), "--home", str(home), "--json"])
        assert result.exit_code == 1, result.output
        report = json.loads(result.output[result.output.index("{") :])
        reports[hooked] = {k: v for k, v in report.items() if k != "run_id"}
    errored = {g["gate"]: g["findings"][0]["observed"] for g in reports[False]["gates"] if g["status"] == "error"}
    if step == "evidence_files":
        assert set(errored) == set(GATES)
        assert set(errored.values()) == {
            "upstream step failed (evidence_files: RuntimeError: the evidence share went away (ESTALE))"
        }
    else:
        assert errored == {
            "drill_evidence": "its step failed (gates__drill_evidence: RuntimeError: the collector is gone)"
        }
    assert reports[False] == reports[True]
    with dg.DagsterInstance.get() as instance:  # the hook recorded them on DAGSTER_HOME
        (run,) = instance.get_runs()
        hooked_steps = {e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.HOOK_COMPLETED)}
    assert hooked_steps == {step}


def test_definitions_validate_and_no_great_expectations_at_import():
    validate = _cli(sys.executable, "-m", "dagster", "definitions", "validate", "-m", "phase8_assets.definitions")
    assert validate.returncode == 0, validate.stderr[-2000:]
    probe = _cli(
        sys.executable, "-c", "import sys, phase8_assets.definitions; print('great_expectations' in sys.modules)"
    )
    assert probe.stdout.strip() == "False"


def test_help_and_version():
    from phase8_assets import __version__

    runner = CliRunner()
    assert runner.invoke(main, ["--version"]).output.strip() == f"phase8, version {__version__}"
    help_text = runner.invoke(main, ["--help"]).output
    assert all(cmd in help_text for cmd in ("gate", "validate", "demo-data", "upgrade"))


# The demo and the scenarios that reach the readers and the numeric paths (every reader on broken
# input, numpy change points, OTLP burn rates, FOCUS costs): what `phase8 gate` runs without pandas.
WITHOUT_PANDAS = ["broken-evidence", "perf-regression", "slo-fast-burn", "cost-forecast-over-budget"]


def test_release_gate_needs_no_pandas(tmp_path):
    """`phase8 gate` refuses pandas (``shared/without_pandas.py``): in a process that refuses it, the
    demo passes and the scenarios fail exactly the gates the README names, readers included (read in
    the run here, not by the prefetch process), and pandas is never imported."""
    script = f"""
import json, sys
from pathlib import Path
from phase8_assets.shared.without_pandas import without_pandas
with without_pandas():
    from phase8_assets.gate_run import run_gate
    out = {{}}
    for name, root in [("demo", {str(DATA)!r})] + [(n, str(Path({str(SCENARIOS)!r}) / n)) for n in {WITHOUT_PANDAS!r}]:
        report = run_gate([root], out=None, as_of=None, home=Path({str(tmp_path)!r}) / name).report
        out[name] = sorted(g["gate"] for g in report["gates"] if g["status"] in ("fail", "error"))
    try:
        import pandas  # noqa: F401
        refused = ""
    except ModuleNotFoundError as exc:
        refused = str(exc)
print(json.dumps({{"failing": out, "pandas_loaded": "pandas" in sys.modules, "refused": refused}}))
"""
    env = {**env_without_pytest(), "OTEL_SDK_DISABLED": "true"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    expected = dict(SCENARIO_TABLE)
    assert got["failing"] == {"demo": [], **{n: expected[n] for n in WITHOUT_PANDAS}}
    assert not got["pandas_loaded"] and "`phase8 gate` runs without pandas" in got["refused"]
