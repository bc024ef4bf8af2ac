"""The one telemetry bootstrap: an OpenTelemetry tracer, meter and event logger.

Configured from the standard ``OTEL_*`` variables. When ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a
per-signal endpoint) is set, traces, metrics and logs go out as OTLP over HTTP (protobuf).
Otherwise they are written as JSON lines under ``$PHASE8_HOME/telemetry/`` (``traces.jsonl``,
``metrics.jsonl``, ``logs.jsonl``) in the real OTLP/JSON encoding — hex trace and span ids,
integer enums, lowerCamelCase fields — so the product's own OTLP reader can read its metrics
back. ``OTEL_SDK_DISABLED=true`` turns it all off. Every event attribute and body passes through
the shared redaction function.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from phase8_assets import __version__
from phase8_assets.shared.redaction import redact

_lock = threading.Lock()
_state: dict[str, Any] = {}
_instruments: dict[tuple[str, str], Any] = {}
_home: list[Path] = []
_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _endpoint_set(signal: str) -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"


def telemetry_dir() -> Path:
    home = _home[0] if _home else Path(os.environ.get("PHASE8_HOME") or ".phase8")
    return home.resolve() / "telemetry"


def use_home(home: Path) -> None:
    """Write file telemetry under ``home``; re-initialise if it was set up for another home."""
    home = Path(home)
    if _home and _home[0] == home:
        return
    shutdown()
    _home[:] = [home]


def otlp_json(message) -> dict:
    """A protobuf OTLP message as OTLP/JSON: integer enums, ids as hex (not protobuf's base64)."""
    from google.protobuf.json_format import MessageToDict

    def fix(item: Any) -> Any:
        if isinstance(item, dict):
            return {
                k: (base64.b64decode(v).hex() if k in _ID_FIELDS and isinstance(v, str) else fix(v))
                for k, v in item.items()
            }
        if isinstance(item, list):
            return [fix(v) for v in item]
        return item

    return fix(MessageToDict(message, use_integers_for_enums=True))


class _JsonLines:
    """Appends one OTLP/JSON export request per line to a file (the collector file exporter's form)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def write(self, message) -> None:
        line = json.dumps(otlp_json(message), separators=(",", ":"))
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")


def _file_exporters(folder: Path):
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    traces, logs, metrics = (_JsonLines(folder / f"{n}.jsonl") for n in ("traces", "logs", "metrics"))

    class SpanFile(SpanExporter):
        def export(self, spans: Sequence) -> SpanExportResult:
            traces.write(encode_spans(spans))
            return SpanExportResult.SUCCESS

    class LogFile(LogRecordExporter):
        def export(self, batch: Sequence) -> LogRecordExportResult:
            logs.write(encode_logs(batch))
            return LogRecordExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    class MetricFile(MetricExporter):
        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
            if metrics_data.resource_metrics:
                metrics.write(encode_metrics(metrics_data))
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
            pass

    return SpanFile(), LogFile(), MetricFile()


def _setup() -> dict[str, Any]:
    with _lock:
        if _state:
            return _state
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", "phase8_assets"), "service.version": __version__}
        )
        tracer_provider = TracerProvider(resource=resource)
        logger_provider = LoggerProvider(resource=resource)
        readers = []
        if not disabled():
            span_file, log_file, metric_file = _file_exporters(telemetry_dir())
            if _endpoint_set("TRACES"):
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            else:
                tracer_provider.add_span_processor(SimpleSpanProcessor(span_file))
            if _endpoint_set("LOGS"):
                from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

                logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
            else:
                logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_file))
            if _endpoint_set("METRICS"):
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

                exporter = OTLPMetricExporter()
            else:
                exporter = metric_file
            # Exported on flush() (end of a gate run, a sensor tick) and every 60 s in long processes.
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=60_000))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        _state.update(tracer_provider=tracer_provider, logger_provider=logger_provider, meter_provider=meter_provider)
        atexit.register(shutdown)
        return _state


def tracer():
    if disabled():  # the API's no-op: nothing to set up, nothing recorded (as the SDK would do when disabled)
        from opentelemetry.trace import NoOpTracer

        return NoOpTracer()
    return _setup()["tracer_provider"].get_tracer("phase8_assets", __version__)


def meter():
    if disabled():
        from opentelemetry.metrics import NoOpMeter

        return NoOpMeter("phase8_assets", __version__)
    return _setup()["meter_provider"].get_meter("phase8_assets", __version__)


def _safe(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (bool, int, float)) else str(v) for k, v in redact(attributes).items()}


def count(name: str, value: float, attributes: dict[str, Any], unit: str = "1", description: str = "") -> None:
    """Add to a counter (``phase8.…``); attributes are redacted."""
    if disabled():
        return
    key = ("counter", name)
    if key not in _instruments:
        _instruments[key] = meter().create_counter(name, unit=unit, description=description)
    _instruments[key].add(value, _safe(attributes))


def gauge(name: str, value: float, attributes: dict[str, Any], unit: str = "1", description: str = "") -> None:
    """Record a gauge's current value (a key figure: burn rate, budget remaining)."""
    if disabled():
        return
    key = ("gauge", name)
    if key not in _instruments:
        _instruments[key] = meter().create_gauge(name, unit=unit, description=description)
    _instruments[key].set(value, _safe(attributes))


def emit_event(name: str, attributes: dict[str, Any], body: str | None = None) -> None:
    """An OpenTelemetry event: a log record with ``event.name``, attributes and body redacted."""
    if disabled():
        return
    logger = _setup()["logger_provider"].get_logger("phase8_assets.events", __version__)
    logger.emit(
        event_name=name, body=redact(body) if body else name, attributes={"event.name": name, **_safe(attributes)}
    )


def flush() -> None:
    for provider in list(_state.values()):
        provider.force_flush()


def shutdown() -> None:
    with _lock:
        providers = list(_state.values())
        _state.clear()
        _instruments.clear()
    for provider in providers:
        provider.shutdown()
