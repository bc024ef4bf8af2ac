"""OTLP/JSON metrics (evidence kind ``otel_metrics``) as the OpenTelemetry file exporter and the
collector write them: one ``ExportMetricsServiceRequest`` per line (JSON lines), or one per file.

``resourceMetrics → scopeMetrics → metrics`` with ``sum``, ``gauge``, ``histogram`` and
``exponentialHistogram``; 64-bit integers as strings or numbers; unknown fields ignored (the
protocol's rule); an object that names a key twice is refused, naming its line (which value
counts is ambiguous). Each data point becomes one flat row (``POINT_COLUMNS``): the metric, the
``service.name`` of its resource, the other resource and point attributes as canonical JSON, the
temporality (1 delta, 2 cumulative, 0 for gauges), start and time in Unix nanoseconds, the value
(for histograms: the count), and for histograms the upper bounds and bucket counts
(exponential buckets are converted to their upper bounds).

Values follow the data model. A point flagged ``FLAG_NO_RECORDED_VALUE`` (flags bit 1: the
Prometheus receiver's staleness marker, its value ``NaN``) carries no value and becomes no row:
it is never a 0. A histogram's count is the sum of its bucket counts (an exponential one's with
its ``zeroCount``), or stands alone (no buckets). A point covers (``startTimeUnixNano``, ``timeUnixNano``]: a start after its time
is refused (0, or no start, is no start). A monotonic sum and a histogram's counts count events, so a negative or
non-finite one is refused, naming the field; a gauge or a non-monotonic sum (an UpDownCounter:
``isMonotonic`` false, or absent as protojson writes false) is a level and may be negative (an SLI
refuses it as events: ``domains/slo.pick_streams``).

``iter_points`` is a generator over lines, so ingest streams: memory holds one line (or one
file, for the one-object-per-file form) plus a chunk of rows, never the whole input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from phase8_assets.evidence import EvidenceError, ReadResult, check_abandoned, json_document, mapping, sequence
from phase8_assets.shared.redaction import redact, redact_text

POINT_COLUMNS = (
    "metric", "service", "attrs", "kind", "temporality", "monotonic", "start_ns", "time_ns", "value", "hsum",
    "bounds", "buckets",
)  # fmt: skip


INT64_MAX = 2**63 - 1
NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE (the Prometheus staleness marker)


class _Bad(Exception):
    """A part of a document that breaks the format; ``field`` is relative to where it was found
    (the data point, metric, scope or resource being read), ``_points`` adds the location."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason


def _int(value: object, field: str) -> int:
    """An OTLP 64-bit integer: a JSON number or a string of digits (the protocol writes strings)."""
    kind = type(value)
    if kind is str and value.isdecimal():  # the common case first: no strip, no sign
        return int(value)
    if kind is int:
        return value
    if kind is str and value.strip().removeprefix("-").isdecimal():
        return int(value)
    if kind is float and value.is_integer():
        return int(value)
    if kind is bool:
        raise _Bad(field, f"expected an integer, got {json.dumps(value)}")
    raise _Bad(field, f"expected an integer (a number or a string of digits), got {json.dumps(value)}")


def _ns(value: object, field: str) -> int:
    """Unix nanoseconds: an integer in 0 .. 2^63-1 (what the warehouse's BIGINT holds; the year 2262)."""
    ns = _int(value, field)
    if not 0 <= ns <= INT64_MAX:
        raise _Bad(field, f"expected Unix nanoseconds between 0 and {INT64_MAX}, got {ns}")
    return ns


def _object(value: object, field: str) -> dict:
    if type(value) is dict:
        return value
    try:
        return mapping(value, field)
    except EvidenceError as exc:
        raise _Bad(field, exc.reason) from None


def _array(value: object, field: str) -> list:
    if type(value) is list:
        return value
    try:
        return sequence(value, field)
    except EvidenceError as exc:
        raise _Bad(field, exc.reason) from None


def _number(point: dict) -> float:
    if "asDouble" in point:
        value = point["asDouble"]
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return float(value.replace("Infinity", "inf"))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(".asDouble", f"expected a number, got {json.dumps(value)}")
        return float(value)
    if "asInt" in point:
        return float(_int(point["asInt"], ".asInt"))
    raise _Bad("", "expected asDouble or asInt")


def _any_value(value: dict, field: str = "") -> object:
    """An OTLP ``AnyValue``; ``field`` is where it sits (for a named problem)."""
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
        array = _object(value["arrayValue"] or {}, f"{field}.arrayValue")
        values = _array(array.get("values") or [], f"{field}.arrayValue.values")
        return [_any_value(v, f"{field}.arrayValue.values[{i}]") for i, v in enumerate(values)]
    if "kvlistValue" in value:
        return _attributes(
            _object(value["kvlistValue"] or {}, f"{field}.kvlistValue").get("values"), f"{field}.kvlistValue"
        )
    return None


def _attributes(items: object, field: str = "") -> dict:
    out = {}
    for i, item in enumerate(_array(items, f"{field}.attributes")):
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _any_value(item.get("value"), f"{field}.attributes[{i}].value")
    return out


def _count(value: object, field: str) -> int:
    """A count of events: an OTLP 64-bit integer >= 0."""
    count = _int(value, field)
    if count < 0:
        raise _Bad(field, f"expected a count >= 0, got {count}")
    return count


def _exp_buckets(point: dict) -> tuple[list[float], list[float]]:
    """Exponential histogram buckets as explicit upper bounds (base = 2^(2^-scale)); the negative
    buckets and the zero bucket are one bucket up to the zero threshold."""
    scale = _int(point.get("scale", 0), ".scale")
    if not -10 <= scale <= 20:  # the range OTLP defines (and where 2^(2^-scale) is a usable float)
        raise _Bad(".scale", f"expected a scale between -10 and 20, got {scale}")
    base = 2.0 ** (2.0**-scale)
    zero = float(_count(point.get("zeroCount", 0), ".zeroCount"))
    negative = _object(point.get("negative") or {}, ".negative")
    negative = sum(
        _count(c, f".negative.bucketCounts[{i}]")
        for i, c in enumerate(_array(negative.get("bucketCounts") or [], ".negative.bucketCounts"))
    )
    threshold = point.get("zeroThreshold") or 0.0
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise _Bad(".zeroThreshold", f"expected a finite number, got {json.dumps(threshold)}")
    bounds, counts = [float(threshold)], [zero + negative]
    positive = _object(point.get("positive") or {}, ".positive")
    offset = _int(positive.get("offset", 0), ".positive.offset")
    for i, c in enumerate(_array(positive.get("bucketCounts") or [], ".positive.bucketCounts")):
        bounds.append(base ** (offset + i + 1))
        counts.append(float(_count(c, f".positive.bucketCounts[{i}]")))
    counts.append(0.0)  # the +Inf bucket
    return bounds, counts


def _bounds(value: object) -> list[float]:
    """A histogram's ``explicitBounds``: finite numbers in increasing order, as OTLP requires."""
    if (
        type(value) is list
        and all(type(b) is float for b in value)
        and all(map(math.isfinite, value))
        and all(map(float.__lt__, value, value[1:]))
    ):  # the common case, checked without a Python loop
        return value
    out = []
    for i, b in enumerate(_array(value, ".explicitBounds")):
        try:  # protobuf's JSON mapping also accepts a double as a string
            b = float(b) if isinstance(b, (int, float, str)) and not isinstance(b, bool) else None
        except ValueError:
            b = None
        if b is None or not math.isfinite(b):
            raise _Bad(f".explicitBounds[{i}]", f"expected a finite number, got {json.dumps(value[i])}")
        if out and b <= out[-1]:
            raise _Bad(f".explicitBounds[{i}]", f"expected bounds in increasing order, got {b} after {out[-1]}")
        out.append(float(b))
    return out


_KINDS = ("sum", "gauge", "histogram", "exponentialHistogram")
_OTHER_SIGNALS = {"resourceSpans": "traces", "resourceLogs": "logs", "resourceProfiles": "profiles"}
_MEMO_LIMIT = 10_000


def _canonical(attrs: dict) -> str:
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"), default=str)


def _points(doc: dict, where: str, memo: dict | None = None) -> Iterator[tuple]:
    """The rows of one ``ExportMetricsServiceRequest``. Locations (``resourceMetrics[0].scopeMetrics
    [1]...``) are built only for an error: the indices of what is being read are kept, and ``_Bad``
    (relative to them) becomes an ``EvidenceError`` with the whole path. ``memo`` (raw attribute list
    -> canonical JSON, shared by the documents of a file) spares re-encoding the attributes every
    point of a series repeats (and the resource, decoded once); it is keyed by the ``repr`` of the
    JSON value, which differs for any two different values."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceMetrics"), list):
        other = next((key for key in _OTHER_SIGNALS if isinstance(doc, dict) and key in doc), None)
        raise EvidenceError(
            where.removesuffix(": ") or "(document)",
            "expected an OTLP metrics object with resourceMetrics"
            + (f", got {other}: {_OTHER_SIGNALS[other]}, as a file exporter shared with the {_OTHER_SIGNALS[other]} "
               "pipeline writes them; give metrics a file of their own" if other else ""),
        )  # fmt: skip
    memo = {} if memo is None else memo
    r = s = m = p = None
    kind = ""
    try:
        for r, rm in enumerate(doc["resourceMetrics"]):  # noqa: B007 (r, s, m, p: read when an error is named)
            s = m = p = None
            rm = _object(rm, "")
            raw_resource = _object(rm.get("resource"), ".resource").get("attributes")
            resource_id = repr(raw_resource)
            known = memo.get(resource_id)
            if known is None:
                resource = _attributes(raw_resource, ".resource")
                known = memo[resource_id] = (resource, str(resource.pop("service.name", "") or ""))
            resource, service = known
            for s, sm in enumerate(_array(rm.get("scopeMetrics"), ".scopeMetrics")):  # noqa: B007
                m = p = None
                for m, metric in enumerate(_array(_object(sm, "").get("metrics"), ".metrics")):  # noqa: B007
                    p = None
                    metric = _object(metric, "")
                    name = metric.get("name")
                    if not isinstance(name, str) or not name:
                        raise _Bad(".name", "is required")
                    for kind in _KINDS:
                        if kind in metric:
                            break
                    else:
                        continue  # summary or an unknown type: ignored, as the protocol says
                    body = _object(metric[kind], f".{kind}")
                    if kind == "gauge":
                        temporality, monotonic = 0, bool(body.get("isMonotonic", False))
                    else:
                        temporality = _int(body.get("aggregationTemporality", 0), f".{kind}.aggregationTemporality")
                        if temporality not in (1, 2):
                            raise _Bad(
                                f".{kind}.aggregationTemporality",
                                f"expected 1 (delta) or 2 (cumulative), got {temporality}",
                            )
                        # protojson omits a false field: no isMonotonic is an UpDownCounter's sum
                        monotonic = kind != "sum" or body.get("isMonotonic", False) is True
                    for p, point in enumerate(_array(body.get("dataPoints"), f".{kind}.dataPoints")):  # noqa: B007
                        point = _object(point, "")
                        if _int(point.get("flags", 0), ".flags") & NO_RECORDED_VALUE:
                            continue  # a staleness marker: the series ended here; no value, not 0
                        time_ns = _ns(point.get("timeUnixNano"), ".timeUnixNano")
                        start_ns = _ns(point.get("startTimeUnixNano", 0), ".startTimeUnixNano")
                        if start_ns > time_ns:  # (start, time] is the interval; 0 is no start
                            raise _Bad(
                                ".startTimeUnixNano",
                                f"expected a start time at or before the point's timeUnixNano {time_ns}, got {start_ns}",
                            )
                        raw = point.get("attributes")
                        memo_key = (resource_id, repr(raw))
                        key = memo.get(memo_key)
                        if key is None:
                            if len(memo) >= _MEMO_LIMIT:
                                memo.clear()
                            key = memo[memo_key] = _canonical({**resource, **_attributes(raw)})
                        bounds = buckets = hsum = None
                        if kind == "sum" or kind == "gauge":
                            value = _number(point)
                            if kind == "sum" and monotonic and not (math.isfinite(value) and value >= 0):
                                raise _Bad(
                                    ".asDouble" if "asDouble" in point else ".asInt",
                                    f"expected a finite value >= 0 (a monotonic sum counts events), got {value}",
                                )
                        else:
                            value = float(_int(point.get("count", 0), ".count"))
                            if value < 0:
                                raise _Bad(".count", f"expected a count >= 0, got {value:.0f}")
                            total = point.get("sum")
                            hsum = float(total) if isinstance(total, (int, float)) else None
                            if kind == "histogram":
                                bounds = _bounds(point.get("explicitBounds") or [])
                                buckets = [
                                    float(_int(c, ".bucketCounts"))
                                    for c in _array(point.get("bucketCounts") or [], ".bucketCounts")
                                ]
                                if any(c < 0 for c in buckets):
                                    raise _Bad(".bucketCounts", f"expected counts >= 0, got {min(buckets):.0f}")
                                if buckets and len(buckets) != len(bounds) + 1:
                                    raise _Bad(
                                        ".bucketCounts",
                                        f"expected {len(bounds) + 1} counts for {len(bounds)} bounds, got {len(buckets)}",
                                    )
                                if buckets and sum(buckets) != value:  # a count alone (no buckets) is allowed
                                    raise _Bad(
                                        ".count",
                                        f"expected the sum of the bucket counts ({sum(buckets):.0f}), got {value:.0f}",
                                    )
                            else:
                                bounds, buckets = _exp_buckets(point)
                                if sum(buckets) != value:
                                    raise _Bad(
                                        ".count",
                                        f"expected the sum of the bucket counts and zeroCount ({sum(buckets):.0f}), "
                                        f"got {value:.0f}",
                                    )
                        yield (name, service, key, kind, temporality, monotonic, start_ns, time_ns, value, hsum,
                               bounds, buckets)  # fmt: skip
    except _Bad as exc:
        at = f"{where}resourceMetrics[{r}]"
        if s is not None:
            at += f".scopeMetrics[{s}]"
        if m is not None:
            at += f".metrics[{m}]"
        if p is not None:
            at += f".{kind}.dataPoints[{p}]"
        raise EvidenceError(at + exc.field, exc.reason) from None


def iter_points(lines: Iterable[bytes | str]) -> Iterator[tuple]:
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


def _loads(text: str, where: str):
    """One JSON document (``json_document``), a refusal naming the line."""
    try:
        return json_document(text)
    except EvidenceError as exc:
        raise EvidenceError(where or exc.field, exc.reason) from exc


def _raw_points(lines: Iterable[bytes | str]) -> Iterator[tuple]:
    lines = iter(lines)
    memo: dict = {}
    for number, line in enumerate(lines, 1):
        check_abandoned()
        text = line.decode("utf-8-sig") if isinstance(line, bytes) else line
        if not text.strip():
            continue
        try:
            doc = _loads(text, f"line {number}")
        except json.JSONDecodeError as exc:
            if number == 1 and text.strip() == "{":  # one object per file, pretty-printed
                rest = text + "".join(x.decode("utf-8") if isinstance(x, bytes) else x for x in lines)
                try:
                    doc = _loads(rest, "")
                except json.JSONDecodeError as inner:
                    raise EvidenceError(
                        f"line {inner.lineno}, column {inner.colno}", f"not valid JSON ({inner.msg})"
                    ) from inner
                yield from _points(doc, "", memo)
                return
            raise EvidenceError(f"line {number}", f"not valid JSON ({exc.msg})") from exc
        yield from _points(doc, f"line {number}: ", memo)


def read(data: bytes | Path, uri: str, spool_dir: Path | None = None) -> ReadResult:
    """Validate a whole file and summarise it; a ``Path`` is streamed line by line. With
    ``spool_dir`` the file is parsed once: its rows also go to a Parquet file there, the result's
    ``spool``, which ``sli_series`` loads into the warehouse as it is."""
    spool = spool_dir / "points.parquet" if spool_dir else None
    try:
        with ExitStack() as stack:
            lines = stack.enter_context(open(data, "rb")) if isinstance(data, Path) else data.splitlines(True)
            result = _summarise(lines, stack.enter_context(_ParquetSink(spool)))
    except BaseException:
        if spool:
            spool.unlink(missing_ok=True)
        raise
    result.spool = spool
    return result


def _summarise(lines: Iterable[bytes], sink: _ParquetSink) -> ReadResult:
    first, last, metrics = None, None, set()
    try:
        for row in iter_points(lines):
            sink.add(row)
            metrics.add(row[0])
            first = row[7] if first is None else min(first, row[7])
            last = row[7] if last is None else max(last, row[7])
    except UnicodeDecodeError as exc:
        raise EvidenceError("(document)", f"not UTF-8 text ({exc.reason})") from exc
    if not sink.count:
        raise EvidenceError("(document)", "no metric data points")
    return ReadResult(
        observed_at=datetime.fromtimestamp(last / 1e9, UTC),
        timestamp_field="timeUnixNano",
        summary={"points": sink.count, "metrics": sorted(metrics), "first_ns": first, "last_ns": last},
    )


def point_schema():
    """The Arrow schema of the rows (``POINT_COLUMNS``), as the warehouse's ``otel_points`` types them."""
    import pyarrow as pa

    floats = pa.list_(pa.float64())
    types = (pa.string(), pa.string(), pa.string(), pa.string(), pa.int8(), pa.bool_(), pa.int64(), pa.int64(),
             pa.float64(), pa.float64(), floats, floats)  # fmt: skip
    return pa.schema(list(zip(POINT_COLUMNS, types, strict=True)))


class _ParquetSink:
    """Rows into one Parquet file, ``chunk`` rows per row group: memory holds one chunk, never the
    file. Without a path it only counts."""

    def __init__(self, path: Path | None, chunk: int = 50_000):
        self.path, self.chunk, self.rows, self.count = path, chunk, [], 0
        self.writer = None

    def __enter__(self) -> _ParquetSink:
        if self.path is not None:
            import pyarrow.parquet as pq

            self.schema = point_schema()
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        return self

    def add(self, row: tuple) -> None:
        self.count += 1
        if self.writer is None:
            return
        self.rows.append(row)
        if len(self.rows) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            columns = list(zip(*self.rows, strict=True))
            self.writer.write_table(pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(columns, self.schema, strict=True)], schema=self.schema
            ))  # fmt: skip
            self.rows.clear()

    def __exit__(self, kind, exc, tb) -> None:
        if self.writer is None:
            return
        try:
            if kind is None:
                self.flush()
        finally:
            self.writer.close()
