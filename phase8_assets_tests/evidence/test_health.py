"""The health_responses reader: the IETF draft's own examples, as published, and bad input."""

import pytest

from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.health import read
from phase8_assets.evidence.runbooks import read as read_runbook


@pytest.mark.realdata
def test_the_drafts_example_keeps_the_contract_and_its_worst_check_is_warn(real_samples):
    path = real_samples / "health/ietf_draft_health_example.json"
    result = read(path.read_bytes(), str(path))
    assert result.summary["violations"] == []
    assert (result.summary["status"], result.summary["worst_check"]) == ("pass", "warn")
    assert len(result.summary["checks"]) == 7  # five keys, two with two nodes
    assert result.observed_at.isoformat() == "2018-01-17T03:36:48+00:00"


@pytest.mark.realdata
def test_draft_01s_legacy_keys_break_the_contract_and_are_named(real_samples):
    path = real_samples / "health/ietf_draft01_health_example_legacy_keys.json"
    result = read(path.read_bytes(), str(path))
    reasons = " ".join(v["reason"] for v in result.summary["violations"])
    for key in ("details", "releaseID", "serviceID"):
        assert key in reasons
    assert result.summary["checks"] == [] and result.observed_at is None  # no `checks`: no evidence time


def test_a_check_with_draft_01_names_is_reported_field_by_field():
    body = b'{"status": "pass", "checks": {"db:rt": [{"status": "pass", "metricValue": 3, "type": "datastore"}]}}'
    fields = [v["field"] for v in read(body, "x.json").summary["violations"]]
    assert fields == ["checks.db:rt[0].metricValue", "checks.db:rt[0].type"]


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_what_is_not_a_json_object_is_rejected(body):
    with pytest.raises(EvidenceError) as exc:
        read(body, "x.json")
    assert exc.value.field == "(document)" and "application/health+json" in exc.value.reason


def test_a_secret_in_a_checks_output_is_redacted_when_read():
    body = (
        b'{"status": "fail", "checks": {"db": [{"status": "fail", "output": "connect postgres://app:hunter2@db/x"}]}}'
    )
    assert "hunter2" not in str(read(body, "x.json").summary)


def test_runbook_front_matter_review_every_and_serves_are_checked():
    head = '---\ntitle: "T"\nowner: team:sre\nreviewed: "2026-10-01"\n'
    ok = read_runbook(
        (head + "review_every: P90D\nserves: [supportability, Phase8X]\n---\n# T\nSteps.\n").encode(), "r.md"
    )
    assert ok.summary["serves"] == ["supportability", "Phase8X"] and ok.summary["review_every"] == "P90D"
    with pytest.raises(EvidenceError, match="review_every"):
        read_runbook((head + "review_every: quarterly\n---\n").encode(), "r.md")
    with pytest.raises(EvidenceError, match="serves"):
        read_runbook((head + "serves: {gate: supportability}\n---\n").encode(), "r.md")


@pytest.mark.realdata
def test_phase8_validate_recognises_health_responses_and_calls_contract_violations_invalid(real_samples):
    from click.testing import CliRunner

    from phase8_assets.cli import main

    good, legacy = (
        real_samples / "health" / n
        for n in ("ietf_draft_health_example.json", "ietf_draft01_health_example_legacy_keys.json")
    )
    assert CliRunner().invoke(main, ["validate", str(good)]).exit_code == 0
    result = CliRunner().invoke(main, ["validate", str(legacy)])
    assert result.exit_code == 1 and "INVALID" in result.output and "releaseID" in result.output


@pytest.mark.parametrize(
    ("top", "check", "status", "worst"),
    [
        ("up", "ok", "pass", "pass"),
        ("ok", "up", "pass", "pass"),
        ("down", "error", "fail", "fail"),
        ("pass", "down", "pass", "fail"),
    ],
)
def test_the_drafts_status_aliases_are_read_as_pass_and_fail(top, check, status, worst):
    """The draft: pass has the aliases "ok" (Node's Terminus) and "up", fail has "error" and "down";
    a response using them keeps the contract and its status is the one they stand for."""
    body = (
        f'{{"status": "{top}", "checks": {{"db:rt": [{{"status": "{check}", "time": "2026-11-20T11:00:00Z"}}]}}}}'
    ).encode()
    summary = read(body, "x.json").summary
    assert summary["violations"] == []
    assert (summary["status"], summary["worst_check"], summary["checks"][0]["status"]) == (status, worst, worst)


@pytest.mark.parametrize("word", ["UP", "PASS", "healthy", "warning"])
def test_a_status_that_is_neither_a_status_nor_a_drafts_alias_breaks_the_contract(word):
    summary = read(f'{{"status": "{word}"}}'.encode(), "x.json").summary
    assert summary["status"] is None and "status" in [v["field"] for v in summary["violations"]]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "UP", "components": {"db": {"status": "UP", "details": {"database": "PostgreSQL"}}}},
        {"status": "OUT_OF_SERVICE"},
        {"status": "DOWN", "details": {"diskSpace": {"status": "UP"}}},  # Spring Boot 1.x
    ],
)
def test_a_spring_boot_actuator_body_is_named_as_such_not_a_spelling_mistake(body):
    """/actuator/health answers {"status": "UP", "components": ...}: not application/health+json. It
    broke the contract as "'components' was unexpected (check the spelling)", which sent its owner
    looking for a typo; the first violation now says what the file is and what is expected."""
    import json

    first = read(json.dumps(body).encode(), "x.json").summary["violations"][0]
    assert first["field"] == "(document)" and "Spring Boot Actuator" in first["reason"]
    assert "application/health+json" in first["reason"]


def test_a_string_cut_in_the_middle_of_a_character_is_a_rejection_naming_its_field():
    """JSON.stringify writes half of an emoji as a lone ``\\ud83d`` escape (an output cut to N UTF-16
    units). Read as it was, it reached the gate's findings, which no UTF-8 output can hold: the
    supportability gate could not be evaluated, with a DuckDB conversion error naming no file.
    Now the response is rejected naming the field; a whole character written as a pair reads."""
    body = (
        b'{"status": "warn", "checks": {"uptime": [{"status": "warn", "time": "2026-11-20T11:40:00Z", '
        b'"output": "restart pending %s"}]}}'
    )
    with pytest.raises(EvidenceError) as caught:
        read(body % b"\\ud83d", "chat-api.json")
    assert caught.value.field == "checks.uptime[0].output" and "lone UTF-16 surrogate" in caught.value.reason
    with pytest.raises(EvidenceError, match="lone UTF-16 surrogate"):
        read(b'{"status": "pass", "checks": {"disk\\udc00": []}}', "chat-api.json")
    whole = read(body % b"\\ud83d\\ude80", "chat-api.json")
    assert whole.summary["checks"][0]["output"] == "restart pending \U0001f680"
