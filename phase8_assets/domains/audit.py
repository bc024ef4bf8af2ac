"""Which decisions of a completed gate run go into the audit trail (``shared/audit_events.py``
makes them OCSF records, ``warehouse/audit.py`` chains them)."""

from __future__ import annotations

from datetime import datetime

from phase8_assets.shared.audit_events import EXCEPTION_STATUS, Actor, AuditEvent


def _waiver_reason(waiver: dict) -> tuple[str, str]:
    return str(waiver.get("reason") or ""), str(waiver.get("ticket") or "")


def report_events(
    report: dict, actor: Actor, occurred_at: datetime, run_id: str, switched_on: list[str] = ()
) -> list[AuditEvent]:
    """Every audited decision in one completed gate run: the verdict (release, root, evidence
    digests), each waived finding with its exception, exception states, gates switched off,
    policy evaluations, plugins verified or refused. (Budget crossings and overdue drills are
    recorded where they are recorded once: the ``budget_alerts`` sensor and ``drill_cadence``.)"""

    def event(type_: str, target: str, outcome: str, reason: str = "", ticket: str = "", **details) -> AuditEvent:
        return AuditEvent(type_, target, outcome, actor, occurred_at, reason, ticket, run_id, details)

    release = report.get("release", {})
    out = [
        event(
            "gate.verdict",
            f"release {release.get('version', '')}",
            report["verdict"],
            "; ".join(f"{g['gate']} {g['status']}" for g in report["gates"] if g["status"] in ("fail", "error")),
            release_commit=str(release.get("commit", "")),
            evidence_roots=list(report.get("evidence_roots", [])),
            evidence_digests=report.get("evidence_digests", {}),
            evaluated_at=report.get("evaluated_at"),
            gates={g["gate"]: g["status"] for g in report["gates"]},
        )
    ]
    for name in switched_on:
        out.append(event("gate.switched_on", f"gate {name}", "evaluated", "skipped by the previous run on this root"))
    for gate in report["gates"]:
        name, status = gate["gate"], gate["status"]
        if status == "skipped":
            out.append(event("gate.switched_off", f"gate {name}", "skipped", gate["summary"]))
        if name == "policy_compliance":
            out.append(event("policy.evaluated", f"gate {name}", status, gate["summary"]))
        if name == "plugin_signatures" and status == "pass":
            out.append(event("plugin.verified", f"gate {name}", "verified", gate["summary"]))
        for finding in gate["findings"]:
            details = finding.get("details") or {}
            subject = f"{finding['subject']}"
            if finding["severity"] == "waived":
                waiver = details.get("waiver") or {}
                reason, ticket = _waiver_reason(waiver)
                out.append(
                    event(
                        "finding.waived",
                        f"{name}: {subject}",
                        "waived",
                        reason,
                        ticket,
                        rule=finding["rule"],
                        exception=waiver.get("id"),
                        owner=waiver.get("owner"),
                        expires=waiver.get("expires"),
                        evidence=finding.get("evidence"),
                    )  # fmt: skip
                )
            elif name == "policy_exceptions" and details.get("state") in EXCEPTION_STATUS:
                waiver = details.get("waiver") or {}
                reason, ticket = _waiver_reason(waiver)
                out.append(
                    event(
                        f"exception.{details['state']}",
                        subject,
                        details["state"],
                        finding["observed"],
                        ticket,
                        exception=waiver.get("id"),
                        owner=waiver.get("owner"),
                        requested_reason=reason,
                    )  # fmt: skip
                )
            elif name in ("plugin_signatures", "plugin_capabilities") and finding["severity"] == "error":
                out.append(event("plugin.refused", subject, "refused", f"{finding['rule']}: {finding['observed']}"))
    return out
