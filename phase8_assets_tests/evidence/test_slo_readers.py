"""OpenSLO and OTLP/JSON readers: every real sample has a defined outcome; the rules file is current."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from phase8_assets.domains.slo import resolve
from phase8_assets.domains.slo_rules import prometheus_rules
from phase8_assets.evidence import EvidenceError, openslo, otlp_metrics
from phase8_assets.evidence.otlp_metrics import iter_points
from phase8_assets_tests.conftest import DATA, REPO


def read_slo(real_samples, name):
    return openslo.read((real_samples / "slo" / name).read_bytes(), name)


@pytest.mark.realdata
def test_real_openslo_files_have_defined_outcomes(real_samples):
    occurrences = read_slo(real_samples, "openslo_budgeting_occurences-slo.yaml")
    assert occurrences.records[0]["spec"]["budgetingMethod"] == "Occurrences" and not occurrences.warnings
    # 1m is one minute by the spec: read as written, with a warning that says so.
    odd = read_slo(real_samples, "openslo_budgeting_timeslices-slo.yaml")
    assert "is 0:01:00 by the OpenSLO spec" in odd.warnings[0]
    # Its two objectives (an internal 99.5 % and the 99 % SLA) are each judged, named by displayName.
    slo, sla = resolve(odd.records)
    assert (slo.name, sla.name) == ("service-availability/Internal objective", "service-availability/SLA")
    assert slo.window.total_seconds() == 60 and slo.target == 0.995 and sla.target == 0.99
    # ...and its `type: Any` metric sources cannot be evaluated: the gate says so (fail closed).
    assert "cannot be evaluated here" in slo.problem and "cannot be evaluated here" in sla.problem
    # An objective without op is a ratio objective (its second objective); empty alertPolicies: defaults.
    assert slo.conditions[0].name == "page-1h"
    alpha = read_slo(real_samples, "sloth_openslo-getting-started.yml")
    assert "openslo/v1alpha read as openslo/v1" in alpha.warnings[0]
    (converted,) = resolve(alpha.records)
    assert converted.window.days == 30 and converted.target == 0.999 and converted.rolling
    assert (
        read_slo(real_samples, "openslo_low_traffic_timeslices-slo.yaml").records[0]["spec"]["budgetingMethod"]
        == "Timeslices"
    )
    assert read_slo(real_samples, "openslo_budgeting_ratio-timeslices.yaml").records[0]["name"] == "main-page"
    for sloth in ("sloth_getting-started.yml", "sloth_k8s-getting-started.yml", "sloth_no-alerts.yml",
                  "sloth_windows_custom-30d.yaml"):  # fmt: skip
        with pytest.raises(EvidenceError, match="Sloth spec, not OpenSLO") as info:
            read_slo(real_samples, sloth)
        assert info.value.field == "apiVersion"


@pytest.mark.realdata
def test_real_otlp_metrics_example(real_samples):
    rows = list(iter_points((real_samples / "otel/otlp_metrics.json").read_text().splitlines(keepends=True)))
    by_metric = {r[0]: r for r in rows}
    assert set(by_metric) == {"my.counter", "my.gauge", "my.histogram", "my.exponential.histogram"}
    counter = by_metric["my.counter"]
    assert (counter[1], counter[3], counter[4], counter[8]) == ("my.service", "sum", 1, 5.0)
    assert json.loads(counter[2]) == {"my.counter.attr": "some value"}
    histogram = by_metric["my.histogram"]
    assert (histogram[8], histogram[10], histogram[11]) == (2.0, [1.0], [1.0, 1.0])
    exp = by_metric["my.exponential.histogram"]  # scale 0: base 2; offset 1 -> bounds 4, 8
    assert exp[10] == [0.0, 4.0, 8.0] and exp[11] == [1.0, 0.0, 2.0, 0.0] and exp[8] == 3.0
    result = otlp_metrics.read((real_samples / "otel/otlp_metrics.json").read_bytes(), "x")
    assert result.summary["points"] == 4 and result.observed_at.year == 2018
    for other in ("otlp_trace.json", "otlp_logs.json", "otlp_events.json"):
        with pytest.raises(EvidenceError, match="resourceMetrics"):
            otlp_metrics.read((real_samples / "otel" / other).read_bytes(), other)


def test_bad_otlp_is_rejected_with_the_path():
    line = (DATA / "evidence/otel").glob("*.jsonl").__next__().read_text().splitlines()[0]
    doc = json.loads(line)
    point = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
    time_ns, point["timeUnixNano"] = point["timeUnixNano"], "yesterday"
    with pytest.raises(EvidenceError) as info:
        otlp_metrics.read(json.dumps(doc).encode(), "x")
    assert (
        info.value.field == "line 1: resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].timeUnixNano"
    )
    point["timeUnixNano"] = time_ns
    point["bucketCounts"] = point["bucketCounts"][:-1]
    with pytest.raises(EvidenceError, match="expected 7 counts for 6 bounds"):
        otlp_metrics.read(json.dumps(doc).encode(), "x")
    with pytest.raises(EvidenceError, match="line 2"):
        otlp_metrics.read((line + "\n" + line[:100] + "\n").encode(), "x")
    with pytest.raises(EvidenceError, match="no metric data points"):
        otlp_metrics.read(b'{"resourceMetrics": []}\n', "x")


def test_times_beyond_what_the_warehouse_holds_are_named_errors():
    doc = json.loads((DATA / "evidence/otel").glob("*.jsonl").__next__().read_text().splitlines()[0])
    point = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
    where = "line 1: resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0]"
    for field, value in (("timeUnixNano", str(2**64 - 1)), ("startTimeUnixNano", "-1"), ("count", "²")):
        bad = json.loads(json.dumps(doc))
        bad["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0][field] = value
        with pytest.raises(EvidenceError) as info:
            otlp_metrics.read(json.dumps(bad).encode(), "x")
        assert info.value.field == f"{where}.{field}", info.value
    assert point["timeUnixNano"]  # the unchanged document reads


def _resource_metrics(point: dict, kind: str = "histogram", value: object = None) -> bytes:
    metric = {
        "name": "http.server.request.duration",
        "unit": "s",
        kind: {"aggregationTemporality": 1, "dataPoints": [point]},
    }
    attrs = [{"key": "service.name", "value": {"stringValue": "api"}}]
    if value is not None:
        attrs.append({"key": "x", "value": value})
    return json.dumps(
        {"resourceMetrics": [{"resource": {"attributes": attrs}, "scopeMetrics": [{"metrics": [metric]}]}]}
    ).encode()


@pytest.mark.parametrize(
    ("point", "kind", "value", "field", "reason"),
    [
        ({"explicitBounds": ["a"], "bucketCounts": ["1", "2"]}, "histogram", None,
         "histogram.dataPoints[0].explicitBounds[0]", 'expected a finite number, got "a"'),
        ({"explicitBounds": [0.3, 0.1], "bucketCounts": ["1", "1", "1"]}, "histogram", None,
         "histogram.dataPoints[0].explicitBounds[1]", "expected bounds in increasing order, got 0.1 after 0.3"),
        ({"explicitBounds": [0.3, "Infinity"], "bucketCounts": ["1", "1", "1"]}, "histogram", None,
         "histogram.dataPoints[0].explicitBounds[1]", 'expected a finite number, got "Infinity"'),
        ({"scale": -40, "positive": {"bucketCounts": ["3"]}}, "exponentialHistogram", None,
         "exponentialHistogram.dataPoints[0].scale", "expected a scale between -10 and 20, got -40"),
        ({"scale": 2, "positive": [1, 2]}, "exponentialHistogram", None,
         "exponentialHistogram.dataPoints[0].positive", "expected an object, got an array"),
        ({"explicitBounds": [0.3], "bucketCounts": ["1", "2"]}, "histogram", {"arrayValue": [1]},
         "resource.attributes[1].value.arrayValue", "expected an object, got an array"),
    ],
)  # fmt: skip
def test_malformed_histograms_and_attributes_are_named_rejections_not_reader_crashes(point, kind, value, field, reason):
    """Each crashed the reader ("reader failed: AttributeError ..."): the field was not named."""
    data = _resource_metrics({"startTimeUnixNano": "1", "timeUnixNano": "2", "count": "3", **point}, kind, value)
    with pytest.raises(EvidenceError) as info:
        otlp_metrics.read(data, "x.jsonl")
    where = "line 1: resourceMetrics[0]." + ("" if field.startswith("resource.") else "scopeMetrics[0].metrics[0].")
    assert (info.value.field, info.value.reason) == (where + field, reason)
    # a bound written as a string of digits, as protobuf's JSON mapping allows, reads
    fine = _resource_metrics({"startTimeUnixNano": "1", "timeUnixNano": "2", "count": "3", "explicitBounds": ["0.3"],
                              "bucketCounts": ["1", "2"]})  # fmt: skip
    assert otlp_metrics.read(fine, "x.jsonl").summary["points"] == 1


def test_collected_otlp_is_parsed_once_into_a_spool_outside_the_root(tmp_path):
    """The collector's reader leaves each file's rows in a Parquet spool that ``sli_series`` loads
    as it is; the spool lives while the batch does, never in the evidence root."""
    import gc

    import pyarrow.parquet as pq

    from phase8_assets.evidence.collect import collect, spool_of
    from phase8_assets.evidence.config import load_config

    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    before = sorted(root.rglob("*"))
    batch = collect(load_config([str(root)]), kinds={"otel_metrics"})
    files = batch.files_of("otel_metrics")
    assert files and not batch.rejections and sorted(root.rglob("*")) == before
    first = files[0]
    stored = pq.read_table(first.spool)
    lines = Path(first.uri).read_bytes().splitlines(keepends=True)
    assert [tuple(r.values()) for r in stored.to_pylist()] == list(iter_points(lines))
    assert stored.num_rows == first.summary["points"] and spool_of(first, tmp_path) == first.spool
    # In another process (the batch unpickled there) the spool is not at hand: the file is read
    # again, and refused when it is no longer the content collected.
    first.spool.unlink()
    again = spool_of(first, tmp_path)
    assert pq.read_table(again).equals(stored)
    with open(first.uri, "a") as fh:
        fh.write("\n")
    (tmp_path / "changed").mkdir()
    with pytest.raises(EvidenceError, match="changed since it was collected"):
        spool_of(first, tmp_path / "changed")
    folder = files[1].spool.parent.parent
    del batch, files, first
    gc.collect()
    assert not folder.exists()  # the batch is gone, and its spool with it


def test_the_spool_of_a_killed_process_is_removed_by_the_next_collection(tmp_path, monkeypatch):
    """A batch removes its spool folder when it is collected; a process killed by SIGKILL cannot,
    so the next collection in any process removes the folders no live process holds (a lock on
    the folder's owner file, which the kernel releases with the process)."""
    import fcntl
    import os
    import sys
    import tempfile
    import time

    from phase8_assets.evidence.collect import SPOOL_PREFIX, collect, sweep_spools
    from phase8_assets.evidence.config import load_config

    temp = tmp_path / "tmp"
    temp.mkdir()
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    code = (
        "import os, signal\n"
        "from phase8_assets.evidence.collect import collect\n"
        "from phase8_assets.evidence.config import load_config\n"
        f"batch = collect(load_config([{str(root)!r}]), kinds={{'otel_metrics'}})\n"
        "assert batch.files_of('otel_metrics')[0].spool.exists()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(temp)}, capture_output=True)
    assert child.returncode == -9, child.stderr.decode()
    (left,) = temp.glob(f"{SPOOL_PREFIX}*")
    assert any(left.rglob("*.parquet"))  # what the killed run left behind
    # A folder some live process holds (here this one, as another PID namespace's process would),
    # and one without an owner file (being created): neither is the sweep's to remove.
    held, unowned, legacy = (temp / f"{SPOOL_PREFIX}{name}" for name in ("held", "unowned", "legacy"))
    for path in (held, unowned, legacy):
        path.mkdir()
    os.utime(legacy, (0, time.time() - 7200))  # an earlier release's folder, two hours old
    owner = os.open(held / ".owner", os.O_RDONLY | os.O_CREAT)
    fcntl.flock(owner, fcntl.LOCK_EX)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    batch = collect(load_config([str(root)]), kinds={"otel_metrics"})
    assert not left.exists() and not legacy.exists() and held.exists() and unowned.exists()
    assert batch.files_of("otel_metrics")[0].spool.exists()  # and this collection spooled as usual
    os.close(owner)
    assert sweep_spools(temp) == [held]  # released: gone with its process


def _metric_line(metric: dict) -> str:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "chat-api"}}]}
    return json.dumps({"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]})


def _point(value: dict, **extra) -> dict:
    return {"startTimeUnixNano": "1795172400000000000", "timeUnixNano": "1795176000000000000", **value, **extra}


def test_points_without_a_recorded_value_are_no_rows_never_zero():
    """The Prometheus receiver's staleness marker: NaN with flags bit 1 (FLAG_NO_RECORDED_VALUE)."""
    stale = _point({"asDouble": "NaN"}, flags=1)
    lines = [
        _metric_line({"name": "process_open_fds", "sum": {"aggregationTemporality": 2, "isMonotonic": False,
                                                          "dataPoints": [stale, _point({"asInt": "12"})]}}),
        _metric_line({"name": "queue.depth", "gauge": {"dataPoints": [stale]}}),
        _metric_line({"name": "requests", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                                  "dataPoints": [_point({}, flags=1), _point({"asInt": "7"})]}}),
        _metric_line({"name": "h", "histogram": {"aggregationTemporality": 1, "dataPoints": [
            _point({"count": "0"}, flags=1), _point({"count": "3", "bucketCounts": ["1", "2"], "explicitBounds": [1]})]}}),
    ]  # fmt: skip
    rows = list(iter_points(lines))
    assert [(r[0], r[8]) for r in rows] == [("process_open_fds", 12.0), ("requests", 7.0), ("h", 3.0)]
    # a flag other than bit 1 leaves the value alone (and a NaN there is still no count)
    with pytest.raises(EvidenceError) as info:
        list(iter_points([lines[2].replace('"flags": 1', '"flags": 2', 1)]))
    assert info.value.field.endswith("sum.dataPoints[0]") and "expected asDouble or asInt" in info.value.reason


def test_levels_may_be_negative_counts_may_not():
    """An UpDownCounter's sum (isMonotonic false, or absent: protojson leaves false out) and a gauge
    are levels; a monotonic sum and a histogram count events."""
    updown = {"aggregationTemporality": 1, "isMonotonic": False, "dataPoints": [_point({"asInt": "-2"})]}
    omitted = {"aggregationTemporality": 2, "dataPoints": [_point({"asInt": "-3"})]}
    rows = list(iter_points([
        _metric_line({"name": "http.server.active_requests", "sum": updown}),
        _metric_line({"name": "c", "sum": omitted}),
        _metric_line({"name": "g", "gauge": {"dataPoints": [_point({"asDouble": -0.5})]}}),
    ]))  # fmt: skip
    assert [(r[0], r[3], r[5], r[8]) for r in rows] == [
        ("http.server.active_requests", "sum", False, -2.0), ("c", "sum", False, -3.0), ("g", "gauge", False, -0.5)
    ]  # fmt: skip
    where = "line 1: resourceMetrics[0].scopeMetrics[0].metrics[0]"
    for value, field in (({"asInt": "-2"}, ".asInt"), ({"asDouble": "NaN"}, ".asDouble"),
                         ({"asDouble": "Infinity"}, ".asDouble")):  # fmt: skip
        monotonic = {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [_point(value)]}
        with pytest.raises(EvidenceError) as info:
            otlp_metrics.read(_metric_line({"name": "c", "sum": monotonic}).encode(), "x")
        assert info.value.field == f"{where}.sum.dataPoints[0]{field}"
        assert info.value.reason.startswith("expected a finite value >= 0 (a monotonic sum counts events), got ")
    for point, field, reason in (
        (_point({"count": "-1"}), ".count", "expected a count >= 0, got -1"),
        (_point({"count": "1", "bucketCounts": ["2", "-1"], "explicitBounds": [1]}), ".bucketCounts",
         "expected counts >= 0, got -1"),
    ):  # fmt: skip
        histogram = {"aggregationTemporality": 1, "dataPoints": [point]}
        with pytest.raises(EvidenceError) as info:
            otlp_metrics.read(_metric_line({"name": "h", "histogram": histogram}).encode(), "x")
        assert (info.value.field, info.value.reason) == (f"{where}.histogram.dataPoints[0]{field}", reason)


def test_pretty_printed_single_object_and_numbers_as_numbers():
    doc = json.loads((DATA / "evidence/otel").glob("*.jsonl").__next__().read_text().splitlines()[0])
    point = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
    point["count"] = int(point["count"])  # int64 as a JSON number is allowed too
    rows = list(iter_points(json.dumps(doc, indent=2).splitlines(keepends=True)))
    assert len(rows) == 6 and rows[0][8] == point["count"]


def test_a_duplicated_key_in_an_otlp_line_is_refused_naming_the_line():
    lines = (DATA / "evidence/otel").glob("*.jsonl").__next__().read_text().splitlines()[:2]
    doc = json.loads(lines[1])
    doubled = json.dumps(doc).replace('"timeUnixNano": ', '"timeUnixNano": "1", "timeUnixNano": ', 1)
    assert doubled.count('"timeUnixNano"') > json.dumps(doc).count('"timeUnixNano"')
    with pytest.raises(EvidenceError, match="duplicate key 'timeUnixNano'") as err:
        otlp_metrics.read(f"{lines[0]}\n{doubled}\n".encode(), "m.jsonl")
    assert err.value.field == "line 2"
    pretty = json.dumps(json.loads(doubled.replace('"timeUnixNano": "1", ', "", 1)), indent=2)
    assert otlp_metrics.read(pretty.encode(), "m.json").summary["points"] > 0


@pytest.mark.realdata
def test_a_traces_or_logs_line_in_a_metrics_file_is_named_for_what_it_is(real_samples):
    """One collector file exporter in the traces, logs and metrics pipelines writes all three to
    one file: the first line that is not metrics is refused as what it holds, on its line (the
    field was ``line 2: `` with a dangling colon, the reason silent on what the line held)."""
    metrics = json.dumps(json.loads((real_samples / "otel/otlp_metrics.json").read_text()))
    for name, key, signal in (
        ("otlp_trace.json", "resourceSpans", "traces"),
        ("otlp_logs.json", "resourceLogs", "logs"),
    ):
        other = json.dumps(json.loads((real_samples / "otel" / name).read_text()))
        with pytest.raises(EvidenceError) as err:
            otlp_metrics.read(f"{metrics}\n{other}\n".encode(), "otel/all.jsonl")
        assert err.value.field == "line 2"
        assert f"got {key}: {signal}, as a file exporter shared with the {signal} pipeline" in err.value.reason
    with pytest.raises(EvidenceError) as err:  # anything else: as before
        otlp_metrics.read(f"{metrics}\n[]\n".encode(), "otel/all.jsonl")
    assert (err.value.field, err.value.reason) == ("line 2", "expected an OTLP metrics object with resourceMetrics")


def test_otlp_texts_are_redacted_on_their_way_to_the_warehouse():
    from phase8_assets_tests.corpus.secrets import SECRETS, leaks

    doc = json.loads((DATA / "evidence/otel").glob("*.jsonl").__next__().read_text().splitlines()[0])
    resource = doc["resourceMetrics"][0]["resource"]
    resource["attributes"].append({"key": "db.connection_string", "value": {"stringValue": SECRETS[20].in_context()}})
    resource["attributes"].append({"key": "cloud.token", "value": {"stringValue": "plain-looking-value"}})
    point = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
    point["attributes"].append({"key": "url.full", "value": {"stringValue": SECRETS[30].in_context()}})
    rows = list(iter_points([json.dumps(doc)]))
    assert len(rows) == 6 and not leaks(repr(rows)) and "plain-looking-value" not in repr(rows)
    assert json.loads(rows[0][2])["cloud.token"] == "[REDACTED]"


def test_committed_prometheus_rules_are_current_and_valid(tmp_path):
    records = [
        r for p in sorted((DATA / "policy/slo").glob("*.yaml")) for r in openslo.read(p.read_bytes(), str(p)).records
    ]
    text = prometheus_rules(resolve(records))
    committed = REPO / "infra/monitoring/slo-rules.yaml"
    assert committed.read_text() == text, "run: phase8 slo-rules --evidence data --out infra/monitoring/slo-rules.yaml"
    assert text.count("- alert: ") == 8 and "ChatApiAvailabilityErrorBudgetBurnPage" in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus); the rules were not checked by it")
    alerts = REPO / "infra/monitoring/phase8-alerts.yaml"
    result = subprocess.run([promtool, "check", "rules", str(committed), str(alerts)], capture_output=True, text=True)
    assert result.returncode == 0 and "SUCCESS: 36 rules found" in result.stdout, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("sum(rate(", "sum(rate((", 1))
    assert subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True).returncode != 0


TIMESLICES = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: sliced}
spec:
  service: api
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: otlp, spec: {le: 0.3}}}
        total: {metricSource: {type: otlp}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Timeslices
  objectives: [OBJECTIVE]
"""


def test_time_slices_as_the_spec_writes_them():
    """``timeSliceWindow: 5`` is five minutes by the spec: it used to pass the reader and then
    crash resolving the SLOs, failing both SLO gates for every SLO with "upstream step failed".
    A window or target the spec does not allow is a named rejection of the file instead."""
    text = TIMESLICES.replace("OBJECTIVE", "{target: 0.99, timeSliceTarget: 0.95, timeSliceWindow: 5}")
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    assert definition.problem is None and definition.slice_window.total_seconds() == 300
    for objective, field, reason in [
        ("{target: 0.99, timeSliceTarget: 0.95, timeSliceWindow: 1 minute}", "timeSliceWindow", "got '1 minute'"),
        ("{target: 0.99, timeSliceTarget: 0.95, timeSliceWindow: 0}", "timeSliceWindow", "got 0"),
        ("{target: 0.99, timeSliceTarget: 95, timeSliceWindow: 1m}", "timeSliceTarget", "got 95"),
        ("{target: 0.99, timeSliceTarget: '0.95', timeSliceWindow: 1m}", "timeSliceTarget", "got '0.95'"),
        ("0.99", "", "expected a mapping with target, got 0.99"),
    ]:
        with pytest.raises(EvidenceError) as info:
            openslo.read(TIMESLICES.replace("OBJECTIVE", objective).encode(), "slo.yaml")
        assert info.value.field == "spec.objectives[0]" + (f".{field}" if field else "") and reason in info.value.reason
    with pytest.raises(EvidenceError) as info:
        openslo.read(TIMESLICES.replace("[{duration: 7d, isRolling: true}]", "[7d]").encode(), "slo.yaml")
    assert info.value.field == "spec.timeWindow[0]" and "got '7d'" in info.value.reason


@pytest.mark.parametrize("kind", ["sum", "histogram", "exponentialHistogram", "gauge"])
def test_a_start_time_after_the_point_time_is_a_named_rejection(kind):
    """A point covers (startTimeUnixNano, timeUnixNano]; a start after the time is no interval the data
    model has (a true reset has start < time, an unknown one start == time). It was read, and a
    cumulative point with it counted its whole counter as new requests in the hour it claimed."""
    time_ns = 1795176000000000000
    value = {"asInt": "5"} if kind in ("sum", "gauge") else {"count": "5"}
    if kind == "exponentialHistogram":
        value["zeroCount"] = "5"
    body = {"dataPoints": [{"startTimeUnixNano": str(time_ns + 1), "timeUnixNano": str(time_ns), **value}]}
    if kind != "gauge":
        body |= {"aggregationTemporality": 2, "isMonotonic": True}
    with pytest.raises(EvidenceError) as info:
        otlp_metrics.read(_metric_line({"name": "m", kind: body}).encode(), "x")
    assert info.value.field == f"line 1: resourceMetrics[0].scopeMetrics[0].metrics[0].{kind}.dataPoints[0]" + (
        ".startTimeUnixNano"
    )
    assert info.value.reason == (
        f"expected a start time at or before the point's timeUnixNano {time_ns}, got {time_ns + 1}"
    )
    # at the time (a reset at an unknown start) and absent (0) both read
    for start in (str(time_ns), "0", None):
        point = {"timeUnixNano": str(time_ns), **value} | ({"startTimeUnixNano": start} if start else {})
        assert otlp_metrics.read(_metric_line({"name": "m", kind: {**body, "dataPoints": [point]}}).encode(), "x")


@pytest.mark.parametrize(
    ("kind", "point", "field", "reason"),
    [
        ("histogram", {"count": "30", "bucketCounts": ["8", "1"], "explicitBounds": [0.3]}, ".count",
         "expected the sum of the bucket counts (9), got 30"),
        ("histogram", {"count": "3", "bucketCounts": ["8", "1"], "explicitBounds": [0.3]}, ".count",
         "expected the sum of the bucket counts (9), got 3"),
        ("exponentialHistogram", {"count": "3", "zeroCount": "1", "positive": {"bucketCounts": ["8"]}}, ".count",
         "expected the sum of the bucket counts and zeroCount (9), got 3"),
        ("exponentialHistogram", {"count": "3", "zeroCount": "-5", "positive": {"bucketCounts": ["8"]}},
         ".zeroCount", "expected a count >= 0, got -5"),
        ("exponentialHistogram", {"count": "3", "positive": {"bucketCounts": ["-8", "11"]}},
         ".positive.bucketCounts[0]", "expected a count >= 0, got -8"),
        ("exponentialHistogram", {"count": "3", "negative": {"bucketCounts": ["5", "-2"]}},
         ".negative.bucketCounts[1]", "expected a count >= 0, got -2"),
    ],
)  # fmt: skip
def test_histogram_counts_that_disagree_or_go_negative_are_named_rejections(kind, point, field, reason):
    """The data model: a histogram's count is the sum of its bucket counts (an exponential one's
    plus its zeroCount), and every count is >= 0. A latency SLI takes its good events from the
    buckets and its total from count: 30 requests of which 9 are in buckets read as 21 slow ones.
    An exponential histogram's negative counts were read (a -8 bucket took 8 fast requests away)."""
    body = {"aggregationTemporality": 2, "dataPoints": [_point(point)]}
    with pytest.raises(EvidenceError) as info:
        otlp_metrics.read(_metric_line({"name": "h", kind: body}).encode(), "x")
    where = f"line 1: resourceMetrics[0].scopeMetrics[0].metrics[0].{kind}.dataPoints[0]"
    assert (info.value.field, info.value.reason) == (where + field, reason)
    # consistent ones read, and so does a histogram with no buckets (a count alone)
    for good in (
        {"count": "9", "bucketCounts": ["8", "1"], "explicitBounds": [0.3]},
        {"count": "9"},
        {"count": "9", "zeroCount": "1", "positive": {"bucketCounts": ["3"]}, "negative": {"bucketCounts": ["5"]}},
    ):
        good_kind = "histogram" if "positive" not in good else "exponentialHistogram"
        line = _metric_line({"name": "h", good_kind: {**body, "dataPoints": [_point(good)]}})
        assert otlp_metrics.read(line.encode(), "x").summary["points"] == 1
