"""Upgrade evidence: the upgrade path (``kind: UpgradePath``), preflight reports from installs and
CI (``kind: PreflightReport``) and rollback drill reports (``kind: RollbackReport``); YAML or JSON.

Versions are SemVer ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``: a pre-release orders before its
release (``10.4.0-rc.1 < 10.4.0``) and is never the release itself, so a drill or preflight of a release
candidate is not evidence for the release; build metadata does not order and is dropped. A version
string that is not one, or releases out of order (a cycle) or listed twice, is a rejection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from phase8_assets.evidence import EvidenceError, ReadResult, artifact_time, load_artifact, naive_time_warning

_IDENTIFIERS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION = re.compile(rf"^v?(\d+)\.(\d+)\.(\d+)(?:-({_IDENTIFIERS}))?(?:\+{_IDENTIFIERS})?$")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()  # the pre-release identifiers; () for a release

    def _precedence(self) -> tuple:
        # SemVer 2.0.0 section 11: a release outranks its pre-releases; identifiers compare one by one,
        # numbers numerically and below words, words in ASCII order; more identifiers outrank fewer.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, not self.pre, pre)

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() < other._precedence()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(map(str, self.pre))}" if self.pre else core


def parse_version(text: object, where: str) -> Version:
    match = _VERSION.match(str(text).strip()) if text is not None else None
    if not match:
        raise EvidenceError(where, f"expected a version MAJOR.MINOR.PATCH[-PRERELEASE], got {text!r}")
    major, minor, patch, pre = match.groups()
    identifiers = tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre else ()
    return Version(int(major), int(minor), int(patch), identifiers)


@dataclass(frozen=True)
class Release:
    version: Version
    esr: bool
    required_stop: bool
    upgrade_from: Version | None


@dataclass(frozen=True)
class UpgradePath:
    releases: tuple[Release, ...]
    supported_sources: tuple[Version, ...]
    skew: dict[str, int]
    database: tuple[str, Version] | None

    def release(self, version: Version) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)


def read_path(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "UpgradePath")
    releases, previous = [], None
    for i, item in enumerate(doc["releases"]):
        version = parse_version(item["version"], f"releases[{i}].version")
        if previous is not None and version <= previous:
            what = (
                "listed twice"
                if version == previous
                else f"comes after {previous}: releases must be in ascending order"
            )
            raise EvidenceError(f"releases[{i}].version", f"{version} {what}")
        upgrade_from = (
            parse_version(item["upgrade_from"], f"releases[{i}].upgrade_from") if item.get("upgrade_from") else None
        )
        releases.append(Release(version, bool(item.get("esr")), bool(item.get("required_stop")), upgrade_from))
        previous = version
    known = {r.version for r in releases}
    sources = []
    for i, text in enumerate(doc["supported_sources"]):
        version = parse_version(text, f"supported_sources[{i}]")
        if version not in known:
            raise EvidenceError(f"supported_sources[{i}]", f"{version} is not one of the releases")
        if version in sources:
            raise EvidenceError(f"supported_sources[{i}]", f"{version} is listed twice")
        sources.append(version)
    skew = {}
    for i, rule in enumerate(doc.get("skew") or []):  # one limit per component: two would contradict
        if rule["component"] in skew:
            raise EvidenceError(f"skew[{i}].component", f"{rule['component']} is listed twice")
        skew[rule["component"]] = rule["max_minor_behind"]
    for i, r in enumerate(releases):
        if r.upgrade_from is not None and r.upgrade_from not in known:
            raise EvidenceError(f"releases[{i}].upgrade_from", f"{r.upgrade_from} is not one of the releases (a gap)")
    database = doc.get("database")
    path = UpgradePath(
        tuple(releases),
        tuple(sources),
        skew,
        (database["engine"], _loose_version(database["min_version"], "database.min_version")) if database else None,
    )
    return ReadResult(observed_at=artifact_time(doc, "reviewed").at, timestamp_field="reviewed",
                      summary={"releases": [str(r.version) for r in releases]}, records=[path])  # fmt: skip


# A database's own version string: its release, then what the packager added after a space or a dash
# (PostgreSQL's "16.4 (Debian 16.4-1.pgdg120+1)", MySQL's "8.0.36-0ubuntu0.22.04.1", MariaDB's
# "10.11.6-MariaDB-0+deb12u1"). A pre-release ("16beta2", "17rc1") is no release: it stays as written.
_DATABASE_RELEASE = re.compile(r"^\s*(v?\d+(?:\.\d+){0,2})(?:[\s(-].*)?$", re.DOTALL)


def _loose_version(text: str, where: str) -> Version:
    """Database versions may be ``16`` or ``16.4``, as the database reports them (``_DATABASE_RELEASE``)."""
    match = _DATABASE_RELEASE.match(str(text))
    parts = (match.group(1) if match else str(text)).strip().split(".")
    while len(parts) < 3:
        parts.append("0")
    return parse_version(".".join(parts[:3]), where)


def read_preflight(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "PreflightReport")
    source = parse_version(doc["source"], "source")
    target = parse_version(doc["target"], "target")
    if target <= source:
        raise EvidenceError("target", f"{target} is not newer than the source {source}")
    # A component may be listed more than once (a fleet mid-rollout runs several versions): each counts.
    # One the install does not run says so (``deployed: false``) rather than being left out: left out,
    # its skew is unknown.
    listed = list(enumerate(doc.get("components") or []))
    components = sorted(
        {
            (c["name"], parse_version(c["version"], f"components[{i}].version"))
            for i, c in listed
            if c.get("deployed", True)
        }
    )
    not_deployed = sorted({c["name"] for _, c in listed if not c.get("deployed", True)} - {n for n, _ in components})
    at = artifact_time(doc, "generated_at")
    report = {
        "install": doc["install"],
        "source": source,
        "target": target,
        "database": (doc["database"]["engine"], _loose_version(doc["database"]["version"], "database.version")),
        "pending": list(doc["migrations"]["pending"]),
        "failed": list(doc["migrations"]["failed"]),
        "free_bytes": doc["disk"]["free_bytes"],
        "required_bytes": doc["disk"]["required_bytes"],
        "components": components,
        "not_deployed": not_deployed,
        "checks": [(c["name"], c["status"], c.get("detail", "")) for c in doc["checks"]],
        "generated_at": at.at,
    }
    return ReadResult(observed_at=at.at, timestamp_field="generated_at",
                      summary={"install": doc["install"], "source": str(source), "target": str(target)},
                      records=[report], warnings=[naive_time_warning("generated_at", doc["generated_at"])] if at.was_naive else [])  # fmt: skip


def read_rollback(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "RollbackReport")
    from_version = parse_version(doc["from_version"], "from_version")
    to_version = parse_version(doc["to_version"], "to_version")
    if to_version <= from_version:
        raise EvidenceError("to_version", f"{to_version} is not newer than from_version {from_version}")
    at = artifact_time(doc, "generated_at")
    seen = set()
    for i, t in enumerate(doc["tables"]):
        key = (t["name"], t.get("tenant"))
        if key in seen:
            raise EvidenceError(f"tables[{i}]", f"table {t['name']} (tenant {t.get('tenant') or '-'}) is listed twice")
        seen.add(key)
    report = {
        "environment": doc["environment"],
        "from_version": from_version,
        "to_version": to_version,
        "schema": (doc["schema"]["before"], doc["schema"]["after"]),
        "tables": [dict(t) for t in doc["tables"]],
        "generated_at": at.at,
    }
    return ReadResult(observed_at=at.at, timestamp_field="generated_at",
                      summary={"from": str(from_version), "to": str(to_version), "tables": len(doc["tables"])},
                      records=[report], warnings=[naive_time_warning("generated_at", doc["generated_at"])] if at.was_naive else [])  # fmt: skip
