"""Chaos Toolkit ``journal.json`` (chaoslib 1.x): the outcome of one drill run.

Outcome of a journal (``DrillRun.outcome``):

- ``passed``: status ``completed``, not deviated, steady state met before *and* after the method;
- ``unverified``: completed, but the steady state was not checked before or after (no hypothesis,
  ``--hypothesis-strategy`` skipping it, or ``steady_states`` missing) — it proves nothing;
- ``deviated``: the steady state did not hold after the method (``deviated: true``);
- ``failed`` / ``aborted`` / ``interrupted``: the tool's status, as written.

Recovery time is measured inside the journal: from the end of the first succeeded *action* of the
method (the fault is in) to the end of the last steady-state probe after the method, when that
check passed (the service is back). No action, or no passing check after it: no recovery time,
and the note says why.

Secrets never leave the reader: the experiment's ``secrets`` and ``configuration`` values, HTTP
headers and bodies are redacted by the shared redaction function, and probe outputs are reduced
to a verdict (``HTTP 200``, ``true``) before anything is returned.
"""

from __future__ import annotations

import json
import math

from phase8_assets.evidence import EvidenceError, ReadResult, json_document, mapping
from phase8_assets.evidence.drill_runs import DrillActivity, DrillRun, environment_of
from phase8_assets.shared.clock import TimeParseError, parse_timestamp
from phase8_assets.shared.redaction import REDACTED, redact, redact_text

STATUSES = ("completed", "failed", "aborted", "interrupted")
SECRET_BLOCKS = ("secrets", "configuration", "headers", "body")


def _time(doc: dict, key: str, where: str):
    value = doc.get(key)
    if value is None:
        return None, False
    try:
        instant = parse_timestamp(value, key)
    except TimeParseError as exc:
        raise EvidenceError(where, f"expected an ISO 8601 timestamp, got {value!r}") from exc
    return instant.at, instant.was_naive


def _duration(doc: dict, where: str) -> float | None:
    value = doc.get("duration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value := _float(value)):
        raise EvidenceError(where, f"expected a number of seconds, got {json.dumps(doc.get('duration'))[:40]}")
    if value < 0:
        raise EvidenceError(where, f"expected a duration >= 0 seconds, got {value}")
    return value


def _float(value: int | float) -> float:
    """``value`` as a float; an integer beyond the float range is infinite, not an ``OverflowError``."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def output_summary(output: object) -> str:
    """What a probe returned, without its content: a verdict, never headers or bodies."""
    if output is None:
        return ""
    if isinstance(output, bool | int | float):
        return json.dumps(output)
    if isinstance(output, dict) and isinstance(output.get("status"), int):
        return f"HTTP {output['status']}"
    size = len(output) if isinstance(output, dict | list | str) else 0
    return f"{REDACTED} ({type(output).__name__}, {size} item(s))"


def _exception(item: dict) -> str:
    exc = item.get("exception")
    if isinstance(exc, list):
        exc = "".join(str(line) for line in exc)
    lines = [line.strip() for line in str(exc or "").splitlines() if line.strip()]
    return redact_text(lines[-1])[:500] if lines else ""


def _activity(item: object, phase: str, seq: int, where: str) -> DrillActivity:
    if not isinstance(item, dict):
        raise EvidenceError(where, f"expected an activity object, got {type(item).__name__}")
    activity = item.get("activity") if isinstance(item.get("activity"), dict) else {}
    status = item.get("status")
    if not isinstance(status, str):
        raise EvidenceError(f"{where}.status", f"expected the activity's status (a string), got {json.dumps(status)}")
    start, _ = _time(item, "start", f"{where}.start")
    end, _ = _time(item, "end", f"{where}.end")
    if start and end and end < start:
        raise EvidenceError(f"{where}.end", f"ends before it starts ({item['end']} < {item['start']})")
    tolerance = item.get("tolerance_met")
    detail = _exception(item) or output_summary(item.get("output"))
    return DrillActivity(
        phase=phase,
        seq=seq,
        type=str(activity.get("type") or "activity"),
        name=redact_text(str(activity.get("name") or "(unnamed)")),
        status=status,
        start=start,
        end=end,
        duration_s=_duration(item, f"{where}.duration"),
        tolerance_met=tolerance if isinstance(tolerance, bool) else None,
        detail=detail,
    )


def _steady_state(doc: dict, which: str) -> tuple[bool | None, list[DrillActivity]]:
    states = doc.get("steady_states")
    if states is None:
        return None, []
    if not isinstance(states, dict):
        raise EvidenceError("steady_states", f"expected an object, got {type(states).__name__}")
    state = states.get(which)
    if state is None:
        return None, []
    where = f"steady_states.{which}"
    if not isinstance(state, dict) or not isinstance(state.get("steady_state_met"), bool):
        raise EvidenceError(f"{where}.steady_state_met", "expected true or false")
    probes = state.get("probes") or []
    if not isinstance(probes, list):
        raise EvidenceError(f"{where}.probes", "expected a list")
    return state["steady_state_met"], [_activity(p, which, i, f"{where}.probes[{i}]") for i, p in enumerate(probes)]


def _activities(doc: dict, key: str, phase: str) -> list[DrillActivity]:
    items = doc.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise EvidenceError(key, f"expected a list of activities, got {type(items).__name__}")
    return [_activity(item, phase, i, f"{key}[{i}]") for i, item in enumerate(items)]


def _recovery(method: list[DrillActivity], after_met: bool | None, after: list[DrillActivity]):
    injected = next((a for a in method if a.type == "action" and a.status == "succeeded" and a.end), None)
    if injected is None:
        return None, "no succeeded fault-injection action in the method"
    if after_met is None:
        return None, "the steady state was not checked after the method"
    if not after_met:
        return None, "the steady state did not hold after the method: not recovered"
    ends = [a.end for a in after if a.end]
    if not ends:
        return None, "the steady-state probes after the method carry no end time"
    seconds = (max(ends) - injected.end).total_seconds()
    if seconds < 0:
        return None, "the steady-state check after the method ended before the fault was injected"
    return round(seconds, 3), f"from the end of action {injected.name!r} to the end of the steady-state check after"


def _outcome(status: str, deviated: bool, before: bool | None, after: bool | None) -> str:
    if deviated or after is False:
        return "deviated"
    if status != "completed":
        return status
    if before is not True or after is not True:
        return "unverified" if before is not False else "failed"
    return "passed"


def read(data: bytes, uri: str) -> ReadResult:
    try:
        doc = json_document(data)
    except UnicodeDecodeError as exc:
        raise EvidenceError("(document)", f"not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"line {exc.lineno}, column {exc.colno}", f"not valid JSON ({exc.msg})") from exc
    if not isinstance(doc, dict):
        raise EvidenceError("(document)", f"expected a JSON object (a Chaos Toolkit journal), got {type(doc).__name__}")
    status = doc.get("status")
    if status is None and "method" in doc:
        raise EvidenceError(
            "status",
            "this is a Chaos Toolkit experiment definition, not a journal; publish the journal that `chaos run` writes",
        )
    if status not in STATUSES:
        raise EvidenceError("status", f"expected one of {'|'.join(STATUSES)}, got {json.dumps(status)}")
    experiment = doc.get("experiment")
    if not isinstance(experiment, dict) or not isinstance(experiment.get("title"), str):
        raise EvidenceError("experiment.title", "expected the experiment's title (a string)")
    start, naive_start = _time(doc, "start", "start")
    end, naive_end = _time(doc, "end", "end")
    if start is None and end is None:
        raise EvidenceError("end", "expected the journal's start/end timestamps")
    if start and end and end < start:
        raise EvidenceError("end", f"ends before it starts ({doc['end']} < {doc['start']})")
    _duration(doc, "duration")
    deviated = doc.get("deviated")
    if not isinstance(deviated, bool):
        raise EvidenceError("deviated", f"expected true or false, got {json.dumps(deviated)}")
    before_met, before = _steady_state(doc, "before")
    after_met, after = _steady_state(doc, "after")
    method = _activities(doc, "run", "method")
    rollbacks = _activities(doc, "rollbacks", "rollback")
    recovery_s, note = _recovery(method, after_met, after)
    tags = tuple(str(t) for t in experiment.get("tags") or [])
    warnings = []
    if naive_start or naive_end:
        stamp = "end" if naive_end else "start"
        warnings.append(f"{stamp}: {doc[stamp]!r} has no time zone; taken as UTC")
    safe_experiment = redact(experiment, secret_keys=SECRET_BLOCKS)
    run = DrillRun(
        tool="chaostoolkit",
        title=redact_text(experiment["title"]),
        tags=tags,
        status=status,
        outcome=_outcome(status, deviated, before_met, after_met),
        deviated=deviated,
        started_at=start,
        ended_at=end,
        hypothesis_before=before_met,
        hypothesis_after=after_met,
        recovery_s=recovery_s,
        recovery_note=note,
        description=redact_text(str(experiment.get("description") or "")),
        environment=environment_of(tags),
        activities=tuple(before + method + after + rollbacks),
        extra={
            "chaoslib_version": str(doc.get("chaoslib-version") or ""),
            "node": redact_text(str(doc.get("node") or "")),
            "hypothesis": str(
                mapping(experiment.get("steady-state-hypothesis"), "experiment.steady-state-hypothesis").get("title")
                or ""
            ),
            "experiment": safe_experiment,
        },
    )
    return ReadResult(
        observed_at=end or start,
        timestamp_field="end" if end else "start",
        summary={
            "title": run.title,
            "status": status,
            "outcome": run.outcome,
            "deviated": deviated,
            "tags": list(tags),
            "activities": len(method),
            "rollbacks": len(rollbacks),
            "recovery_s": recovery_s,
        },
        records=[run],
        warnings=warnings,
    )
