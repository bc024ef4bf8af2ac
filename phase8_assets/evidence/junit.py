"""JUnit XML as test runners write it (pytest, Surefire, Jest, dorny/mikepenz fixtures).

Counts are derived from the ``<testcase>`` elements rather than trusted from attributes (nested
``<testsuites>`` often carry none, and retries repeat a testcase). The document is parsed by
``defusedxml``, which refuses a document type declaration or an entity wherever it appears and in
whatever encoding the file is written: JUnit reports never need them, and entity expansion is an
attack surface.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree as SafeET

from phase8_assets.evidence import EvidenceError, ReadResult
from phase8_assets.shared.clock import TimeParseError, parse_timestamp


def _outcome(case: ET.Element) -> str:
    tags = {child.tag for child in case}
    if "error" in tags:
        return "error"
    if "failure" in tags:
        return "failed"
    if "skipped" in tags:
        return "skipped"
    return "passed"


def _properties(elem: ET.Element) -> dict[str, str]:
    props = elem.find("properties")
    if props is None:
        return {}
    return {p.get("name", ""): p.get("value", p.text or "") for p in props.findall("property") if p.get("name")}


def read(data: bytes, uri: str) -> ReadResult:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise EvidenceError("(document)", f"a DOCTYPE/ENTITY declaration is not allowed in JUnit XML ({exc})") from exc
    except ET.ParseError as exc:
        line, column = exc.position
        problem = re.sub(r": line \d+, column \d+$", "", str(exc))
        raise EvidenceError(f"line {line}, column {column}", f"not well-formed XML ({problem})") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise EvidenceError(root.tag, "expected a <testsuites> or <testsuite> root element")
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    records, stamps, warnings = [], [], []
    for suite in suites:
        suite_name = suite.get("name", "")
        stamp = suite.get("timestamp")
        if stamp:
            try:
                instant = parse_timestamp(stamp, f"testsuite[@name={suite_name!r}]/@timestamp")
            except TimeParseError as exc:
                raise EvidenceError(f"testsuite[@name={suite_name!r}]/@timestamp", str(exc).split(": ", 1)[1]) from exc
            stamps.append(instant.at)
            if instant.was_naive:
                warnings.append(f"testsuite {suite_name!r}: timestamp {stamp!r} has no time zone; taken as UTC")
        suite_props = _properties(suite)
        for case in suite.findall("testcase"):
            try:
                duration = float(case.get("time")) if case.get("time") else None  # unreported, not 0 s
            except ValueError as exc:
                raise EvidenceError(
                    f"testcase[@name={case.get('name')!r}]/@time", f"expected seconds, got {case.get('time')!r}"
                ) from exc
            records.append(
                {
                    "suite": suite_name,
                    "classname": case.get("classname", ""),
                    "name": case.get("name", ""),
                    "outcome": _outcome(case),
                    "seconds": duration,
                    "properties": {**suite_props, **_properties(case)},
                }
            )
    counts = {o: sum(1 for r in records if r["outcome"] == o) for o in ("passed", "failed", "error", "skipped")}
    return ReadResult(
        observed_at=max(stamps) if stamps else None,
        timestamp_field="testsuite/@timestamp",
        summary={"suites": len(suites), "testcases": len(records), **counts},
        records=records,
        warnings=warnings,
    )
