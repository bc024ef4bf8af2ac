"""``phase8 validate`` on single files: the kind is told from the file's content as its tool wrote
it, and a format phase8 knows but does not read on its own says where it belongs."""

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.defs.resources import load_evidence_config
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.collect import WAIVER_KIND, collect
from phase8_assets.validation import guess_kind, validate_path
from phase8_assets_tests.conftest import DATA

CANNOT_TELL = "cannot tell the evidence kind"


def test_every_demo_file_is_told_the_kind_its_root_gives_it():
    """Guessing agrees with ``phase8.yaml`` on all the demo's evidence (25 kinds, 378 files; waivers
    are not evidence of a kind: their schema is checked)."""
    batch = collect(load_evidence_config([str(DATA)]))
    assert len(batch.files) > 300 and not batch.rejections
    evidence = [f for f in batch.files if f.kind != WAIVER_KIND]
    assert len({f.kind for f in evidence}) == 25
    wrong = {f.uri: (f.kind, guess_kind(Path(f.uri), Path(f.uri).read_bytes())) for f in evidence}
    assert {uri: kinds for uri, kinds in wrong.items() if kinds[0] != kinds[1]} == {}


def test_every_demo_file_validates_on_its_own():
    folders = [str(DATA / folder) for folder in ("evidence", "policy", "waivers", "docs")]
    result = CliRunner().invoke(main, ["validate", *folders, "--json"])
    out = json.loads(result.output)
    assert result.exit_code == 0 and out["invalid"] == [] and len(out["valid"]) == 380
    assert sum(line.endswith(": Waiver") for line in out["valid"]) == 2


@pytest.mark.realdata
def test_real_files_are_told_their_kind_or_where_they_belong(real_samples):
    lines = {}
    for line, ok in validate_path(real_samples):
        path, rest = line.split(": ", 1)
        lines[Path(path).relative_to(real_samples).as_posix()] = (ok, rest)
    assert [p for p, (_, rest) in lines.items() if CANNOT_TELL in rest] == []
    told = {p: rest.split(" (")[0] for p, (ok, rest) in lines.items() if ok}
    for folder, kind in (("benchmarks/pytest", "benchmarks"), ("benchmarks/google", "benchmarks"),
                         ("otel/otlp_metrics", "otel_metrics"), ("policy/kyverno", "foreign_exceptions"),
                         ("policy/trivy", "foreign_exceptions"), ("policy/snyk", "foreign_exceptions"),
                         ("policy/odcs", "data_contracts"), ("slo/openslo", "slo_definitions"),
                         ("finops/focus_sample", "cost_exports"), ("chaos/ctk_journal", "drill_journals")):  # fmt: skip
        matching = [p for p in lines if p.startswith(folder)]
        assert matching and all(told.get(p) == kind for p in matching), (folder, [lines[p] for p in matching])
    assert lines["otel/otlp_trace.json"][1].startswith("resourceSpans: OTLP traces are not evidence")
    assert lines["otel/otlp_logs.json"][1].startswith("resourceLogs: OTLP logs are not evidence")
    for name, what in (("plugins/slack_bolt-js-starter-template_manifest.json", "a Slack app manifest"),
                       ("plugins/mattermost_plugin-github_plugin.json", "a Mattermost plugin manifest"),
                       ("plugins/mattermost_app_hello-lifecycle_manifest.json", "a Mattermost App manifest"),
                       ("plugins/grafana_clock-panel_MANIFEST.txt", "a Grafana plugin MANIFEST.txt")):  # fmt: skip
        assert lines[name] == (False, f"(document): {what}: phase8 reads it inside a plugin bundle: check the "
                                      "bundle with `phase8 plugin verify`")  # fmt: skip
    # Sloth specs are SLO definitions whose reader explains the OpenSLO form it needs.
    assert "is a Sloth spec, not OpenSLO" in lines["slo/sloth_getting-started.yml"][1]


K6 = {"root_group": {}, "options": {}, "state": {"testRunDurationMs": 1}, "metrics": {"http_reqs": {}}}
FOCUS_HEADER = (
    b"\xef\xbb\xbfBilledCost,BillingPeriodStart,ChargePeriodStart,ServiceName\n1,2026-11-01,2026-11-01,chat\n"
)


KIND_CASES = [
    ("summary.json", json.dumps(K6).encode(), "benchmarks"),
    ("hyperfine.json", b'{"results": [{"command": "x", "mean": 1}]}', "benchmarks"),
    ("bench-2026-11-01.txt", b"goos: linux\nBenchmarkSend-8   \t 1000\t  1234.5 ns/op\nPASS\n", "benchmarks"),
    ("metrics.jsonl", b'{"resourceMetrics": []}\n{"resourceMetrics": []}\n', "otel_metrics"),
    ("focus.csv.gz", gzip.compress(FOCUS_HEADER, mtime=0), "cost_exports"),
    ("focus.csv", FOCUS_HEADER, "cost_exports"),
    ("athena.csv", FOCUS_HEADER.lower(), "cost_exports"),  # Athena/Glue lower-case every column; the reader reads it
    ("x-Manifest.json", b'{"executionId": "e", "dataFiles": ["s3://b/k.parquet"]}', "cur_exports"),
    ("inventory.json", b'{"apiVersion":"phase8/v1","kind":"DataInventory"}', "data_inventory"),
    (".trivyignore.yaml", b"vulnerabilities:\n  - id: CVE-1\n", "foreign_exceptions"),
    (".trivyignore", b"# Accept the risk\nAVD-DS-0002\nAVD-DS-0019\n", "foreign_exceptions"),  # Trivy's plain form
    ("c.odcs.yaml", b"apiVersion: v3.0.2\nkind: DataContract\n", "data_contracts"),
    ("unknown.json", b'{"hello": "world"}', None),
    ("truncated.csv.gz", gzip.compress(FOCUS_HEADER, mtime=0)[:12], None),
    ("array.json", b"[1, 2]", None),
    ("broken.json", b'{"benchmarks": [', None),
]


@pytest.mark.parametrize(("name", "data", "kind"), KIND_CASES, ids=[case[0] for case in KIND_CASES])
def test_a_kind_is_told_from_the_content_its_tool_writes(name, data, kind):
    assert guess_kind(Path(name), data) == kind


ELSEWHERE_CASES = [
    ("cur.csv", b"identity_line_item_id,line_item_unblended_cost\n", "(document)", "an AWS CUR data file"),
    ("bad.yaml", b"a: [1, 2\n", "(document)", "invalid YAML"),
    ("deep.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "(document)", "nested too deeply"),
    ("plugin.json", b'{"apiVersion": "phase8/v1", "kind": "PluginManifest"}', "(document)", "a phase8 plugin"),
]


@pytest.mark.parametrize(
    ("name", "data", "field", "reason"), ELSEWHERE_CASES, ids=[case[0] for case in ELSEWHERE_CASES]
)
def test_a_format_phase8_does_not_read_on_its_own_says_where_it_belongs(name, data, field, reason):
    with pytest.raises(EvidenceError) as exc:
        guess_kind(Path(name), data)
    assert exc.value.field == field and reason in exc.value.reason


@pytest.mark.parametrize(
    ("expires", "reason"),
    [
        ('"2027-02-01T00:00:00"', "expires: the timestamp '2027-02-01T00:00:00' has no time zone"),
        ('"next friday!!"', "expires: expected an ISO 8601 timestamp"),
    ],
)
def test_a_waiver_is_validated_as_the_gate_reads_it(tmp_path, expires, reason):
    """The schema takes any string of 10 characters as an expiry: validate said ``ok`` for a waiver
    the gate then refused (exception-valid, an error of a blocking gate)."""
    text = (DATA / "waivers/gov-311.yaml").read_text().replace('"2027-02-01T00:00:00Z"', expires)
    path = tmp_path / "w.yaml"
    path.write_text(text + "---\n" + (DATA / "waivers/gov-298.yaml").read_text())
    lines = list(validate_path(path))
    assert lines[1] == (f"{path}#1: Waiver", True)
    assert not lines[0][1] and lines[0][0].startswith(f"{path}#0: {reason}"), lines[0]


@pytest.mark.parametrize(
    "name", ["evidence/health/chat-api.json", "evidence/governance/inventory.json", "evidence/drills/cache-loss"]
)
def test_a_json_file_cut_short_is_named_as_broken_json_not_as_an_unknown_kind(tmp_path, name):
    """A tool killed while writing (or a copy cut short): validating the one file said only "cannot
    tell the evidence kind; pass --kind", sending the operator after the wrong cause."""
    source = DATA / name
    source = source if source.is_file() else sorted(source.glob("*.json"))[0]
    data = source.read_bytes()
    path = tmp_path / source.name
    path.write_bytes(data[: len(data) // 2])
    [(line, ok)] = list(validate_path(path))
    assert not ok and CANNOT_TELL not in line, line
    assert line.startswith(f"{path}: (document): line ") and ": not valid JSON (" in line, line
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1 and "not valid JSON" in result.output
