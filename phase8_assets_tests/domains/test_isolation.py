"""The tenancy_isolation gate's decisions, on JUnit and matrix bytes read by the real readers."""

from datetime import UTC, datetime, timedelta

from phase8_assets.domains.isolation import assess, findings, tenant_view
from phase8_assets.evidence import Rejection
from phase8_assets.evidence.collect import EvidenceBatch, EvidenceFile
from phase8_assets.evidence.isolation import read_matrix
from phase8_assets.evidence.junit import read
from phase8_assets.shared.clock import format_timestamp

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MATRIX = b"""\
apiVersion: phase8/v1
kind: IsolationMatrix
reviewed: "2026-10-05"
max_age: P7D
owner: team:tenancy
resources:
  - {name: messages, dimensions: [data, events], owner: team:messaging, max_age: P3D}
  - {name: search_index, dimensions: [data], flaky: warning}
"""


def case(resource, dimension, name="t", outcome="", tenants="acme,globex"):
    props = (
        f'<properties><property name="phase8.resource" value="{resource}"/>'
        f'<property name="phase8.dimension" value="{dimension}"/><property name="phase8.tenants" value="{tenants}"/>'
        "</properties>"
    )
    return f'<testcase classname="iso.{resource}.{dimension}" name="{name}">{props}{outcome}</testcase>'


def junit_file(uri, cases, at=AT - timedelta(days=1)):
    data = f'<testsuite name="iso" timestamp="{format_timestamp(at)}">{"".join(cases)}</testsuite>'.encode()
    return evidence_file("isolation_results", uri, read(data, uri))


def evidence_file(kind, uri, result):
    return EvidenceFile("/r", kind, uri, uri, 1, result.observed_at, result.timestamp_field, result.summary,
                        result.warnings, result.records)  # fmt: skip


def batch(*results, matrix=True, rejections=()):
    files = list(results)
    if matrix:
        files.append(evidence_file("isolation_matrix", "/r/matrix.yaml", read_matrix(MATRIX, "/r/matrix.yaml")))
    return EvidenceBatch(roots=["/r"], files=files, rejections=list(rejections))


FULL = [case("messages", "data"), case("messages", "events"), case("search_index", "data")]


EXPECTED = {"isolation_results": "/r/isolation/*.xml", "isolation_matrix": "/r/policy/isolation-matrix.yaml"}


def gate(b):
    return findings(assess(b, AT), b, "team:tenancy", "/r/docs/ops/tenancy-isolation.md", EXPECTED)


def rules(found):
    return sorted((f.severity, f.subject, f.rule) for f in found)


def test_every_cell_covered_by_a_current_pass_has_no_findings():
    b = batch(junit_file("/r/a.xml", FULL))
    coverage = assess(b, AT)
    assert [s.state for s in coverage.cells] == ["covered"] * 3
    assert gate(b) == []


def test_a_failure_is_an_error_owned_by_its_resource_and_names_test_tenants_and_report():
    b = batch(junit_file("/r/a.xml", [*FULL[1:], case("messages", "data", outcome='<failure message="saw 3 rows"/>')]))
    found = gate(b)
    assert rules(found) == [("error", "messages × data", "cell-covered"), ("error", "messages × data", "no-failures")]
    failure = next(f for f in found if f.rule == "no-failures")
    assert failure.owner == "team:messaging" and failure.evidence == "/r/a.xml"
    assert "saw 3 rows" in failure.observed and failure.details["tenants"] == ["acme", "globex"]
    assert failure.runbook.endswith("tenancy-isolation.md")


def test_a_flaky_pass_is_an_error_unless_its_resource_says_warning():
    flaky = '<failure message="1 frame"/></testcase><testcase classname="iso.{r}.{d}" name="t">'
    events = case("messages", "events", outcome=flaky.format(r="messages", d="events"))
    search = case("search_index", "data", outcome=flaky.format(r="search_index", d="data"))
    found = gate(batch(junit_file("/r/a.xml", [FULL[0], events, search])))
    assert rules(found) == [
        ("error", "messages × events", "no-flaky-pass"),
        ("warning", "search_index × data", "no-flaky-pass"),
    ]


def test_a_skipped_test_covers_nothing_and_a_missing_cell_fails():
    skipped = case("messages", "events", outcome='<skipped message="no broker"/>')
    found = gate(batch(junit_file("/r/a.xml", [FULL[0], skipped])))
    assert rules(found) == [
        ("error", "messages × events", "cell-covered"),
        ("error", "search_index × data", "cell-covered"),
    ]
    assert "1 skipped test(s) only" in next(f.observed for f in found if f.subject == "messages × events")
    # No result at all: the finding points where results were expected.
    assert next(f.evidence for f in found if f.subject == "search_index × data") == "/r/isolation/*.xml"


def test_a_cell_older_than_its_own_max_age_is_stale():
    found = gate(batch(junit_file("/r/a.xml", FULL, at=AT - timedelta(days=4))))
    # messages may be 3 days old, search_index 7 (the matrix default)
    assert rules(found) == [("error", "messages × data", "result-age"), ("error", "messages × events", "result-age")]


def test_a_newer_run_of_a_test_supersedes_an_older_failure():
    old = junit_file("/r/old.xml", [case("messages", "data", outcome="<failure/>")], at=AT - timedelta(days=2))
    assert gate(batch(old, junit_file("/r/new.xml", FULL))) == []


def test_runs_that_cannot_be_ordered_keep_the_failure_whatever_the_file_names():
    """Two runs of a test at one time, or one without a time, are contradictory: the worse stands."""
    failing = [case("messages", "data", outcome='<failure message="saw acme"/>'), *FULL[1:]]
    for names in (("/r/a.xml", "/r/b.xml"), ("/r/b.xml", "/r/a.xml")):
        found = gate(batch(junit_file(names[0], failing), junit_file(names[1], FULL)))
        assert ("messages × data", "no-failures", names[0]) in [(f.subject, f.rule, f.evidence) for f in found], names
    undated = b'<testsuite name="iso">' + failing[0].encode() + b"</testsuite>"
    found = gate(
        batch(junit_file("/r/a.xml", FULL), evidence_file("isolation_results", "/r/u.xml", read(undated, "u")))
    )
    assert ("messages × data", "no-failures", "/r/u.xml") in [(f.subject, f.rule, f.evidence) for f in found]


def test_no_matrix_and_unreadable_results_fail_closed():
    rejected = Rejection("/r/b.xml", "isolation_results", "line 4, column 2", "not well-formed XML")
    found = gate(batch(junit_file("/r/a.xml", FULL), matrix=False, rejections=[rejected]))
    assert next(f.evidence for f in found if f.rule == "matrix-present") == "/r/policy/isolation-matrix.yaml"
    assert rules(found) == [
        ("error", "/r/b.xml", "results-readable"),
        ("error", "isolation matrix", "matrix-present"),
        ("warning", "messages × data", "cell-in-matrix"),
        ("warning", "messages × events", "cell-in-matrix"),
        ("warning", "search_index × data", "cell-in-matrix"),
    ]


def test_a_matrix_reviewed_after_the_evaluation_time_is_named_as_set_aside_not_as_absent():
    """A matrix re-reviewed since (or a release evaluated --as-of an earlier time) is set aside as
    future-dated; the finding said "no IsolationMatrix file" and pointed at the configured path, as
    if there were none. It still fails, naming the file and why."""
    future = MATRIX.replace(b'reviewed: "2026-10-05"', b'reviewed: "2026-12-01"')
    b = batch(junit_file("/r/a.xml", FULL), matrix=False)
    b.files.append(evidence_file("isolation_matrix", "/r/matrix.yaml", read_matrix(future, "/r/matrix.yaml")))
    b.set_aside_future(AT, timedelta(minutes=5))
    [present] = [f for f in gate(b) if f.rule == "matrix-present"]
    assert present.severity == "error" and present.evidence == "/r/matrix.yaml"
    assert present.observed.startswith("set aside: reviewed 2026-12-01T00:00:00Z is after the evaluation time")


def test_a_result_without_a_timestamp_covers_nothing_and_says_why():
    undated = b'<testsuite name="iso">' + case("search_index", "data").encode() + b"</testsuite>"
    b = batch(junit_file("/r/a.xml", FULL[:2]), evidence_file("isolation_results", "/r/u.xml", read(undated, "u")))
    [finding] = gate(b)
    assert (finding.subject, finding.rule) == ("search_index × data", "cell-covered")
    assert finding.observed.startswith("1 passing result(s) without a timestamp")


def test_a_result_from_the_future_covers_nothing():
    found = gate(batch(junit_file("/r/a.xml", FULL, at=AT + timedelta(hours=1))))
    assert {f.rule for f in found} == {"result-in-future", "cell-covered"}


def test_untagged_tests_warn_and_still_count_their_failures():
    untagged = '<testcase classname="c" name="test_login"><failure message="boom"/></testcase>'
    found = gate(batch(junit_file("/r/a.xml", [*FULL, untagged])))
    assert rules(found) == [("error", "? × ?", "no-failures"), ("warning", "isolation results", "test-tagged")]


def test_a_tenants_view_holds_only_tests_that_involved_it():
    b = batch(junit_file("/r/a.xml", [*FULL, case("messages", "cache", name="u", tenants="globex,initech")]))
    coverage = assess(b, AT)
    assert [r.name for r in tenant_view(coverage, "initech")] == ["u"]
    assert len(tenant_view(coverage, "acme")) == 3 and tenant_view(coverage, "umbrella") == []


def test_a_pass_in_one_suite_does_not_settle_a_same_named_failure_in_another_suite_of_the_file():
    """jest-junit: one <testsuite> per test file, each with its own timestamp; two files may hold a test of
    the same classname and name. The later suite's pass is another test, not a newer run of the failure."""
    name = "isolation.data.search_index reads nothing across tenants"
    failing = case("search_index", "data", name=name, outcome='<failure message="saw a globex row"/>')
    data = (
        f'<testsuites><testsuite name="s" timestamp="{format_timestamp(AT - timedelta(days=1))}">{failing}'
        f'</testsuite><testsuite name="s" timestamp="{format_timestamp(AT - timedelta(days=1, seconds=-1))}">'
        f"{case('search_index', 'data', name=name)}{''.join(FULL[:2])}</testsuite></testsuites>"
    ).encode()
    found = gate(batch(evidence_file("isolation_results", "/r/a.xml", read(data, "/r/a.xml"))))
    assert [(f.severity, f.subject, f.rule) for f in found] == [("error", "search_index × data", "no-failures")]
    assert "saw a globex row" in found[0].observed
