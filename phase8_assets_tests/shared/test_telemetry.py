"""Telemetry as it leaves the process: a real OTLP/HTTP receiver, and the JSON-lines files read back."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from phase8_assets.domains.slo import Selector, sli_events
from phase8_assets.evidence import otlp_metrics
from phase8_assets.shared import telemetry
from phase8_assets.warehouse import connect
from phase8_assets.warehouse.store import record_otlp_file
from phase8_assets_tests.conftest import DATA, SCENARIOS, gate_report

pytestmark = pytest.mark.slow
SECRETS = ("demo-token-not-real", "demo-not-a-secret")


class Receiver:
    """An OTLP/HTTP endpoint on 127.0.0.1 that decodes what the real exporters post."""

    def __init__(self):
        self.bodies: dict[str, list[bytes]] = {"/v1/traces": [], "/v1/metrics": [], "/v1/logs": []}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.bodies.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def decoded(self, path, message):
        out = []
        for body in self.bodies[path]:
            request = message()
            request.ParseFromString(body)
            out.append(request)
        return out


@pytest.fixture
def otel_on(monkeypatch):
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    telemetry.shutdown()
    yield
    telemetry.shutdown()


def attrs(items) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in items}


def test_a_blocked_gate_reaches_a_real_otlp_receiver(otel_on, monkeypatch, home):
    receiver = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    report = gate_report([SCENARIOS / "slo-fast-burn"], home)
    telemetry.shutdown()  # flushes the batch processors
    receiver.server.shutdown()
    spans = [
        span
        for request in receiver.decoded("/v1/traces", ExportTraceServiceRequest)
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    root = next(s for s in spans if s.name == "release_gate")
    assert attrs(root.attributes)["cicd.pipeline.run.id"] == report["run_id"]
    assert attrs(root.attributes)["cicd.pipeline.result"] == "failure"
    assert attrs(root.attributes)["phase8.verdict"] == "blocked"
    checks = {attrs(s.attributes)["test.case.name"]: s for s in spans if s.name.startswith("check ")}
    assert set(checks) == {g["gate"] for g in report["gates"]}
    burn = checks["slo_burn_rate"]
    assert attrs(burn.attributes)["test.case.result.status"] == "fail"
    step = next(s for s in spans if s.span_id == burn.parent_span_id)
    assert step.name == "gates__slo_burn_rate" and step.parent_span_id == root.span_id
    assert {s.trace_id for s in spans} == {root.trace_id}
    resource = attrs(receiver.decoded("/v1/traces", ExportTraceServiceRequest)[0].resource_spans[0].resource.attributes)
    assert resource["service.name"] == "phase8_assets"

    metrics = {
        m.name: m
        for request in receiver.decoded("/v1/metrics", ExportMetricsServiceRequest)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    evaluations = {
        (attrs(p.attributes)["phase8.gate"], attrs(p.attributes)["phase8.gate.status"]): p.as_int
        for p in metrics["phase8.gate.evaluations"].sum.data_points
    }
    assert evaluations[("slo_burn_rate", "fail")] == 1 and evaluations[("error_budget", "pass")] == 1
    kinds = {attrs(p.attributes)["phase8.evidence.kind"] for p in metrics["phase8.evidence.files"].sum.data_points}
    assert {"otel_metrics", "benchmarks", "drill_journals"} <= kinds
    burn_rates = metrics["phase8.slo.burn_rate"].gauge.data_points
    assert any(attrs(p.attributes)["phase8.slo"] == "chat-api-availability" and p.as_double > 14.4 for p in burn_rates)

    events = [
        record
        for request in receiver.decoded("/v1/logs", ExportLogsServiceRequest)
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]
    blocked = [e for e in events if e.event_name == "phase8.gate.blocked"]
    assert len(blocked) == 1
    found = attrs(blocked[0].attributes)
    assert found["phase8.gate"] == "slo_burn_rate" and found["phase8.finding.subject"] == "chat-api-availability"
    assert found["phase8.finding.owner"] == "team:api" and found["phase8.finding.runbook"].endswith("slo-burn-rate.md")
    verdict = [e for e in events if e.event_name == "phase8.audit.gate.verdict"]
    assert len(verdict) == 1  # the audit trail's record of the verdict, for a collector to ship to a SIEM
    audited = attrs(verdict[0].attributes)
    assert audited["phase8.audit.outcome"] == "blocked" and audited["ocsf.class_uid"] == 2003
    assert audited["cicd.pipeline.run.id"] == report["run_id"] and len(audited["phase8.audit.hash"]) == 64
    assert json.loads(verdict[0].body.string_value)["metadata"]["version"] == "1.5.0"
    everything = b"".join(b for bodies in receiver.bodies.values() for b in bodies)
    for secret in SECRETS:
        assert secret.encode() not in everything


def test_without_an_endpoint_telemetry_is_otlp_json_lines_the_slo_reader_reads_back(otel_on, home):
    report = gate_report([DATA], home)
    telemetry.flush()
    folder = home / "telemetry"
    traces = [json.loads(line) for line in (folder / "traces.jsonl").read_text().splitlines()]
    span = traces[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and all(c in "0123456789abcdef" for c in span["traceId"])  # hex, not base64
    assert isinstance(span["kind"], int)  # integer enums, not names
    # The metrics file is OTLP/JSON our own reader accepts...
    data = (folder / "metrics.jsonl").read_bytes()
    assert otlp_metrics.read(data, "metrics.jsonl").summary["points"] > 0
    # ...and an SLO over it can be evaluated: gate evaluations that passed vs all.
    with connect(home / "readback.duckdb") as conn:
        spool = otlp_metrics.read(data, "metrics.jsonl", spool_dir=home).spool
        record_otlp_file(conn, "/t", "sha", "metrics.jsonl", spool, report_time())
        total = sli_events(
            conn, ["/t"], Selector("phase8.gate.evaluations", "phase8_assets", (), None), versions=["sha"]
        )
        good = sli_events(
            conn,
            ["/t"],
            Selector("phase8.gate.evaluations", "phase8_assets", (("phase8.gate.status", "~pass|warn"),), None),
            versions=["sha"],
        )
    assert total.cum[-1] == len(report["gates"]) and good.cum[-1] == len(report["gates"])
    for secret in SECRETS:
        assert secret not in "".join(p.read_text() for p in folder.glob("*.jsonl"))


def report_time():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_sdk_disabled_writes_nothing(home):
    from phase8_assets.shared import telemetry

    telemetry.shutdown()
    gate_report([DATA], home)
    assert not (home / "telemetry").exists()
    # nothing set up either: no providers, no instruments, no redaction of attributes never sent
    assert telemetry._state == {} and telemetry._instruments == {}
