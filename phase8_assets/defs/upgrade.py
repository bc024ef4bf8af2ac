"""Stream B, upgrade safety: legal upgrade paths to the release, preflight reports, rollback drills,
and the ``upgrade_preflight`` and ``rollback_integrity`` gates."""

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import Phase8Settings
from phase8_assets.domains.gates import Finding
from phase8_assets.domains.governance import inventory_datasets
from phase8_assets.domains.upgrade import (
    check_preflight,
    coverage_findings,
    legal_hop,
    path_findings,
    plan,
    table_differences,
)
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.evidence.upgrade import parse_version
from phase8_assets.shared.clock import format_duration, format_timestamp
from phase8_assets.shared.reports import markdown_table

GROUP = "upgrade"
OWNERS = ["team:platform-reliability"]


def _release(config):
    try:
        return parse_version(config.release.get("version"), "release.version"), None
    except EvidenceError as exc:
        return None, f"phase8.yaml {exc.field}: {exc.reason}"


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="For every supported source version: the shortest legal upgrade path to the release (landing on "
    "every required stop, respecting upgrade_from), or why none exists.",
)
def upgrade_paths(settings: Phase8Settings, evidence_files: EvidenceBatch) -> dg.Output:
    config = settings.load()
    release, problem = _release(config)
    files = evidence_files.files_of("upgrade_path")
    # Two different UpgradePath files (the same content twice is one file): which one holds would be
    # decided by discovery order, so neither does and upgrade_preflight names both.
    path = files[0].records[0] if len(files) == 1 else None
    results = [plan(path, source, release) for source in path.supported_sources] if path and release else []
    rows = [
        [str(r.source), " -> ".join(str(v) for v in r.hops) if r.hops is not None else "NONE", r.reason or "ok"]
        for r in results
    ]
    return dg.Output(
        {
            "path": path,
            "uri": files[0].uri if len(files) == 1 else None,
            "ambiguous": [f.uri for f in files] if len(files) > 1 else [],
            "release": release,
            "results": results,
            "problem": problem,
        },
        metadata={
            "release": str(release) if release else "invalid",
            "sources": len(results),
            "paths": dg.MetadataValue.md(markdown_table(["from", "path", "note"], rows, empty="_no upgrade path_")),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Every preflight report (installs, CI upgrade tests) checked: known versions, no skipped stop, no "
    "pending or failed migrations, enough disk, database minimum, component skew, the report's own checks.",
)
def upgrade_preflights(evidence_files: EvidenceBatch, upgrade_paths: dict) -> dg.Output:
    path = upgrade_paths["path"]
    statuses = (
        [check_preflight(path, f.records[0], f.uri) for f in evidence_files.files_of("preflight_reports")]
        if path
        else []
    )
    rows = [
        [s.report["install"], f"{s.report['source']} -> {s.report['target']}", format_timestamp(s.report["generated_at"]),
         "; ".join(f"{r}: {o}" for r, o, _ in s.problems) or "pass"]
        for s in statuses
    ]  # fmt: skip
    return dg.Output(
        statuses,
        metadata={
            "reports": len(statuses),
            "failing": sum(1 for s in statuses if s.problems),
            "preflights": dg.MetadataValue.md(
                markdown_table(["install", "upgrade", "generated", "result"], rows, empty="_none_")
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Rollback drills: per drill, every table (and tenant) whose row count or content checksum changed "
    "across upgrade and rollback, and whether the schema came back identical.",
)
def rollback_drills(evidence_files: EvidenceBatch) -> dg.Output:
    drills = [
        (f.uri, f.records[0], table_differences(f.records[0])) for f in evidence_files.files_of("rollback_reports")
    ]
    # Newest first; two drills at one time contradict each other: the one with more differences stands,
    # whichever file name sorts first.
    drills.sort(key=lambda d: (d[1]["generated_at"], len(d[2])), reverse=True)
    rows = [
        [uri.rsplit("/", 1)[-1], f"{r['from_version']} -> {r['to_version']} -> {r['from_version']}", r["environment"],
         format_timestamp(r["generated_at"]), len(r["tables"]), "; ".join(s for s, _, _ in diffs) or "identical"]
        for uri, r, diffs in drills
    ]  # fmt: skip
    return dg.Output(
        drills,
        metadata={
            "drills": len(drills),
            "rollback_drills": dg.MetadataValue.md(
                markdown_table(
                    ["file", "drill", "environment", "generated", "tables", "differences"], rows, empty="_none_"
                )
            ),
        },
    )


def _release_version(upgrade_paths: dict, config, owner: str, runbook: str) -> Finding:
    """Both upgrade gates' finding for a ``release.version`` in phase8.yaml that is not a version."""
    return Finding("error", "release", "release-version", upgrade_paths["problem"], "MAJOR.MINOR.PATCH[-PRERELEASE]",
                   config.source, owner, runbook, {})  # fmt: skip


def preflight_gate(batch, config, at, upgrade_paths: dict, upgrade_preflights: list):
    gate = "upgrade_preflight"
    owner, runbook = config.owner_for(gate, "preflight_reports"), config.runbook_for(gate)
    found = []
    if upgrade_paths["problem"]:
        found.append(_release_version(upgrade_paths, config, owner, runbook))
    if upgrade_paths.get("ambiguous"):
        uris = upgrade_paths["ambiguous"]
        found.append(Finding("error", "upgrade path", "upgrade-path-present",
                             f"{len(uris)} different UpgradePath files: {', '.join(uris)}", "one readable UpgradePath",
                             ", ".join(uris), owner, runbook, {"kind": "upgrade_path"}))  # fmt: skip
    elif upgrade_paths["path"] is None:
        rejected = batch.rejections_of("upgrade_path")
        observed = f"rejected: {rejected[0].field}: {rejected[0].reason}" if rejected else "no UpgradePath file"
        found.append(Finding("error", "upgrade path", "upgrade-path-present", observed, "one readable UpgradePath",
                             rejected[0].uri if rejected else config.paths_of("upgrade_path"), owner, runbook,
                             {"kind": "upgrade_path"}))  # fmt: skip
    elif upgrade_paths["release"] is not None:
        kind = config.evidence.get("preflight_reports")
        found += path_findings(upgrade_paths["path"], upgrade_paths["results"], upgrade_preflights,
                               upgrade_paths["release"], owner, runbook, upgrade_paths["uri"],
                               at, (kind.max_age, kind.max_age_text) if kind else None,
                               config.paths_of("preflight_reports"))  # fmt: skip
    ok = sum(1 for r in upgrade_paths["results"] if r.hops is not None)
    return (
        found,
        f"{ok} of {len(upgrade_paths['results'])} supported source(s) reach the release; {len(upgrade_preflights)} preflight report(s)",
    )


def rollback_gate(batch, config, at, upgrade_paths: dict, rollback_drills: list):
    gate = "rollback_integrity"
    owner, runbook = config.owner_for(gate, "rollback_reports"), config.runbook_for(gate)
    release = upgrade_paths["release"]
    if release is None:  # which drills count depends on the release: without one, none does
        return [_release_version(upgrade_paths, config, owner, runbook)], "the release version is invalid"
    path = upgrade_paths["path"]

    def released(version) -> bool:  # a version installs run: one of the upgrade path's releases
        return path.release(version) is not None if path is not None else not version.pre

    def forbidden(d) -> str | None:  # why no install takes the drill's hop (it skips a required stop), or None
        return legal_hop(path, d[1]["from_version"], d[1]["to_version"]) if path is not None else None

    # A drill counts when it went up to the release from a released version by a hop the upgrade path
    # allows: rolling back to a release candidate (staging ran 10.4.0-rc.3 before 10.4.0), or from a
    # version no install upgrades from straight to the release (9.11.0 -> 10.4.0 skips the required
    # stops), does not exercise the down migrations installs need.
    mine = [
        d
        for d in rollback_drills
        if d[1]["to_version"] == release and released(d[1]["from_version"]) and forbidden(d) is None
    ]
    if not mine:
        # Name what there is: a drill of a release candidate (10.4.0-rc.1), of another release or over a
        # forbidden hop is not this one.
        others = ", ".join(
            f"{d[1]['from_version']} -> {d[1]['to_version']}"
            + (f" {why}" if d[1]["to_version"] == release and (why := forbidden(d)) else "")
            + f" ({d[0].rsplit('/', 1)[-1]})"
            for d in rollback_drills[:5]
        )
        observed = "no rollback drill went up to the release from a released version by a legal hop" + (
            f"; the drills went {others}" if others else ""
        )
        return [Finding("error", f"release {release}", "rollback-drill-present", observed,
                        f"a rollback drill from a released version to {release} by a legal hop and back",
                        config.paths_of("rollback_reports"), owner, runbook,
                        {"kind": "rollback_reports"})], "no rollback drill for the release"  # fmt: skip
    uri, report, diffs = mine[0]
    kind = config.evidence.get("rollback_reports")
    found = []
    age = at - report["generated_at"]
    if kind and age > kind.max_age:
        found.append(Finding("error", f"rollback drill {report['from_version']} -> {report['to_version']}", "drill-age",
                             f"{format_duration(age)} old", f"younger than {kind.max_age_text}", uri, owner, runbook, {}))  # fmt: skip
    # Every environment's newest drill of the release still inside max_age stands, not only the newest
    # of all: a clean staging drill the day after a production-copy drill lost rows does not show the
    # rollback keeps production's data. (``mine`` is newest first, the one with more differences first
    # at one time.)
    checked = [mine[0]]
    for d in mine[1:]:
        fresh = kind is None or at - d[1]["generated_at"] <= kind.max_age
        if fresh and all(d[1]["environment"] != c[1]["environment"] for c in checked):
            checked.append(d)
    inventory = inventory_datasets(batch)
    missing, differences = [], 0
    for uri, drill, diffs in checked:
        label = f"rollback drill {drill['from_version']} -> {drill['to_version']}" + (
            f" ({drill['environment']})" if drill is not report else ""
        )
        if not any(t["rows_before"] for t in drill["tables"]):  # nothing to lose: the drill proved nothing
            found.append(Finding("error", label, "drill-has-data",
                                 f"all {len(drill['tables'])} table(s) empty before the upgrade",
                                 "at least one row before the upgrade, to compare after the rollback", uri, owner,
                                 runbook, {"environment": drill["environment"]}))  # fmt: skip
        for subject, observed, details in diffs:
            found.append(Finding("error", subject, "identical-after-rollback", observed, "identical before and after",
                                 uri, owner, runbook, {**details, "environment": drill["environment"]}))  # fmt: skip
        differences += len(diffs)
        # A drill that verified fewer tables than the data it protects did not show that rollback keeps it.
        missing += coverage_findings(uri, drill, rollback_drills, inventory, owner, runbook)
    found += missing
    return (
        found,
        f"newest drill {report['from_version']} -> {report['to_version']}: {len(report['tables'])} table(s), "
        f"{differences} difference(s)"
        + (f" across the newest drills of {len(checked)} environments" if len(checked) > 1 else "")
        + (f", {len(missing)} expected table(s) not verified" if missing else ""),
    )


upgrade_preflight_gate = gate_asset(
    "upgrade_preflight", group=GROUP, owners=OWNERS, evaluate=preflight_gate,
    ins={"upgrade_paths": dg.AssetIn("upgrade_paths"), "upgrade_preflights": dg.AssetIn("upgrade_preflights")},
)  # fmt: skip
rollback_integrity_gate = gate_asset(
    "rollback_integrity", group=GROUP, owners=OWNERS, evaluate=rollback_gate,
    ins={"upgrade_paths": dg.AssetIn("upgrade_paths"), "rollback_drills": dg.AssetIn("rollback_drills")},
)  # fmt: skip
