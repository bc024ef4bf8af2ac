"""upgrade_preflight and rollback_integrity end to end: the demo's evidence plus one changed or added
report, through the real gate run."""

import json
import os

import pytest

from phase8_assets_tests.conftest import DATA, gate_report

pytestmark = pytest.mark.slow

DRILL = "evidence/upgrade/rollback/drill-10.4.0-staging.json"
PREFLIGHT = "evidence/upgrade/preflight/acme-prod.json"


def root_with(tmp_path, extra: dict[str, dict], config: str = ""):
    """A root extending the demo's config (plus ``config``), with ``extra`` (kind -> {file name:
    document}) beside it."""
    root = tmp_path / "root"
    root.mkdir()
    paths = []
    for kind, docs in extra.items():
        for name, doc in docs.items():
            (root / "extra" / kind).mkdir(parents=True, exist_ok=True)
            (root / "extra" / kind / name).write_text(json.dumps(doc))
        paths.append(f"  {kind}: {{extra_paths: [extra/{kind}/*.json]}}\n")
    (root / "phase8.yaml").write_text(
        f"apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: {os.path.relpath(DATA / 'phase8.yaml', root)}\n"
        + config
        + ("evidence:\n" + "".join(paths) if paths else "")
    )
    return root


def gate(report, name):
    return next(g for g in report["gates"] if g["gate"] == name)


def test_two_drills_at_one_time_keep_the_one_that_lost_data(tmp_path, home):
    """A clean drill and one that lost rows, both the newest: whichever file name sorts first must not decide."""
    lossy = json.loads((DATA / DRILL).read_text())
    lossy["environment"], lossy["tables"][0]["rows_after"] = "staging-2", lossy["tables"][0]["rows_before"] - 5
    report = gate_report([root_with(tmp_path, {"rollback_reports": {"zz-drill.json": lossy}})], home)
    result = gate(report, "rollback_integrity")
    assert result["status"] == "fail"
    assert [(f["rule"], f["evidence"].rsplit("/", 1)[-1]) for f in result["findings"]] == [
        ("identical-after-rollback", "zz-drill.json")
    ]


def test_an_install_whose_only_preflight_is_months_old_fails(tmp_path, home):
    """The kind is fresh (the other installs reported yesterday); this install's report is not."""
    old = json.loads((DATA / PREFLIGHT).read_text())
    old["install"], old["generated_at"] = "umbrella-prod", "2026-05-19T11:00:00Z"
    report = gate_report([root_with(tmp_path, {"preflight_reports": {"umbrella-prod.json": old}})], home)
    result = gate(report, "upgrade_preflight")
    assert result["status"] == "fail"
    assert [(f["subject"], f["rule"], f["limit"]) for f in result["findings"]] == [
        ("umbrella-prod (10.3.0 -> 10.4.0)", "preflight-age", "younger than P14D")
    ]
    assert gate(report, "evidence_freshness")["status"] == "pass"


def test_an_invalid_release_version_is_named_by_both_gates(tmp_path, home):
    report = gate_report([root_with(tmp_path, {}, 'release: {version: "10.4"}\n')], home)
    for name in ("upgrade_preflight", "rollback_integrity"):
        result = gate(report, name)
        assert result["status"] == "fail"
        assert [(f["rule"], f["observed"]) for f in result["findings"]] == [
            (
                "release-version",
                "phase8.yaml release.version: expected a version MAJOR.MINOR.PATCH[-PRERELEASE], got '10.4'",
            )
        ], name


def test_a_drill_over_empty_tables_proves_nothing(tmp_path, home):
    empty = json.loads((DATA / DRILL).read_text())
    empty["generated_at"] = "2026-11-19T12:00:00Z"  # newer than the demo's drill
    for table in empty["tables"]:
        table.update(rows_before=0, rows_after=0, checksum_before="0" * 16, checksum_after="0" * 16)
    report = gate_report([root_with(tmp_path, {"rollback_reports": {"empty.json": empty}})], home)
    result = gate(report, "rollback_integrity")
    assert result["status"] == "fail"
    assert [(f["rule"], f["observed"]) for f in result["findings"]] == [
        ("drill-has-data", "all 19 table(s) empty before the upgrade")
    ]


# A newer drill that is not the release's drill, however new: (its file, its source release, why).
NOT_THE_RELEASES_DRILL = {
    # Staging ran 10.4.0-rc.3 before 10.4.0: rolling back to it exercises none of the down migrations
    # an install on 10.3.x needs.
    "release-candidate": ("to-rc.json", "10.4.0-rc.3"),
    # 9.11.0 -> 10.4.0 skips the required stops 10.0.0 and 10.2.0 (and 10.4.0 upgrades only from
    # 10.2.0 on): no install takes that hop.
    "forbidden-hop": ("skipping.json", "9.11.0"),
}


@pytest.mark.parametrize("case", NOT_THE_RELEASES_DRILL)
def test_a_newer_drill_that_is_not_the_releases_does_not_hide_one_that_lost_data(case, tmp_path, home):
    name, source = NOT_THE_RELEASES_DRILL[case]
    lossy = json.loads((DATA / DRILL).read_text())
    lossy["tables"][0]["rows_after"] = lossy["tables"][0]["rows_before"] - 5
    lossy["generated_at"] = "2026-11-18T12:00:00Z"  # newer than the demo's clean drill
    newer = json.loads((DATA / DRILL).read_text())
    newer["from_version"], newer["generated_at"] = source, "2026-11-19T12:00:00Z"
    extra = {"rollback_reports": {"lossy.json": lossy, name: newer}}
    result = gate(gate_report([root_with(tmp_path, extra)], home), "rollback_integrity")
    assert result["status"] == "fail"
    assert [(f["rule"], f["evidence"].rsplit("/", 1)[-1]) for f in result["findings"]] == [
        ("identical-after-rollback", "lossy.json")
    ]


def test_two_different_upgrade_paths_are_ambiguous(tmp_path, home):
    """A second UpgradePath (an old copy left beside the new one) must not let discovery order pick one."""
    import yaml

    other = yaml.safe_load((DATA / "policy/upgrade-path.yaml").read_text())
    other["supported_sources"] = ["10.3.0"]  # drops 9.11.0: a looser path than the demo's
    root = root_with(tmp_path, {"upgrade_path": {"a-old-path.json": other}})
    report = gate_report([root], home)
    result = gate(report, "upgrade_preflight")
    assert result["status"] == "fail"
    (finding,) = [f for f in result["findings"] if f["rule"] == "upgrade-path-present"]
    assert finding["observed"].startswith("2 different UpgradePath files:")
    assert "a-old-path.json" in finding["observed"] and "policy/upgrade-path.yaml" in finding["observed"]


def test_a_newer_drill_that_left_tables_out_fails_with_what_was_expected(tmp_path, home):
    """The rerun restored its tables identically but no longer verified posts; the inventory names threads."""
    fewer = json.loads((DATA / DRILL).read_text())
    fewer["generated_at"] = "2026-11-19T12:00:00Z"
    fewer["tables"] = [t for t in fewer["tables"] if t["name"] != "posts"]
    inventory = json.loads((DATA / "evidence/governance/inventory.json").read_text())
    inventory["generated_at"] = "2026-11-20T07:00:00Z"
    inventory["datasets"] = [dict(inventory["datasets"][0], tables=["posts", "threads"])]  # acme-messages
    extra = {"rollback_reports": {"rerun.json": fewer}, "data_inventory": {"inventory-tables.json": inventory}}
    result = gate(gate_report([root_with(tmp_path, extra)], home), "rollback_integrity")
    assert result["status"] == "fail"
    assert [(f["subject"], f["rule"], f["evidence"].rsplit("/", 1)[-1]) for f in result["findings"]] == [
        ("posts (tenant acme)", "tables-covered", "rerun.json"),
        ("posts (tenant globex)", "tables-covered", "rerun.json"),
        ("posts (tenant initech)", "tables-covered", "rerun.json"),
        ("threads (tenant acme)", "tables-covered", "rerun.json"),
    ]
    details = result["findings"][0]["details"]
    assert details["previous_drill"].endswith(DRILL) and details["inventory"][0].endswith("inventory-tables.json")
    assert len(details["expected_tables"]) == 20 and len(details["observed_tables"]) == 16
    assert "4 expected table(s) not verified" in result["summary"]


def test_only_drills_over_forbidden_hops_are_no_drill_for_the_release(tmp_path, home):
    skipping = json.loads((DATA / DRILL).read_text())
    skipping["from_version"] = "10.1.0"  # skips the required stop 10.2.0
    root = tmp_path / "root"
    root.mkdir()
    (root / "phase8.yaml").write_text(
        f"apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: {os.path.relpath(DATA / 'phase8.yaml', root)}\n"
        "evidence:\n  rollback_reports: {paths: [extra/*.json]}\n"
    )
    (root / "extra").mkdir()
    (root / "extra" / "skipping.json").write_text(json.dumps(skipping))
    result = gate(gate_report([root], home), "rollback_integrity")
    assert result["status"] == "fail"
    ((rule, observed),) = [(f["rule"], f["observed"]) for f in result["findings"]]
    assert rule == "rollback-drill-present"
    assert "10.1.0 -> 10.4.0 skips required stop 10.2.0 (skipping.json)" in observed


def test_a_clean_staging_drill_does_not_hide_a_production_copy_drill_that_lost_rows(tmp_path, home):
    """Each environment's newest drill of the release stands: the production copy lost 12 rows of
    acme's posts the day before staging's clean drill (the demo's)."""
    lossy = json.loads((DATA / DRILL).read_text())
    lossy["environment"], lossy["generated_at"] = "prod-copy", "2026-11-16T12:00:00Z"
    (posts,) = [t for t in lossy["tables"] if (t["name"], t.get("tenant")) == ("posts", "acme")]
    posts["rows_after"] -= 12
    old = json.loads((DATA / DRILL).read_text())  # a lossy drill older than max_age P30D no longer counts
    old["environment"], old["generated_at"] = "perf-lab", "2026-10-01T12:00:00Z"
    old["tables"][0]["rows_after"] -= 1
    extra = {"rollback_reports": {"prod-copy.json": lossy, "perf-lab.json": old}}
    result = gate(gate_report([root_with(tmp_path, extra)], home), "rollback_integrity")
    assert result["status"] == "fail"
    assert [(f["subject"], f["rule"], f["evidence"].rsplit("/", 1)[-1]) for f in result["findings"]] == [
        ("posts (tenant acme)", "identical-after-rollback", "prod-copy.json")
    ]
    assert result["findings"][0]["details"]["environment"] == "prod-copy"
