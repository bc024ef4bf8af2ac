"""Chaos Toolkit ``journal.json`` (chaoslib 1.x): the outcome of one drill run.

Secrets never leave the reader: the experiment's ``secrets`` and ``configuration`` values and
probe outputs pass through the shared redaction function before anything is returned.
"""

from __future__ import annotations

import json

from phase8_assets.evidence import EvidenceError, ReadResult
from phase8_assets.shared.clock import TimeParseError, parse_timestamp
from phase8_assets.shared.redaction import redact

STATUSES = ("completed", "failed", "aborted", "interrupted")


def _time(doc: dict, key: str, warnings: list[str]):
    value = doc.get(key)
    if value is None:
        return None
    try:
        instant = parse_timestamp(value, key)
    except TimeParseError as exc:
        raise EvidenceError(key, f"expected an ISO 8601 timestamp, got {value!r}") from exc
    if instant.was_naive:
        warnings.append(f"{key}: {value!r} has no time zone; taken as UTC")
    return instant.at


def read(data: bytes, uri: str) -> ReadResult:
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise EvidenceError("(document)", f"not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"line {exc.lineno}, column {exc.colno}", f"not valid JSON ({exc.msg})") from exc
    if not isinstance(doc, dict):
        raise EvidenceError("(document)", f"expected a JSON object (a Chaos Toolkit journal), got {type(doc).__name__}")
    status = doc.get("status")
    if status not in STATUSES:
        raise EvidenceError("status", f"expected one of {'|'.join(STATUSES)}, got {json.dumps(status)}")
    experiment = doc.get("experiment")
    if not isinstance(experiment, dict) or not isinstance(experiment.get("title"), str):
        raise EvidenceError("experiment.title", "expected the experiment's title (a string)")
    warnings: list[str] = []
    start = _time(doc, "start", warnings)
    end = _time(doc, "end", warnings)
    if start is None and end is None:
        raise EvidenceError("end", "expected the journal's start/end timestamps")
    if start and end and end < start:
        raise EvidenceError("end", f"ends before it starts ({doc['end']} < {doc['start']})")
    deviated = doc.get("deviated")
    if not isinstance(deviated, bool):
        raise EvidenceError("deviated", f"expected true or false, got {json.dumps(deviated)}")
    safe = redact(
        {"experiment": experiment, "steady_states": doc.get("steady_states")}, secret_keys=("secrets", "configuration")
    )
    return ReadResult(
        observed_at=end or start,
        timestamp_field="end" if end else "start",
        summary={
            "title": experiment["title"],
            "status": status,
            "deviated": deviated,
            "tags": list(experiment.get("tags") or []),
            "activities": len(doc.get("run") or []),
            "rollbacks": len(doc.get("rollbacks") or []),
        },
        records=[safe],
        warnings=warnings,
    )
