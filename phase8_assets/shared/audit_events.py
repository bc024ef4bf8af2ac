"""The audit trail's events: who decided what about what ships, as OCSF 1.5.0 records.

A shared helper (the warehouse chains these records, the domains and commands make the events).

Every decision that changes or explains what ships is an ``AuditEvent``: its type, who (the actor
and how it was established), on which target, when (UTC), the outcome and why (reason, ticket).
``ocsf`` turns one into an OCSF record of the class that fits (``docs/security/audit-log.md`` has
the table), shaped as the ``py-ocsf-models`` pydantic models (OCSF 1.5.0) dump them:

- Compliance Finding (2003): gate verdicts, a gate switched off or on, policy evaluations, waived
  findings and exception states, overdue drills;
- Detection Finding (2004): plugins verified or refused, budget thresholds crossed;
- API Activity (6003): what an operator did to the warehouse (backup, upgrade, rollback, restore,
  audit prune) and diagnostics bundles. The package has no API Activity class, so it has the fields of
  its ``BaseEvent`` with the class, category, activity and type ids of OCSF 1.5.0.

The actor comes from the environment and run tags the caller passes in.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from phase8_assets import __version__
from phase8_assets.shared.redaction import redact

OCSF_VERSION = "1.5.0"
ACTOR_TAG, ACTOR_SOURCE_TAG = "phase8/actor", "phase8/actor_source"
UNKNOWN = "unknown"

# event type -> (OCSF class uid, activity id, severity id)
COMPLIANCE, DETECTION, API_ACTIVITY = 2003, 2004, 6003
EVENT_TYPES: dict[str, tuple[int, int, int]] = {
    "gate.verdict": (COMPLIANCE, 1, 1),
    "gate.switched_off": (COMPLIANCE, 2, 3),
    "gate.switched_on": (COMPLIANCE, 2, 1),
    "policy.evaluated": (COMPLIANCE, 1, 1),
    "finding.waived": (COMPLIANCE, 2, 3),
    "exception.requested": (COMPLIANCE, 1, 1),
    "exception.approved": (COMPLIANCE, 2, 1),
    "exception.refused": (COMPLIANCE, 2, 3),
    "exception.expiring": (COMPLIANCE, 2, 2),
    "exception.expired": (COMPLIANCE, 3, 3),
    "drill.overdue": (COMPLIANCE, 1, 3),
    "plugin.verified": (DETECTION, 1, 1),
    "plugin.refused": (DETECTION, 1, 4),
    "budget.crossed": (DETECTION, 1, 3),
    "warehouse.backup": (API_ACTIVITY, 1, 1),
    "warehouse.upgrade": (API_ACTIVITY, 3, 1),
    "warehouse.rollback": (API_ACTIVITY, 3, 3),
    "warehouse.restore": (API_ACTIVITY, 3, 3),
    "diagnostics.bundle": (API_ACTIVITY, 1, 1),
    "audit.pruned": (API_ACTIVITY, 4, 2),
}
ACTIVITY_NAMES = {
    COMPLIANCE: {1: "Create", 2: "Update", 3: "Close"},
    DETECTION: {1: "Create", 2: "Update", 3: "Close"},
    API_ACTIVITY: {1: "Create", 2: "Read", 3: "Update", 4: "Delete"},
}
# OCSF compliance.status_id: 1 Pass, 2 Warning, 3 Fail
COMPLIANCE_STATUS = {"pass": 1, "warn": 2, "skipped": 2, "waived": 2, "fail": 3, "error": 3, "blocked": 3}
# OCSF finding status_id for exception states: 1 New, 2 In Progress, 3 Suppressed, 4 Resolved
EXCEPTION_STATUS = {"requested": 1, "approved": 2, "refused": 4, "expiring": 3, "expired": 4, "waived": 3}
_CI_ACTORS = (("GITHUB_ACTOR", "env:GITHUB_ACTOR"), ("GITLAB_USER_LOGIN", "env:GITLAB_USER_LOGIN"))


@dataclass(frozen=True)
class Actor:
    name: str
    source: str  # how it was established: env:GITHUB_ACTOR, dagster-tag:dagster/user, os-user, ...


@dataclass(frozen=True)
class AuditEvent:
    type: str
    target: str
    outcome: str
    actor: Actor
    occurred_at: datetime
    reason: str = ""
    ticket: str = ""
    run_id: str | None = None
    details: dict = field(default_factory=dict)


def actor_from(env: Mapping[str, str], tags: Mapping[str, str] | None = None, *, os_user: bool = True) -> Actor:
    """Who acts: a tag set by ``phase8 gate`` > the CI's user (GitHub, GitLab) > Dagster's
    ``dagster/user`` run tag > the schedule or sensor that launched the run > the OS user (``os_user``: a CLI process, never a Dagster step, whose
    OS user is the code server's, not whoever launched the run). Otherwise ``unknown``, with where
    it looked: never a guess."""
    tags = tags or {}
    if tags.get(ACTOR_TAG):
        return Actor(tags[ACTOR_TAG], tags.get(ACTOR_SOURCE_TAG) or f"dagster-tag:{ACTOR_TAG}")
    for var, source in _CI_ACTORS:
        if env.get(var):
            return Actor(env[var], source)
    if tags.get("dagster/user"):
        return Actor(tags["dagster/user"], "dagster-tag:dagster/user")
    for tag, what in (("dagster/schedule_name", "schedule"), ("dagster/sensor_name", "sensor")):
        if tags.get(tag):  # automation acts on its own: the schedule or sensor is the actor
            return Actor(f"{what} {tags[tag]}", f"dagster-tag:{tag}")
    if os_user:
        try:
            return Actor(getpass.getuser(), "os-user")
        except (KeyError, OSError):
            return Actor(UNKNOWN, "os-user: none for this process")
    return Actor(UNKNOWN, "dagster run: no CI actor variable and no dagster/user tag (open-source Dagster)")


def _epoch_ms(at: datetime) -> int:
    return int(at.astimezone(UTC).timestamp() * 1000)


# class uid -> (class name, category uid, category name), as OCSF 1.5.0 names them
CLASSES = {
    COMPLIANCE: ("Compliance Finding", 2, "Findings"),
    DETECTION: ("Detection Finding", 2, "Findings"),
    API_ACTIVITY: ("API Activity", 6, "Application Activity"),
}


def ocsf(event: AuditEvent, seq: int) -> dict:
    """The OCSF 1.5.0 record of ``event`` (sequence ``seq`` in the trail), redacted.

    Shaped as the ``py-ocsf-models`` model of its class dumps it (JSON values, no ``None`` field
    of the schema's objects; ``unmapped`` kept as given, NaN and infinities as null), without
    building the model: importing the models costs a gate run 0.2 s or more. The tests validate
    every event type with them."""
    from pydantic_core import to_jsonable_python

    class_uid, activity_id, severity_id = EVENT_TYPES[event.type]
    class_name, category_uid, category_name = CLASSES[class_uid]
    activity = ACTIVITY_NAMES[class_uid][activity_id]
    metadata = {
        "version": OCSF_VERSION,
        "uid": f"{event.run_id or 'phase8'}:{seq}",
        "sequence": seq,
        "event_code": event.type,
        "correlation_uid": event.run_id,
        "log_name": "phase8.audit",
        "product": {"name": "phase8", "vendor_name": "phase8_assets", "version": __version__},
    }
    record = {
        "activity_id": activity_id,
        "activity_name": activity,
        "category_uid": category_uid,
        "category_name": category_name,
        "class_uid": class_uid,
        "class_name": class_name,
        "message": f"{event.type} {event.target}: {event.outcome}" + (f" ({event.reason})" if event.reason else ""),
        "metadata": _without_none(metadata),
        "severity_id": severity_id,
        "status_detail": event.reason or None,
        "time": _epoch_ms(event.occurred_at),
        "type_uid": class_uid * 100 + activity_id,
        "actor": {
            "user": {
                "name": event.actor.name,
                "uid": event.actor.name,
                "type_id": 0,
                "account": {"name": event.actor.name},
            }
        },
        "unmapped": {
            "phase8": {
                "type": event.type,
                "target": event.target,
                "outcome": event.outcome,
                "reason": event.reason,
                "ticket": event.ticket,
                "actor": {"name": event.actor.name, "source": event.actor.source},
                "details": to_jsonable_python(event.details, inf_nan_mode="null"),  # as the models dump them
            }
        },
    }
    if class_uid == API_ACTIVITY:
        record |= {
            "status_id": 1 if event.outcome in ("done", "created", "verified", "identical") else 2,
            "api": {"operation": event.type, "service": {"name": "phase8"}},
            "src_endpoint": {"hostname": "localhost"},
            "resources": [{"name": event.target, "type": event.type.split(".")[0]}],
        }
    else:
        finding_info = {"uid": f"{event.type}:{event.target}", "title": event.target, "desc": event.reason or None}
        record["finding_info"] = _without_none(finding_info)
    if class_uid == COMPLIANCE:
        status = EXCEPTION_STATUS.get(event.outcome) if event.type.startswith(("exception.", "finding.")) else None
        record["compliance"] = {
            "status_id": COMPLIANCE_STATUS.get(event.outcome, 99),
            "control": event.target,
            "standards": ["phase8 release gates"],
        }
        record["status_id"] = status
    return redact(_without_none(record))


def _without_none(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not None}
