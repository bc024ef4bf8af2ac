"""``gate-report.json`` / ``.xml`` (JUnit) / ``.md`` / ``.html`` from gate results."""

from __future__ import annotations

import hashlib
import json
import os
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import quote

from phase8_assets.domains.gates import GATES, GateResult, errored, verdict
from phase8_assets.shared.artifacts import API_VERSION, check_schema
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.redaction import redact
from phase8_assets.shared.reports import Section, render_markdown

STATUS_ORDER = ("error", "fail", "warn", "skipped", "pass")
STATUS_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "error": "💥 error", "skipped": "⏭️ skipped"}


def build_report(
    results: list[GateResult],
    release: dict,
    evidence_roots: list[str],
    evaluated_at: datetime,
    run_id: str | None = None,
    links: dict | None = None,
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
    if links:
        report["links"] = dict(links)
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
    links: dict | None = None,
    config=None,
) -> dict:
    """The report of a run from the gate results recorded so far; a known gate without one is ``error``
    (with the root's ``config``, its finding names the gate's owner and runbook)."""
    found = {g["gate"]: GateResult.from_dict(g) for g in recorded}
    results = [found.get(name) or errored(spec, missing_reason, config) for name, spec in GATES.items()]
    return build_report(results, release, evidence_roots, evaluated_at, run_id, links)


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
    for element in suites.iter():  # evidence text may carry what XML 1.0 cannot (a panic's ANSI colours)
        element.text = element.text and _xml_chars(element.text)
        element.attrib = {key: _xml_chars(value) for key, value in element.attrib.items()}
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# What XML 1.0 cannot hold, even as a character reference: control characters but tab, newline and
# carriage return, lone surrogates, U+FFFE and U+FFFF. ElementTree writes them as they are, and a
# JUnit consumer (CI) then refuses the whole report as not well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_chars(text: str) -> str:
    """``text`` with each character XML 1.0 cannot hold written as its escape (``\\x1b``)."""
    return _NOT_XML.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


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


def waiver_text(finding: dict) -> str:
    """A waived finding's own waiver: owner, ticket and expiry (not the gate's owner)."""
    waiver = finding["details"].get("waiver") if finding["severity"] == "waived" else None
    if not waiver:
        return ""
    return f"waived by {waiver.get('owner')} ({waiver.get('ticket')}, expires {waiver.get('expires')})"


def report_sections(report: dict) -> list[Section]:
    """Blocking failures first, then the other gates; findings errors first, each waived one with its waiver;
    paths relative to the evidence root (the JSON report keeps them whole)."""
    gates = sorted(
        report["gates"], key=lambda g: (not (g["blocking"] and g["status"] in ("fail", "error")),
                                        STATUS_ORDER.index(g["status"]), g["gate"])
    )  # fmt: skip
    sections = [
        Section(
            "Gates",
            table=(
                ["gate", "status", "blocking", "summary"],
                [[g["gate"], g["status"].upper(), "yes" if g["blocking"] else "no", g["summary"]] for g in gates],
            ),
        )
    ]
    roots = report["evidence_roots"]
    rows = [
        [
            g["gate"],
            f["severity"],
            shown_path(f["subject"], roots),
            f["rule"],
            f["observed"],
            f["limit"],
            linked(f["evidence"], report, "evidence"),
            f["owner"],
            linked(f["runbook"], report, "runbooks"),
            waiver_text(f),
        ]
        for g in gates
        for f in sorted(g["findings"], key=lambda f: ("error", "warning", "waived").index(f["severity"]))
    ]
    if rows:
        sections.append(
            Section(
                "Findings",
                table=(
                    [
                        "gate",
                        "severity",
                        "subject",
                        "rule",
                        "observed",
                        "limit",
                        "evidence",
                        "owner",
                        "runbook",
                        "waiver",
                    ],
                    rows,
                ),
            )
        )
    return sections


def banner_of(report: dict) -> tuple[str, str]:
    """The HTML report's verdict line and its colour class."""
    failing = [g["gate"] for g in report["gates"] if g["blocking"] and g["status"] in ("fail", "error")]
    if failing:
        return f"BLOCKED by {len(failing)} gate(s): {', '.join(sorted(failing))}", "fail"
    warned = [g["gate"] for g in report["gates"] if g["status"] == "warn"]
    if warned:
        return f"PASS with warnings: {', '.join(sorted(warned))}", "warn"
    return "PASS", "pass"


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


def shown_path(uri: str | None, roots: list[str]) -> str | None:
    """A path as people read it: relative to the (first) evidence root when it is a local path or under it."""
    if not uri or not roots or not (uri.startswith("/") or "://" in uri):
        return uri
    root = roots[0].rstrip("/")
    if uri.startswith(root + "/"):
        return uri[len(root) + 1 :]
    if "://" in uri or "://" in root:
        return uri
    return os.path.relpath(uri, root)


def linked(uri: str | None, report: dict, kind: str) -> str | None:
    """A runbook or evidence file as people can open it: under the config's ``links`` base URL when it
    sets one for ``kind`` (runbooks by file name, evidence by path relative to the root), else the path
    relative to the root."""
    shown = shown_path(uri, report["evidence_roots"])
    base = report.get("links", {}).get(kind)
    if not base or not shown or "://" in shown:
        return shown
    return f"{base.rstrip('/')}/{PurePosixPath(shown).name if kind == 'runbooks' else shown}"


def report_link(report: dict) -> str | None:
    """The HTML report's URL under ``links.reports``, if the config sets it."""
    base = report.get("links", {}).get("reports")
    return f"{base.rstrip('/')}/{report_folder(report)}/gate-report.html" if base else None


def _identity(text: str, _status: str) -> str:
    return text


def console_report(report: dict, width: int = 100, style: Callable[[str, str], str] = _identity) -> str:
    """What ``phase8 gate`` prints: the verdict first (and, if blocked, each blocking gate with its first
    finding, owner and runbook), then the gates, failures before passes, then every finding (errors,
    waived with their waiver's owner, ticket and expiry, warnings), wrapped to ``width``; paths relative
    to the evidence root. ``style(text, status)`` may colour a status."""
    roots = report["evidence_roots"]
    release = report["release"]
    gates = sorted(report["gates"], key=lambda g: (STATUS_ORDER.index(g["status"]), g["gate"]))
    blocking = [g for g in gates if g["blocking"] and g["status"] in ("fail", "error")]
    word = "BLOCKED" if report["verdict"] == "blocked" else "PASS"
    lines = [
        f"verdict: {style(word, 'fail' if blocking else 'pass')} (release {release.get('version')}, commit "
        f"{str(release.get('commit', ''))[:12]}, evaluated at {report['evaluated_at']})"
    ]
    indent = "      "
    for g in blocking:
        first = next((f for f in g["findings"] if f["severity"] == "error"), None)
        lines += _wrap(
            f"  {style(g['status'], g['status'])} {g['gate']}: "
            + (
                f"{shown_path(first['subject'], roots)}: {first['rule']}: {first['observed']} (limit {first['limit']})"
                if first
                else g["summary"]
            ),
            width,
            indent,
        )
        if first:
            lines += _wrap(
                f"{indent}owner {first['owner']}; runbook {linked(first['runbook'], report, 'runbooks')}", width, indent
            )
    lines.append("")
    name_w = max(len("gate"), *(len(g["gate"]) for g in gates))
    summary_w = max(30, width - name_w - 8 - 9 - 4)
    lines.append(f"{'gate':<{name_w}}  {'status':<8}  {'blocks':<6}  summary")
    for g in gates:
        chunks = textwrap.wrap(g["summary"], summary_w, break_long_words=False, break_on_hyphens=False) or [""]
        status = style(f"{g['status']:<8}", g["status"])
        lines.append(f"{g['gate']:<{name_w}}  {status}  {'yes' if g['blocking'] else 'no':<6}  {chunks[0]}")
        lines += [f"{'':<{name_w + 20}}{chunk}" for chunk in chunks[1:]]
    findings = [
        (g, f)
        for g in gates
        for f in sorted(g["findings"], key=lambda f: ("error", "waived", "warning").index(f["severity"]))
    ]
    if findings:
        lines += ["", "findings:"]
    for g, f in findings:
        severity = {"error": "fail", "warning": "warn", "waived": "skipped"}[f["severity"]]
        lines += _wrap(
            f"  {style(f['severity'], severity)} {g['gate']}: {shown_path(f['subject'], roots)}: {f['rule']}: "
            f"{f['observed']} "
            f"(limit {f['limit']})",
            width,
            indent,
        )
        evidence, runbook = linked(f["evidence"], report, "evidence"), linked(f["runbook"], report, "runbooks")
        who = f"{indent}evidence {evidence}; owner {f['owner']}; runbook {runbook}"
        waiver = f["details"].get("waiver") if f["severity"] == "waived" else None
        if waiver:
            who = (
                f"{indent}waived by {waiver.get('owner')} ({waiver.get('ticket')}, expires {waiver.get('expires')}): "
                f"{str(waiver.get('reason')).rstrip('.')}; evidence {evidence}"
            )
        lines += _wrap(who, width, indent)
    return "\n".join(lines)


def _wrap(text: str, width: int, indent: str) -> list[str]:
    """Wrap at word boundaries; a long path or URL stays whole on its own line."""
    return textwrap.wrap(
        text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False, drop_whitespace=True
    ) or [text]
