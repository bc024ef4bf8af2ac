"""Upgrade safety: legal upgrade paths, preflight reports, rollback drills. Pure functions.

**Paths.** An upgrade hop A → B (B newer) is legal when no required stop lies strictly between
them and A is at least B's ``upgrade_from``. For every supported source version the shortest legal
path to the release is found (breadth-first over the released versions); no path means the
release cannot be reached from there, and the finding says which rule blocks it.

**Preflights.** Every install's newest report whose target is the release must be younger than the
kind's maximum age and pass: its source is a known version, the hop does not skip a required stop,
no migration is pending or failed, free disk is at least what the upgrade needs, the database meets
the minimum, every component is within its skew rule of the target, and it reports at least one
check and every check in it passed (a check it warned of is a warning). No report for the release
fails closed.

**Rollback drills.** The newest drill that went up to the release from one of the upgrade path's
releases (not a release candidate of it) by a legal hop (no install skips a required stop) and back,
and the newest such drill of every other environment still inside the kind's max_age, must show
identical schema and, per table (and tenant), identical row counts and content checksums; a drill whose
tables were all empty before the upgrade proves nothing and does not count as one that passed.
It must also verify every table it is expected to (``expected_tables``): each table (and tenant) a
data inventory dataset lists under ``tables``, and each the previous complete drill of the same
environment verified. A table it left out is a rollback that may lose data, not one that passed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from phase8_assets.domains.gates import Finding
from phase8_assets.evidence.upgrade import UpgradePath, Version
from phase8_assets.shared.clock import format_duration, format_timestamp


@dataclass
class PathResult:
    source: Version
    hops: list[Version] | None
    reason: str = ""


def legal_hop(path: UpgradePath, a: Version, b: Version) -> str | None:
    """Why the hop a -> b is not allowed, or None."""
    if b <= a:
        return f"{b} is not newer than {a}"
    stops = [r.version for r in path.releases if r.required_stop and a < r.version < b]
    if stops:
        return f"skips required stop {stops[0]}"
    release = path.release(b)
    if release and release.upgrade_from and a < release.upgrade_from:
        return f"{b} can only be reached from {release.upgrade_from} or later"
    return None


def plan(path: UpgradePath, source: Version, target: Version) -> PathResult:
    if path.release(source) is None:
        return PathResult(source, None, f"{source} is not a released version")
    if path.release(target) is None:
        return PathResult(source, None, f"the release {target} is not in the upgrade path")
    if source == target:
        return PathResult(source, [], f"already at {target}")
    if source > target:  # an install there cannot go back to the release: no upgrade path reaches it
        return PathResult(source, None, f"{source} is newer than {target}: reaching it would be a downgrade")
    versions = [r.version for r in path.releases if source < r.version <= target]
    previous: dict[Version, Version | None] = {source: None}
    queue = deque([source])
    while queue:
        at = queue.popleft()
        if at == target:
            hops, step = [], at
            while step != source:
                hops.append(step)
                step = previous[step]
            return PathResult(source, hops[::-1])
        for nxt in versions:
            if nxt not in previous and legal_hop(path, at, nxt) is None:
                previous[nxt] = at
                queue.append(nxt)
    return PathResult(source, None, legal_hop(path, source, target) or f"no legal sequence of hops reaches {target}")


@dataclass
class PreflightStatus:
    uri: str
    report: dict
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (rule, observed, limit)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # checks the report itself warned of


def check_preflight(path: UpgradePath, report: dict, uri: str) -> PreflightStatus:
    status = PreflightStatus(uri, report)
    src, dst = report["source"], report["target"]
    if path.release(src) is None:
        status.problems.append(
            ("known-version", f"source {src} is not a released version", "a version of the upgrade path")
        )
    elif (why := legal_hop(path, src, dst)) is not None:
        status.problems.append(("legal-hop", f"{src} -> {dst} {why}", "a hop that lands on every required stop"))
    if report["pending"]:
        status.problems.append(
            (
                "migrations-pending",
                f"{len(report['pending'])} pending: {', '.join(report['pending'][:5])}",
                "none pending",
            )
        )
    if report["failed"]:
        status.problems.append(
            ("migrations-failed", f"{len(report['failed'])} failed: {', '.join(report['failed'][:5])}", "none failed")
        )
    if report["free_bytes"] < report["required_bytes"]:
        status.problems.append(
            ("disk", f"{report['free_bytes'] / 1e9:.1f} GB free", f">= {report['required_bytes'] / 1e9:.1f} GB needed")
        )
    if path.database:
        engine, minimum = path.database
        have_engine, have = report["database"]
        if have_engine.lower() != engine.lower() or have < minimum:
            status.problems.append(("database-version", f"{have_engine} {have}", f"{engine} >= {minimum}"))
    for component, version in report["components"]:
        limit = path.skew.get(component)
        if limit is None:
            continue
        behind = (dst.major - version.major) * 100 + (dst.minor - version.minor)
        if version.major != dst.major or behind > limit:
            status.problems.append(
                ("component-skew", f"{component} {version} with server {dst}", f"at most {limit} minor behind")
            )
    reported = {name for name, _ in report["components"]} | set(report.get("not_deployed", ()))
    for component, limit in path.skew.items():  # a rule's component left out of the report: its skew is unknown
        if component not in reported:
            status.problems.append(
                ("component-reported", f"{component} not reported",
                 f"its version (at most {limit} minor behind), or deployed: false")
            )  # fmt: skip
    if not report["checks"]:  # a report that ran no check proves none passed
        status.problems.append(("checks-present", "no check reported", "at least one check, each passing"))
    for name, state, detail in report["checks"]:
        if state == "fail":
            status.problems.append((f"check:{name}", f"failed{': ' + detail if detail else ''}", "pass"))
        elif state == "warn":
            status.warnings.append((f"check:{name}", f"warned{': ' + detail if detail else ''}", "pass"))
    return status


def table_differences(report: dict) -> list[tuple[str, str, dict]]:
    """(subject, observed, details) for every table (and tenant) that changed across the drill."""
    out = []
    before, after = report["schema"]
    if before != after:
        out.append(
            ("schema", f"fingerprint {after[:12]}… after, {before[:12]}… before", {"before": before, "after": after})
        )
    for t in report["tables"]:
        subject = f"{t['name']}" + (f" (tenant {t['tenant']})" if t.get("tenant") else "")
        details = {k: t[k] for k in ("name", "rows_before", "rows_after", "checksum_before", "checksum_after")}
        details["tenant"] = t.get("tenant")
        if t["rows_before"] != t["rows_after"]:
            diff = t["rows_after"] - t["rows_before"]
            out.append(
                (subject, f"{t['rows_after']} rows after the rollback, {t['rows_before']} before ({diff:+d})", details)
            )
        elif t["checksum_before"] != t["checksum_after"]:
            out.append(
                (
                    subject,
                    f"checksum {t['checksum_after']} after, {t['checksum_before']} before (same {t['rows_after']} rows)",
                    details,
                )
            )
    return out


Table = tuple[str, str | None]  # (name, tenant); tenant None: the whole table


def drill_tables(report: dict) -> set[Table]:
    return {(t["name"], t.get("tenant") or None) for t in report["tables"]}


def table_subject(table: Table) -> str:
    return table[0] + (f" (tenant {table[1]})" if table[1] else "")


def restored(report: dict, diffs: list) -> bool:
    """The drill itself passed: identical after the rollback, and there was data to compare."""
    return not diffs and any(t["rows_before"] for t in report["tables"])


def uncovered(expected: set[Table], observed: set[Table]) -> set[Table]:
    """The expected tables ``observed`` does not verify: a table of one tenant is verified by that
    tenant's row or by the whole table's (no tenant); the whole table only by the whole table's."""
    return {t for t in expected if t not in observed and (t[1] is None or (t[0], None) not in observed)}


def previous_complete_drill(newest: dict, drills: list[tuple[str, dict, list]]) -> tuple[str, dict] | None:
    """The drill the newest one is compared with: of the drills of the newest's environment before it
    (any versions), walked oldest first, the last that restored identically with data and verified
    every table of the complete drill before it. A drill that left tables out never becomes the
    baseline, so a second drill leaving out the same table does not pass by comparison with the first.
    ``drills``: ``(uri, report, table_differences(report))``, any order."""
    mine = sorted(
        (d for d in drills if d[1] is not newest and d[1]["environment"] == newest["environment"]
         and d[1]["generated_at"] < newest["generated_at"]),
        key=lambda d: (d[1]["generated_at"], d[0]),
    )  # fmt: skip
    baseline = None
    for uri, report, diffs in mine:
        if restored(report, diffs) and (
            baseline is None or not uncovered(drill_tables(baseline[1]), drill_tables(report))
        ):
            baseline = (uri, report)
    return baseline


def coverage_findings(uri: str, report: dict, drills: list[tuple[str, dict, list]],
                      inventory: list[tuple[dict, str]], owner: str, runbook: str) -> list[Finding]:  # fmt: skip
    """``tables-covered``: one error per expected table (and tenant) the newest drill ``report`` (at
    ``uri``) did not verify. Expected: every ``tables`` entry of an ``inventory`` dataset (with the
    dataset's tenant), and every table of ``previous_complete_drill``. A table dropped on purpose
    leaves the inventory; until no complete drill in the root lists it, a waiver accepts it."""
    expected: dict[Table, list[str]] = {}
    for ds, ds_uri in inventory:
        for name in ds.get("tables") or ():
            expected.setdefault((name, ds["tenant"]), []).append(f"{ds_uri}#{ds['id']}")
    previous = previous_complete_drill(report, drills)
    if previous is not None:
        for table in drill_tables(previous[1]):
            expected.setdefault(table, []).append(previous[0])
    observed = drill_tables(report)
    missing = sorted(uncovered(set(expected), observed), key=lambda t: (t[0], t[1] or ""))
    if not missing:
        return []
    names = lambda tables: [table_subject(t) for t in sorted(tables, key=lambda t: (t[0], t[1] or ""))]  # noqa: E731
    details = {
        "environment": report["environment"],
        "observed_tables": names(observed),
        "expected_tables": names(expected),
        "missing": names(missing),
        "previous_drill": previous[0] if previous else None,
        "inventory": sorted({u for ds, u in inventory if ds.get("tables")}),
    }
    return [
        Finding("error", table_subject(t), "tables-covered",
                f"not verified by the drill ({len(missing)} of {len(expected)} expected table(s) missing: "
                f"{', '.join(details['missing'][:5])}{', …' if len(missing) > 5 else ''})",
                "every table the data inventory lists, and every table the previous complete drill of the "
                "environment verified", uri, owner, runbook, {**details, "table": t[0], "tenant": t[1],
                                                             "expected_by": sorted(expected[t])})
        for t in missing
    ]  # fmt: skip


def path_findings(path: UpgradePath | None, results: list[PathResult], preflights: list[PreflightStatus],
                  release: Version, owner: str, runbook: str, evidence: str | None,
                  at: datetime | None = None, max_age: tuple[timedelta, str] | None = None,
                  preflight_paths: str | None = None) -> list[Finding]:  # fmt: skip
    """The ``upgrade_preflight`` gate's findings (``evidence``: the upgrade path's file;
    ``preflight_paths``: where the preflight reports are configured to be); with ``at`` and
    ``max_age`` (the limit and its text), an install whose newest report for the release is older
    than that is a finding too: one fresh report of another install does not make it current."""
    out = []
    for r in results:
        if r.hops is None:
            out.append(Finding("error", f"upgrade from {r.source}", "path-exists", r.reason,
                               f"a legal path to {release}", evidence, owner, runbook, {"source": str(r.source)}))  # fmt: skip
    newest: dict[str, PreflightStatus] = {}
    for p in preflights:  # an install's newest report for the release supersedes its older ones
        if p.report["target"] == release:
            seen = newest.get(p.report["install"])
            # Two reports of one install at one time contradict each other: the one with more problems
            # stands, whichever file name sorts first.
            if seen is None or (p.report["generated_at"], len(p.problems)) > (
                seen.report["generated_at"],
                len(seen.problems),
            ):
                newest[p.report["install"]] = p
    current = [newest[k] for k in sorted(newest)]
    if path is not None and not current:
        out.append(Finding("error", f"release {release}", "preflight-present", "no preflight report targets the release",
                           f"at least one preflight report with target {release}", preflight_paths, owner, runbook,
                           {"kind": "preflight_reports"}))  # fmt: skip
    for p in current:
        subject = f"{p.report['install']} ({p.report['source']} -> {p.report['target']})"
        age = at - p.report["generated_at"] if at is not None and max_age is not None else None
        if age is not None and age > max_age[0]:
            out.append(
                Finding("error", subject, "preflight-age",
                        f"{format_duration(age)} old ({format_timestamp(p.report['generated_at'])})",
                        f"younger than {max_age[1]}", p.uri, owner, runbook, {"install": p.report["install"],
                        "generated_at": format_timestamp(p.report["generated_at"]), "age_seconds": int(age.total_seconds())})
            )  # fmt: skip
        for severity, rule, observed, limit in [*(("error", *e) for e in p.problems),
                                                *(("warning", *w) for w in p.warnings)]:  # fmt: skip
            out.append(
                Finding(severity, subject, rule, observed,
                        limit, p.uri, owner, runbook, {"install": p.report["install"], "source": str(p.report["source"])})
            )  # fmt: skip
    for p in preflights:
        if p.report["target"] != release and (path is None or path.release(p.report["target"]) is None):
            out.append(
                Finding("error", f"{p.report['install']} ({p.report['source']} -> {p.report['target']})", "known-version",
                        f"target {p.report['target']} is not a released version", "a version of the upgrade path",
                        p.uri, owner, runbook, {"install": p.report["install"]})
            )  # fmt: skip
    return out
