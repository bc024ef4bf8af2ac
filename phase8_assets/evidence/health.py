"""Health responses (evidence kind ``health_responses``): ``application/health+json`` bodies as the
IETF health-check draft defines them (``draft-inadarei-api-health-check``), captured from the
platform's health endpoints.

``HEALTH_RESPONSE_SCHEMA`` is the contract: phase8's own ``GET /health`` answers in it, the
committed OpenAPI document (``docs/ops/health-openapi.yaml``) is built from it, and a captured
response is judged against it. A file that is not a JSON object is rejected; a JSON object that
breaks the contract (draft 01's ``details``, ``releaseID``, ``metricValue``...) is read, and its
violations are findings of the ``supportability`` gate, as is a ``fail`` status. The draft's status
aliases (``ok``/``up`` for pass, ``error``/``down`` for fail) are read as the status they stand for.

The evidence time is the newest ``checks.*.time`` of the response: the draft has no top-level time.
Each check keeps its own time too: the draft lets a reading be cached, so one check of a fresh
response may be a reading from weeks ago (its checker stopped), which ``supportability`` judges.
"""

from __future__ import annotations

from phase8_assets.evidence import EvidenceError, ReadResult, json_document, naive_time_warning
from phase8_assets.shared.artifacts import schema_problems
from phase8_assets.shared.clock import TimeParseError, parse_timestamp
from phase8_assets.shared.redaction import redact_text

HEALTH_MEDIA_TYPE = "application/health+json"
STATUSES = ("pass", "warn", "fail")
# The draft's acceptable aliases: "ok" (Node's Terminus) and "up" for pass, "error" and "down" for
# fail. A response using them keeps the contract; they are read as the status they stand for.
STATUS_ALIASES = {"ok": "pass", "up": "pass", "error": "fail", "down": "fail"}


def _renamed(old: str, new: str) -> dict:
    return {"not": {}, "description": f"{new} ({old} is the draft-01 name)"}


CHECK_SCHEMA = {
    "type": "object",
    "description": "one measurement of a component",
    "required": ["status"],
    "properties": {
        "componentId": {"type": "string"},
        "componentType": {"type": "string", "description": "component, datastore, system or a URI"},
        "observedValue": {"description": "any JSON value"},
        "observedUnit": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "affectedEndpoints": {"type": "array", "items": {"type": "string"}},
        "time": {"type": "string", "format": "date-time"},
        "output": {"type": "string"},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
        "metricValue": _renamed("metricValue", "observedValue"),
        "metricUnit": _renamed("metricUnit", "observedUnit"),
        "type": _renamed("type", "componentType"),
    },
}

HEALTH_RESPONSE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "HealthResponse",
    "description": "An application/health+json body (IETF draft-inadarei-api-health-check)",
    "type": "object",
    "additionalProperties": False,
    "required": ["status"],
    "properties": {
        "status": {"enum": list(STATUSES)},
        "version": {"type": "string"},
        "releaseId": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "output": {"type": "string"},
        "serviceId": {"type": "string"},
        "description": {"type": "string"},
        "checks": {
            "type": "object",
            "description": "measurements keyed component:measurement",
            "propertyNames": {"pattern": "^[^:]+(:[^:]+)?$"},
            "additionalProperties": {"type": "array", "items": CHECK_SCHEMA},
        },
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


# Spring Boot Actuator's /actuator/health: {"status": "UP", "components": {...}} (1.x: "details"). Not
# application/health+json (upper-case statuses, no checks, no times), so it is named as what it is.
ACTUATOR_STATUSES = ("UP", "DOWN", "OUT_OF_SERVICE", "UNKNOWN")
ACTUATOR_BODY = (
    "a Spring Boot Actuator /actuator/health body (status UP/DOWN/OUT_OF_SERVICE/UNKNOWN), not "
    f"{HEALTH_MEDIA_TYPE}: capture a health+json endpoint (status pass/warn/fail, checks with times)"
)


def _status(value: object) -> object:
    return STATUS_ALIASES.get(value, value) if isinstance(value, str) else value


def _canonical_statuses(doc: dict) -> dict:
    """The response with the draft's status aliases replaced by the statuses they stand for."""
    doc = {**doc, "status": _status(doc.get("status"))} if "status" in doc else dict(doc)
    if isinstance(doc.get("checks"), dict):
        doc["checks"] = {
            key: [
                {**e, "status": _status(e["status"])} if isinstance(e, dict) and "status" in e else e for e in entries
            ]
            if isinstance(entries, list)
            else entries
            for key, entries in doc["checks"].items()
        }
    return doc


def read(data: bytes, uri: str) -> ReadResult:
    try:
        doc = json_document(data)
    except EvidenceError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise EvidenceError("(document)", f"expected an {HEALTH_MEDIA_TYPE} JSON object: {exc}") from exc
    if not isinstance(doc, dict):
        raise EvidenceError("(document)", f"expected an {HEALTH_MEDIA_TYPE} JSON object, got {type(doc).__name__}")
    doc = _canonical_statuses(doc)
    violations = [{"field": f, "reason": r} for f, r in schema_problems(doc, HEALTH_RESPONSE_SCHEMA)]
    if doc.get("status") in ACTUATOR_STATUSES:  # say what the file is before its fields' details
        violations.insert(0, {"field": "(document)", "reason": ACTUATOR_BODY})
    checks, times, warnings = [], [], []
    for key, entries in (doc.get("checks") if isinstance(doc.get("checks"), dict) else {}).items():
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            check = {"key": key, "status": entry.get("status"), "output": redact_text(str(entry.get("output") or ""))}
            checks.append(check)
            if isinstance(entry.get("time"), str):
                try:
                    instant = parse_timestamp(entry["time"], f"checks.{key}[{index}].time")
                except TimeParseError:
                    continue  # the schema's date-time format already reports it
                times.append(instant.at)
                check["time"] = instant.at.isoformat()  # when this reading was taken (the draft lets it be cached)
                if instant.was_naive:
                    warnings.append(naive_time_warning(f"checks.{key}[{index}].time", entry["time"]))
    status = doc.get("status")
    worst = max((c["status"] for c in checks if c["status"] in STATUSES), key=STATUSES.index, default=None)
    return ReadResult(
        observed_at=max(times, default=None),
        timestamp_field="checks.*.time",
        summary={
            "status": status if status in STATUSES else None,
            "worst_check": worst,
            "checks": checks,
            "violations": violations,
            "service": redact_text(str(doc.get("serviceId") or doc.get("description") or "")),
        },
        warnings=warnings,
    )
