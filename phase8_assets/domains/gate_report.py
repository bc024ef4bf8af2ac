"""``gate-report.json`` / ``.xml`` (JUnit) / ``.md`` / ``.html`` from gate results."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import quote

from phase8_assets.domains.gates import GATES, GateResult, errored, verdict
from phase8_assets.shared.artifacts import API_VERSION, check_schema
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.redaction import redact
from phase8_assets.shared.reports import Section, markdown_table, render_markdown

STATUS_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "error": "💥 error", "skipped": "⏭️ skipped"}


def build_report(
    results: list[GateResult],
    release: dict,
    evidence_roots: list[str],
    evaluated_at: datetime,
    run_id: str | None = None,
) -> dict:
    """The report as DESIGN.md's contract defines it, validated against ``GateReport.json``."""
    report = {
        "apiVersion": API_VERSION,
        "kind": "GateReport",
        "verdict": verdict(results),
        "evaluated_at": format_timestamp(evaluated_at),
        "release": dict(release),
        "evidence_roots": list(evidence_roots),
        "gates": [r.as_dict() for r in sorted(results, key=lambda r: r.gate)],
    }
    if run_id:
        report["run_id"] = run_id
    report = redact(report)
    check_schema(json.loads(json.dumps(report, default=str)), "GateReport", "gate-report.json")
    return report


def assemble(
    recorded: list[dict],
    release: dict,
    evidence_roots: list[str],
    evaluated_at: datetime,
    run_id: str,
    missing_reason: str = "the gate has not reported yet",
) -> dict:
    """The report of a run from the gate results recorded so far; a known gate without one is ``error``."""
    found = {g["gate"]: GateResult.from_dict(g) for g in recorded}
    results = [found.get(name) or errored(spec, missing_reason) for name, spec in GATES.items()]
    return build_report(results, release, evidence_roots, evaluated_at, run_id)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def root_id(uri: str) -> str:
    """A short, stable name for an evidence root: its last path part and 8 hex digits of its URI's sha256."""
    name = PurePosixPath(uri.rstrip("/").removeprefix("s3://")).name or "root"
    return f"{_slug(name)[:40]}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"


def release_folder(evidence_roots: list[str], release: dict) -> PurePosixPath:
    """``<root-id>/<release>`` under the reports folder: one per evidence root (the first) and release version,
    so a scenario's run never overwrites the demo's."""
    return PurePosixPath(root_id(evidence_roots[0])) / _slug(str(release.get("version", "?")))


def report_folder(report: dict) -> PurePosixPath:
    return release_folder(report["evidence_roots"], report["release"])


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"


def _finding_text(finding: dict) -> str:
    lines = [
        f"[{finding['severity']}] {finding['subject']}: {finding['rule']}",
        f"  observed: {finding['observed']}",
        f"  limit:    {finding['limit']}",
        f"  evidence: {finding['evidence']}",
        f"  owner:    {finding['owner']}",
        f"  runbook:  {finding['runbook']}",
    ]
    if finding["details"]:
        lines.append(f"  details:  {json.dumps(finding['details'], sort_keys=True, default=str)}")
    return "\n".join(lines)


def to_junit(report: dict) -> str:
    """One testcase per gate; a failing gate's findings go into its <failure>."""
    gates = report["gates"]
    suites = ET.Element("testsuites", name="phase8 release gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="release_gate",
        tests=str(len(gates)),
        failures=str(sum(g["status"] == "fail" for g in gates)),
        errors=str(sum(g["status"] == "error" for g in gates)),
        skipped=str(sum(g["status"] == "skipped" for g in gates)),
        timestamp=report["evaluated_at"],
    )
    props = ET.SubElement(suite, "properties")
    for key, value in [
        ("verdict", report["verdict"]),
        *sorted((f"release.{k}", v) for k, v in report["release"].items()),
    ]:
        ET.SubElement(props, "property", name=key, value=str(value))
    for gate in gates:
        case = ET.SubElement(suite, "testcase", classname="phase8.gates", name=gate["gate"], time="0")
        body = "\n\n".join(_finding_text(f) for f in gate["findings"])
        if gate["status"] == "fail" and gate["blocking"]:
            ET.SubElement(case, "failure", message=gate["summary"], type="gate-failed").text = body
        elif gate["status"] == "error":
            ET.SubElement(case, "error", message=gate["summary"], type="gate-error").text = body or gate["summary"]
        elif gate["status"] == "skipped":
            ET.SubElement(case, "skipped", message=gate["summary"])
        elif body:
            ET.SubElement(case, "system-out").text = body
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


SARIF_LEVEL = {"error": "error", "warning": "warning", "waived": "error"}


def _uri(location: str | None) -> str | None:
    """A URI for SARIF: URLs as they are, absolute paths as file: URIs, relative paths as references."""
    if not location or "://" in location:
        return location
    from pathlib import PurePosixPath

    return PurePosixPath(location).as_uri() if location.startswith("/") else quote(location)


def to_sarif(report: dict, version: str) -> dict:
    """SARIF 2.1.0: one result per finding (rule id ``<gate>/<rule>``), a waived finding as a result
    with an external suppression carrying its exception; the verdict and release in run properties."""
    rules: dict[str, dict] = {}
    results = []
    for gate in report["gates"]:
        for f in gate["findings"]:
            rule_id = f"{gate['gate']}/{f['rule']}"
            rule = {"id": rule_id, "shortDescription": {"text": f"{gate['gate']}: {f['rule']}"}}
            if _uri(f["runbook"]):
                rule["helpUri"] = _uri(f["runbook"])
            rules.setdefault(rule_id, rule)
            result = {
                "ruleId": rule_id,
                "level": SARIF_LEVEL[f["severity"]],
                "message": {"text": f"{f['subject']}: {f['observed']} (limit: {f['limit']})"},
                "properties": {k: str(f[k]) for k in ("subject", "observed", "limit", "owner", "runbook")}
                | {"gate": gate["gate"], "blocking": gate["blocking"]},
            }
            if f["evidence"]:
                result["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": _uri(f["evidence"])}}}]
            waiver = f["details"].get("waiver")
            if f["severity"] == "waived" and waiver:
                result["suppressions"] = [
                    {"kind": "external", "status": "accepted", "justification": str(waiver.get("reason", "")),
                     "properties": {k: str(v) for k, v in waiver.items() if v is not None}}
                ]  # fmt: skip
            results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "phase8", "version": version, "rules": list(rules.values())}},
                "invocations": [{"executionSuccessful": True, "endTimeUtc": report["evaluated_at"]}],
                "results": results,
                "properties": {"verdict": report["verdict"], "release": report["release"],
                               "evidence_roots": report["evidence_roots"],
                               "gates": {g["gate"]: g["status"] for g in report["gates"]}},
            }
        ],
    }  # fmt: skip


def report_sections(report: dict) -> list[Section]:
    gates = report["gates"]
    sections = [
        Section(
            "Gates",
            table=(
                ["gate", "status", "blocking", "summary"],
                [[g["gate"], STATUS_ICON[g["status"]], "yes" if g["blocking"] else "no", g["summary"]] for g in gates],
            ),
        )
    ]
    rows = [
        [
            g["gate"],
            f["severity"],
            f["subject"],
            f["rule"],
            f["observed"],
            f["limit"],
            f["evidence"],
            f["owner"],
            f["runbook"],
        ]
        for g in gates
        for f in sorted(g["findings"], key=lambda f: ("error", "warning", "waived").index(f["severity"]))
    ]
    if rows:
        sections.append(
            Section(
                "Findings",
                table=(
                    ["gate", "severity", "subject", "rule", "observed", "limit", "evidence", "owner", "runbook"],
                    rows,
                ),
            )
        )
    return sections


def title_of(report: dict) -> tuple[str, str]:
    release = report["release"]
    verdict_text = "PASS" if report["verdict"] == "pass" else "BLOCKED"
    title = f"Release gate: {verdict_text} — {release.get('version', '?')}"
    subtitle = (
        f"commit {release.get('commit', '?')} · evaluated at {report['evaluated_at']} · "
        f"evidence: {', '.join(report['evidence_roots'])}"
    )
    return title, subtitle


def to_markdown(report: dict) -> str:
    title, subtitle = title_of(report)
    return render_markdown(title, report_sections(report), subtitle)


def console_table(report: dict) -> str:
    rows = [[g["gate"], g["status"], "yes" if g["blocking"] else "no", g["summary"]] for g in report["gates"]]
    return markdown_table(["gate", "status", "blocking", "summary"], rows)
