"""SLO evaluation against known answers: the SRE Workbook's numbers, exact burn rates, resets."""

import itertools
import json
import math
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from phase8_assets.domains.slo import (
    Selector,
    SloDef,
    UnmatchedSelector,
    budget_start,
    default_conditions,
    evaluate,
    pick_streams,
    resolve,
    sli_events,
    sli_status,
)
from phase8_assets.evidence import EvidenceError, openslo, otlp_metrics
from phase8_assets.warehouse import connect
from phase8_assets.warehouse.store import record_otlp_file, record_otlp_files
from phase8_assets_tests.conftest import DATA

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SLO_YAML = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: api}
spec:
  service: api
  indicator:
    metadata: {name: api-errors}
    spec:
      ratioMetric:
        bad: {metricSource: {type: otlp, spec: {metric: http.server.request.duration, filter: {service.name: api, http.response.status_code: "~5.."}}}}
        total: {metricSource: {type: otlp, spec: {metric: http.server.request.duration, filter: {service.name: api}}}}
  timeWindow: [{duration: WINDOW, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""


def slo(window="30d") -> SloDef:
    (definition,) = resolve(openslo.read(SLO_YAML.replace("WINDOW", window).encode(), "slo.yaml").records)
    assert definition.problem is None
    return definition


def otlp_line(t: datetime, points: list[tuple[int, int, datetime]], temporality: int = 1) -> str:
    """One export: histogram points (status code, count, start) for service api."""
    data = [
        {
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": str(code)}}],
            "startTimeUnixNano": str(int(start.timestamp() * 1e9)),
            "timeUnixNano": str(int(t.timestamp() * 1e9)),
            "count": str(count),
            "bucketCounts": [str(count), "0"],
            "explicitBounds": [0.3],
        }
        for code, count, start in points
    ]
    metric = {"name": "http.server.request.duration", "unit": "s",
              "histogram": {"aggregationTemporality": temporality, "dataPoints": data}}  # fmt: skip
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]}
    return json.dumps({"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]})


_files = itertools.count()


@pytest.fixture
def wh(tmp_path):
    """A real warehouse: events are computed by DuckDB from the stored OTLP points."""
    with connect(tmp_path / "warehouse.duckdb") as conn:
        yield conn


def _record(wh, root, lines, uri="x.jsonl"):
    """OTLP lines into the warehouse as ``sli_series`` stores them: parsed to a spool, then loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        data = "".join(line if line.endswith("\n") else line + "\n" for line in lines).encode()
        record_otlp_file(wh, root, "sha", uri, otlp_metrics.read(data, uri, spool_dir=Path(tmp)).spool, AT)


def _events(wh, definition, lines):
    root = f"/root{next(_files)}"
    _record(wh, root, lines)
    return (
        sli_events(wh, [root], definition.bad, "bad", versions=["sha"]),
        sli_events(wh, [root], definition.total, "total", versions=["sha"]),
    )


def status(wh, definition: SloDef, lines: list[str], at=AT):
    return evaluate(definition, *_events(wh, definition, lines), at, [])


def steady(error_ratio: float, span: timedelta, step=timedelta(minutes=5), per_step=10_000, end=AT) -> list[str]:
    """Delta exports every ``step`` over ``span`` up to ``end`` with an exact error ratio."""
    lines, t = [], end - span + step
    bad = round(per_step * error_ratio)
    while t <= end:
        lines.append(otlp_line(t, [(200, per_step - bad, t - step), (500, bad, t - step)]))
        t += step
    return lines


@pytest.mark.parametrize(
    ("factor", "window", "budget_share"),
    [(14.4, timedelta(hours=1), 0.02), (6.0, timedelta(hours=6), 0.05), (3.0, timedelta(days=1), 0.10),
     (1.0, timedelta(days=3), 0.10)],
)  # fmt: skip
def test_sre_workbook_budget_shares(wh, factor, window, budget_share):
    """99.9 % / 30 d: burning at the factor for the long window spends the Workbook's share."""
    definition = slo()
    error_ratio = factor * (1 - definition.target)
    # With uniform traffic over 30 days the share is exact:
    uniform = status(
        wh, definition, steady(0.0, timedelta(days=30) - window, end=AT - window) + steady(error_ratio, window)
    )
    assert uniform.consumed == pytest.approx(budget_share, rel=1e-9)
    condition = next(c for c in uniform.alerts if c.condition.long == window)
    assert condition.active and condition.condition.factor == factor


@pytest.mark.parametrize("ratio", [0.0, 0.0004, 0.00123, 0.02, 0.5])
def test_burn_rate_matches_a_known_error_ratio(wh, ratio):
    definition = slo()
    result = evaluate(definition, *_events(wh, definition, steady(ratio, timedelta(days=2))), AT,
                      [timedelta(minutes=5), timedelta(hours=1), timedelta(days=1)])  # fmt: skip
    for w in result.windows:
        bad = round(10_000 * ratio)
        assert w.ratio == pytest.approx(bad / 10_000, abs=1e-12)
        assert w.burn(definition.target) == pytest.approx(bad / 10_000 / 0.001, rel=1e-9, abs=1e-9)


def test_cumulative_counters_with_a_restart(wh):
    """Cumulative points: increments between exports; a restart (new start, lower value) counts whole."""
    start, restart = AT - timedelta(days=40), AT - timedelta(hours=2, minutes=32)  # between two exports
    lines, ok, bad = [], 0, 0
    t = AT - timedelta(hours=6)
    while t <= AT:
        if t - timedelta(minutes=5) < restart <= t:
            start, ok, bad = restart, 0, 0
        ok, bad = ok + 990, bad + 10
        lines.append(otlp_line(t, [(200, ok, start), (500, bad, start)], temporality=2))
        t += timedelta(minutes=5)
    definition = slo()
    bad_events, total = _events(wh, definition, lines)
    # The first export only anchors (its counter started 40 days before the data); every later
    # one adds 1000 requests, the restart's first export included.
    assert total.between(int((AT - timedelta(hours=6)).timestamp() * 1e9), int(AT.timestamp() * 1e9)) == 72 * 1000
    assert bad_events.between(0, int(AT.timestamp() * 1e9)) == 72 * 10


def test_a_true_reset_point_anchors_and_never_counts_the_counters_history(wh):
    """The collector's Prometheus receiver (and its ``metricstarttime`` processor) starts each series
    with a *true reset point*: start time equal to its time, value the counter's absolute count
    (here 30 M requests of the service's past). It used to count whole, at the collector's start and
    again after its restart 30 minutes ago, so the last hour's 10 % errors (100x the budget rate)
    drowned in 30 M old requests: the 1h burn read 1.0 and nothing paged."""
    lines, ok, bad = [], 30_000_000, 15_000
    start = t = AT - timedelta(hours=6)
    while t <= AT:
        if t == AT - timedelta(minutes=30):
            start = t  # the collector restarted: a new true reset point, the same absolute counts
        if t > start:
            errors = 1000 if t > AT - timedelta(hours=1) else 5
            ok, bad = ok + 10_000 - errors, bad + errors
        lines.append(otlp_line(t, [(200, ok, start), (500, bad, start)], temporality=2))
        t += timedelta(minutes=5)
    definition = slo()
    result = status(wh, definition, lines)
    page = next(a for a in result.alerts if a.condition.name == "page-1h")
    # 11 of the hour's 12 exports: the restart's reset point only anchors the next difference.
    assert page.long.total == 11 * 10_000 and page.long.burn(definition.target) == pytest.approx(100)
    assert page.active
    # The reset points cover nothing: 6 hours less the restart's 5 minutes.
    assert result.budget_covered == timedelta(hours=6) - timedelta(minutes=5)


def test_windows_scale_for_other_slo_windows():
    week = default_conditions(timedelta(days=7))
    assert [c.factor for c in week] == pytest.approx([14.4 * 7 / 30, 6 * 7 / 30, 3 * 7 / 30, 7 / 30])
    assert [c.long for c in week] == [timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=3)]


def test_too_few_events_is_insufficient_data_not_a_pass(wh):
    definition = slo()
    result = status(wh, definition, steady(0.5, timedelta(hours=2), per_step=5))
    page = next(a for a in result.alerts if a.condition.name == "page-1h")
    assert page.insufficient and not page.active


def test_calendar_budget_periods():
    text = SLO_YAML.replace("[{duration: WINDOW, isRolling: true}]", "[{duration: 1M, isRolling: false, calendar: {startTime: '2026-01-01 00:00:00', timeZone: Europe/Berlin}}]")  # fmt: skip
    (monthly,) = resolve(openslo.read(text.encode(), "x").records)
    assert budget_start(monthly, AT) == datetime(2026, 11, 1, tzinfo=UTC) - timedelta(hours=1)  # Berlin midnight
    weekly = text.replace("1M", "1w").replace("Europe/Berlin", "UTC")
    (w,) = resolve(openslo.read(weekly.encode(), "x").records)
    assert budget_start(w, AT) == datetime(2026, 11, 19, tzinfo=UTC)  # 2026-01-01 was a Thursday


def test_alert_conditions_from_openslo_override_the_defaults(wh):
    policy = """
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: p}
spec: {conditions: [{conditionRef: c}]}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: c}
spec: {severity: ticket, condition: {kind: burnrate, threshold: 2, lookbackWindow: 12h, alertAfter: 30m}}
"""
    text = SLO_YAML.replace("WINDOW", "30d") + "  alertPolicies: [{alertPolicyRef: p}]\n" + policy
    (definition,) = resolve(openslo.read(text.encode(), "x").records)
    (c,) = definition.conditions
    assert (c.severity, c.factor, c.long, c.short, c.alert_after) == (
        "ticket",
        2.0,
        timedelta(hours=12),
        timedelta(hours=1),
        timedelta(minutes=30),
    )
    # alertAfter: a burn that started 10 minutes ago has not held for 30 minutes yet.
    lines = steady(0.0, timedelta(hours=12)) + steady(0.01, timedelta(minutes=10), end=AT + timedelta(minutes=10))
    result = status(wh, definition, lines, at=AT + timedelta(minutes=10))
    assert not result.alerts[0].active


def test_unusable_slis_fail_closed(wh):
    bad = SLO_YAML.replace("WINDOW", "30d").replace("type: otlp", "type: prometheus")
    (definition,) = resolve(openslo.read(bad.encode(), "x").records)
    assert "cannot be evaluated here" in definition.problem
    missing = SLO_YAML.replace("WINDOW", "30d").replace("indicator:\n", "indicatorRef: nope\n  x:\n")
    (definition,) = resolve(openslo.read(missing.encode(), "x").records)
    assert "not defined" in definition.problem
    latency = SLO_YAML.replace("WINDOW", "30d").replace('http.response.status_code: "~5.."}', "}, le: 0.25")
    (definition,) = resolve(openslo.read(latency.encode(), "x").records)
    with pytest.raises(EvidenceError, match="not a bucket boundary"):
        _events(wh, definition, steady(0.0, timedelta(hours=1)))


def test_timeslices_count_bad_slices(wh):
    text = SLO_YAML.replace("WINDOW", "30d").replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices")
    text = text.replace(
        "objectives: [{target: 0.999}]", "objectives: [{target: 0.95, timeSliceTarget: 0.99, timeSliceWindow: 5m}]"
    )
    (definition,) = resolve(openslo.read(text.encode(), "x").records)
    # 12 five-minute slices in the last hour; two of them lose 5 % of requests (bad), the rest 0.5 % (good).
    lines = steady(0.005, timedelta(minutes=50), end=AT - timedelta(minutes=10)) + steady(0.05, timedelta(minutes=10))
    result = evaluate(definition, *_events(wh, definition, lines), AT, [timedelta(hours=1)])
    (hour,) = result.windows
    assert (hour.total, hour.bad, hour.events) == (12, 2, 120_000)
    assert hour.burn(definition.target) == pytest.approx((2 / 12) / 0.05, rel=1e-9)
    ratio = text.replace("budgetingMethod: Timeslices", "budgetingMethod: RatioTimeslices")
    (mean,) = resolve(openslo.read(ratio.encode(), "x").records)
    (hour,) = evaluate(mean, *_events(wh, mean, lines), AT, [timedelta(hours=1)]).windows
    assert hour.ratio == pytest.approx((10 * 0.005 + 2 * 0.05) / 12, rel=1e-9)


def test_semantic_convention_defaults():
    text = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: s}
spec:
  service: chat-api
  indicator:
    metadata: {name: i}
    spec:
      ratioMetric:
        bad: {metricSource: {type: otlp, spec: {filter: {error.type: "*"}}}}
        total: {metricSource: {type: otlp, spec: {}}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""
    (definition,) = resolve(openslo.read(text.encode(), "x").records)
    assert definition.problem is None
    assert (definition.total.metric, definition.total.service) == ("http.server.request.duration", "chat-api")
    assert definition.bad.matches({"error.type": "timeout"}) and not definition.bad.matches({})


@pytest.mark.parametrize(
    ("bad_filter", "total_filter", "role", "reason"),
    [
        # failures marked only by the status code: error.type never occurs
        ('{service.name: api, error.type: "*"}', "{service.name: api}", "bad",
         "names error.type, which occurs in no stream (attribute keys: http.response.status_code, service.name)"),
        # the pre-1.21 attribute name
        ('{service.name: api, http.status_code: "~5.."}', "{service.name: api}", "bad",
         "names http.status_code, which occurs in no stream (attribute keys: http.response.status_code, service.name)"),
        # a value that never occurs: no stream at all, not zero events
        ('{service.name: api, http.response.status_code: "503"}', "{service.name: api}", "bad",
         "matches no stream (attribute keys: http.response.status_code, service.name)"),
        ('{service.name: api, http.response.status_code: "~5.."}', "{service.name: chat-api}", "total",
         "matches no stream: http.server.request.duration comes from service.name 'api'"),
    ],
)  # fmt: skip
def test_a_selector_that_matches_no_stream_is_an_error_not_zero_events(wh, bad_filter, total_filter, role, reason):
    text = SLO_YAML.replace("WINDOW", "30d")
    text = text.replace('filter: {service.name: api, http.response.status_code: "~5.."}', f"filter: {bad_filter}")
    text = text.replace("filter: {service.name: api}}", f"filter: {total_filter}}}")
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    with pytest.raises(UnmatchedSelector) as info:
        _events(wh, definition, steady(0.001, timedelta(hours=1)))
    assert info.value.field == f"ratioMetric.{role}" and info.value.reason.endswith(reason)
    assert info.value.reason.startswith("http.server.request.duration{service.name=")


def test_a_negative_matcher_on_an_attribute_that_never_occurs_is_an_error(wh):
    text = SLO_YAML.replace("WINDOW", "30d").replace("bad: {", "good: {")
    text = text.replace('http.response.status_code: "~5.."', 'http.status_code: "!~5.."')
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    root = f"/root{next(_files)}"
    _record(wh, root, steady(0.5, timedelta(hours=1)))
    with pytest.raises(UnmatchedSelector, match="names http.status_code, which occurs in no stream") as info:
        sli_events(wh, [root], definition.good, "good", versions=["sha"])
    assert info.value.keys == ["http.response.status_code", "service.name"] and info.value.role == "good"


def test_streams_that_counted_no_bad_events_are_zero_not_an_error(wh):
    bad, total = _events(wh, slo(), steady(0.0, timedelta(hours=1)))  # the 5xx stream exists, with 0 events
    assert bad.between(0, 2**62) == 0 and total.between(0, 2**62) == 120_000


def _findings(definition, result, results_extra=None):
    from phase8_assets.domains.slo_findings import budget_findings, burn_findings
    from phase8_assets.evidence.config import load_config

    config = load_config([str(DATA)])
    results = {"statuses": [result], "problems": {}, **(results_extra or {})}
    return burn_findings([definition], results, config, AT, "slo_burn_rate"), budget_findings(
        [definition], results, config, "error_budget"
    )


def test_windows_longer_than_the_data_are_reported_never_extrapolated(wh):
    definition = slo()
    five_hours = steady(0.0005, timedelta(hours=5))  # deltas covering AT - 5h to AT, 0.05 % errors
    result = status(wh, definition, five_hours)
    assert result.data_from == AT - timedelta(hours=5)
    by_name = {a.condition.name: a for a in result.alerts}
    assert by_name["page-1h"].covered == timedelta(hours=1) and by_name["ticket-3d"].covered == timedelta(hours=5)
    assert result.budget_covered == timedelta(hours=5) and result.budget_coverage == pytest.approx(5 / 720)
    # The 3d burn is the ratio over the 5 hours seen (0.5x), not scaled to three days.
    assert by_name["ticket-3d"].long.burn(definition.target) == pytest.approx(0.5)
    burn, budget = _findings(definition, result)
    coverage = [f for f in burn if f.rule.startswith("insufficient-coverage")]
    assert [f.rule.split(":")[1] for f in coverage] == ["page-6h", "ticket-1d", "ticket-3d"]
    assert {f.severity for f in coverage} == {"warning"}
    assert coverage[2].observed == "data covers 5h 0m of the 3d 0h window (since 2026-11-20T07:00:00Z)"
    (finding,) = budget
    assert (finding.severity, finding.rule) == ("error", "window-coverage")
    assert finding.observed == "data covers 5h 0m of the 30d window (0.7%, since 2026-11-20T07:00:00Z)"
    assert finding.limit == ">= 90% of the window covered by data" and finding.evidence == "slo.yaml"


def test_the_minimum_window_coverage_is_set_per_slo(wh):
    text = SLO_YAML.replace("WINDOW", "1d").replace(
        "metadata: {name: api}", 'metadata: {name: api, annotations: {phase8/min-window-coverage: "15%"}}'
    )
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    assert definition.min_window_coverage == pytest.approx(0.15)
    _, budget = _findings(definition, status(wh, definition, steady(0.0, timedelta(hours=4, minutes=5))))
    assert budget == []  # 4h of 1d is 16.7 %: enough for this SLO
    _, budget = _findings(definition, status(wh, definition, steady(0.0, timedelta(hours=3, minutes=5))))
    assert [f.rule for f in budget] == ["window-coverage"]


def test_histogram_points_without_bucket_counts_are_not_zero_fast_requests(wh):
    text = SLO_YAML.replace("WINDOW", "30d").replace("bad: {", "good: {")
    text = text.replace(
        'filter: {service.name: api, http.response.status_code: "~5.."}}', "filter: {service.name: api}, le: 0.3}"
    )
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    lines = steady(0.0, timedelta(minutes=30))
    # The newest export has count and sum but no bucketCounts (the protocol allows it).
    last = json.loads(lines[-1])
    for point in last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"]:
        del point["bucketCounts"]
    lines[-1] = json.dumps(last)
    root = f"/root{next(_files)}"
    _record(wh, root, lines, "metrics.jsonl")
    with pytest.raises(EvidenceError) as info:
        sli_events(wh, [root], definition.good, "good", versions=["sha"])
    assert info.value.field == "le" and info.value.reason == (
        "2 data point(s) of http.server.request.duration have no bucket counts, so the requests at or under 0.3 "
        "were not reported (in metrics.jsonl)"
    )


def test_no_slo_at_all_names_where_slos_were_expected():
    from phase8_assets.domains.slo_findings import burn_findings
    from phase8_assets.evidence.config import load_config

    config = load_config([str(DATA)])
    (finding,) = burn_findings([], {"statuses": [], "problems": {}}, config, AT, "slo_burn_rate")
    assert finding.rule == "slo-present" and finding.evidence == f"{DATA}/policy/slo/*.yaml"


def test_otlp_files_load_in_one_statement_each_once_and_all_or_nothing(wh, tmp_path):
    """``sli_series`` loads every new file's spool at once: each file's points under its own
    (root, sha256), a file already stored adds nothing, and a spool that cannot be read leaves
    nothing stored."""
    t = AT - timedelta(minutes=5)
    spools = {}
    for name, lines in {
        "a": [otlp_line(t, [(200, 5, t - timedelta(minutes=1)), (500, 1, t - timedelta(minutes=1))])],
        "b": [otlp_line(t, [(200, 7, t - timedelta(minutes=1))])],
    }.items():
        folder = tmp_path / name
        folder.mkdir()
        data = "".join(line + "\n" for line in lines).encode()
        spools[name] = otlp_metrics.read(data, f"{name}.jsonl", spool_dir=folder).spool
    # A spool that is not there: the whole load fails, including the files before it.
    with pytest.raises(Exception, match="missing"):
        record_otlp_files(wh, [("/r", "sha-a", "a.jsonl", spools["a"]), ("/r", "x", "x", tmp_path / "missing")], AT)
    assert wh.execute("SELECT count(*) FROM otel_points").fetchone() == (0,)
    assert wh.execute("SELECT count(*) FROM otel_files").fetchone() == (0,)

    files = [("/r", f"sha-{name}", f"{name}.jsonl", spool) for name, spool in spools.items()]
    assert record_otlp_files(wh, files, AT) == {("/r", "sha-a"): 2, ("/r", "sha-b"): 1}
    per_file = wh.execute("SELECT sha256, count(*), sum(value) FROM otel_points GROUP BY ALL ORDER BY 1").fetchall()
    assert per_file == [("sha-a", 2, 6.0), ("sha-b", 1, 7.0)]
    assert wh.execute("SELECT sha256, uri, points FROM otel_files ORDER BY 1").fetchall() == [
        ("sha-a", "a.jsonl", 2),
        ("sha-b", "b.jsonl", 1),
    ]
    # Again, plus the same content under another root: only that one is new.
    assert record_otlp_files(wh, [*files, ("/other", "sha-b", "b.jsonl", spools["b"])], AT) == {("/other", "sha-b"): 1}
    assert record_otlp_file(wh, "/r", "sha-a", "a.jsonl", spools["a"], AT) is None
    assert wh.execute("SELECT count(*) FROM otel_points").fetchone() == (4,)


def test_coverage_ends_at_the_last_point_and_skips_gaps_between_deltas(wh):
    """Data that stopped does not cover the days since, nor does a gap between delta exports
    (those requests were never reported); a cumulative difference counts every event between its
    two points, so the time between them is covered."""
    definition = slo()
    stopped = steady(0.0, timedelta(days=26), step=timedelta(hours=1), end=AT - timedelta(days=4))
    result = status(wh, definition, stopped)
    assert result.budget_covered == timedelta(days=26) and result.budget_coverage == pytest.approx(26 / 30)
    assert result.last_event == AT - timedelta(days=4)
    assert all(a.covered == timedelta(0) for a in result.alerts if a.condition.long <= timedelta(days=3))
    _, budget = _findings(definition, result)
    stale, finding = budget
    assert stale.rule == "sli-max-age"
    assert finding.rule == "window-coverage" and finding.observed == (
        "data covers 26d 0h of the 30d window (86.7%, since 2026-10-21T12:00:00Z, none after 2026-11-16T12:00:00Z)"
    )
    # Deltas with a 2-day hole in the middle: 28 of the 30 days are covered.
    hole = AT - timedelta(days=10)
    gapped = steady(0.0, timedelta(days=18), step=timedelta(hours=1), end=hole - timedelta(days=2)) + steady(
        0.0, timedelta(days=10), step=timedelta(hours=1)
    )
    assert status(wh, definition, gapped).budget_covered == timedelta(days=28)
    # The same hole between cumulative exports is covered: the difference counts its requests.
    start, lines = AT - timedelta(days=30), []
    for hour in range(1, 30 * 24 + 1):
        t = start + timedelta(hours=hour)
        if hole - timedelta(days=2) < t < hole:
            continue
        lines.append(otlp_line(t, [(200, hour * 1000, start), (500, 0, start)], temporality=2))
    cumulative = status(wh, definition, lines)
    assert cumulative.budget_covered == timedelta(days=30) and cumulative.budget_total == 30 * 24 * 1000


def test_an_sli_whose_data_stopped_is_stale_in_both_gates(wh):
    """The OTLP files stay fresh (other services export to them), but this SLI's last point is a
    day old: 29 of 30 days covered passes the coverage minimum, and the empty short windows are only
    "insufficient data", so without a staleness rule both gates passed on data that says nothing
    about the last day. Older than the ``otel_metrics`` max age (PT2H in the demo) fails both."""
    definition = slo()
    stopped = steady(0.0, timedelta(days=29), step=timedelta(hours=1), end=AT - timedelta(days=1))
    result = status(wh, definition, stopped)
    assert result.budget_coverage == pytest.approx(29 / 30)
    burn, budget = _findings(definition, result)
    for found in (burn, budget):
        (stale,) = [f for f in found if f.severity == "error"]
        assert stale.rule == "sli-max-age" and stale.subject == "api" and stale.evidence == "slo.yaml"
        assert stale.observed == (
            "no data for 1d 0h from http.server.request.duration{service.name='api'} nor any other metric of its "
            "service (newest point 2026-11-19T12:00:00Z); the SLI's data stopped"
        )
        assert stale.limit == "PT2H (2h 0m), the otel_metrics max_age" and stale.owner and stale.runbook
    # Data up to an hour ago is within the max age: no finding.
    recent = steady(0.0, timedelta(days=30), step=timedelta(hours=1), end=AT - timedelta(hours=1))
    burn, budget = _findings(definition, status(wh, definition, recent))
    assert not [f for f in burn + budget if f.rule == "sli-max-age"]


def test_an_idle_delta_service_that_still_exports_is_not_stale(wh):
    """A delta exporter sends no SLI point while no request comes (the SDK drops series without
    measurements); the service's runtime gauges still arrive, so it has not stopped exporting."""
    definition = slo()
    quiet = steady(0.0, timedelta(days=29), step=timedelta(hours=1), end=AT - timedelta(days=1))
    gauge = {"name": "process.memory.usage", "gauge": {"dataPoints": [
        {"timeUnixNano": str(int(AT.timestamp() * 1e9)), "asInt": "52428800"}]}}  # fmt: skip
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]}
    alive = json.dumps({"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [gauge]}]}]})
    for lines, stale in ((quiet, True), ([*quiet, alive], False)):
        root = f"/root{next(_files)}"
        _record(wh, root, lines)
        result = sli_status(wh, [root], definition, AT, [], versions=["sha"])
        burn, budget = _findings(definition, result)
        assert [f.rule for f in burn + budget if f.rule == "sli-max-age"] == (["sli-max-age"] * 2 if stale else [])


def test_every_objective_of_an_slo_is_judged(wh):
    """OpenSLO allows several objectives; each is its own target, budget and alerts."""
    text = SLO_YAML.replace("WINDOW", "30d").replace(
        "objectives: [{target: 0.999}]", "objectives: [{displayName: SLA, target: 0.99}, {target: 0.999}]"
    )
    sla, strict = resolve(openslo.read(text.encode(), "slo.yaml").records)
    assert (sla.name, sla.display, sla.target) == ("api/SLA", "api (SLA)", 0.99)
    assert (strict.name, strict.target) == ("api/0.999", 0.999)
    lines = steady(0.0, timedelta(days=30) - timedelta(hours=1), end=AT - timedelta(hours=1)) + steady(
        0.02, timedelta(hours=1)
    )  # 2 % errors for the last hour: 2x the SLA's budget rate, 20x the strict one's
    pages = {d.name: [a.condition.name for a in status(wh, d, lines).alerts if a.active] for d in (sla, strict)}
    assert pages == {"api/SLA": [], "api/0.999": ["page-1h"]}
    burn, _ = _findings(strict, status(wh, strict, lines))
    assert [(f.subject, f.rule) for f in burn if f.severity == "error"] == [("api/0.999", "burn-rate:page-1h")]


def test_a_level_is_not_an_event_count():
    """A gauge or an UpDownCounter's sum goes up and down: differenced as a counter it would invent
    (or hide) events, so an SLI that selects one is refused, naming the selector."""
    sel = Selector("http.server.active_requests", "api", (), None)
    for kind, monotonic, what in (
        ("sum", False, "a non-monotonic sum (an UpDownCounter)"),
        ("gauge", False, "a gauge"),
    ):
        with pytest.raises(EvidenceError) as info:
            pick_streams([("api", "{}", kind, None, monotonic)], sel, "total")
        assert info.value.field == "ratioMetric.total" and info.value.reason == (
            f"http.server.active_requests{{service.name='api'}} selects {what}: its values are levels, not event counts; expected a monotonic sum (a counter) "
            "or a histogram"
        )
    assert pick_streams([("api", "{}", "sum", None, True)], sel) == [("api", "{}")]


CONDITION = "  alertPolicies: [{kind: AlertPolicy, metadata: {name: p}, spec: {conditions: [COND]}}]\n"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("filter: {service.name: api}}", "filter: [{service.name: api}]}"),
         "ratioMetric.total.metricSource.spec.filter: expected a mapping of attribute: matcher, got [{'service.name': 'api'}]"),
        (('status_code: "~5.."', 'status_code: "~5[0-9"'),
         "ratioMetric.bad.metricSource.spec.filter.http.response.status_code: '~5[0-9' is not a valid regular "
         "expression (unterminated character set at position 1)"),
        (("{metric: http.server.request.duration, filter: {service.name: api}}", "query"),
         "ratioMetric.total.metricSource.spec: expected a mapping (metric, filter, le), got 'query'"),
        (("metadata: {name: api}", "metadata: {name: api, annotations: {phase8/min-events: lots}}"),
         "metadata.annotations.phase8/min-events: expected a whole number, got 'lots'"),
        (("metadata: {name: api}", "metadata: {name: api, annotations: {phase8/min-window-coverage: most}}"),
         "metadata.annotations.phase8/min-window-coverage: expected a percentage such as 5% or a ratio such as 0.05, "
         "got 'most'"),
        (("metadata: {name: api}", "metadata: {name: api, annotations: [phase8/owner]}"),
         "metadata.annotations: expected a mapping, got ['phase8/owner']"),
        (("objectives: [{target: 0.999}]\n", "objectives: [{target: 0.999}]\n" + CONDITION.replace(
            "COND", "{kind: AlertCondition, metadata: {name: c}, spec: {severity: page, condition: {kind: burnrate, "
            "lookbackWindow: 1h}}}")), "alertPolicies.threshold: expected a burn rate > 0 such as 14.4, got None"),
        (("objectives: [{target: 0.999}]\n", "objectives: [{target: 0.999}]\n" + CONDITION.replace("COND", "fast")),
         "alertPolicies.spec.conditions: expected conditionRef or an inline AlertCondition, got 'fast'"),
        (("objectives: [{target: 0.999}]\n", "objectives: [{target: 0.999}]\n  alertPolicies: [multiwindow-burn]\n"),
         "alertPolicies: expected alertPolicyRef or an inline AlertPolicy, got 'multiwindow-burn'"),
    ],
)  # fmt: skip
def test_a_malformed_slo_is_its_own_problem_not_a_crash(change, problem):
    """A shape the reader let through (a filter written as a list, an annotation that is no number,
    an alert condition without a threshold) used to raise while resolving the SLOs, and a matcher
    that is no regular expression while computing the burn rates: every SLO's gates then said
    only "upstream step failed". Now that SLO carries a problem naming the field
    (its gates fail closed on it) and the other SLOs are judged as before. A bare policy name in
    ``alertPolicies`` used to be ignored, so the defaults applied without a word."""
    bad = SLO_YAML.replace("WINDOW", "30d").replace(*change)
    assert bad != SLO_YAML.replace("WINDOW", "30d")
    good = SLO_YAML.replace("WINDOW", "30d").replace("{name: api}", "{name: other}")
    records = openslo.read(f"{bad}---\n{good}".encode(), "slo.yaml").records
    broken, fine = resolve(records)
    assert broken.problem == problem
    assert fine.name == "other" and fine.problem is None


def test_an_unknown_calendar_time_zone_is_a_named_rejection():
    text = SLO_YAML.replace("{duration: WINDOW, isRolling: true}", "{duration: 1M, calendar: {startTime: "
                            "'2026-01-01 00:00:00', timeZone: Europe/Paris}}")  # fmt: skip
    assert resolve(openslo.read(text.encode(), "slo.yaml").records)[0].calendar_start.utcoffset() == timedelta(hours=1)
    with pytest.raises(EvidenceError) as info:
        openslo.read(text.replace("Europe/Paris", "Central European Time").encode(), "slo.yaml")
    assert info.value.field == "spec.timeWindow[0].calendar.timeZone"
    assert info.value.reason == "expected an IANA time zone such as America/New_York, got 'Central European Time'"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("page", "page"), ("sev1", "page"), ("SEV-1", "page"), ("P1", "page"), ("Critical", "page"),
     ("ticket", "ticket"), ("warning", "ticket"), ("low", "ticket"), ("sev3", None), ("notify", None)],
)  # fmt: skip
def test_alert_severities_page_unless_they_say_ticket(severity, expected):
    """OpenSLO's own example severity is "sev1": it used to count as a ticket (only page, critical
    and high paged), so a 25x fast burn became a warning and the release passed. A word that is
    neither page- nor ticket-level is a problem naming the field, never a silent ticket."""
    text = SLO_YAML.replace("WINDOW", "30d") + CONDITION.replace(
        "COND", f"{{kind: AlertCondition, metadata: {{name: fast}}, spec: {{severity: {severity}, condition: "
        "{kind: burnrate, threshold: 14.4, lookbackWindow: 1h}}}"
    )  # fmt: skip
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    if expected is None:
        assert definition.problem.startswith(f"alertPolicies.severity: severity {severity!r} is neither page-level")
    else:
        assert definition.problem is None and [c.severity for c in definition.conditions] == [expected]


def test_v1alpha_objectives_are_judged_on_their_own_ratio_metrics():
    """openslo/v1alpha gives each objective its own ``ratioMetrics``; every objective used to be
    judged on the first one's, so a strict 100 ms objective was measured by the lenient 1 s SLI."""
    source = "{source: otlp, metric: http.server.request.duration, le: LE}"
    text = f"""\
apiVersion: openslo/v1alpha
kind: SLO
metadata: {{name: latency}}
spec:
  service: api
  budgetingMethod: Occurrences
  timeWindows: [{{count: 30, unit: Day}}]
  objectives:
    - {{displayName: lenient, target: 0.99, ratioMetrics: {{good: {source.replace("LE", "1.0")}, total: {{source: otlp}}}}}}
    - {{displayName: strict, target: 0.9, ratioMetrics: {{good: {source.replace("LE", "0.1")}, total: {{source: otlp}}}}}}
"""
    lenient, strict = resolve(openslo.read(text.encode(), "slo.yaml").records)
    assert (lenient.name, lenient.good.le, lenient.problem) == ("latency/lenient", 1.0, None)
    assert (strict.name, strict.good.le, strict.problem) == ("latency/strict", 0.1, None)
    assert strict.total.metric == "http.server.request.duration" and strict.total.service == "api"
    # A broken SLI of one objective is that objective's problem.
    (_, broken) = resolve(openslo.read(text.replace("le: 0.1", "le: fast").encode(), "slo.yaml").records)
    assert (
        broken.problem
        == "objectives[1].ratioMetric.good.metricSource.spec.le: expected a number (a bucket bound), got 'fast'"
    )


def test_a_name_defined_twice_differently_is_ambiguous_not_last_wins():
    """OpenSLO names are unique per kind. An older copy of an alert policy in another file used to
    replace the reviewed one (the last file read won), so a release passed a fast burn the real
    policy pages on. A second, different definition now makes the SLOs that use it not
    evaluable, naming both places; an identical copy (one file under two roots) is the same."""
    policy = """\
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: burn}
spec: {conditions: [{conditionRef: fast}]}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: fast}
spec: {severity: page, condition: {kind: burnrate, threshold: THRESHOLD, lookbackWindow: 1h}}
"""
    slo_text = SLO_YAML.replace("WINDOW", "30d") + "  alertPolicies: [{alertPolicyRef: burn}]\n"
    reviewed = openslo.read(policy.replace("THRESHOLD", "14.4").encode(), "alerting.yaml").records
    old_copy = openslo.read(policy.replace("THRESHOLD", "1000").encode(), "old.yaml").records
    own = openslo.read(slo_text.encode(), "slo.yaml").records
    (definition,) = resolve(own + reviewed)
    assert definition.problem is None and definition.conditions[0].factor == 14.4
    (same,) = resolve(own + reviewed + reviewed)  # the same documents twice: one definition
    assert same.problem is None and same.conditions[0].factor == 14.4
    (ambiguous,) = resolve(own + reviewed + old_copy)
    assert ambiguous.problem == (
        "alertPolicies: AlertCondition 'fast' is defined 2 times, differently (alerting.yaml#1, old.yaml#1): "
        "which one counts is ambiguous; keep one"
    )
    # The same for an SLI, and for the SLO itself (both copies are reported, neither judged).
    sli = "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: errors}\nspec: {ratioMetric: {bad: BAD, total: TOTAL}}\n"
    sel = "{metricSource: {type: otlp, spec: {filter: {http.response.status_code: '~5..'}}}}"
    sli_a = openslo.read(sli.replace("BAD", sel).replace("TOTAL", "{metricSource: {type: otlp}}").encode(), "a.yaml")
    sli_b = openslo.read(
        sli.replace("BAD", sel.replace("5", "4")).replace("TOTAL", "{metricSource: {type: otlp}}").encode(), "b.yaml"
    )
    by_ref = (
        SLO_YAML.replace("WINDOW", "30d").split("  indicator:")[0]
        + "  indicatorRef: errors\n"
        + (
            "  timeWindow: [{duration: 30d, isRolling: true}]\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.999}]\n"
        )
    )
    (by_sli,) = resolve(openslo.read(by_ref.encode(), "slo.yaml").records + sli_a.records + sli_b.records)
    assert by_sli.problem.startswith("indicatorRef: SLI 'errors' is defined 2 times, differently (a.yaml, b.yaml)")
    other = openslo.read(slo_text.replace("0.999", "0.99").encode(), "copy.yaml").records
    first, second = resolve(own + other + reviewed)
    assert (
        first.problem
        == second.problem
        == (
            "metadata.name: SLO 'api' is defined 2 times, differently (slo.yaml, copy.yaml): which one counts is "
            "ambiguous; keep one"
        )
    )


def _exp_line(t: datetime, start: datetime, scale: int, counts: dict[float, int]) -> str:
    """One cumulative exponential-histogram export of service api: ``counts`` of requests by duration."""
    index = {v: math.ceil(math.log2(v) * 2**scale) - 1 for v in counts}
    low = min(index.values())
    buckets = [0] * (max(index.values()) - low + 1)
    for v, n in counts.items():
        buckets[index[v] - low] += n
    point = {"startTimeUnixNano": str(int(start.timestamp() * 1e9)), "timeUnixNano": str(int(t.timestamp() * 1e9)),
             "count": str(sum(counts.values())), "scale": scale,
             "positive": {"offset": low, "bucketCounts": [str(b) for b in buckets]}}  # fmt: skip
    metric = {"name": "http.server.request.duration",
              "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [point]}}  # fmt: skip
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]}
    return json.dumps({"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]})


def test_an_exponential_histogram_that_rescales_never_counts_its_history_as_fast(wh):
    """With ``le: 0.3`` on an exponential histogram, the requests counted fast are those of the
    buckets wholly under 0.3 s. When the SDK halves the scale, the bucket just under 0.3 s
    (0.2973, 0.2986] merges into (0.2973, 0.3006]: the fast count drops without a restart. That
    drop used to be taken for a restart, counting every fast request since the stream began at
    once, so the last hour's 5 % slow requests (5x the budget rate) read as 0 bad."""
    text = SLO_YAML.replace("WINDOW", "30d").replace("target: 0.999", "target: 0.99")
    text = text.replace(
        "bad: {metricSource: {type: otlp, spec: {metric: http.server.request.duration, filter: {service.name: api, "
        'http.response.status_code: "~5.."}}}}',
        "good: {metricSource: {type: otlp, spec: {le: 0.3}}}",
    )
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    assert definition.good.le == 0.3 and definition.problem is None
    start, lines, fast, edge, slow = AT - timedelta(hours=3), [], 0, 0, 0
    rescaled = AT - timedelta(minutes=30)
    t = start + timedelta(minutes=5)
    while t <= AT:
        errors = 500 if t > AT - timedelta(hours=1) else 0
        fast, edge, slow = fast + 9000 - errors, edge + 1000, slow + errors
        lines.append(_exp_line(t, start, 7 if t < rescaled else 6, {0.2: fast, 0.298: edge, 2.0: slow}))
        t += timedelta(minutes=5)
    root = f"/root{next(_files)}"
    _record(wh, root, lines)
    good = sli_events(wh, [root], definition.good, "good", versions=["sha"])
    total = sli_events(wh, [root], definition.total, "total", versions=["sha"])
    (hour,) = evaluate(definition, good, total, AT, [timedelta(hours=1)]).windows
    assert hour.total == 12 * 10_000
    assert hour.bad >= 12 * 500  # at least the slow requests: never fewer bad than there were
    assert good.between(_ns_of(rescaled - timedelta(minutes=1)), _ns_of(rescaled)) == 0  # the rescale adds none


def _ns_of(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def test_a_good_selector_counting_more_than_total_is_an_error_not_zero_bad(wh):
    """A good selector broader than total (here: every request of the service, against a total of
    the 200s only) counts more than total; clipped at 0, the bad count said nothing failed while
    10 % of the requests were 5xx, and both gates passed. It is an error in both now."""
    text = SLO_YAML.replace("WINDOW", "30d").replace("bad: {", "good: {")
    text = text.replace('filter: {service.name: api, http.response.status_code: "~5.."}', "filter: {service.name: api}")
    text = text.replace(
        "filter: {service.name: api}}}}\n  timeWindow",
        'filter: {service.name: api, http.response.status_code: "200"}}}}\n  timeWindow',
    )
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    root = f"/root{next(_files)}"
    _record(wh, root, steady(0.1, timedelta(days=30), step=timedelta(hours=1)))
    good = sli_events(wh, [root], definition.good, "good", versions=["sha"])
    total = sli_events(wh, [root], definition.total, "total", versions=["sha"])
    result = evaluate(definition, good, total, AT, [])
    assert result.budget_bad == 0 and result.overcounted
    burn, budget = _findings(definition, result)
    for found in (burn, budget):
        (over,) = [f for f in found if f.severity == "error"]
        assert over.rule == "sli-consistency" and over.subject == "api" and over.evidence == "slo.yaml"
        assert over.observed.startswith("good http.server.request.duration{service.name='api'} counted 7,200,000")
        assert "total http.server.request.duration{" in over.observed and over.observed.endswith(" 6,480,000")
        assert over.owner and over.runbook
    # good and total over the same requests (good a subset): no finding
    same = slo()
    burn, budget = _findings(same, status(wh, same, steady(0.1, timedelta(days=30), step=timedelta(hours=1))))
    assert not [f for f in burn + budget if f.rule == "sli-consistency"]


def _replicas(b_start: datetime, b_errors_last_hour: int = 500, a_start: datetime | None = None) -> list[str]:
    """Two replicas of service api whose resources do not tell them apart (no service.instance.id):
    A's counter began 40 days ago, B's at ``b_start``; both export every 5 minutes over the last
    6 hours, B 30 s after A, 10,000 requests each per export. A's are all 200s; B fails
    ``b_errors_last_hour`` of its 10,000 per export in the last hour (2.5 % of the service's
    requests then: 25x the budget rate). Both counters carry millions of requests of their past."""
    a_start, lines = a_start or AT - timedelta(days=40), []
    a_ok, b_ok, b_bad = 50_000_000, 20_000_000, 0
    t = AT - timedelta(hours=6)
    while t <= AT:
        errors = b_errors_last_hour if t > AT - timedelta(hours=1) else 0
        a_ok, b_ok, b_bad = a_ok + 10_000, b_ok + 10_000 - errors, b_bad + errors
        lines.append(otlp_line(t - timedelta(seconds=30), [(200, a_ok, a_start), (500, 0, a_start)], temporality=2))
        lines.append(otlp_line(t, [(200, b_ok, b_start), (500, b_bad, b_start)], temporality=2))
        t += timedelta(minutes=5)
    return lines


def test_replicas_with_their_own_start_times_are_counted_apart(wh):
    """The data model: points of one stream with another ``startTimeUnixNano`` are another
    sequence. Replica B's first point (a start time different from A's) was taken for a restart
    of A and counted whole, putting B's 20 M requests of the past 10 days into the last 6 hours:
    the budget read 28 % spent where B's errors had spent it four times over, and the ticket-1d
    burn read 0.3 (truly 4.2). Each start time is its own sequence now, differenced on its own; a
    sequence that begins while an earlier one still exports is another writer, whose first point
    only anchors (counted whole only within an hour of its start, as any stream's first point)."""
    definition = slo()
    result = status(wh, definition, _replicas(b_start=AT - timedelta(days=10)))
    page = next(a for a in result.alerts if a.condition.name == "page-1h")
    assert page.long.total == 12 * 20_000 and page.long.bad == 12 * 500
    assert page.long.burn(definition.target) == pytest.approx(25) and page.active
    # 6 hours of exports: the first export of each replica only anchors
    assert result.budget_total == 72 * 20_000 and result.consumed == pytest.approx(6_000 / 1_440)
    assert next(a for a in result.alerts if a.condition.name == "ticket-1d").active
    assert result.budget_covered == timedelta(hours=6, seconds=30)  # A from 30 s before B


def test_replicas_with_the_same_start_time_are_a_named_problem(wh):
    """Two replicas started in the same instant (or whose start time a collector set the same)
    write one stream whose cumulative points jump between two counters: each drop read as a
    restart counting B's whole count, each rise as A's lead over B, so the windows held the
    counters' lifetimes: B's burning hour read as a 1h burn of 0.06 (truly 25) and the budget 1 %
    spent (truly four times over). The two cannot be told apart: a named problem, not a count."""
    definition = slo()
    with pytest.raises(EvidenceError, match="overlapping cumulative points") as caught:
        status(wh, definition, _replicas(b_start=AT - timedelta(days=40)))
    assert caught.value.field == "startTimeUnixNano"
    assert "service.name 'api'" in caught.value.reason and "service.instance.id" in caught.value.reason
    assert "(in x.jsonl)" in caught.value.reason


def test_without_start_times_a_lower_count_is_still_a_restart(wh):
    """A producer that writes no start time (0): nothing tells two writers apart from restarts, so
    a lower count is a restart (Prometheus' rule) and counts whole; its first point anchors."""
    lines, ok, never = [], 0, datetime.fromtimestamp(0, UTC)
    t = AT - timedelta(hours=3)
    while t <= AT:
        ok = 2_000 if t == AT - timedelta(hours=1) else ok + 1_000
        lines.append(otlp_line(t, [(200, ok, never), (500, 0, never)], temporality=2))
        t += timedelta(minutes=5)
    total = _events(wh, slo(), lines)[1]
    assert total.between(0, _ns_of(AT)) == 35 * 1_000 + 2_000  # 36 increments, the restart 2,000 whole


def test_without_start_times_two_interleaved_writers_are_a_named_problem(wh):
    """The replicas above with no start time (0), as a producer that writes none sends them: each
    drop to B's lower count was a restart counting B's whole count, each rise A's lead over B, so
    every pair of exports counted A's lifetime and B's errors vanished (the 1h burn read 0.06 where
    it is 25, and the gate passed). A restart drops once and grows from there; a count that drops
    and comes back at least to where it was, three times in a row, with the lows and the highs
    each only growing, is two counters taking turns: a named problem, not a count."""
    never = datetime.fromtimestamp(0, UTC)
    with pytest.raises(EvidenceError, match="two writers") as caught:
        status(wh, slo(), _replicas(b_start=never, a_start=never))
    assert caught.value.field == "startTimeUnixNano"
    assert "service.name 'api'" in caught.value.reason and "service.instance.id" in caught.value.reason
    assert "startTimeUnixNano 0" in caught.value.reason and "(in x.jsonl)" in caught.value.reason
    # restarts that each grow past the count before them stay restarts: 1,000 per export
    lines, ok = [], 0
    t = AT - timedelta(hours=3)
    while t <= AT:
        ok = 500 if t.minute == 0 else ok + 1_000  # a restart every hour, 500 into its first export
        lines.append(otlp_line(t, [(200, ok, never), (500, 0, never)], temporality=2))
        t += timedelta(minutes=5)
    assert _events(wh, slo(), lines)[1].between(0, _ns_of(AT)) == 33 * 1_000 + 3 * 500


def test_one_stream_as_deltas_and_cumulative_at_once_is_refused_but_a_switch_counts(wh):
    """Temporality is part of a metric's identity. A collector with one pipeline through
    ``cumulativetodelta`` and one without writes the same requests twice, as deltas and as
    cumulative counts; they were summed in silence. Both at the same time are a named problem now;
    a deploy that switched the SDK from cumulative to delta (one after the other) counts as it is."""
    start, lines, ok = AT - timedelta(days=40), [], 1_000_000
    t = AT - timedelta(hours=6)
    while t <= AT:
        ok += 1_000
        lines.append(otlp_line(t, [(200, ok, start), (500, 0, start)], temporality=2))
        lines.append(otlp_line(t, [(200, 1_000, t - timedelta(minutes=5)), (500, 0, t - timedelta(minutes=5))]))
        t += timedelta(minutes=5)
    with pytest.raises(EvidenceError, match="as deltas and as cumulative counts at the same time") as caught:
        _events(wh, slo(), lines)
    assert caught.value.field == "aggregationTemporality" and "(in x.jsonl)" in caught.value.reason
    # switched: cumulative until 3 hours ago, deltas since
    switch, lines, ok = AT - timedelta(hours=3), [], 1_000_000
    t = AT - timedelta(hours=6)
    while t <= AT:
        ok += 1_000
        if t <= switch:
            lines.append(otlp_line(t, [(200, ok, start), (500, 0, start)], temporality=2))
        else:
            lines.append(otlp_line(t, [(200, 1_000, t - timedelta(minutes=5)), (500, 0, t - timedelta(minutes=5))]))
        t += timedelta(minutes=5)
    total = _events(wh, slo(), lines)[1]
    assert total.between(0, _ns_of(AT)) == 72 * 1_000  # the first cumulative export only anchors


COMPOSITE = """\
apiVersion: openslo/v1
kind: SLI
metadata: {name: fast}
spec: {ratioMetric: {good: {metricSource: {type: otlp, spec: {le: 0.3}}}, total: {metricSource: {type: otlp}}}}
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: errors}
spec: {ratioMetric: {bad: {metricSource: {type: otlp, spec: {filter: {error.type: "*"}}}}, total: {metricSource: {type: otlp}}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api}
spec:
  service: api
SLO_INDICATOR
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - {displayName: fast, target: 0.9, FIRST}
    - {displayName: available, target: 0.999, SECOND}
"""


def _composite(slo_indicator: str, first: str, second: str) -> str:
    return COMPOSITE.replace("SLO_INDICATOR\n", slo_indicator).replace(", FIRST", first).replace(", SECOND", second)


def test_an_objectives_own_indicator_ref_is_its_sli_never_the_slos():
    """OpenSLO v1 lets an objective name its own SLI (``objectives[].indicatorRef``, a composite
    SLO's parts). It was ignored: a 99.9 % availability objective was judged on the SLO's latency
    SLI. An SLO whose every objective names its SLI needs none of its own."""
    for text in (
        _composite("  indicatorRef: fast\n", "", ", indicatorRef: errors"),
        _composite("", ", compositeWeight: 1, indicatorRef: fast", ", compositeWeight: 2, indicatorRef: errors"),
    ):
        read = openslo.read(text.encode(), "slo.yaml")
        fast, available = resolve(read.records)
        assert (fast.name, fast.good.le, fast.bad, fast.problem) == ("api/fast", 0.3, None, None)
        assert (available.name, available.good, available.problem) == ("api/available", None, None)
        assert available.bad.matchers == (("error.type", "*"),)
    assert any("compositeWeight" in w for w in read.warnings)  # the weights are not combined: said so
    (_, missing) = resolve(
        openslo.read(_composite("  indicatorRef: fast\n", "", ", indicatorRef: nope").encode(), "s.yaml").records
    )
    assert missing.problem == "objectives[1].indicatorRef: SLI 'nope' is not defined"


@pytest.mark.parametrize(
    ("slo_indicator", "first", "second", "field"),
    [
        ("", "", ", indicatorRef: errors", "spec.objectives[0].indicatorRef"),  # one objective without an SLI
        ("", ", indicatorRef: fast, indicator: {spec: {}}", "", "spec.objectives[0].indicatorRef"),  # both: which?
        ("  indicatorRef: fast\n  indicator: {spec: {}}\n", "", "", "spec.indicatorRef"),
    ],
)
def test_an_slo_without_an_sli_for_an_objective_or_with_two_is_a_named_rejection(slo_indicator, first, second, field):
    with pytest.raises(EvidenceError) as info:
        openslo.read(_composite(slo_indicator, first, second).encode(), "slo.yaml")
    assert info.value.field == f"document 3.{field}"


@pytest.mark.parametrize(
    ("start", "zone", "expected"),
    [
        ("2026-01-01 00:00:00", "Europe/Paris", "2025-12-31T23:00:00+00:00"),  # no offset: the window's zone
        ("2026-01-01T00:00:00-05:00", "Europe/Paris", "2026-01-01T05:00:00+00:00"),  # its own offset wins
        ("2026-01-01T00:00:00+01:00", "America/New_York", "2025-12-31T23:00:00+00:00"),
        ("2026-01-01T00:00:00z", "Europe/Paris", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_a_calendar_start_time_with_an_offset_keeps_it(start, zone, expected):
    """A startTime written with a negative offset (or a lower-case z) was read as wall-clock time in
    the window's timeZone: the budget period began hours away from the instant written."""
    text = SLO_YAML.replace(
        "{duration: WINDOW, isRolling: true}", f"{{duration: 1M, calendar: {{startTime: '{start}', timeZone: {zone}}}}}"
    )
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    assert definition.calendar_start.astimezone(UTC).isoformat() == expected


@pytest.mark.parametrize(
    ("objective", "field", "reason"),
    [
        ("{target: 0.99, targetPercent: 99.9}", "targetPercent", "disagree"),
        ("{targetPercent: 0.999}", "targetPercent", "99.9"),
        ("{targetPercent: 1}", "targetPercent", "a ratio"),
    ],
)
def test_a_target_that_reads_two_ways_is_a_named_rejection(objective, field, reason):
    """``target`` is a ratio, ``targetPercent`` a percentage. Both, disagreeing, was read as
    ``target`` alone; ``targetPercent: 0.999`` (a ratio in the percent field) as a 0.999 % objective,
    whose budget nothing ever spends: the SLO passed whatever its error rate."""
    with pytest.raises(EvidenceError) as info:
        openslo.read(SLO_YAML.replace("WINDOW", "30d").replace("{target: 0.999}", objective).encode(), "slo.yaml")
    assert info.value.field == f"spec.objectives[0].{field}" and reason in info.value.reason
    same = "{target: 0.999, targetPercent: 99.9}"  # both, saying the same: that target
    (definition,) = resolve(
        openslo.read(SLO_YAML.replace("WINDOW", "30d").replace("{target: 0.999}", same).encode(), "s").records
    )
    assert definition.target == 0.999


DATA_SOURCE = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: collector}
spec: {type: DS_TYPE, connectionDetails: {endpoint: "http://otel-collector:4318"}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api}
spec:
  service: api
  indicator:
    metadata: {name: errors}
    spec:
      ratioMetric:
        bad: {metricSource: {metricSourceRef: REF TYPE, spec: {filter: {error.type: "*"}}}}
        total: {metricSource: {metricSourceRef: REF}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""


@pytest.mark.parametrize(
    ("ds_type", "ref", "own_type", "problem"),
    [
        ("otlp", "collector", "", None),  # the type is the DataSource's
        ("OpenTelemetry", "collector", ", type: otlp", None),
        ("Prometheus", "collector", "", "ratioMetric.bad: metricSource.type 'Prometheus' (DataSource 'collector')"),
        ("otlp", "nope", "", "ratioMetric.bad.metricSource.metricSourceRef: DataSource 'nope' is not defined"),
        ("Prometheus", "collector", ", type: otlp", "ratioMetric.bad.metricSource.type: 'otlp' but DataSource"),
    ],
)
def test_a_metric_source_ref_takes_its_type_from_the_data_source(ds_type, ref, own_type, problem):
    """OpenSLO v1: a metricSource may name a DataSource (``metricSourceRef``) and leave out ``type``,
    which is then the DataSource's. It was read as no type at all ("type None cannot be evaluated")."""
    text = DATA_SOURCE.replace("DS_TYPE", ds_type).replace("REF", ref).replace(" TYPE", own_type)
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    if problem is None:
        assert definition.problem is None and definition.bad.matchers == (("error.type", "*"),)
    else:
        assert definition.problem.startswith(problem), definition.problem


def test_a_data_source_defined_twice_differently_is_ambiguous():
    text = DATA_SOURCE.replace("DS_TYPE", "otlp").replace("REF", "collector").replace(" TYPE", "")
    other = DATA_SOURCE.split("---")[0].replace("DS_TYPE", "Prometheus")
    (definition,) = resolve(
        openslo.read(text.encode(), "a.yaml").records + openslo.read(other.encode(), "b.yaml").records
    )
    assert definition.problem.startswith(
        "ratioMetric.bad.metricSource.metricSourceRef: DataSource 'collector' is defined 2"
    )


@pytest.mark.parametrize(
    "policies",
    [
        "  alertPolicies: [{name: fast-burn, conditions: [{kind: burnrate, threshold: 2, lookbackWindow: 1h}]}]\n",
        "  alertPolicies: [{kind: AlertPolicy, metadata: {name: p}, spec: {conditions: []}}]\n",
        "  alertPolicies: [{kind: AlertPolicy, metadata: {name: p}}]\n",
    ],
)
def test_an_alert_policy_without_conditions_is_a_problem_not_the_default_policy(policies):
    """An inline policy missing its ``spec`` (its conditions written at the top, as blog posts
    show) or with no condition was taken as no policy at all: the default multiwindow conditions
    applied without a word, not the thresholds the team wrote."""
    text = SLO_YAML.replace("WINDOW", "30d") + policies
    (definition,) = resolve(openslo.read(text.encode(), "slo.yaml").records)
    assert definition.problem is not None and definition.problem.startswith("alertPolicies"), definition.problem
    assert "no conditions" in definition.problem
