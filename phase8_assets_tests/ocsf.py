"""Audit records checked against the OCSF models of ``py-ocsf-models`` (OCSF 1.5.0)."""

from datetime import UTC

from py_ocsf_models.events.base_event import BaseEvent
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from phase8_assets import __version__
from phase8_assets.shared.audit_events import (
    ACTIVITY_NAMES,
    API_ACTIVITY,
    CLASSES,
    COMPLIANCE,
    COMPLIANCE_STATUS,
    DETECTION,
    EVENT_TYPES,
    EXCEPTION_STATUS,
    AuditEvent,
)
from phase8_assets.shared.redaction import redact

MODELS = {COMPLIANCE: ComplianceFinding, DETECTION: DetectionFinding}


def validate(record: dict) -> None:
    """The record against the py-ocsf-models model of its class (API Activity: the package's BaseEvent
    and OCSF 1.5.0's ids for class 6003, which the package lacks)."""
    class_uid = record["class_uid"]
    assert record["type_uid"] == class_uid * 100 + record["activity_id"]
    assert record["metadata"]["version"] == "1.5.0" and record["actor"]["user"]["name"]
    if class_uid == API_ACTIVITY:
        BaseEvent.model_validate(record)
        assert record["category_uid"] == 6 and record["api"]["operation"]
    else:
        parsed = MODELS[class_uid].model_validate(record)
        assert parsed.category_uid == 2 and parsed.finding_info.uid


def model_record(event: AuditEvent, seq: int) -> dict:
    """``event``'s record built with the models (what ``ocsf`` shapes without them): the class's model
    from the common fields, dumped as JSON without ``None`` fields, redacted."""
    class_uid, activity_id, severity_id = EVENT_TYPES[event.type]
    activity = ACTIVITY_NAMES[class_uid][activity_id]
    user = {"name": event.actor.name, "uid": event.actor.name, "type_id": 0, "account": {"name": event.actor.name}}
    common = {
        "activity_id": activity_id,
        "activity_name": activity,
        "message": f"{event.type} {event.target}: {event.outcome}" + (f" ({event.reason})" if event.reason else ""),
        "metadata": {
            "version": "1.5.0",
            "uid": f"{event.run_id or 'phase8'}:{seq}",
            "sequence": seq,
            "event_code": event.type,
            "correlation_uid": event.run_id,
            "log_name": "phase8.audit",
            "product": {"name": "phase8", "vendor_name": "phase8_assets", "version": __version__},
        },
        "severity_id": severity_id,
        "status_detail": event.reason or None,
        "time": int(event.occurred_at.astimezone(UTC).timestamp() * 1000),
        "type_uid": class_uid * 100 + activity_id,
        "unmapped": {
            "phase8": {
                "type": event.type,
                "target": event.target,
                "outcome": event.outcome,
                "reason": event.reason,
                "ticket": event.ticket,
                "actor": {"name": event.actor.name, "source": event.actor.source},
                "details": event.details,
            }
        },
    }
    finding_info = {"uid": f"{event.type}:{event.target}", "title": event.target, "desc": event.reason or None}
    if class_uid in MODELS:
        extra = {"class_name": CLASSES[class_uid][0], "finding_info": finding_info}
        if class_uid == COMPLIANCE:
            status = EXCEPTION_STATUS.get(event.outcome) if event.type.startswith(("exception.", "finding.")) else None
            extra |= {
                "compliance": {
                    "status_id": COMPLIANCE_STATUS.get(event.outcome, 99),
                    "control": event.target,
                    "standards": ["phase8 release gates"],
                },
                "status_id": status,
            }
        record = MODELS[class_uid](**common, **extra).model_dump(mode="json", exclude_none=True)
        record["actor"] = {"user": user}
    else:
        base = BaseEvent(**{k: common[k] for k in ("message", "metadata", "severity_id", "status_detail", "unmapped")})
        record = {
            **base.model_dump(mode="json", exclude_none=True),
            "category_uid": 6,
            "category_name": "Application Activity",
            "class_uid": API_ACTIVITY,
            "class_name": "API Activity",
            "activity_id": activity_id,
            "activity_name": activity,
            "type_uid": common["type_uid"],
            "time": common["time"],
            "status_id": 1 if event.outcome in ("done", "created", "verified", "identical") else 2,
            "actor": {"user": user},
            "api": {"operation": event.type, "service": {"name": "phase8"}},
            "src_endpoint": {"hostname": "localhost"},
            "resources": [{"name": event.target, "type": event.type.split(".")[0]}],
        }
    record.pop("time_dt", None)
    return redact(record)
