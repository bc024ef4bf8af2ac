"""The one way out of a reader: hostile documents become named rejections, every string is redacted."""

import json

import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.evidence import EvidenceError, read_evidence, readers
from phase8_assets_tests.conftest import DATA
from phase8_assets_tests.corpus.secrets import SECRETS, leaks

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


@pytest.mark.parametrize("kind", sorted(readers()))
def test_a_100000_deep_document_is_a_named_rejection_for_every_reader(kind):
    with pytest.raises(EvidenceError) as info:
        read_evidence(kind, DEEP_OBJECT, "deep.json")
    assert len(str(info.value)) < 2000  # named, not the document echoed back


def test_validate_names_a_deeply_nested_json_file_without_a_traceback(tmp_path):
    path = tmp_path / "journal.json"
    path.write_bytes(DEEP_ARRAY)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert f"INVALID {path}: (document): nested too deeply" in result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["validate", "--kind", "drill_journals", str(path)])
    assert result.exit_code == 1 and "nested too deeply" in result.output


def test_strings_leaving_a_reader_and_its_errors_are_redacted():
    journal = json.loads((DATA / "evidence/drills/db-failover").glob("*.json").__next__().read_bytes())
    secret = SECRETS[0]
    journal["experiment"]["steady-state-hypothesis"]["title"] = secret.in_context()
    journal["experiment"]["tags"].append(secret.in_context())
    result = read_evidence("drill_journals", json.dumps(journal).encode(), "j.json")
    assert not leaks(repr(result)) and "[REDACTED]" in repr(result)
    journal["status"] = SECRETS[1].in_context()
    with pytest.raises(EvidenceError) as info:
        read_evidence("drill_journals", json.dumps(journal).encode(), "j.json")
    assert info.value.field == "status" and not leaks(str(info.value))


@pytest.mark.parametrize(
    ("kind", "document", "field"),
    [
        (
            "otel_metrics",
            {"resourceMetrics": [{"resource": ["not", "an", "object"]}]},
            "line 1: resourceMetrics[0].resource",
        ),
        (
            "otel_metrics",
            {"resourceMetrics": [{"scopeMetrics": ["text"]}]},
            "line 1: resourceMetrics[0].scopeMetrics[0]",
        ),
        ("benchmarks", {"context": [], "benchmarks": []}, "context"),
        ("benchmarks", {"commit_info": [], "benchmarks": [], "datetime": "2026-11-01T00:00:00Z"}, "commit_info"),
        ("foreign_exceptions", {"version": "v1.25.0", "ignore": ["SNYK-1"]}, "ignore"),
        ("slo_definitions", {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": ["x"]}, "metadata"),
        ("health_responses", json.loads('{"status": "pass"}') | {"checks": {}}, None),
    ],
)
def test_a_value_of_the_wrong_type_is_rejected_at_its_field(kind, document, field):
    data = json.dumps(document).encode()
    if field is None:  # the control: a well-typed document is read
        read_evidence(kind, data, "ok.json")
        return
    with pytest.raises(EvidenceError) as info:
        read_evidence(kind, data, "x.json")
    assert info.value.field == field and "expected an" in info.value.reason


def test_numbers_beyond_the_float_range_and_duplicate_keys_are_rejected_by_name():
    journal = json.loads((DATA / "evidence/drills/db-failover").glob("*.json").__next__().read_bytes())
    activity = next(a for a in journal["run"] if "duration" in a)
    activity["duration"] = 10**400
    with pytest.raises(EvidenceError, match="expected a number of seconds"):
        read_evidence("drill_journals", json.dumps(journal).encode(), "j.json")
    with pytest.raises(EvidenceError, match="got 99999999999999999999d"):
        read_evidence("slo_definitions", b"apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n"
                      b"  timeWindow: [{duration: 99999999999999999999d, isRolling: true}]\n", "s.yaml")  # fmt: skip
    with pytest.raises(EvidenceError) as info:
        read_evidence("health_responses", b'{"status": "pass", "status": "fail"}', "h.json")
    assert info.value.field == "(document)" and "duplicate key 'status'" in info.value.reason
