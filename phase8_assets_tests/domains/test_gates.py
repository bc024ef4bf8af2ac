import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from phase8_assets.domains.exceptions import states
from phase8_assets.domains.gate_report import assemble, build_report, report_folder, root_id, to_junit, to_markdown
from phase8_assets.domains.gates import GATES, Finding, GateResult, apply_waivers, conclude, errored, skipped, verdict
from phase8_assets.evidence.collect import Waiver
from phase8_assets.evidence.config import ExceptionSettings

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
SPEC = GATES["evidence_validity"]


def finding(severity="error", subject="/r/isolation/TEST-x.xml", rule="readable"):
    return Finding(
        severity, subject, rule, "line 7: not well-formed", "a valid file", subject, "team:tenancy", "/r/rb.md"
    )


# A root that does not require approval: these tests are about matching and expiry (approval: test_exceptions).
UNAPPROVED = ExceptionSettings(timedelta(days=90), "P90D", {}, timedelta(days=14), False, "tests of matching")


def waiver(expires, subject="*/TEST-*.xml", rule="readable", gate="evidence_validity"):
    doc = Waiver(
        gate, subject, rule, "team:tenancy", "known flaky report writer", "CHAT-1", expires, "w.yaml", "CHAT-1"
    )
    return states([doc], UNAPPROVED, AT, None)[0]


def test_status_rule():
    assert conclude(SPEC, [], "ctx").status == "pass"
    assert conclude(SPEC, [finding("warning")], "ctx").status == "warn"
    assert conclude(SPEC, [finding("warning"), finding()], "ctx").status == "fail"
    assert conclude(SPEC, [finding("waived")], "ctx").status == "pass"


def test_active_waiver_waives_matching_errors_only():
    out = apply_waivers(
        "evidence_validity",
        [finding(), finding(subject="/r/other.xml")],
        [waiver(AT + timedelta(days=30))],
        AT,
        "team:x",
        None,
    )
    assert [f.severity for f in out] == ["waived", "error"]
    assert out[0].details["waiver"]["ticket"] == "CHAT-1"


def test_waiver_for_another_gate_or_rule_does_not_apply():
    waivers = [
        waiver(AT + timedelta(days=30), gate="evidence_freshness"),
        waiver(AT + timedelta(days=30), rule="max-age"),
    ]
    out = apply_waivers("evidence_validity", [finding()], waivers, AT, "team:x", None)
    # the one for another rule is this gate's and waives nothing: it says so (the other gate's says so there)
    assert [(f.severity, f.rule) for f in out] == [("error", "readable"), ("warning", "waiver-matches")]


def test_a_waiver_in_force_that_matches_no_finding_is_reported_not_silently_kept():
    """A typo in the subject, or a problem fixed since: the exception waives nothing today but would
    silently waive the next finding that happens to match it."""
    typo = waiver(AT + timedelta(days=30), subject="*/TEST-x.xlm")
    out = apply_waivers("evidence_validity", [finding()], [typo], AT, "team:x", "rb.md")
    assert [(f.severity, f.rule) for f in out] == [("error", "readable"), ("warning", "waiver-matches")]
    assert "CHAT-1 waives nothing" in out[1].observed and (out[1].evidence, out[1].owner) == ("w.yaml", "team:tenancy")
    assert out[1].details["subjects"] == ["/r/isolation/TEST-x.xml"]
    # a warning is not an error: nothing to waive, still reported
    out = apply_waivers("evidence_validity", [finding("warning")], [waiver(AT + timedelta(days=30))], AT, "t", None)
    assert [(f.severity, f.rule) for f in out] == [("warning", "readable"), ("warning", "waiver-matches")]
    # one that waives something, or is not in force, is not reported as unused
    assert [f.rule for f in apply_waivers("evidence_validity", [finding()], [waiver(AT + timedelta(days=30))],
                                          AT, "t", None)] == ["readable"]  # fmt: skip


def test_a_subject_with_brackets_is_matched_literally_too():
    """pytest's parametrised ids (``test_search[query=long]``) are character classes to fnmatch: a
    waiver naming the finding's subject exactly must match it."""
    subject = "tests/perf/test_search.py::test_search[query=long] / time"
    out = apply_waivers("evidence_validity", [finding(subject=subject)], [waiver(AT + timedelta(days=30), subject=subject)],
                        AT, "t", None)  # fmt: skip
    assert [f.severity for f in out] == ["waived"]


def test_expired_waiver_no_longer_applies_and_is_a_finding():
    out = apply_waivers("evidence_validity", [finding()], [waiver(AT - timedelta(seconds=1))], AT, "team:x", None)
    assert [(f.severity, f.rule) for f in out] == [("error", "readable"), ("warning", "waiver-expired")]


def test_waiver_expiring_soon_warns():
    out = apply_waivers("evidence_validity", [finding()], [waiver(AT + timedelta(days=2))], AT, "team:x", None)
    assert [(f.severity, f.rule) for f in out] == [("waived", "readable"), ("warning", "waiver-expiring")]


def test_an_errored_gate_names_who_looks_into_it_and_where():
    """A gate that could not be evaluated has no findings of its own rules; the one that says so
    names the gate's owner and runbook, as every finding does."""
    from phase8_assets.evidence.config import load_config
    from phase8_assets_tests.conftest import DATA

    config = load_config([str(DATA)])
    result = errored(GATES["error_budget"], "ValueError: boom", config)
    (found,) = result.findings
    assert (result.status, found.severity, found.rule, found.observed) == ("error", "error", "gate-evaluated",
                                                                            "ValueError: boom")  # fmt: skip
    assert found.owner == config.owner_for("error_budget") and found.owner.startswith("team:")
    assert found.runbook == config.runbook_for("error_budget") and found.runbook
    assert found.evidence == config.source


def test_verdict():
    ok = conclude(SPEC, [finding("warning")], "ctx")
    assert verdict([ok, skipped(GATES["evidence_freshness"], "paused")]) == "pass"
    assert verdict([ok, errored(GATES["evidence_freshness"], "crashed")]) == "blocked"
    assert verdict([conclude(SPEC, [finding()], "ctx")]) == "blocked"
    nonblocking = GateResult("cost", "fail", False, "x", [])
    assert verdict([ok, nonblocking]) == "pass"


def test_report_validates_and_renders():
    results = [
        conclude(SPEC, [finding(), finding("warning")], "1 file read"),
        skipped(GATES["evidence_freshness"], "paused"),
    ]
    report = build_report(results, {"version": "1.0", "commit": "abcdef1"}, ["/r"], AT, "run-1")
    assert report["verdict"] == "blocked" and report["evaluated_at"] == "2026-11-20T12:00:00Z"
    suite = ET.fromstring(to_junit(report)).find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["evidence_validity"].find("failure") is not None
    assert "TEST-x.xml" in cases["evidence_validity"].find("failure").text
    assert cases["evidence_freshness"].find("skipped") is not None
    md = to_markdown(report)
    assert "BLOCKED" in md and "| evidence_validity | error |" in md
    assert json.loads(json.dumps(report)) == report


def test_junit_report_stays_well_formed_when_evidence_text_holds_control_characters():
    """A benchmark's panic in ANSI colours (go test text), a NUL in a test id: evidence text that
    reaches a finding. XML 1.0 cannot hold those characters; written as they are, the CI's JUnit
    parser refused the whole gate report. They are written as escapes (\\x1b) instead."""
    panic = Finding("error", "BenchmarkBoom\x00", "tool-reported-failure", "panic: \x1b[31mredis down\x1b[0m",
                    "no failure", "bench/go.txt", "team:x", None)  # fmt: skip
    report = build_report([conclude(SPEC, [panic], "1 failure\x07")], {"version": "1", "commit": "abcdef1"}, ["/r"], AT)
    case = ET.fromstring(to_junit(report)).find("testsuite/testcase[@name='evidence_validity']/failure")
    assert "panic: \\x1b[31mredis down\\x1b[0m" in case.text and "BenchmarkBoom\\x00" in case.text
    assert case.get("message").startswith("1 failure\\x07")


def test_report_never_carries_a_secret():
    leaky = Finding("error", "x", "readable", "postgres://u:hunter2@db/x", "", None, "team:x", None)
    report = build_report([conclude(SPEC, [leaky], "c")], {"version": "1", "commit": "abcdef1"}, ["/r"], AT)
    assert "hunter2" not in json.dumps(report)


def test_a_finding_must_have_the_contract_fields():
    bad = GateResult("evidence_validity", "maybe", True, "x", [])
    with pytest.raises(Exception, match="maybe"):
        build_report([bad], {"version": "1", "commit": "abcdef1"}, ["/r"], AT)


def test_root_id_is_a_short_slug_and_the_uri_hash():
    uri = "/srv/evidence/data/scenarios/broken-evidence"
    assert root_id(uri) == "broken-evidence-" + hashlib.sha256(uri.encode()).hexdigest()[:8]
    assert root_id("s3://ci-artifacts/phase8/").startswith("phase8-")
    assert root_id("/a/demo") != root_id("/b/demo")  # same last part, different roots


def test_a_run_reported_so_far_counts_its_missing_gates_as_errors():
    at = datetime(2026, 11, 20, tzinfo=UTC)
    done = conclude(GATES["evidence_validity"], [], "3 files").as_dict()
    report = assemble([done], {"version": "10.4.0", "commit": "abc"}, ["/srv/e/demo"], at, "run-1", "not yet")
    statuses = {g["gate"]: (g["status"], g["summary"]) for g in report["gates"]}
    assert statuses["evidence_validity"][0] == "pass" and len(statuses) == len(GATES)
    assert statuses["perf_budgets"] == ("error", "could not be evaluated: not yet") and report["verdict"] == "blocked"
    assert str(report_folder(report)) == f"{root_id('/srv/e/demo')}/10.4.0"


def test_html_report_leads_with_a_coloured_verdict_and_shows_each_waiver():
    from phase8_assets.domains.gate_report import banner_of, report_sections
    from phase8_assets.shared.reports import render_html

    waived = apply_waivers(
        "evidence_validity", [finding(), finding(subject="/r/y.xml")], [waiver(AT + timedelta(days=30))], AT, "x", None
    )
    results = [conclude(SPEC, waived, "2 files"), skipped(GATES["evidence_freshness"], "paused")]
    report = build_report(results, {"version": "1.0", "commit": "abcdef1"}, ["/r"], AT, "run-1")
    assert banner_of(report) == ("BLOCKED by 1 gate(s): evidence_validity", "fail")
    page = render_html("t", report_sections(report), "", banner_of(report))
    assert '<div class="banner fail" role="status">BLOCKED by 1 gate(s): evidence_validity</div>' in page
    md = to_markdown(report)
    # The waiver's own owner, ticket and expiry, beside the waived finding; paths relative to the root.
    assert "| waived | isolation/TEST-x.xml |" in md
    assert "waived by team:tenancy (CHAT-1, expires 2026-12-20T12:00:00Z)" in md
    sections = report_sections(report)
    assert [row[0] for row in sections[0].table[1]][0] == "evidence_validity"  # blocking failure first


def test_links_turn_runbooks_evidence_and_reports_into_urls():
    from phase8_assets.domains.gate_report import console_report, report_link, root_id

    links = {"runbooks": "https://wiki.example.com/ops/", "evidence": "s3://ci/10.4.0", "reports": "https://r.example"}
    results = [conclude(SPEC, [finding()], "1 file")]
    linked = build_report(results, {"version": "1.0", "commit": "abcdef1"}, ["/r"], AT, "run-1", links)
    text = console_report(linked)
    assert (
        "runbook https://wiki.example.com/ops/rb.md" in text and "evidence s3://ci/10.4.0/isolation/TEST-x.xml" in text
    )
    assert "| https://wiki.example.com/ops/rb.md |" in to_markdown(linked)
    assert report_link(linked) == f"https://r.example/{root_id('/r')}/1.0/gate-report.html"
    plain = build_report(results, {"version": "1.0", "commit": "abcdef1"}, ["/r"], AT, "run-1")
    assert "runbook rb.md" in console_report(plain) and report_link(plain) is None  # relative to the root
