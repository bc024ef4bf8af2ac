"""OTLP/JSON metrics (evidence kind ``otel_metrics``) as the OpenTelemetry file exporter and the
collector write them: one ``ExportMetricsServiceRequest`` per line (JSON lines), or one per file.

``resourceMetrics → scopeMetrics → metrics`` with ``sum``, ``gauge``, ``histogram`` and
``exponentialHistogram``; 64-bit integers as strings or numbers; unknown fields ignored (the
protocol's rule). Each data point becomes one flat row (``POINT_COLUMNS``): the metric, the
``service.name`` of its resource, the other resource and point attributes as canonical JSON, the
temporality (1 delta, 2 cumulative, 0 for gauges), start and time in Unix nanoseconds, the value
(for histograms: the count), and for histograms the upper bounds and bucket counts
(exponential buckets are converted to their upper bounds).

``iter_points`` is a generator over lines, so ingest streams: memory holds one line (or one
file, for the one-object-per-file form) plus a chunk of rows, never the whole input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from phase8_assets.evidence import EvidenceError, ReadResult, mapping, sequence
from phase8_assets.shared.redaction import redact, redact_text

POINT_COLUMNS = (
    "metric", "service", "attrs", "kind", "temporality", "monotonic", "start_ns", "time_ns", "value", "hsum",
    "bounds", "buckets",
)  # fmt: skip


def _int(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise EvidenceError(where, f"expected an integer, got {json.dumps(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise EvidenceError(where, f"expected an integer (a number or a string of digits), got {json.dumps(value)}")


def _number(point: dict, where: str) -> float:
    if "asDouble" in point:
        value = point["asDouble"]
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return float(value.replace("Infinity", "inf"))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EvidenceError(f"{where}.asDouble", f"expected a number, got {json.dumps(value)}")
        return float(value)
    if "asInt" in point:
        return float(_int(point["asInt"], f"{where}.asInt"))
    raise EvidenceError(where, "expected asDouble or asInt")


def _any_value(value: dict) -> object:
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "arrayValue" in value:
        return [_any_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return _attributes((value["kvlistValue"] or {}).get("values"))
    return None


def _attributes(items: object, where: str = "attributes") -> dict:
    out = {}
    for item in sequence(items, f"{where}.attributes"):
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _any_value(item.get("value"))
    return out


def _exp_buckets(point: dict, where: str) -> tuple[list[float], list[float]]:
    """Exponential histogram buckets as explicit upper bounds (base = 2^(2^-scale))."""
    scale = _int(point.get("scale", 0), f"{where}.scale")
    base = 2.0 ** (2.0**-scale)
    zero = float(_int(point.get("zeroCount", 0), f"{where}.zeroCount"))
    negative = sum(_int(c, f"{where}.negative") for c in (point.get("negative") or {}).get("bucketCounts") or [])
    bounds, counts = [float(point.get("zeroThreshold") or 0.0)], [zero + negative]
    positive = point.get("positive") or {}
    offset = _int(positive.get("offset", 0), f"{where}.positive.offset")
    for i, c in enumerate(positive.get("bucketCounts") or []):
        bounds.append(base ** (offset + i + 1))
        counts.append(float(_int(c, f"{where}.positive.bucketCounts[{i}]")))
    counts.append(0.0)  # the +Inf bucket
    return bounds, counts


def _points(doc: dict, where: str) -> Iterator[tuple]:
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceMetrics"), list):
        raise EvidenceError(where or "(document)", "expected an OTLP metrics object with resourceMetrics")
    for r, rm in enumerate(doc["resourceMetrics"]):
        rw = f"{where}resourceMetrics[{r}]"
        rm = mapping(rm, rw)
        resource = _attributes(mapping(rm.get("resource"), f"{rw}.resource").get("attributes"), f"{rw}.resource")
        service = str(resource.pop("service.name", "") or "")
        for s, sm in enumerate(sequence(rm.get("scopeMetrics"), f"{rw}.scopeMetrics")):
            sw = f"{rw}.scopeMetrics[{s}]"
            for m, metric in enumerate(sequence(mapping(sm, sw).get("metrics"), f"{sw}.metrics")):
                at = f"{sw}.metrics[{m}]"
                metric = mapping(metric, at)
                name = metric.get("name")
                if not isinstance(name, str) or not name:
                    raise EvidenceError(f"{at}.name", "is required")
                for kind in ("sum", "gauge", "histogram", "exponentialHistogram"):
                    if kind in metric:
                        break
                else:
                    continue  # summary or an unknown type: ignored, as the protocol says
                body = mapping(metric[kind], f"{at}.{kind}")
                temporality = (
                    0
                    if kind == "gauge"
                    else _int(body.get("aggregationTemporality", 0), f"{at}.{kind}.aggregationTemporality")
                )
                if kind != "gauge" and temporality not in (1, 2):
                    raise EvidenceError(
                        f"{at}.{kind}.aggregationTemporality",
                        f"expected 1 (delta) or 2 (cumulative), got {temporality}",
                    )
                monotonic = bool(body.get("isMonotonic", kind != "gauge"))
                for p, point in enumerate(sequence(body.get("dataPoints"), f"{at}.{kind}.dataPoints")):
                    pw = f"{at}.{kind}.dataPoints[{p}]"
                    point = mapping(point, pw)
                    time_ns = _int(point.get("timeUnixNano"), f"{pw}.timeUnixNano")
                    start_ns = _int(point.get("startTimeUnixNano", 0), f"{pw}.startTimeUnixNano")
                    attrs = {**resource, **_attributes(point.get("attributes"), pw)}
                    key = json.dumps(attrs, sort_keys=True, separators=(",", ":"), default=str)
                    bounds = buckets = None
                    hsum = None
                    if kind in ("sum", "gauge"):
                        value = _number(point, pw)
                    else:
                        value = float(_int(point.get("count", 0), f"{pw}.count"))
                        hsum = float(point["sum"]) if isinstance(point.get("sum"), (int, float)) else None
                        if kind == "histogram":
                            bounds = [float(b) for b in point.get("explicitBounds") or []]
                            buckets = [float(_int(c, f"{pw}.bucketCounts")) for c in point.get("bucketCounts") or []]
                            if buckets and len(buckets) != len(bounds) + 1:
                                raise EvidenceError(
                                    f"{pw}.bucketCounts",
                                    f"expected {len(bounds) + 1} counts for {len(bounds)} bounds, got {len(buckets)}",
                                )
                        else:
                            bounds, buckets = _exp_buckets(point, pw)
                    if not math.isfinite(value) or (value < 0 and kind != "gauge"):
                        raise EvidenceError(pw, f"expected a finite count >= 0, got {value}")
                    yield (
                        name,
                        service,
                        key,
                        kind,
                        temporality,
                        monotonic,
                        start_ns,
                        time_ns,
                        value,
                        hsum,
                        bounds,
                        buckets,
                    )


def iter_points(lines: Iterable[bytes | str], uri: str = "") -> Iterator[tuple]:
    """Rows from OTLP/JSON lines, their texts redacted (they go straight to the warehouse, not
    through ``read_evidence``); a pretty-printed single object is read whole."""
    return _redacted(_raw_points(lines))


def _redacted(rows: Iterator[tuple]) -> Iterator[tuple]:
    """Metric name, service and attributes through the redaction function, each distinct text once
    (every point of a series repeats them); the memo is bounded."""
    texts: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for name, service, attrs, *rest in rows:
        if len(texts) + len(attributes) > 100_000:
            texts.clear()
            attributes.clear()
        for text in (name, service):
            if text not in texts:
                texts[text] = redact_text(text)
        if attrs not in attributes:
            attributes[attrs] = json.dumps(redact(json.loads(attrs)), sort_keys=True, separators=(",", ":"))
        yield (texts[name], texts[service], attributes[attrs], *rest)


def _raw_points(lines: Iterable[bytes | str]) -> Iterator[tuple]:
    lines = iter(lines)
    for number, line in enumerate(lines, 1):
        text = line.decode("utf-8-sig") if isinstance(line, bytes) else line
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            if number == 1 and text.strip() == "{":  # one object per file, pretty-printed
                rest = text + "".join(x.decode("utf-8") if isinstance(x, bytes) else x for x in lines)
                try:
                    doc = json.loads(rest)
                except json.JSONDecodeError as inner:
                    raise EvidenceError(
                        f"line {inner.lineno}, column {inner.colno}", f"not valid JSON ({inner.msg})"
                    ) from inner
                yield from _points(doc, "")
                return
            raise EvidenceError(f"line {number}", f"not valid JSON ({exc.msg})") from exc
        yield from _points(doc, f"line {number}: ")


def read(data: bytes | Path, uri: str) -> ReadResult:
    """Validate a whole file and summarise it (a ``Path`` is streamed line by line); the rows
    themselves are streamed into the warehouse by ``sli_series``."""
    if isinstance(data, Path):
        with open(data, "rb") as fh:
            return _summarise(fh, uri)
    return _summarise(data.splitlines(keepends=True), uri)


def _summarise(lines: Iterable[bytes], uri: str) -> ReadResult:
    count, first, last, metrics = 0, None, None, set()
    try:
        for row in iter_points(lines, uri):
            count += 1
            metrics.add(row[0])
            first = row[7] if first is None else min(first, row[7])
            last = row[7] if last is None else max(last, row[7])
    except UnicodeDecodeError as exc:
        raise EvidenceError("(document)", f"not UTF-8 text ({exc.reason})") from exc
    if not count:
        raise EvidenceError("(document)", "no metric data points")
    return ReadResult(
        observed_at=datetime.fromtimestamp(last / 1e9, UTC),
        timestamp_field="timeUnixNano",
        summary={"points": count, "metrics": sorted(metrics), "first_ns": first, "last_ns": last},
    )
