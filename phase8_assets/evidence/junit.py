"""JUnit XML as test runners write it (pytest, Surefire / JUnit 4 and 5, jest-junit, dorny/mikepenz fixtures).

Counts are derived from the ``<testcase>`` elements rather than trusted from attributes (nested
``<testsuites>`` often carry none, ``skips`` stands in for ``skipped``, and retries repeat a
testcase). The document is parsed by ``defusedxml``, which refuses a document type declaration or an
entity wherever it appears and in whatever encoding the file is written: JUnit reports never need
them, and entity expansion is an attack surface.

One record per test (classname + name within one ``<testsuite>`` element). Retries are folded into it:

- a testcase repeated in the same suite (pytest-rerunfailures, Gradle's test-retry without
  ``mergeReruns``, mikepenz's flaky fixtures): the last attempt decides; an earlier failed or errored attempt before a final pass makes it ``flaky``,
  before a final skip ``failed`` (the retry did not run, the failure stands). An earlier attempt
  that shows no outcome is a failed one too (``rerun``): pytest's junitxml writes pytest-rerunfailures'
  rerun attempts as empty testcases, and no runner retries a pass;
- Surefire's ``rerunFailingTestsCount``: ``<flakyFailure>``/``<flakyError>`` inside a passing
  testcase make it ``flaky``; ``<rerunFailure>``/``<rerunError>`` are further failed attempts.

The same classname + name in two ``<testsuite>`` elements are two tests, never attempts of one: no
runner writes a retry as another suite, and jest-junit writes one suite per test file, where two files
with the same ``describe`` and test titles give the same suite name, classname and name (jest retries
with ``retryTimes`` stay one testcase). Each keeps its own outcome and its suite's time.

A testcase whose ``status`` or ``result`` attribute says it did not run (GoogleTest's disabled
``status="notrun" result="suppressed"``, ``result="skipped"``) is ``skipped`` though it holds nothing.

jest-junit writes ``test.todo`` as an empty ``<testcase>`` with ``time="0"`` and leaves it out of the
suite's ``tests`` (failing + passing + pending). So in a ``<testsuite>`` that holds no other suite and
counts fewer tests than it holds, the passes without a time (or of 0 s) are read as ``skipped``:
they may be tests that never ran, and a test that did not run covers nothing.

A ``<testsuite>`` whose ``failures`` + ``errors`` count more than its testcases' ``<failure>``/``<error>``
elements rejects the file (a failure it counts is missing; fewer is fine: the elements decide).
Every ``<testcase>`` is judged: those inside a ``<testsuite>`` and those a ``<testsuites>`` holds
directly (its ``timestamp``, if any, dates them); a testcase anywhere else (inside another testcase,
or an element no runner writes) rejects the file rather than being dropped unread.

What an isolation test covers comes from its properties, testcase level first (pytest's
``record_property`` and the ``phase8_assets.isolation`` plugin write them there), then the
enclosing suites, innermost first: ``phase8.dimension``, ``phase8.resource``, ``phase8.tenants``
(comma-separated) or ``phase8.tenant``. Without properties the test name convention applies:
``isolation`` then the dimension then the resource, separated by ``.``, ``_``, ``-``, ``/`` or ``:``
anywhere in ``classname.name`` (``test_isolation_cache_messages``,
``tests.isolation.events.test_channels``, ``isolation/data/files.test.js``); a leading ``test_`` and a
trailing ``_test`` of the resource are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree as SafeET

from phase8_assets.evidence import EvidenceError, ReadResult, naive_time_warning
from phase8_assets.shared.clock import TimeParseError, parse_timestamp

DIMENSIONS = ("data", "events", "cache")
OUTCOMES = ("passed", "failed", "error", "skipped", "flaky")
_CONVENTION = re.compile(r"isolation[._/:-]+(data|events|cache)[._/:-]+([a-z][a-z0-9_]*)")
_MESSAGE_CHARS = 300
_NOT_RUN = ("notrun", "disabled", "suppressed", "skipped")


def _attempt(case: ET.Element) -> tuple[str, list[str], str]:
    """(outcome, earlier failed attempts inside the element, message) of one ``<testcase>``."""
    tags = [child.tag for child in case]
    reruns = [t for t in tags if t in ("rerunFailure", "rerunError", "flakyFailure", "flakyError")]
    if "error" in tags:
        outcome = "error"
    elif "failure" in tags:
        outcome = "failed"
    elif "skipped" in tags or _not_run(case):
        outcome = "skipped"
    elif any(t.startswith("flaky") for t in reruns):
        outcome = "flaky"
    else:
        outcome = "passed"
    failures = ("error", "failure", "flakyFailure", "flakyError", "rerunFailure", "rerunError")
    element = next((child for child in case if child.tag in failures), None)
    message = (element.get("message") or (element.text or "").strip()) if element is not None else ""
    if outcome == "skipped" and "skipped" not in tags:
        said = " ".join(
            f"{a}={case.get(a)!r}".replace("'", '"')
            for a in ("status", "result")
            if (case.get(a) or "").lower() in _NOT_RUN
        )
        message = f"{said}: not run"
    return outcome, reruns, message[:_MESSAGE_CHARS]


def _not_run(case: ET.Element) -> bool:
    """GoogleTest writes a ``DISABLED_`` test as ``status="notrun" result="suppressed"`` and nothing
    inside, and may write ``GTEST_SKIP`` as ``result="skipped"`` alone: a test that did not run."""
    return (case.get("status") or "").lower() in _NOT_RUN or (case.get("result") or "").lower() in _NOT_RUN


def _total(*seconds: float | None) -> float | None:
    """Time of all attempts; unreported while no attempt reported one (never 0 s)."""
    known = [s for s in seconds if s is not None]
    return sum(known) if known else None


def _properties(elem: ET.Element) -> dict[str, str]:
    props = elem.find("properties")
    if props is None:
        return {}
    return {
        p.get("name", ""): (p.get("value") if p.get("value") is not None else (p.text or "").strip())
        for p in props.findall("property")
        if p.get("name")
    }


def _suites(root: ET.Element) -> list[tuple[ET.Element, dict[str, str]]]:
    """Every ``<testsuite>`` with the properties it inherits from enclosing suites (outer first).

    A ``<testsuites>`` that holds ``<testcase>`` elements itself (no ``<testsuite>`` around them)
    counts as a suite too: its testcases are results like any other, not to be skipped."""
    out = []

    def walk(elem: ET.Element, inherited: dict[str, str]) -> None:
        is_suite = elem.tag == "testsuite" or elem.find("testcase") is not None
        own = {**inherited, **_properties(elem)} if is_suite else inherited
        if is_suite:
            out.append((elem, own))
        for child in elem:
            if child.tag in ("testsuite", "testsuites"):
                walk(child, own)

    walk(root, {})
    return out


def _check_every_testcase_in_a_suite(root: ET.Element, suites: list[ET.Element]) -> None:
    """Fail closed on a ``<testcase>`` the suites do not hold (inside another testcase, or an element
    no runner writes): it would otherwise be read as nothing, and a failure in it would not count."""
    judged = {id(case) for suite in suites for case in suite.findall("testcase")}
    parents = {id(child): parent for parent in root.iter() for child in parent}
    for case in root.iter("testcase"):
        if id(case) not in judged:
            parent = parents[id(case)]
            raise EvidenceError(
                f"testcase[@name={case.get('name')!r}]",
                f"inside <{parent.tag}>, expected inside a <testsuite> or <testsuites>: its outcome cannot be judged",
            )


def _check_claimed_failures(root: ET.Element) -> None:
    """Fail closed on a suite whose ``failures`` + ``errors`` say more than its testcases show.

    Outcomes come from the testcases, but a suite that counts a failure its testcases do not hold
    has lost one (a truncated or hand-edited report, a failure outside any testcase): which test
    failed is unknown, so the file's outcomes cannot be trusted. Fewer claimed than shown is fine
    (jest-junit writes one ``<failure>`` per message; the elements decide).

    Only ``<testsuite>`` is checked: the ``<testsuites>`` totals count more than tests (gotestsum's
    ``errors`` counts ``go test`` stderr lines, with no testcase to show them)."""
    for suite in root.iter("testsuite"):
        claimed = 0
        for attr in ("failures", "errors"):
            text = suite.get(attr)
            if text is None or not text.strip():
                continue
            try:
                claimed += int(text)
            except ValueError as exc:
                raise EvidenceError(
                    f"{suite.tag}[@name={suite.get('name', '')!r}]/@{attr}", f"expected a count, got {text!r}"
                ) from exc
        shown = sum(1 for case in suite.iter("testcase") for child in case if child.tag in ("failure", "error"))
        if claimed > shown:
            raise EvidenceError(
                f"{suite.tag}[@name={suite.get('name', '')!r}]/@failures+@errors",
                f"counts {claimed} failure(s)/error(s) but its testcases show {shown}: a failed test is "
                "missing from the report, expected every failure as a <failure>/<error> in a <testcase>",
            )


def _skip_uncounted_passes(suite: ET.Element, records: list[dict]) -> None:
    """A leaf ``<testsuite>`` whose ``tests`` counts fewer tests than it holds: its passes without a
    time are what jest-junit writes for ``test.todo`` (never run, and uncounted), so none of them is
    taken as a pass. Retries are not the surplus: ``records`` already holds one per test."""
    text = suite.get("tests")
    if suite.tag != "testsuite" or suite.find("testsuite") is not None or text is None or not text.strip():
        return
    try:
        counted = int(text)
    except ValueError as exc:
        raise EvidenceError(
            f"testsuite[@name={suite.get('name', '')!r}]/@tests", f"expected a count, got {text!r}"
        ) from exc
    if counted >= len(records):
        return
    for record in records:
        if record["outcome"] == "passed" and not record["seconds"]:
            record["outcome"] = "skipped"
            record["attempts"] = [*record["attempts"][:-1], "skipped"]
            record["message"] = (
                f"not counted by its suite's tests={counted} ({len(records)} testcases) and no time: "
                "jest-junit writes a test.todo this way; a test that did not run covers nothing"
            )


def coverage_of(classname: str, name: str, properties: dict[str, str]) -> tuple[str | None, str | None, list[str]]:
    """(dimension, resource, tenants) of one test, from its properties or else its name."""
    dimension = properties.get("phase8.dimension")
    resource = properties.get("phase8.resource")
    tenants_text = properties.get("phase8.tenants") or properties.get("phase8.tenant") or ""
    tenants = [t.strip() for t in tenants_text.split(",") if t.strip()]
    if not (dimension and resource):
        found = _CONVENTION.search(f"{classname}.{name}".lower())
        if found:
            dimension = dimension or found.group(1)
            resource = resource or re.sub(r"^test_|_?test$", "", found.group(2)) or None
    return dimension, resource, tenants


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
    suites = _suites(root)
    _check_every_testcase_in_a_suite(root, [suite for suite, _ in suites])
    _check_claimed_failures(root)
    tests: dict[tuple[int, str, str], dict] = {}
    stamps, warnings = [], []
    for index, (suite, suite_props) in enumerate(suites):
        suite_name = suite.get("name", "")
        stamp, suite_at = suite.get("timestamp"), None
        if stamp:
            try:
                instant = parse_timestamp(stamp, f"testsuite[@name={suite_name!r}]/@timestamp")
            except TimeParseError as exc:
                raise EvidenceError(f"testsuite[@name={suite_name!r}]/@timestamp", str(exc).split(": ", 1)[1]) from exc
            suite_at = instant.at
            stamps.append(suite_at)
            if instant.was_naive:
                warnings.append(naive_time_warning(f"testsuite {suite_name!r}: timestamp", stamp))
        for case in suite.findall("testcase"):
            try:
                duration = float(case.get("time")) if case.get("time") else None  # unreported, not 0 s
            except ValueError as exc:
                raise EvidenceError(
                    f"testcase[@name={case.get('name')!r}]/@time", f"expected seconds, got {case.get('time')!r}"
                ) from exc
            outcome, reruns, message = _attempt(case)
            classname, name = case.get("classname", ""), case.get("name", "")
            key = (index, classname, name)  # another suite's testcase of that name is another test
            earlier = tests.get(key)
            properties = {**(earlier["properties"] if earlier else {}), **suite_props, **_properties(case)}
            before = list(earlier["attempts"]) if earlier else []
            if before and before[-1] == "passed":  # retried, so it did not pass: pytest-rerunfailures' rerun
                before[-1] = "rerun"
            attempts = [*before, *reruns, outcome]
            failed_before = any(a in ("failed", "error", "rerun", "rerunFailure", "rerunError") for a in attempts[:-1])
            if outcome == "passed" and failed_before:
                outcome = "flaky"
            elif outcome == "skipped" and failed_before:
                outcome = "failed"  # a retry that did not run cannot take back the failure it retried
            dimension, resource, tenants = coverage_of(classname, name, properties)
            tests[key] = {
                "suite": suite_name,
                "classname": classname,
                "name": name,
                "outcome": outcome,
                "attempts": attempts,
                "seconds": _total(duration, earlier["seconds"] if earlier else None),
                "message": message or (earlier["message"] if earlier else ""),
                "properties": properties,
                "dimension": dimension,
                "resource": resource,
                "tenants": tenants,
                "run_at": suite_at,
            }
    for index, (suite, _) in enumerate(suites):
        _skip_uncounted_passes(suite, [record for key, record in tests.items() if key[0] == index])
    records = list(tests.values())  # redacted by read_evidence, as every reader's output
    for record in records:  # a suite without its own timestamp ran when the file says it did
        record["run_at"] = record["run_at"] or (max(stamps) if stamps else None)
    if not records:  # covers nothing; the cells it was meant to cover fail as uncovered, this names the file
        warnings.append("(document): no <testcase> in the report; it covers no isolation cell")
    counts = {o: sum(1 for r in records if r["outcome"] == o) for o in OUTCOMES}
    return ReadResult(
        observed_at=max(stamps) if stamps else None,
        timestamp_field="testsuite/@timestamp",
        summary={"suites": len(suites), "testcases": len(records), **counts},
        records=records,
        warnings=warnings,
    )
