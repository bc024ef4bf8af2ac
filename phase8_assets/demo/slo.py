"""Demo SLO evidence: OpenSLO definitions and 30 days of OTLP/JSON metrics for three services.

``http.server.request.duration`` histograms (cumulative, int64 counts as strings, as the file
exporter writes them), one line per export: 3-hourly, hourly for the last week, every 5 minutes
for the last 6 hours (the short alert windows need it), so ``data/`` stays small. chat-realtime restarts once
(a counter reset). chat-api had an incident 12 days ago: two hours at 4 % errors.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME
from phase8_assets.shared.reports import write_text

BOUNDS = [0.05, 0.1, 0.3, 0.5, 1.0, 2.5]
OK_SHAPE = [0.55, 0.25, 0.1965, 0.0025, 0.0008, 0.0002, 0.0]  # share of requests per bucket (2xx)
ERR_SHAPE = [0.2, 0.3, 0.3, 0.1, 0.05, 0.05, 0.0]
# service -> (requests per hour, error ratio, route)
SERVICES = {
    "chat-api": (36_000, 0.0002, "/api/v4/posts"),
    "chat-realtime": (18_000, 0.0003, "/api/v4/websocket"),
    "chat-files": (7_200, 0.001, "/api/v4/files"),
}
INCIDENT = ("chat-api", timedelta(days=12), timedelta(hours=2), 0.04)
RESTART = ("chat-realtime", timedelta(days=9))
DAYS = 30


def _ns(dt: datetime) -> str:
    return str(int(dt.timestamp()) * 1_000_000_000)


def _attr(key: str, value) -> dict:
    kind = "intValue" if isinstance(value, int) else "stringValue"
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def _split(n: int, shape: list[float], rng: random.Random) -> list[int]:
    counts = [int(n * s) for s in shape]
    counts[0] += n - sum(counts)
    for _ in range(min(n, 3)):  # a little jitter between buckets
        i = rng.randrange(len(shape) - 2)
        if counts[i]:
            counts[i] -= 1
            counts[i + 1] += 1
    return counts


def timeline(at: datetime) -> list[tuple[datetime, timedelta]]:
    """Export times and the interval each covers: 3-hourly, hourly for the last 7 days, then every
    5 minutes for the last 6 hours (the shortest alert windows need it)."""
    fine_from = at - timedelta(hours=6)
    out = []
    t = at - timedelta(days=DAYS) + timedelta(hours=3)
    while t <= fine_from:
        step = timedelta(hours=3) if t <= at - timedelta(days=7) else timedelta(hours=1)
        out.append((t, step))
        t += step
    t = fine_from + timedelta(minutes=5)
    while t <= at:
        out.append((t, timedelta(minutes=5)))
        t += timedelta(minutes=5)
    return out


def _point(attrs: list[dict], start: datetime, t: datetime, buckets: list[int]) -> dict:
    return {
        "attributes": attrs,
        "startTimeUnixNano": _ns(start),
        "timeUnixNano": _ns(t),
        "count": str(sum(buckets)),
        "sum": round(sum(c * b for c, b in zip(buckets, [*BOUNDS, 5.0], strict=True)) * 0.6, 3),
        "bucketCounts": [str(c) for c in buckets],
        "explicitBounds": BOUNDS,
    }


def _line(t: datetime, points_by_service: dict[str, list[dict]], temporality: int) -> str:
    resource_metrics = [
        {
            "resource": {
                "attributes": [_attr("service.name", svc), _attr("deployment.environment.name", "production")]
            },
            "scopeMetrics": [
                {
                    "scope": {"name": "io.opentelemetry.http", "version": "1.28.0"},
                    "metrics": [
                        {
                            "name": "http.server.request.duration",
                            "unit": "s",
                            "description": "Duration of HTTP server requests.",
                            "histogram": {"aggregationTemporality": temporality, "dataPoints": points},
                        }
                    ],
                }
            ],
        }
        for svc, points in points_by_service.items()
    ]
    return json.dumps({"resourceMetrics": resource_metrics}, separators=(",", ":"))


def metrics(at: datetime, rng: random.Random) -> dict[str, str]:
    """Cumulative histograms for the three services, one JSON line per export, one file per day."""
    process_start = {svc: at - timedelta(days=DAYS + 5) for svc in SERVICES}
    totals = {(svc, code): [0] * (len(BOUNDS) + 1) for svc in SERVICES for code in (200, 500)}
    files: dict[str, list[str]] = {}
    for t, step in timeline(at):
        if t - step < at - RESTART[1] <= t:  # chat-realtime restarts: its counters start again
            process_start[RESTART[0]] = t - step / 2
            for code in (200, 500):
                totals[(RESTART[0], code)] = [0] * (len(BOUNDS) + 1)
        by_service = {}
        for svc, (per_hour, err, route) in SERVICES.items():
            n = max(1, round(per_hour * step / timedelta(hours=1) * rng.uniform(0.85, 1.15)))
            ratio = err
            svc_i, ago, length, incident_ratio = INCIDENT
            if svc == svc_i and at - ago <= t < at - ago + length:
                ratio = incident_ratio
            errors = (
                sum(1 for _ in range(n) if rng.random() < ratio)
                if n < 5000
                else round(n * ratio * rng.uniform(0.7, 1.3))
            )
            points = []
            for code, count, shape in ((200, n - errors, OK_SHAPE), (500, errors, ERR_SHAPE)):
                add = _split(count, shape, rng)
                totals[(svc, code)] = [a + b for a, b in zip(totals[(svc, code)], add, strict=True)]
                attrs = [
                    _attr("http.request.method", "GET"),
                    _attr("http.route", route),
                    _attr("http.response.status_code", code),
                ]
                if code >= 500:
                    attrs.append(_attr("error.type", str(code)))
                points.append(_point(attrs, process_start[svc], t, totals[(svc, code)]))
            by_service[svc] = points
        files.setdefault(f"evidence/otel/metrics-{t - timedelta(seconds=1):%Y-%m-%d}.jsonl", []).append(
            _line(t, by_service, 2)
        )
    return {path: "\n".join(lines) + "\n" for path, lines in files.items()}


def extra_errors(
    at: datetime, service: str, ratio: float, since: timedelta, step: timedelta, rng: random.Random
) -> str:
    """A delta-temporality stream of extra 5xx responses for one service (a canary instance)."""
    per_hour = SERVICES[service][0]
    lines = []
    t = at - since + step
    while t <= at:
        n = round(per_hour * step / timedelta(hours=1) * ratio * rng.uniform(0.9, 1.1))
        buckets = _split(n, ERR_SHAPE, rng)
        attrs = [_attr("http.request.method", "GET"), _attr("http.route", SERVICES[service][2]),
                 _attr("http.response.status_code", 503), _attr("error.type", "503"),
                 _attr("service.instance.id", f"{service}-canary")]  # fmt: skip
        lines.append(_line(t, {service: [_point(attrs, t - step, t, buckets)]}, 1))
        t += step
    return "\n".join(lines) + "\n"


def _availability(name: str, service: str, target: float, owner: str) -> str:
    return f"""\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
  displayName: {service} availability
  annotations:
    phase8/owner: {owner}
    phase8/min-budget-remaining: "0%"
spec:
  description: Share of {service} HTTP requests answered without a server error (5xx).
  service: {service}
  indicator:
    metadata:
      name: {service}-server-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: otlp
            spec:
              metric: http.server.request.duration
              filter:
                service.name: {service}
                http.response.status_code: "~5.."
        total:
          metricSource:
            type: otlp
            spec:
              metric: http.server.request.duration
              filter:
                service.name: {service}
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: availability
      target: {target}
  alertPolicies:
    - alertPolicyRef: multiwindow-burn
"""


SLO_FILE = (
    _availability("chat-api-availability", "chat-api", 0.999, "team:api")
    + "---\n"
    + _availability("chat-realtime-availability", "chat-realtime", 0.999, "team:realtime")
    + "---\n"
    + _availability("chat-files-availability", "chat-files", 0.995, "team:storage")
    + """\
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: chat-api-fast-requests
  displayName: chat-api requests answered within 300 ms
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: otlp
        spec:
          metric: http.server.request.duration
          filter:
            service.name: chat-api
            http.response.status_code: "!~5.."
          le: 0.3
    total:
      metricSource:
        type: otlp
        spec:
          metric: http.server.request.duration
          filter:
            service.name: chat-api
            http.response.status_code: "!~5.."
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: chat-api-latency
  displayName: chat-api latency
  annotations:
    phase8/owner: team:api
spec:
  service: chat-api
  indicatorRef: chat-api-fast-requests
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar:
        startTime: "2026-01-01 00:00:00"
        timeZone: UTC
  budgetingMethod: Occurrences
  objectives:
    - displayName: 99 % within 300 ms
      target: 0.99
"""
)

ALERTS_FILE = """\
# The SRE Workbook's multiwindow, multi-burn-rate policy written out as OpenSLO: the same as the
# default, shown here so teams can see (and change) what pages.
apiVersion: openslo/v1
kind: AlertPolicy
metadata:
  name: multiwindow-burn
spec:
  description: Page on fast burns, ticket on slow ones.
  conditions:
    - conditionRef: fast-burn-1h
    - conditionRef: fast-burn-6h
    - conditionRef: slow-burn-1d
    - conditionRef: slow-burn-3d
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: fast-burn-1h}
spec: {severity: page, condition: {kind: burnrate, op: gte, threshold: 14.4, lookbackWindow: 1h, alertAfter: 0m}}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: fast-burn-6h}
spec: {severity: page, condition: {kind: burnrate, op: gte, threshold: 6, lookbackWindow: 6h, alertAfter: 0m}}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: slow-burn-1d}
spec: {severity: ticket, condition: {kind: burnrate, op: gte, threshold: 3, lookbackWindow: 1d, alertAfter: 0m}}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: slow-burn-3d}
spec: {severity: ticket, condition: {kind: burnrate, op: gte, threshold: 1, lookbackWindow: 3d, alertAfter: 0m}}
"""


def scenarios(out: Path, rng: random.Random) -> list[Path]:
    files = []
    scenarios = {
        "slo-fast-burn": ("a chat-api canary fails 2.5 % of requests for an hour", "chat-api", 0.025,
                          timedelta(hours=1), timedelta(minutes=5)),
        "slo-budget-exhausted": ("chat-files has failed 0.5 % more requests for 30 days", "chat-files", 0.005,
                                 timedelta(days=30), timedelta(hours=3)),
        "slo-slow-burn": ("chat-realtime has failed 0.35 % of requests for 3 days", "chat-realtime", 0.0035,
                          timedelta(days=3), timedelta(hours=1)),
    }  # fmt: skip
    for name, (description, service, ratio, since, step) in scenarios.items():
        files.append(
            write_text(
                out / "scenarios" / name / "phase8.yaml",
                "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
                f"description: {description}\n"
                'evidence:\n  otel_metrics:\n    extra_paths: ["otel/*.jsonl"]\n',
            )
        )
        text = extra_errors(EVALUATION_TIME, service, ratio, since, step, rng)
        files.append(write_text(out / "scenarios" / name / "otel" / f"{service}-canary.jsonl", text))
    return files
