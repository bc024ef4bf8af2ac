"""Chaos Toolkit ``journal.json`` (chaoslib 1.x): the outcome of one drill run.

Outcome of a journal (``DrillRun.outcome``):

- ``passed``: status ``completed``, not deviated, steady state met before *and* after the method
  (and in every check during it), at least one action of the method succeeded, none failed, and
  no rollback failed;
- ``dry-run``: ``chaos run --dry`` (``experiment.dry`` is ``true``, or the ``Dry`` mode newer
  chaostoolkits write: ``probes``, ``actions``, ``activities``, ``pause``). chaoslib skips those
  activities but records them ``succeeded``, so nothing in the journal says what really ran;
- ``unverified``: completed, but the steady state was not checked before or after (no hypothesis,
  ``--hypothesis-strategy`` skipping it, or ``steady_states`` missing), no action of the method
  succeeded (no fault was injected), or fewer rollbacks were played than the experiment declares
  (``--rollback-strategy=never``, or ``deviated`` on a run that did not deviate: the fault may still
  be in place) — it proves nothing;
- ``deviated``: the steady state did not hold after the method (``deviated: true``), or in a check
  during it (``--hypothesis-strategy=continuously``/``during-method-only`` without ``--fail-fast``
  leave ``status`` completed and ``deviated`` false when one fails);
- ``failed``: the steady state did not hold before the method, an action of the method failed
  (chaoslib records that only on the activity; the journal stays ``completed``), or a rollback
  failed (the fault may still be in place); an activity status other than ``succeeded`` (chaoslib
  writes only that and ``failed``; say a ``timeout``) is a failure too, and so is an action recorded
  ``succeeded`` whose process exited non-zero or whose HTTP call answered 400 or more (chaoslib
  returns those as the output and only logs a warning);
- ``failed`` / ``aborted`` / ``interrupted``: otherwise, the tool's status, as written.

``DrillRun.outcome_note`` names the journal field that decided the outcome and what was expected.

Recovery time is measured inside the journal: from the end of the first succeeded *action* of the
method (the fault is in) to the end of the last steady-state probe after the method, when that
check passed (the service is back). No action, no passing check after it, or a dry run: no
recovery time, and the note says why.

Secrets never leave the reader: the experiment's ``secrets`` and ``configuration`` values, HTTP
headers and bodies are redacted by the shared redaction function, and probe outputs are reduced
to a verdict (``HTTP 200``, ``true``) before anything is returned.
"""

from __future__ import annotations

import json
import math

from phase8_assets.evidence import EvidenceError, ReadResult, json_document, mapping, naive_time_warning
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


def output_summary(output: object, provider: str = "") -> str:
    """What a probe returned, without its content: a verdict, never headers or bodies."""
    if output is None:
        return ""
    if isinstance(output, bool | int | float):
        return json.dumps(output)
    if isinstance(output, dict) and isinstance(output.get("status"), int):
        return f"exit {output['status']}" if provider == "process" else f"HTTP {output['status']}"
    size = len(output) if isinstance(output, dict | list | str) else 0
    return f"{REDACTED} ({type(output).__name__}, {size} item(s))"


def _exception(item: dict) -> str:
    exc = item.get("exception")
    if isinstance(exc, list):
        exc = "".join(str(line) for line in exc)
    lines = [line.strip() for line in str(exc or "").splitlines() if line.strip()]
    return redact_text(lines[-1])[:500] if lines else ""


def _provider(activity: dict) -> str:
    provider = activity.get("provider")
    return str(provider.get("type") or "") if isinstance(provider, dict) else ""


def _error_output(activity: dict, output: object, where: str) -> str:
    """Why an action chaoslib recorded ``succeeded`` failed, else "". chaoslib returns a process's exit
    code and an HTTP call's status as the activity's output, records the activity ``succeeded``
    whatever they are, and only logs a warning for an action (no ``tolerance``) whose process exited
    non-zero or whose HTTP call answered 400 or more: the fault was not injected, or not undone."""
    if activity.get("type") != "action" or "tolerance" in activity or not isinstance(output, dict):
        return ""
    code, provider = output.get("status"), _provider(activity)
    if isinstance(code, bool) or not isinstance(code, int):
        return ""
    if provider == "process" and code != 0:
        return (
            f'{where}.output.status is {code}; expected 0 (the process\'s exit code, recorded "succeeded" by chaoslib)'
        )
    if provider == "http" and code > 399:
        return (
            f'{where}.output.status is {code}; expected below 400 (the HTTP status, recorded "succeeded" by chaoslib)'
        )
    return ""


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
    detail = _exception(item) or output_summary(item.get("output"), _provider(activity))
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
        failure=_error_output(activity, item.get("output"), where) if status == "succeeded" else "",
    )


def _states(doc: dict) -> dict:
    states = doc.get("steady_states")
    if states is None:
        return {}
    if not isinstance(states, dict):
        raise EvidenceError("steady_states", f"expected an object, got {type(states).__name__}")
    return states


def _check(state: object, where: str, phase: str) -> tuple[bool, list[DrillActivity]]:
    if not isinstance(state, dict) or not isinstance(state.get("steady_state_met"), bool):
        raise EvidenceError(f"{where}.steady_state_met", "expected true or false")
    probes = state.get("probes") or []
    if not isinstance(probes, list):
        raise EvidenceError(f"{where}.probes", "expected a list")
    return state["steady_state_met"], [_activity(p, phase, i, f"{where}.probes[{i}]") for i, p in enumerate(probes)]


def _steady_state(doc: dict, which: str) -> tuple[bool | None, list[DrillActivity]]:
    state = _states(doc).get(which)
    if state is None:
        return None, []
    return _check(state, f"steady_states.{which}", which)


def _during(doc: dict) -> tuple[list[str], list[DrillActivity]]:
    """The checks chaoslib ran while the method ran (one per round of ``continuously`` /
    ``during-method-only``): the fields of those that failed, and their probes. Without
    ``--fail-fast`` a failed one changes neither ``status`` nor ``deviated``, so it is read here."""
    during = _states(doc).get("during")
    if during is None:
        return [], []
    if not isinstance(during, list):
        raise EvidenceError("steady_states.during", f"expected a list of checks, got {type(during).__name__}")
    broken, probes = [], []
    for i, state in enumerate(during):
        if state is None:  # chaoslib appends the None of an experiment without a hypothesis
            continue
        where = f"steady_states.during[{i}]"
        met, checked = _check(state, where, "during")
        if not met:
            broken.append(f"{where}.steady_state_met")
        probes += checked
    return broken, probes


def _dry(experiment: dict) -> object:
    """``experiment.dry`` when ``chaos run --dry`` wrote one (``true`` in chaostoolkit 1.x, a ``Dry``
    mode string later), else ``None``. Any value but ``false``/``null`` counts: a mode this reader
    does not know is not taken for a real run."""
    dry = experiment.get("dry")
    return None if dry is None or dry is False else dry


def _activities(doc: dict, key: str, phase: str) -> list[DrillActivity]:
    items = doc.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise EvidenceError(key, f"expected a list of activities, got {type(items).__name__}")
    return [_activity(item, phase, i, f"{key}[{i}]") for i, item in enumerate(items)]


def _recovery(method: list[DrillActivity], after_met: bool | None, after: list[DrillActivity], dry: object):
    if dry is not None:
        return None, "a dry run (experiment.dry): chaoslib timed activities it did not execute"
    injected = next((a for a in method if a.type == "action" and a.succeeded and a.end), None)
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


def _outcome(
    status: str,
    deviated: bool,
    dry: object,
    checks: tuple[bool | None, list[str], bool | None],
    method: list[DrillActivity],
    rollbacks: tuple[list[DrillActivity], int],
) -> tuple[str, str]:
    """The run's outcome and why: the journal field that decided it, and what a passing drill has there.

    A dry run comes first: its statuses and steady states were recorded for activities that did
    not run, so none of them can decide anything."""
    before, broken_during, after = checks
    rollbacks, declared = rollbacks
    if dry is not None:
        return "dry-run", (
            f"experiment.dry is {redact_text(json.dumps(dry))[:60]}; expected false or absent "
            '(chaos run --dry skips activities and records them "succeeded")'
        )
    if deviated:
        return "deviated", "deviated is true; expected false"
    if after is False:
        return "deviated", "steady_states.after.steady_state_met is false; expected true (the service recovered)"
    if broken_during:
        return "deviated", f"{broken_during[0]} is false; expected true in every check during the method"
    if before is False and status in ("completed", "failed"):  # chaoslib stops there: "failed", no method
        return "failed", "steady_states.before.steady_state_met is false; expected true (a healthy start)"
    if status != "completed":
        return status, f'status is {json.dumps(status)}; expected "completed"'
    # chaoslib writes "succeeded" or "failed"; any other word (a "timeout" from a control or another
    # writer) is not a success either.
    failed = next((a for a in method if a.type == "action" and not a.succeeded), None)
    if failed:
        if failed.failure:
            return "failed", f"{failed.failure}; action {failed.name!r}: the fault was not injected"
        why = f": {failed.detail}" if failed.detail else ""
        return "failed", (
            f'run[{failed.seq}].status is {json.dumps(failed.status)}; expected "succeeded" (action {failed.name!r}{why})'
        )
    undone = next((a for a in rollbacks if not a.succeeded), None)
    if undone:
        if undone.failure:
            return "failed", f"{undone.failure}; rollback {undone.name!r}: the fault may still be in place"
        why = f": {undone.detail}" if undone.detail else ""
        return "failed", (
            f'rollbacks[{undone.seq}].status is {json.dumps(undone.status)}; expected "succeeded" '
            f"(the fault may still be in place; {undone.name!r}{why})"
        )
    for which, met in (("before", before), ("after", after)):
        if met is None:
            return (
                "unverified",
                f"steady_states.{which} is absent or null; expected the steady-state check {which} the method",
            )
    if not any(a.type == "action" and a.succeeded for a in method):
        return "unverified", 'run[] has no action with status "succeeded"; expected the fault to be injected'
    if len(rollbacks) < declared:
        return "unverified", (
            f"rollbacks[] holds {len(rollbacks)} of the {declared} rollback(s) experiment.rollbacks declares; "
            "expected every one played (--rollback-strategy never/deviated skips them: the fault may still be in place)"
        )
    return "passed", "completed; steady state met before, during and after; every action and rollback succeeded"


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
    broken_during, during = _during(doc)
    after_met, after = _steady_state(doc, "after")
    method = _activities(doc, "run", "method")
    rollbacks = _activities(doc, "rollbacks", "rollback")
    dry = _dry(experiment)
    declared = experiment.get("rollbacks")
    declared = len(declared) if isinstance(declared, list) else 0
    recovery_s, note = _recovery(method, after_met, after, dry)
    outcome, outcome_note = _outcome(
        status, deviated, dry, (before_met, broken_during, after_met), method, (rollbacks, declared)
    )
    tags = tuple(str(t) for t in experiment.get("tags") or [])
    warnings = []
    if naive_start or naive_end:
        stamp = "end" if naive_end else "start"
        warnings.append(naive_time_warning(stamp, doc[stamp]))
    safe_experiment = redact(experiment, secret_keys=SECRET_BLOCKS)
    run = DrillRun(
        tool="chaostoolkit",
        title=redact_text(experiment["title"]),
        tags=tags,
        status=status,
        outcome=outcome,
        outcome_note=outcome_note,
        deviated=deviated,
        started_at=start,
        ended_at=end,
        hypothesis_before=before_met,
        hypothesis_after=after_met,
        recovery_s=recovery_s,
        recovery_note=note,
        description=redact_text(str(experiment.get("description") or "")),
        environment=environment_of(tags),
        activities=tuple(before + method + during + after + rollbacks),
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
