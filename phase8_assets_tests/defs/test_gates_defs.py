"""One gate run whoever launches it: a bare ``release_gate`` run (as the UI, a schedule or
``dagster job execute`` start it) records itself, writes its reports and shows each gate's status
in its check's outcome; the webserver's GraphQL API reads those outcomes back."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from phase8_assets.definitions import defs
from phase8_assets.domains.gate_report import root_id
from phase8_assets.domains.gates import GATES
from phase8_assets.warehouse import connect, warehouse_path
from phase8_assets_tests.conftest import SCENARIOS, _free_port, env_without_pytest

pytestmark = pytest.mark.slow


def mixed_root(folder: Path) -> Path:
    """Every status in one run: ``slo_burn_rate`` warns (a ticket-level burn), ``evidence_validity`` fails
    (a truncated JUnit file), ``drill_evidence`` is switched off, the rest pass."""
    (folder / "isolation").mkdir(parents=True)
    broken = SCENARIOS / "broken-evidence/isolation/TEST-isolation.files.TenantFilesTest.xml"
    (folder / "isolation" / broken.name).write_bytes(broken.read_bytes())
    (folder / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\n"
        f"extends: {os.path.relpath(SCENARIOS / 'slo-slow-burn/phase8.yaml', folder)}\n"
        'evidence: {isolation_results: {extra_paths: ["isolation/*.xml"]}}\n'
        'gates: {drill_evidence: {enabled: false, reason: "drills paused (CHAT-4900)"}}\n'
    )
    return folder


@pytest.fixture(scope="session")
def dagster_run(tmp_path_factory):
    """A bare ``release_gate`` run on a persistent instance, no ``phase8 gate`` around it."""
    base = tmp_path_factory.mktemp("bare-run")
    home, dagster_home, root = base / "phase8-home", base / "dagster-home", mixed_root(base / "mixed")
    dagster_home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEL_SDK_DISABLED", "true")
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        with dg.DagsterInstance.get() as instance:
            result = defs.resolve_job_def("release_gate").execute_in_process(
                run_config={
                    "resources": {
                        "settings": {"config": {"evidence": [str(root)]}},
                        "warehouse": {"config": {"database": str(warehouse_path(home))}},
                    }
                },
                instance=instance,
                raise_on_error=False,
            )
            yield {"home": home, "dagster_home": dagster_home, "instance": instance, "result": result, "root": root}


def evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_bare_run_records_itself_and_writes_its_reports(dagster_run):
    home, run_id = dagster_run["home"], dagster_run["result"].run_id
    with connect(warehouse_path(home)) as conn:
        logged = conn.execute("SELECT run_id, verdict, release_version, evidence_roots FROM gate_runs").fetchall()
        results = dict(conn.execute("SELECT gate, status FROM gate_run_results WHERE run_id = ?", [run_id]).fetchall())
    assert logged == [(run_id, "blocked", "10.4.0", [str(dagster_run["root"])])]
    assert len(results) == len(GATES)
    assert (results["evidence_validity"], results["slo_burn_rate"], results["drill_evidence"]) == (
        "fail",
        "warn",
        "skipped",
    )
    folder = home / "reports" / root_id(str(dagster_run["root"])) / "10.4.0"
    report = json.loads((folder / "gate-report.json").read_text())
    assert (report["verdict"], report["run_id"]) == ("blocked", run_id)
    assert sorted(p.name for p in folder.glob("gate-report.*")) == [
        "gate-report.html",
        "gate-report.json",
        "gate-report.md",
        "gate-report.xml",
    ]
    # The step completing the run rendered the program scorecard (fresh home) with this run's statuses.
    scorecard = (home / "reports/program" / root_id(str(dagster_run["root"])) / "scorecard.md").read_text()
    assert f"Gate statuses of this run ({run_id})" in scorecard
    assert "evidence_validity (fail)" in scorecard and "slo_burn_rate (warn)" in scorecard


def test_runs_and_checks_name_the_release_and_the_root(dagster_run):
    result, root = dagster_run["result"], str(dagster_run["root"])
    tags = dagster_run["instance"].get_run_by_id(result.run_id).tags
    assert tags["phase8/release.version"] == "10.4.0" and tags["phase8/release.commit"].startswith("4f2c9e1a")
    assert tags["phase8/evidence_root"] == root and tags["phase8/root_id"] == root_id(root)
    metadata = evaluations(result)["evidence_validity"].metadata
    assert metadata["release"].value == "10.4.0 (commit 4f2c9e1a7b3d)" and metadata["evidence_root"].value == root
    assert metadata["report"].value.endswith(f"{root_id(root)}/10.4.0/gate-report.html")


def test_check_outcomes_follow_the_gate_status(dagster_run):
    result = dagster_run["result"]
    checks = evaluations(result)
    assert not result.success  # the failing blocking gate fails the run; the warning alone would not
    warn, off, ok, cost = (checks[g] for g in ("slo_burn_rate", "drill_evidence", "perf_budgets", "cost_budgets"))
    assert (warn.passed, warn.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert off.passed and "skipped" in off.description and "CHAT-4900" in off.description
    assert (ok.passed, ok.severity) == (True, dg.AssetCheckSeverity.ERROR)
    assert (cost.passed, cost.severity) == (True, dg.AssetCheckSeverity.WARN)
    broken = checks["evidence_validity"]
    assert (broken.passed, broken.severity) == (False, dg.AssetCheckSeverity.ERROR)
    table = broken.metadata["findings"].value.splitlines()
    assert table[0] == "| severity | subject | rule | observed | limit | evidence | owner | runbook |"
    assert table[2].startswith("| error |") and table[-1].startswith("| warning |")  # errors first
    # each finding names its evidence file, relative to the root, as the HTML report does
    assert "| isolation/TEST-isolation.files.TenantFilesTest.xml |" in table[2]


def test_a_failed_gate_step_logs_why_before_it_fails(dagster_run):
    run_id = dagster_run["result"].run_id
    errors = [
        e.message
        for e in dagster_run["instance"].all_logs(run_id)
        if e.level >= 40 and "gate evidence_validity fail" in e.message
    ]
    assert len(errors) == 1
    assert "TEST-isolation.files.TenantFilesTest.xml: readable:" in errors[0]
    assert "owner team:tenancy" in errors[0] and "evidence-validity.md" in errors[0]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="session")
def webserver(dagster_run):
    """``dagster-webserver`` on 127.0.0.1 over the instance that holds the bare run."""
    port = _free_port()
    env = {**env_without_pytest(), "DAGSTER_HOME": str(dagster_run["dagster_home"]), "OTEL_SDK_DISABLED": "true"}
    server = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(server), "-h", "127.0.0.1", "-p", str(port), "-m", "phase8_assets.definitions"],
        env=env,
        cwd=dagster_run["home"].parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    _graphql(port, "{ version }")
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster-webserver did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_ui_shows_each_gate_status_as_its_check_outcome(dagster_run, webserver):
    seen = {}
    for gate in ("evidence_validity", "slo_burn_rate", "drill_evidence", "perf_budgets"):
        data = _graphql(
            webserver,
            f'{{ assetCheckExecutions(assetKey: {{path: ["gates", "{gate}"]}}, checkName: "{gate}", limit: 5) '
            "{ runId status evaluation { severity success description } } }",
        )
        (execution,) = data["data"]["assetCheckExecutions"]
        assert execution["runId"] == dagster_run["result"].run_id
        evaluation = execution["evaluation"]
        seen[gate] = (execution["status"], evaluation["severity"], evaluation["success"])
        assert (
            evaluation["description"].split(":")[0].split()[-1]
            == {
                "evidence_validity": "fail",
                "slo_burn_rate": "warn",
                "drill_evidence": "skipped",
                "perf_budgets": "pass",
            }[gate]
        )
    assert seen == {
        "evidence_validity": ("FAILED", "ERROR", False),
        "slo_burn_rate": ("FAILED", "WARN", False),
        "drill_evidence": ("SUCCEEDED", "ERROR", True),
        "perf_budgets": ("SUCCEEDED", "ERROR", True),
    }


def test_two_runs_on_one_instance_never_read_each_others_asset_values(tmp_path):
    """Two runs at once on one instance (two roots, as the queue allows) each read the values their
    own steps stored; a value from outside the run's lineage is the latest one stored."""
    from phase8_assets.defs.resources import Phase8IOManager

    manager = Phase8IOManager(base_dir=str(tmp_path)).create_io_manager(dg.build_init_resource_context())
    key = dg.AssetKey(["benchmark_history"])
    for run_id in ("run-a", "run-b"):
        manager.handle_output(dg.build_output_context(asset_key=key, run_id=run_id), f"value of {run_id}")
    for run_id in ("run-a", "run-b"):
        upstream = dg.build_output_context(asset_key=key, run_id=run_id)
        assert (
            manager.load_input(dg.build_input_context(asset_key=key, upstream_output=upstream)) == f"value of {run_id}"
        )
    assert manager.load_input(dg.build_input_context(asset_key=key)) == "value of run-b"
