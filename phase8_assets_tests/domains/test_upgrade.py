"""Upgrade paths, preflight rules and rollback comparisons on known cases; bad upgrade evidence."""

import json

import pytest

from phase8_assets.domains.upgrade import check_preflight, plan, table_differences
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.upgrade import parse_version, read_path, read_preflight, read_rollback
from phase8_assets_tests.conftest import DATA

V = parse_version
PATH = read_path((DATA / "policy/upgrade-path.yaml").read_bytes(), "x").records[0]


def preflight(**changes):
    doc = json.loads((DATA / "evidence/upgrade/preflight/acme-prod.json").read_text())
    doc.update(changes)
    return read_preflight(json.dumps(doc).encode(), "x").records[0]


def test_shortest_legal_paths_land_on_every_required_stop():
    assert plan(PATH, V("9.11.0", ""), V("10.4.0", "")).hops == [V("10.0.0", ""), V("10.2.0", ""), V("10.4.0", "")]
    assert plan(PATH, V("10.3.0", ""), V("10.4.0", "")).hops == [V("10.4.0", "")]
    # 10.0.0 may only be reached from 9.10.0 or later; 10.4.0 only from 10.2.0 or later.
    assert plan(PATH, V("9.10.0", ""), V("10.4.0", "")).hops[0] == V("10.0.0", "")
    assert plan(PATH, V("10.1.0", ""), V("10.4.0", "")).hops == [V("10.2.0", ""), V("10.4.0", "")]


def test_no_path_says_why():
    text = (DATA / "policy/upgrade-path.yaml").read_text().replace("{version: 10.4.0, upgrade_from: 10.2.0}",
                                                                    "{version: 10.4.0, upgrade_from: 10.3.1}")  # fmt: skip
    text = text.replace("  - {version: 10.3.1}\n", "  - {version: 10.3.1, required_stop: true}\n")
    path = read_path(text.encode(), "x").records[0]
    ok = plan(path, V("10.3.0", ""), V("10.4.0", ""))
    assert ok.hops == [V("10.3.1", ""), V("10.4.0", "")]
    unknown = plan(PATH, V("8.0.0", ""), V("10.4.0", ""))
    assert unknown.hops is None and "not a released version" in unknown.reason
    assert "not in the upgrade path" in plan(PATH, V("9.11.0", ""), V("11.0.0", "")).reason


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("{version: 10.1.0}", "{version: ten.one}", "releases[3].version", "MAJOR.MINOR.PATCH"),
        ("{version: 10.1.0}", "{version: 9.0.0}", "releases[3].version", "ascending order"),
        ("{version: 10.1.0}", "{version: 10.0.0}", "releases[3].version", "listed twice"),
        ("upgrade_from: 10.2.0}", "upgrade_from: 10.1.5}", "releases[7].upgrade_from", "a gap"),
        (
            "supported_sources: [9.11.0, 10.3.0]",
            "supported_sources: [9.11.0, 10.3.7]",
            "supported_sources[1]",
            "not one of",
        ),
        (
            "supported_sources: [9.11.0, 10.3.0]",
            "supported_sources: [9.11.0, 10.3.0, 9.11.0]",
            "supported_sources[2]",
            "listed twice",
        ),
        ("  - {component: push-proxy,", "  - {component: jobserver,", "skew[1].component", "listed twice"),
    ],  # fmt: skip
)
def test_bad_upgrade_paths_are_rejected_with_the_field(old, new, field, message):
    text = (DATA / "policy/upgrade-path.yaml").read_text()
    assert old in text
    with pytest.raises(EvidenceError, match=message) as info:
        read_path(text.replace(old, new, 1).encode(), "x")
    assert info.value.field == field


def test_preflight_rules():
    assert check_preflight(PATH, preflight(), "x").problems == []
    rules = lambda **c: [p[0] for p in check_preflight(PATH, preflight(**c), "x").problems]  # noqa: E731
    assert rules(source="10.1.0") == ["legal-hop"]
    assert rules(source="10.2.5") == ["known-version"]
    assert rules(migrations={"pending": ["a"], "failed": ["b"]}) == ["migrations-pending", "migrations-failed"]
    assert rules(disk={"free_bytes": 1, "required_bytes": 2}) == ["disk"]
    assert rules(database={"engine": "postgres", "version": "13.9"}) == ["database-version"]
    assert rules(database={"engine": "mysql", "version": "16"}) == ["database-version"]
    assert rules(
        components=[{"name": "jobserver", "version": "10.2.0"}, {"name": "push-proxy", "version": "10.3.0"}]
    ) == ["component-skew"]
    assert rules(checks=[{"name": "license-valid", "status": "fail", "detail": "expired"}]) == ["check:license-valid"]
    with pytest.raises(EvidenceError, match="not newer than the source"):
        preflight(source="10.4.0")


def test_rollback_differences_name_table_tenant_and_numbers():
    doc = json.loads((DATA / "evidence/upgrade/rollback/drill-10.4.0-staging.json").read_text())
    assert table_differences(read_rollback(json.dumps(doc).encode(), "x").records[0]) == []
    doc["tables"][5]["checksum_after"] = "0000000000000000"
    doc["schema"]["after"] = "ffff"
    diffs = table_differences(read_rollback(json.dumps(doc).encode(), "x").records[0])
    assert [d[0] for d in diffs] == ["schema", f"{doc['tables'][5]['name']} (tenant {doc['tables'][5]['tenant']})"]
    assert "same" in diffs[1][1]
    doc["tables"].append(dict(doc["tables"][1]))
    with pytest.raises(EvidenceError, match="listed twice"):
        read_rollback(json.dumps(doc).encode(), "x")


def test_a_schema_fingerprint_missing_on_both_sides_is_not_a_match():
    doc = json.loads((DATA / "evidence/upgrade/rollback/drill-10.4.0-staging.json").read_text())
    doc["schema"] = {"before": "", "after": ""}
    with pytest.raises(EvidenceError) as exc:
        read_rollback(json.dumps(doc).encode(), "x")
    assert (exc.value.field, exc.value.reason) == ("schema.before", 'expected minLength 1, got ""')


def test_two_reports_of_one_install_at_one_time_keep_the_one_with_problems():
    """Contradictory preflights: whichever file name sorts first must not decide."""
    from phase8_assets.domains.upgrade import check_preflight, path_findings

    clean = preflight()
    broken = preflight(migrations={"pending": [], "failed": ["0042_drop_index"]})
    release = clean["target"]
    for order in ((clean, broken), (broken, clean)):
        statuses = [check_preflight(PATH, r, f"{i}.json") for i, r in enumerate(order)]
        found = path_findings(PATH, [], statuses, release, "team:x", "rb.md", None)
        assert [f.rule for f in found] == ["migrations-failed"], order


def test_versions_order_by_semver_precedence_and_a_pre_release_is_not_its_release():
    order = ["9.11.0", "10.0.0-alpha", "10.0.0-alpha.1", "10.0.0-alpha.beta", "10.0.0-beta", "10.0.0-beta.2",
             "10.0.0-beta.11", "10.0.0-rc.1", "10.0.0", "10.0.1"]  # fmt: skip
    assert [str(v) for v in sorted(V(text, "") for text in reversed(order))] == order
    assert V("10.4.0-rc.1", "") != V("10.4.0", "") and V("10.4.0-rc.1", "") < V("10.4.0", "")
    assert V("v10.4.0+build.7", "") == V("10.4.0", "")  # build metadata does not order
    with pytest.raises(EvidenceError, match="MAJOR.MINOR.PATCH"):
        V("10.4.0-rc..1", "")


def test_a_release_candidate_drill_or_preflight_is_not_evidence_for_the_release():
    doc = json.loads((DATA / "evidence/upgrade/rollback/drill-10.4.0-staging.json").read_text())
    doc["to_version"] = "10.4.0-rc.1"
    assert read_rollback(json.dumps(doc).encode(), "x").records[0]["to_version"] != V("10.4.0", "")
    from phase8_assets.domains.upgrade import path_findings

    candidate = check_preflight(PATH, preflight(target="10.4.0-rc.1"), "rc.json")
    found = path_findings(PATH, [], [candidate], V("10.4.0", ""), "team:x", "rb.md", None)
    assert [(f.rule, f.evidence) for f in found] == [("preflight-present", None), ("known-version", "rc.json")]


def test_an_install_whose_newest_preflight_is_stale_fails_though_another_install_is_fresh():
    from datetime import timedelta

    from phase8_assets.domains.upgrade import path_findings

    fresh, old = preflight(), preflight(install="globex-prod", generated_at="2026-05-19T11:00:00Z")
    statuses = [check_preflight(PATH, r, f"{r['install']}.json") for r in (fresh, old)]
    found = path_findings(PATH, [], statuses, fresh["target"], "team:x", "rb.md", None,
                          fresh["generated_at"] + timedelta(days=1), (timedelta(days=14), "P14D"))  # fmt: skip
    assert [(f.subject, f.rule, f.evidence) for f in found] == [
        ("globex-prod (10.3.0 -> 10.4.0)", "preflight-age", "globex-prod.json")
    ]
    assert found[0].observed.startswith("185d") and found[0].limit == "younger than P14D"


def test_a_component_listed_twice_is_checked_at_every_version():
    """A fleet mid-rollout runs two jobserver versions: the lagging one is not hidden by the later entry."""
    fleet = [{"name": "jobserver", "version": "9.11.0"}, {"name": "jobserver", "version": "10.4.0"},
             {"name": "push-proxy", "version": "10.3.0"}]  # fmt: skip
    problems = check_preflight(PATH, preflight(components=fleet), "x").problems
    assert problems == [("component-skew", "jobserver 9.11.0 with server 10.4.0", "at most 1 minor behind")]
    with pytest.raises(EvidenceError) as info:
        preflight(components=[*fleet, {"name": "jobserver", "version": "ten"}])
    assert info.value.field == "components[3].version"


def test_a_component_with_a_skew_rule_left_out_of_the_report_fails_unless_it_is_not_deployed():
    """Left out, its version is unknown, not within the rule; ``deployed: false`` says the install does not run it."""
    server = {"name": "server", "version": "10.3.0"}
    problems = check_preflight(PATH, preflight(components=[server, {"name": "jobserver", "version": "10.4.0"}]), "x")
    assert problems.problems == [
        ("component-reported", "push-proxy not reported", "its version (at most 2 minor behind), or deployed: false")
    ]
    assert [p[0] for p in check_preflight(PATH, preflight(components=[]), "x").problems] == ["component-reported"] * 2
    without_proxy = [server, {"name": "jobserver", "version": "10.4.0"}, {"name": "push-proxy", "deployed": False}]
    assert check_preflight(PATH, preflight(components=without_proxy), "x").problems == []
    # deployed: false with a version, or a deployed component without one, is not a valid report
    for bad in ({"name": "push-proxy", "deployed": False, "version": "10.3.0"}, {"name": "push-proxy"}):
        with pytest.raises(EvidenceError):
            preflight(components=[server, bad])


def test_a_preflight_that_ran_no_check_fails_and_one_that_warned_says_so():
    from phase8_assets.domains.upgrade import path_findings

    empty = check_preflight(PATH, preflight(checks=[]), "empty.json")
    assert empty.problems == [("checks-present", "no check reported", "at least one check, each passing")]
    warned = check_preflight(
        PATH, preflight(checks=[{"name": "config-valid", "status": "warn", "detail": "deprecated keys"}]), "w.json"
    )
    assert warned.problems == []
    found = path_findings(PATH, [], [warned], warned.report["target"], "team:x", "rb.md", None)
    assert [(f.severity, f.rule, f.observed) for f in found] == [
        ("warning", "check:config-valid", "warned: deprecated keys")
    ]


def test_a_supported_source_newer_than_the_release_does_not_reach_it():
    text = (DATA / "policy/upgrade-path.yaml").read_text()
    text = text.replace("upgrade_from: 10.2.0}\n", "upgrade_from: 10.2.0}\n  - {version: 10.5.0}\n")
    path = read_path(text.replace("[9.11.0, 10.3.0]", "[10.3.0, 10.4.0, 10.5.0]").encode(), "x").records[0]
    results = {str(s): plan(path, s, V("10.4.0", "")) for s in path.supported_sources}
    assert results["10.3.0"].hops == [V("10.4.0", "")] and results["10.4.0"].hops == []
    assert results["10.5.0"].hops is None and "downgrade" in results["10.5.0"].reason


def test_a_rollback_report_without_a_time_zone_says_so():
    doc = json.loads((DATA / "evidence/upgrade/rollback/drill-10.4.0-staging.json").read_text())
    assert read_rollback(json.dumps(doc).encode(), "x").warnings == []
    doc["generated_at"] = "2026-11-17T12:00:00"
    assert read_rollback(json.dumps(doc).encode(), "x").warnings == [
        "generated_at: '2026-11-17T12:00:00' has no time zone; taken as UTC"
    ]


def _drill(when: str, drop=(), env="staging", edit=None) -> tuple[str, dict, list]:
    """The demo drill at ``when`` without the tables named in ``drop``, as ``rollback_drills`` holds it."""
    doc = json.loads((DATA / "evidence/upgrade/rollback/drill-10.4.0-staging.json").read_text())
    doc["generated_at"], doc["environment"] = when, env
    doc["tables"] = [t for t in doc["tables"] if t["name"] not in drop]
    if edit:
        edit(doc)
    report = read_rollback(json.dumps(doc).encode(), f"{when}.json").records[0]
    return f"{when}.json", report, table_differences(report)


def _missing(newest, drills, inventory=()):
    from phase8_assets.domains.upgrade import coverage_findings

    found = coverage_findings(newest[0], newest[1], [newest, *drills], list(inventory), "team:x", "rb.md")
    assert all(f.rule == "tables-covered" and f.evidence == newest[0] for f in found)
    return [f.subject for f in found]


POSTS = ["posts (tenant acme)", "posts (tenant globex)", "posts (tenant initech)"]


def test_a_drill_that_verified_fewer_tables_than_the_previous_complete_one_fails():
    complete = _drill("2026-11-10T00:00:00Z")
    fewer = _drill("2026-11-17T00:00:00Z", drop=("posts",))
    assert _missing(complete, []) == []  # nothing expected beyond its own tables
    assert _missing(fewer, [complete]) == POSTS
    from phase8_assets.domains.upgrade import coverage_findings

    [first, *_] = coverage_findings(fewer[0], fewer[1], [fewer, complete], [], "team:x", "rb.md")
    assert first.details["missing"] == POSTS and first.details["previous_drill"] == complete[0]
    assert "posts (tenant acme)" in first.details["expected_tables"]
    assert "posts (tenant acme)" not in first.details["observed_tables"]
    # A second drill leaving posts out is still compared with the complete one, not with the first that left it out.
    again = _drill("2026-11-19T00:00:00Z", drop=("posts",))
    assert _missing(again, [complete, fewer]) == POSTS
    # A newer complete drill is the baseline again; it may verify more tables than before.
    assert _missing(_drill("2026-11-20T00:00:00Z"), [complete, fewer, again]) == []


def test_only_a_drill_of_the_same_environment_that_restored_identically_is_the_baseline():
    fewer = _drill("2026-11-17T00:00:00Z", drop=("posts",))
    assert _missing(fewer, [_drill("2026-11-10T00:00:00Z", env="staging-2")]) == []
    lossy = _drill("2026-11-10T00:00:00Z", edit=lambda d: d["tables"][0].update(rows_after=1))
    older = _drill("2026-11-01T00:00:00Z")
    assert _missing(fewer, [lossy]) == []  # it did not pass: no baseline from it
    assert _missing(fewer, [lossy, older]) == POSTS  # the complete one before it is
    later = _drill("2026-11-18T00:00:00Z")  # a newer drill is not the baseline of an older one
    assert _missing(fewer, [later]) == []


def test_every_table_the_inventory_lists_must_be_verified_for_its_tenant():
    inventory = [
        ({"id": "acme-messages", "tenant": "acme", "tables": ["posts", "reactions", "threads"]}, "inv.json"),
        ({"id": "acme-files", "tenant": "acme"}, "inv.json"),  # no tables: nothing expected from it
        ({"id": "globex-users", "tenant": "globex", "tables": ["users"]}, "inv.json"),
    ]
    # threads was never in any drill; users is verified as a whole table, which covers globex's rows.
    assert _missing(_drill("2026-11-17T00:00:00Z"), [], inventory) == ["threads (tenant acme)"]
    assert _missing(_drill("2026-11-17T00:00:00Z", drop=("posts", "users")), [], inventory) == [
        "posts (tenant acme)", "threads (tenant acme)", "users (tenant globex)"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("16", "16.0.0"),
        ("16.4", "16.4.0"),
        ("16.4 (Debian 16.4-1.pgdg120+1)", "16.4.0"),  # PostgreSQL's server_version on Debian
        ("8.0.36-0ubuntu0.22.04.1", "8.0.36"),  # MySQL's version()
        ("10.11.6-MariaDB-0+deb12u1", "10.11.6"),
    ],
)
def test_a_database_version_is_read_as_the_database_reports_it(written, read):
    engine = preflight()["database"][0]
    record = preflight(database={"engine": engine, "version": written})
    assert str(record["database"][1]) == read


@pytest.mark.parametrize("written", ["16beta2", "17rc1", "latest", ""])
def test_a_database_version_that_is_no_release_is_a_named_rejection(written):
    engine = preflight()["database"][0]
    with pytest.raises(EvidenceError) as err:
        preflight(database={"engine": engine, "version": written})
    assert err.value.field == "database.version"
