"""Audit records checked against the OCSF models of ``py-ocsf-models`` (OCSF 1.5.0)."""

from py_ocsf_models.events.base_event import BaseEvent
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from phase8_assets.shared.audit_events import API_ACTIVITY, COMPLIANCE, DETECTION

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
