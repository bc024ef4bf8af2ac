import pytest

from phase8_assets.evidence import EvidenceError, junit, read_evidence, runbooks

pytestmark = pytest.mark.realdata


def test_real_junit_files_parse_with_derived_counts(real_samples):
    nested = junit.read((real_samples / "junit/dorny_junit4-complete.xml").read_bytes(), "x")
    # Nested <testsuites>; counts come from the testcases (a <testcase> inside a comment is not one)
    # and agree with the root's own attributes: tests=8 failures=1 errors=1 skipped=1.
    assert nested.summary == {
        "suites": 1, "testcases": 8, "passed": 5, "failed": 1, "error": 1, "skipped": 1, "flaky": 0,
    }  # fmt: skip
    # Suite properties reach every testcase; a testcase's own properties win (text values too).
    props = {r["name"]: r["properties"] for r in nested.records}
    assert props["testCase1"]["commit"] == "ef7bebf" and props["testCase8"]["priority"] == "high"
    assert props["testCase8"]["description"].startswith("This text describes")
    pytest_xml = junit.read((real_samples / "junit/dorny_python-xunit-pytest.xml").read_bytes(), "x")
    assert pytest_xml.summary["failed"] == 2 and pytest_xml.summary["skipped"] == 2
    assert pytest_xml.observed_at.isoformat() == "2025-11-15T16:51:49.548396+00:00"
    empty = junit.read((real_samples / "junit/dorny_jest-junit-empty-testsuite.xml").read_bytes(), "x")
    assert empty.summary["testcases"] == 0
    assert empty.warnings[-1] == "(document): no <testcase> in the report; it covers no isolation cell"
    # Retries are the same testcase repeated (and "skips" instead of "skipped"): one test, the last
    # attempt decides, every attempt kept.
    retried = junit.read((real_samples / "junit/mikepenz_flaky_all_failures.xml").read_bytes(), "x")
    assert retried.summary["testcases"] == 1 and retried.summary["error"] == 1
    assert retried.records[0]["attempts"] == ["failed", "failed", "error"]
    assert retried.records[0]["message"] == "third error"
    # pytest's record_property writes testcase properties; skipped and xfail both read as skipped.
    record = next(r for r in pytest_xml.records if r["name"] == "test_with_record_property")
    assert record["properties"] == {"custom_prop": "custom_val", "example_key": "1"}
    # One line of XML, failure messages with &#10; entities: read all the same.
    flaky = junit.read((real_samples / "junit/mikepenz_pytest_report_flaky.xml").read_bytes(), "x")
    assert flaky.summary["testcases"] == 4 and flaky.summary["failed"] == 2 and flaky.summary["flaky"] == 0
    assert flaky.records[0]["run_at"] == flaky.observed_at


def test_a_testcase_without_a_time_has_no_duration_rather_than_zero():
    # JUnit's time attribute is optional (the XSD says so); "0" is a real zero.
    doc = b'<testsuite name="s" tests="2"><testcase name="a"/><testcase name="b" time="0"/></testsuite>'
    assert [r["seconds"] for r in junit.read(doc, "x").records] == [None, 0.0]
    # Retries add up the time that was reported, and stay unreported while none was.
    retried = b'<testsuite name="s"><testcase name="a"/><testcase name="a" time="1.5"/><testcase name="b"/><testcase name="b"/></testsuite>'
    assert [r["seconds"] for r in junit.read(retried, "x").records] == [1.5, None]


def test_truncated_surefire_report_is_rejected_with_its_position(real_samples):
    data = (real_samples / "junit/mikepenz_TEST-test.CorruptTest_truncated.xml").read_bytes()
    with pytest.raises(EvidenceError) as info:
        junit.read(data, "x")
    assert info.value.field.startswith("line ") and "not well-formed XML" in info.value.reason


def test_every_real_junit_file_reads_or_is_rejected_never_crashes(real_samples):
    for path in sorted((real_samples / "junit").glob("*.xml")):
        try:
            junit.read(path.read_bytes(), str(path))
        except EvidenceError:
            assert "Corrupt" in path.name


def test_entity_declarations_are_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]><testsuite>&a;</testsuite>'
    with pytest.raises(EvidenceError, match="DOCTYPE"):
        junit.read(bomb, "x")


LAUGHS = (
    '<!DOCTYPE testsuite [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
)
SUITE = '<testsuite name="s" timestamp="2026-11-20T10:00:00Z"><testcase name="t" time="0.1">&c;</testcase></testsuite>'


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (f'<?xml version="1.0"?><!--{"x" * 20_000}-->{LAUGHS}{SUITE}', "utf-8"),  # past the first 4 KiB
        (f'<?xml version="1.0" encoding="UTF-16"?>{LAUGHS}{SUITE}', "utf-16"),  # no ASCII "<!DOCTYPE" bytes
        (f"<!--{'x' * 5000}--><!DOCTYPE testsuite>{SUITE.replace('&c;', '')}", "utf-16-le"),  # a bare DTD
    ],
)
def test_dtds_and_entities_are_refused_anywhere_in_any_encoding(text, encoding):
    data = text.encode(encoding)
    if encoding == "utf-16-le":
        data = b"\xff\xfe" + data
    with pytest.raises(EvidenceError, match="DOCTYPE/ENTITY declaration is not allowed"):
        junit.read(data, "x")


def test_a_utf16_junit_file_without_a_dtd_reads():
    data = f'<?xml version="1.0" encoding="UTF-16"?>{SUITE.replace("&c;", "")}'.encode("utf-16")
    assert junit.read(data, "x").summary["testcases"] == 1


def test_runbook_front_matter():
    ok = runbooks.read(b'---\ntitle: "Drill: x"\nowner: team:sre\nreviewed: 2026-10-02\n---\n# Drill\nRun it.\n', "x")
    assert ok.observed_at.isoformat() == "2026-10-02T00:00:00+00:00"
    for every, owner in (("P1Y", "team:tbd-search"), ("P12M", "tbd@chatterbox.example"), ("P365D", "team:sre")):
        # the maximum itself, counted on the calendar from the review date; a team whose name starts with tbd
        text = f"---\ntitle: x\nowner: {owner}\nreviewed: 2026-10-02\nreview_every: {every}\n---\nSteps.\n"
        assert runbooks.read(text.encode(), "x").summary["review_every"] == every
    with pytest.raises(EvidenceError, match="front matter.reviewed: is required"):
        runbooks.read(b"---\ntitle: x\nowner: team:sre\n---\n", "x")
    with pytest.raises(EvidenceError, match="expected a YAML front matter block"):
        runbooks.read(b"# no front matter\n", "x")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("---\ntitle: x\nowner: TBD\nreviewed: 2026-10-02\n---\nSteps.\n", "front matter.owner: expected team:name"),
        ("---\ntitle: x\nowner: '@todo'\nreviewed: 2026-10-02\n---\nSteps.\n", "front matter.owner: expected"),
        ("---\ntitle: x\nowner: team:TBD\nreviewed: 2026-10-02\n---\nSteps.\n", "front matter.owner: expected"),
        ("---\ntitle: x\nowner: team:todo\nreviewed: 2026-10-02\n---\nSteps.\n", "front matter.owner: expected"),
        ("---\ntitle: x\nowner: 'team:Unknown'\nreviewed: 2026-10-02\n---\nSteps.\n", "front matter.owner: expected"),
        ("---\ntitle: x\nowner: '@tbd'\nreviewed: 2026-10-02\n---\nSteps.\n", "front matter.owner: expected"),
        (
            "---\ntitle: x\nowner: team:sre\nreviewed: 2026-10-02\nreview_every: P100Y\n---\nSteps.\n",
            "front matter.review_every: P100Y is longer than the maximum P1Y",
        ),
        (
            "---\ntitle: x\nowner: team:sre\nreviewed: 2026-10-02\nreview_every: P366D\n---\nSteps.\n",
            "front matter.review_every: P366D is longer than the maximum P1Y",
        ),
        ("---\ntitle: x\nowner: team:sre\nreviewed: 2026-10-02\n---\n", "body: empty"),
        ("---\ntitle: x\nowner: team:sre\nreviewed: 2026-10-02\n---\n\n# x\n<!-- TODO -->\n## Steps\n", "body: empty"),
    ],
)
def test_a_runbook_without_a_real_owner_or_any_steps_is_rejected(text, problem):
    with pytest.raises(EvidenceError, match=problem):
        runbooks.read(text.encode(), "x")


def _suite(body: str, timestamp: str = "2026-11-19T08:00:00Z") -> bytes:
    return f'<testsuites><testsuite name="s" timestamp="{timestamp}">{body}</testsuite></testsuites>'.encode()


def test_a_failed_attempt_then_a_pass_is_flaky_in_repeated_testcases_and_in_surefire_reruns():
    repeated = junit.read(
        _suite(
            '<testcase classname="c" name="t"><failure message="leak"/></testcase><testcase classname="c" name="t"/>'
        ),
        "x",
    )
    assert [(r["outcome"], r["attempts"], r["message"]) for r in repeated.records] == [
        ("flaky", ["failed", "passed"], "leak")
    ]
    surefire = junit.read(
        _suite('<testcase classname="c" name="t"><flakyFailure message="saw 1 row of acme"/></testcase>'
               '<testcase classname="c" name="u"><failure message="x"/><rerunFailure message="y"/></testcase>'),
        "x",
    )  # fmt: skip
    outcomes = {r["name"]: (r["outcome"], r["attempts"]) for r in surefire.records}
    assert outcomes == {"t": ("flaky", ["flakyFailure", "flaky"]), "u": ("failed", ["rerunFailure", "failed"])}
    assert surefire.summary["flaky"] == 1


def test_a_failed_attempt_then_a_skipped_retry_stays_failed():
    """A retry that did not run cannot take back the leak it retried."""
    records = junit.read(
        _suite('<testcase classname="c" name="t"><failure message="leak"/></testcase>'
               '<testcase classname="c" name="t"><skipped message="broker down"/></testcase>'
               '<testcase classname="c" name="u"><rerunFailure message="saw acme"/><skipped/></testcase>'
               '<testcase classname="c" name="v"><skipped/></testcase>'),
        "x",
    ).records  # fmt: skip
    got = {r["name"]: (r["outcome"], r["attempts"], r["message"]) for r in records}
    assert got == {
        "t": ("failed", ["failed", "skipped"], "leak"),
        "u": ("failed", ["rerunFailure", "skipped"], "saw acme"),
        "v": ("skipped", ["skipped"], ""),
    }


def test_dimension_resource_and_tenants_from_properties_else_from_the_name_convention():
    data = _suite(
        '<testsuite name="inner"><properties><property name="phase8.dimension" value="events"/></properties>'
        '<testcase classname="c" name="a"><properties><property name="phase8.resource" value="channels"/>'
        '<property name="phase8.tenants" value="acme, globex"/></properties></testcase></testsuite>'
        '<testcase classname="tests.isolation.cache.test_files" name="test_x[acme]"/>'
        '<testcase classname="IsolationSuite" name="test_isolation_data_search_index"/>'
        '<testcase classname="isolation/data/files.test.js" name="reads nothing across tenants"/>'
        '<testcase classname="c" name="test_login"/>'
    )
    got = {r["name"]: (r["dimension"], r["resource"], r["tenants"]) for r in junit.read(data, "x").records}
    assert got == {
        "a": ("events", "channels", ["acme", "globex"]),
        "test_x[acme]": ("cache", "files", []),
        "test_isolation_data_search_index": ("data", "search_index", []),
        "reads nothing across tenants": ("data", "files", []),
        "test_login": (None, None, []),
    }


def test_secrets_in_failure_messages_are_redacted():
    token = "ghp_" + "a1B2" * 9
    data = _suite(f'<testcase classname="c" name="t"><failure message="auth {token} leaked"/></testcase>')
    assert token not in str(read_evidence("isolation_results", data, "x").records)  # the one way out of a reader


def test_testcases_directly_under_testsuites_are_judged_not_skipped():
    """No <testsuite> around them: the testcases are results all the same (a failure there counts)."""
    data = (
        b'<testsuites name="iso" timestamp="2026-11-19T10:00:00Z">'
        b'<testcase classname="isolation.data.test_files" name="test_leak"><failure message="saw globex"/></testcase>'
        b'<testsuite name="s" timestamp="2026-11-19T09:00:00Z"><testcase classname="c" name="ok"/></testsuite>'
        b"</testsuites>"
    )
    result = junit.read(data, "x")
    got = {r["name"]: (r["outcome"], r["dimension"], r["resource"], r["run_at"].isoformat()) for r in result.records}
    assert got == {
        "test_leak": ("failed", "data", "files", "2026-11-19T10:00:00+00:00"),
        "ok": ("passed", None, None, "2026-11-19T09:00:00+00:00"),
    }
    assert result.summary["failed"] == 1


@pytest.mark.parametrize(
    "body",
    [
        '<testsuite name="s"><testcase name="outer"><testcase name="inner"><failure/></testcase></testcase></testsuite>',
        '<testsuite name="s"><group><testcase name="inner"><failure/></testcase></group></testsuite>',
    ],
)
def test_a_testcase_outside_any_suite_rejects_the_file_rather_than_being_dropped(body):
    with pytest.raises(EvidenceError) as info:
        junit.read(body.encode(), "x")
    assert info.value.field == "testcase[@name='inner']" and "cannot be judged" in info.value.reason


def test_a_suite_counting_more_failures_than_its_testcases_show_is_rejected():
    """Which test failed is unknown, so no outcome in the file can be trusted: fail closed."""
    lost = b'<testsuites><testsuite name="iso" failures="1" errors="0"><testcase name="a"/></testsuite></testsuites>'
    with pytest.raises(EvidenceError) as info:
        junit.read(lost, "x")
    assert info.value.field == "testsuite[@name='iso']/@failures+@errors" and "show 0" in info.value.reason
    # An outer <testsuite> counts its nested suites' testcases.
    outer = b'<testsuite name="o" errors="2"><testsuite name="s"><testcase name="a"><error/></testcase></testsuite></testsuite>'
    with pytest.raises(EvidenceError, match="counts 2 failure"):
        junit.read(outer, "x")
    # The <testsuites> totals are not checked: gotestsum's errors="1" there is a line go test wrote
    # on stderr (its golden report: failures="13" errors="1", 13 <failure> elements).
    gotestsum = junit.read(
        b'<testsuites name="test" tests="2" failures="1" errors="1"><testsuite tests="2" failures="1" name="p">'
        b'<testcase classname="p" name="TestA"><failure message="Failed"/></testcase><testcase classname="p" '
        b'name="TestB"/></testsuite></testsuites>',
        "x",
    )
    assert (gotestsum.summary["failed"], gotestsum.summary["passed"]) == (1, 1)
    with pytest.raises(EvidenceError, match="expected a count"):
        junit.read(b'<testsuite name="s" failures="many"><testcase name="a"/></testsuite>', "x")
    # Fewer counted than shown (jest-junit writes one <failure> per message), or a failure and a
    # teardown error in one pytest testcase: the elements decide, nothing is lost.
    more = junit.read(
        b'<testsuite name="s" failures="1" errors="1"><testcase name="a"><failure/><error/></testcase>'
        b'<testcase name="b"><failure/><failure/></testcase></testsuite>',
        "x",
    )
    assert (more.summary["error"], more.summary["failed"]) == (1, 1)


def test_same_named_testcases_in_different_testsuites_are_different_tests_not_retries():
    """jest-junit writes one <testsuite> per test file; with its default templates two files whose describe
    and test titles match give the same suite name, classname and name. A failure in one file and a pass in
    the other are two results, not one flaky test (nor a pass): retries repeat a testcase in ONE suite."""
    title = "isolation.data.files reads nothing across tenants"
    data = (
        '<testsuites name="jest tests" tests="2" failures="1">'
        f'<testsuite name="isolation.data.files" failures="1" tests="1" timestamp="2026-11-18T12:00:00Z">'
        f'<testcase classname="{title}" name="{title}" time="0.2"><failure>Error: saw a globex row</failure></testcase>'
        "</testsuite>"
        f'<testsuite name="isolation.data.files" failures="0" tests="1" timestamp="2026-11-18T12:00:01Z">'
        f'<testcase classname="{title}" name="{title}" time="0.1"/></testsuite></testsuites>'
    ).encode()
    result = junit.read(data, "x")
    got = [(r["outcome"], r["attempts"], r["run_at"].second) for r in result.records]
    assert got == [("failed", ["failed"], 0), ("passed", ["passed"], 1)]
    assert (result.summary["testcases"], result.summary["failed"], result.summary["flaky"]) == (2, 1, 0)


def test_a_jest_todo_that_the_suite_does_not_count_is_skipped_not_passed():
    """jest-junit writes ``test.todo`` as an empty testcase with time="0" (jest-junit issue #242) and
    leaves it out of the suite's ``tests`` (failing + passing + pending): it did not run, so it covers
    nothing. A suite counting every testcase it holds keeps its zero-time passes."""
    data = (
        b'<testsuites name="jest tests" tests="1" failures="0" errors="0">'
        b'<testsuite name="isolation.cache.files" errors="0" failures="0" skipped="0" tests="1" '
        b'timestamp="2026-11-18T12:00:00">'
        b'<testcase classname="isolation.cache.files evicts per tenant" name="evicts per tenant" time="0.031"/>'
        b'<testcase classname="isolation.cache.files keys carry the tenant" name="keys carry the tenant" time="0">'
        b"</testcase></testsuite>"
        b'<testsuite name="other" tests="1" timestamp="2026-11-18T12:00:00"><testcase name="fast" time="0"/>'
        b"</testsuite></testsuites>"
    )
    result = junit.read(data, "x")
    got = {r["name"]: (r["outcome"], r["message"]) for r in result.records}
    assert got["evicts per tenant"] == ("passed", "") and got["fast"] == ("passed", "")
    outcome, message = got["keys carry the tenant"]
    assert outcome == "skipped" and "tests=1" in message and "test.todo" in message
    assert (result.summary["passed"], result.summary["skipped"]) == (2, 1)


def test_a_pytest_rerunfailures_rerun_written_as_an_empty_testcase_is_a_failed_attempt():
    """pytest's junitxml writes nothing for pytest-rerunfailures' "rerun" outcome but the testcase
    itself: each rerun attempt is an empty <testcase> before the final one (pytest-rerunfailures
    issues #170, ProgramBench #64). A runner retries only what did not pass, so an earlier attempt of a
    testcase repeated in one suite never passed: a final pass is flaky, a final skip stays failed."""
    data = _suite(
        '<testcase classname="isolation.data.test_files" name="test_leak" time="0.000"/>'
        '<testcase classname="isolation.data.test_files" name="test_leak" time="0.004"/>'
        '<testcase classname="c" name="gone" time="0.1"/><testcase classname="c" name="gone"><skipped/></testcase>'
        '<testcase classname="c" name="fails" time="0.1"/><testcase classname="c" name="fails"><failure/></testcase>'
    )
    got = {r["name"]: (r["outcome"], r["attempts"]) for r in junit.read(data, "x").records}
    assert got == {
        "test_leak": ("flaky", ["rerun", "passed"]),
        "gone": ("failed", ["rerun", "skipped"]),
        "fails": ("failed", ["rerun", "failed"]),
    }


def test_a_googletest_disabled_test_is_skipped_not_passed():
    """GoogleTest writes a DISABLED_ test as status="notrun" result="suppressed" with no child element
    (its own golden XML output), and GTEST_SKIP as result="skipped": neither ran, neither is a pass."""
    data = _suite(
        '<testcase name="DISABLED_isolation_data_plugin_kv" status="notrun" result="suppressed" time="0" '
        'timestamp="1970-01-01T00:00:00.000" classname="Kv"/>'
        '<testcase name="Skips" status="run" result="skipped" time="0" classname="Kv"/>'
        '<testcase name="Runs" status="run" result="completed" time="0.1" classname="Kv"/>'
        '<testcase name="Fails" status="run" result="completed" time="0.1" classname="Kv"><failure message="x"/>'
        "</testcase>"
    )
    got = {r["name"]: (r["outcome"], r["message"]) for r in junit.read(data, "x").records}
    assert got["DISABLED_isolation_data_plugin_kv"] == ("skipped", 'status="notrun" result="suppressed": not run')
    assert got["Skips"] == ("skipped", 'result="skipped": not run')
    assert (got["Runs"][0], got["Fails"][0]) == ("passed", "failed")
