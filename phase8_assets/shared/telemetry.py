"""The one telemetry bootstrap: an OpenTelemetry tracer, meter and event logger.

Configured from the standard ``OTEL_*`` variables. When ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a
per-signal endpoint) is set, traces, metrics and logs go out as OTLP over HTTP (protobuf);
otherwise providers still work but export nothing. ``OTEL_SDK_DISABLED=true`` turns it all off.
Every event attribute passes through the shared redaction function.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from phase8_assets import __version__
from phase8_assets.shared.redaction import redact

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _endpoint_set(signal: str) -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def _setup() -> dict[str, Any]:
    with _lock:
        if _state:
            return _state
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        disabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"
        resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", "phase8_assets"), "service.version": __version__}
        )
        tracer_provider = TracerProvider(resource=resource)
        logger_provider = LoggerProvider(resource=resource)
        readers = []
        if not disabled and _endpoint_set("TRACES"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if not disabled and _endpoint_set("LOGS"):
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        if not disabled and _endpoint_set("METRICS"):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        _state.update(tracer_provider=tracer_provider, logger_provider=logger_provider, meter_provider=meter_provider)
        atexit.register(shutdown)
        return _state


def tracer():
    return _setup()["tracer_provider"].get_tracer("phase8_assets", __version__)


def meter():
    return _setup()["meter_provider"].get_meter("phase8_assets", __version__)


def emit_event(name: str, attributes: dict[str, Any], body: str | None = None) -> None:
    """An OpenTelemetry event: a log record with ``event.name``, attributes redacted."""
    logger = _setup()["logger_provider"].get_logger("phase8_assets.events", __version__)
    safe = {k: v if isinstance(v, (bool, int, float)) else str(v) for k, v in redact(attributes).items()}
    logger.emit(event_name=name, body=redact(body) if body else name, attributes={"event.name": name, **safe})


def flush() -> None:
    for provider in _state.values():
        provider.force_flush()


def shutdown() -> None:
    with _lock:
        providers = list(_state.values())
        _state.clear()
    for provider in providers:
        provider.shutdown()
