"""Gates, findings, waivers and the verdict: the contract every stream plugs into.

A gate turns findings into a status: ``fail`` if any error finding remains after waivers,
``warn`` if only warnings remain, else ``pass``; ``skipped`` when the config switches it off;
``error`` when it could not be evaluated. The verdict is ``blocked`` when any blocking gate is
``fail`` or ``error``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from phase8_assets.evidence.collect import Waiver
from phase8_assets.shared.clock import format_timestamp

STATUSES = ("pass", "warn", "fail", "error", "skipped")
WAIVER_WARN_BEFORE = timedelta(days=7)


@dataclass(frozen=True)
class GateSpec:
    name: str
    title: str
    description: str
    blocking: bool = True


# Every gate the product knows; streams add theirs here. The name is the asset check's name.
GATES: dict[str, GateSpec] = {
    spec.name: spec
    for spec in (
        GateSpec(
            "evidence_validity",
            "Evidence validity",
            "Every file of every configured evidence kind was read by its reader; each rejection blocks.",
        ),
        GateSpec(
            "evidence_freshness",
            "Evidence freshness",
            "Every configured evidence kind has evidence younger than its maximum age, by timestamps inside it.",
        ),
        GateSpec(
            "perf_budgets",
            "Performance budgets",
            "Every benchmark of the release commit holds its absolute budget (e.g. p95 <= 250ms).",
        ),
        GateSpec(
            "perf_regressions",
            "Performance regressions",
            "No benchmark of the release commit is significantly worse than its baseline by more than its "
            "relative limit (one-sided test, Benjamini-Hochberg across the run).",
        ),
        GateSpec(
            "slo_burn_rate",
            "SLO burn rate",
            "No page-level multiwindow burn-rate alert is active for any SLO at the evaluation time "
            "(ticket-level burns warn).",
        ),
        GateSpec(
            "error_budget",
            "Error budget",
            "Every SLO has at least its release policy's minimum error budget left (default 0 %).",
        ),
        GateSpec(
            "upgrade_preflight",
            "Upgrade preflight",
            "Every supported source version reaches the release without skipping a required stop, and every "
            "preflight report for the release passes.",
        ),
        GateSpec(
            "rollback_integrity",
            "Rollback integrity",
            "The newest rollback drill to the release is current and restored identical schema, row counts and "
            "checksums in every table and tenant.",
        ),
        GateSpec(
            "cost_budgets",
            "Cost budgets",
            "No monthly budget has crossed a threshold of its actual spend or month-end forecast (warns; cost informs "
            "a release, it never blocks one).",
            blocking=False,
        ),
        GateSpec(
            "drill_evidence",
            "Chaos drill evidence",
            "Every catalogued drill's latest run passed (completed, not deviated) within its cadence and recovery "
            "objective, and its runbook exists.",
        ),
    )
}


@dataclass
class Finding:
    severity: str  # error | warning | waived
    subject: str
    rule: str
    observed: object
    limit: object
    evidence: str | None
    owner: str
    runbook: str | None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GateResult:
    gate: str
    status: str
    blocking: bool
    summary: str
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "gate": self.gate,
            "status": self.status,
            "blocking": self.blocking,
            "summary": self.summary,
            "findings": [f.as_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict) -> GateResult:
        return cls(
            gate=data["gate"],
            status=data["status"],
            blocking=data["blocking"],
            summary=data["summary"],
            findings=[Finding(**f) for f in data["findings"]],
        )

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "warn", "skipped")


def apply_waivers(
    gate: str, findings: list[Finding], waivers: list[Waiver], at: datetime, owner: str, runbook: str | None
) -> list[Finding]:
    """Turn error findings matched by an active waiver into ``waived``; report expired waivers."""
    mine = [w for w in waivers if w.gate == gate]
    active = [w for w in mine if w.expires > at]
    out = []
    for finding in findings:
        waiver = next(
            (
                w
                for w in active
                if finding.severity == "error"
                and fnmatch.fnmatchcase(finding.subject, w.subject)
                and fnmatch.fnmatchcase(finding.rule, w.rule)
            ),
            None,
        )
        if waiver:
            finding = Finding(
                **{
                    **finding.as_dict(),
                    "severity": "waived",
                    "details": {**finding.details, "waiver": waiver.as_details()},
                }
            )
        out.append(finding)
    for waiver in mine:
        if waiver.expires <= at:
            out.append(
                Finding(
                    "warning",
                    waiver.subject,
                    "waiver-expired",
                    f"expired {format_timestamp(waiver.expires)}",
                    "an unexpired waiver",
                    waiver.source,
                    waiver.owner,
                    runbook,
                    {"waiver": waiver.as_details(), "note": "the waiver no longer applies"},
                )
            )
        elif waiver.expires - at <= WAIVER_WARN_BEFORE:
            out.append(
                Finding(
                    "warning",
                    waiver.subject,
                    "waiver-expiring",
                    f"expires {format_timestamp(waiver.expires)}",
                    f"more than {WAIVER_WARN_BEFORE.days} days left",
                    waiver.source,
                    waiver.owner,
                    runbook,
                    {"waiver": waiver.as_details()},
                )
            )
    return out


def status_of(findings: list[Finding]) -> str:
    severities = {f.severity for f in findings}
    if "error" in severities:
        return "fail"
    if "warning" in severities:
        return "warn"
    return "pass"


def conclude(spec: GateSpec, findings: list[Finding], context: str) -> GateResult:
    """The gate's result and a one-line summary from its (already waived) findings."""
    status = status_of(findings)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "waived")}
    parts = [
        f"{n} {label}"
        for label, n in (("error(s)", counts["error"]), ("warning(s)", counts["warning"]), ("waived", counts["waived"]))
        if n
    ]
    summary = f"{context}; " + (", ".join(parts) if parts else "no findings")
    return GateResult(spec.name, status, spec.blocking, summary, findings)


def skipped(spec: GateSpec, reason: str) -> GateResult:
    return GateResult(spec.name, "skipped", spec.blocking, f"skipped: {reason}")


def errored(spec: GateSpec, reason: str) -> GateResult:
    return GateResult(spec.name, "error", spec.blocking, f"could not be evaluated: {reason}")


def verdict(results: list[GateResult]) -> str:
    return "blocked" if any(r.blocking and r.status in ("fail", "error") for r in results) else "pass"
