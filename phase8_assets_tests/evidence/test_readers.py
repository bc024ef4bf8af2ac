import json

import pytest

from phase8_assets.evidence import EvidenceError, chaos_journal, junit, runbooks

pytestmark = pytest.mark.realdata


def test_real_junit_files_parse_with_derived_counts(real_samples):
    nested = junit.read((real_samples / "junit/dorny_junit4-complete.xml").read_bytes(), "x")
    # Nested <testsuites>; counts come from the testcases (a <testcase> inside a comment is not one)
    # and agree with the root's own attributes: tests=8 failures=1 errors=1 skipped=1.
    assert nested.summary == {"suites": 1, "testcases": 8, "passed": 5, "failed": 1, "error": 1, "skipped": 1}
    pytest_xml = junit.read((real_samples / "junit/dorny_python-xunit-pytest.xml").read_bytes(), "x")
    assert pytest_xml.summary["failed"] == 2 and pytest_xml.summary["skipped"] == 2
    assert pytest_xml.observed_at.isoformat() == "2025-11-15T16:51:49.548396+00:00"
    empty = junit.read((real_samples / "junit/dorny_jest-junit-empty-testsuite.xml").read_bytes(), "x")
    assert empty.summary["testcases"] == 0
    flaky = junit.read((real_samples / "junit/mikepenz_flaky_all_failures.xml").read_bytes(), "x")
    assert flaky.summary["testcases"] == 3


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


def test_real_chaos_journals(real_samples):
    interrupted = chaos_journal.read((real_samples / "chaos/ctk_journal_ansible_interrupted.json").read_bytes(), "x")
    assert interrupted.summary["status"] == "interrupted" and interrupted.summary["activities"] == 0
    failed = chaos_journal.read((real_samples / "chaos/ctk_journal_mdrcs_failed_k8s.json").read_bytes(), "x")
    assert failed.summary == {**failed.summary, "status": "failed", "deviated": True}
    assert failed.warnings and "no time zone" in failed.warnings[0]  # chaoslib 1.9 writes naive timestamps
    # An experiment (not a journal) is rejected with the field that is missing.
    with pytest.raises(EvidenceError, match="status: expected one of completed|failed|aborted|interrupted, got null"):
        chaos_journal.read((real_samples / "chaos/ctk_experiment_mdrcs_k8s.json").read_bytes(), "x")


def test_journal_configuration_and_secrets_are_redacted(real_samples):
    doc = json.loads((real_samples / "chaos/ctk_journal_mdrcs_failed_k8s.json").read_bytes())
    doc["experiment"]["secrets"] = {"k8s": {"token": "super-secret-token"}}
    result = chaos_journal.read(json.dumps(doc).encode(), "x")
    stored = json.dumps(result.records)
    assert "super-secret-token" not in stored
    for value in doc["experiment"]["configuration"].values():
        if isinstance(value, str) and len(value) > 3:
            assert json.dumps(value) not in stored


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"status": "ok", "experiment": {"title": "t"}, "end": "2026-01-01T00:00:00Z", "deviated": False}, "status"),
        (
            {"status": "completed", "experiment": {}, "end": "2026-01-01T00:00:00Z", "deviated": False},
            "experiment.title",
        ),
        ({"status": "completed", "experiment": {"title": "t"}, "deviated": False}, "end"),
        (
            {
                "status": "completed",
                "experiment": {"title": "t"},
                "start": "2026-01-02T00:00:00Z",
                "end": "2026-01-01T00:00:00Z",
                "deviated": False,
            },
            "end",
        ),
        ({"status": "completed", "experiment": {"title": "t"}, "end": "2026-01-01T00:00:00Z"}, "deviated"),
    ],
)
def test_bad_journals_are_rejected_with_the_field(doc, field):
    with pytest.raises(EvidenceError) as info:
        chaos_journal.read(json.dumps(doc).encode(), "x")
    assert info.value.field == field


def test_truncated_journal(real_samples):
    data = (real_samples / "chaos/ctk_journal_mdrcs_failed_k8s.json").read_bytes()[:500]
    with pytest.raises(EvidenceError, match="not valid JSON"):
        chaos_journal.read(data, "x")


def test_runbook_front_matter():
    ok = runbooks.read(b'---\ntitle: "Drill: x"\nowner: team:sre\nreviewed: 2026-10-02\n---\n# Drill\n', "x")
    assert ok.observed_at.isoformat() == "2026-10-02T00:00:00+00:00"
    with pytest.raises(EvidenceError, match="front matter.reviewed: is required"):
        runbooks.read(b"---\ntitle: x\nowner: team:sre\n---\n", "x")
    with pytest.raises(EvidenceError, match="expected a YAML front matter block"):
        runbooks.read(b"# no front matter\n", "x")
