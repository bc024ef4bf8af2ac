"""Gates, findings, waivers and the verdict: the contract every stream plugs into.

A gate turns findings into a status: ``fail`` if any error finding remains after waivers,
``warn`` if only warnings remain, else ``pass``; ``skipped`` when the config switches it off;
``error`` when it could not be evaluated. The verdict is ``blocked`` when any blocking gate is
``fail`` or ``error``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

STATUSES = ("pass", "warn", "fail", "error", "skipped")


@dataclass(frozen=True)
class GateSpec:
    name: str
    title: str
    description: str
    item: str  # the Phase 8 item it serves (domains/program.py ITEMS) or "program-wide"
    blocking: bool = True
    # The evidence kinds the gate reads: any of them rejected, missing, undated, future-dated or stale
    # fails the gate itself (``judge``), not only the two evidence gates. Empty only for those two,
    # which judge every kind.
    evidence: tuple[str, ...] = ()


# Every gate the product knows; streams add theirs here. The name is the asset check's name.
GATES: dict[str, GateSpec] = {
    spec.name: spec
    for spec in (
        GateSpec(
            "evidence_validity",
            "Evidence validity",
            "Every file of every configured evidence kind was read by its reader; each rejection blocks.",
            item="program-wide",
        ),
        GateSpec(
            "evidence_freshness",
            "Evidence freshness",
            "Every configured evidence kind has evidence younger than its maximum age, by timestamps inside it.",
            item="program-wide",
        ),
        GateSpec(
            "perf_budgets",
            "Performance budgets",
            "Every benchmark of the release commit holds its absolute budget (e.g. p95 <= 250ms).",
            item="performance",
            evidence=("benchmarks", "perf_budgets"),
        ),
        GateSpec(
            "perf_regressions",
            "Performance regressions",
            "No benchmark of the release commit is significantly worse than its baseline by more than its "
            "relative limit (one-sided test, Benjamini-Hochberg across the run).",
            item="performance",
            evidence=("benchmarks", "perf_budgets", "perf_baselines"),
        ),
        GateSpec(
            "slo_burn_rate",
            "SLO burn rate",
            "No page-level multiwindow burn-rate alert is active for any SLO at the evaluation time "
            "(ticket-level burns warn).",
            item="performance",
            evidence=("slo_definitions", "otel_metrics"),
        ),
        GateSpec(
            "error_budget",
            "Error budget",
            "Every SLO has at least its release policy's minimum error budget left (default 0 %).",
            item="performance",
            evidence=("slo_definitions", "otel_metrics"),
        ),
        GateSpec(
            "upgrade_preflight",
            "Upgrade preflight",
            "Every supported source version reaches the release without skipping a required stop, and every "
            "preflight report for the release passes.",
            item="upgrade_safety",
            evidence=("upgrade_path", "preflight_reports"),
        ),
        GateSpec(
            "rollback_integrity",
            "Rollback integrity",
            "The newest rollback drill to the release is current and restored identical schema, row counts and "
            "checksums in every table and tenant.",
            item="upgrade_safety",
            evidence=("rollback_reports",),
        ),
        GateSpec(
            "cost_budgets",
            "Cost budgets",
            "No monthly budget has crossed a threshold of its actual spend or month-end forecast (warns; cost informs "
            "a release, it never blocks one).",
            item="finops",
            blocking=False,
            evidence=("cost_exports", "cur_exports", "cost_allocation", "cost_budgets"),
        ),
        GateSpec(
            "policy_compliance",
            "Policy compliance",
            "Every dataset of the inventory meets its retention rules and deletion SLAs and every access grant is "
            "permitted by the Cedar access policy, unless an approved exception in force accepts the violation.",
            item="governance",
            evidence=(
                "retention_policies",
                "deletion_policies",
                "access_policies",
                "teams",
                "data_inventory",
                "data_contracts",
            ),
        ),
        GateSpec(
            "policy_exceptions",
            "Policy exceptions",
            "No exception is refused (approval denied by the access policy, approved by its own requester, longer "
            "than its maximum lifetime) or unreadable; requested, expiring and expired ones warn their owner.",
            item="governance",
            evidence=("access_policies", "teams", "foreign_exceptions"),
        ),
        GateSpec(
            "drill_evidence",
            "Chaos drill evidence",
            "Every catalogued drill's latest run passed (completed, not deviated) within its cadence and recovery "
            "objective, and its runbook exists.",
            item="chaos_drills",
            evidence=("drill_journals", "chaos_results", "drill_catalog"),
        ),
        GateSpec(
            "supportability",
            "Operator supportability",
            "Every gate, catalogued drill, SLO alert and budget alert names a runbook of the root; every runbook's "
            "links and anchors resolve and its review is not overdue; every captured health response keeps the "
            "application/health+json contract and none reports fail.",
            item="supportability",
            evidence=("runbooks", "health_responses"),
        ),
        GateSpec(
            "tenancy_isolation",
            "Tenancy isolation",
            "No isolation test (data, events, cache) failed or passed only on rerun, and every (resource × dimension) "
            "cell of the isolation matrix is covered by a passing result younger than its maximum age.",
            item="tenancy_isolation",
            evidence=("isolation_results", "isolation_matrix"),
        ),
        GateSpec(
            "plugin_signatures",
            "Plugin signatures",
            "Every plugin enabled for a tenant has a bundle signed by a trusted, unrevoked, currently valid key, with "
            "every file as signed, safe paths within the tar limits, and no version below or re-signed at the approved one.",
            item="plugin_security",
            evidence=("plugin_bundles", "plugin_trust"),
        ),
        GateSpec(
            "plugin_capabilities",
            "Plugin capabilities",
            "Every plugin enabled for a tenant requests only known capabilities (its platform manifest's permissions "
            "included) that its signer's trust level allows, and egress only to hosts that level allows.",
            item="plugin_security",
            evidence=("plugin_bundles", "plugin_trust"),
        ),
        GateSpec(
            "program_completeness",
            "Program completeness",
            "Every Phase 8 item declared in phase8.yaml's program has an owner, a cadence the evidence shows was kept, "
            "and a gate that evaluates it; all four families (reliability, resilience, governance, supportability) "
            "are in the verdict.",
            item="program-wide",
            # the item runs whose cadence it judges (domains/program.py ITEMS[...].runs)
            evidence=(
                "benchmarks",
                "drill_journals",
                "chaos_results",
                "preflight_reports",
                "rollback_reports",
                "cost_exports",
                "data_inventory",
                "plugin_bundles",
                "isolation_results",
                "health_responses",
            ),
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
    gate: str, findings: list[Finding], exceptions: list, at: datetime, owner: str, runbook: str | None
) -> list[Finding]:
    """Turn error findings matched by an exception in force (active or expiring) into ``waived``;
    report this gate's expiring and expired exceptions, and an exception in force that waives
    nothing (its subject or rule matches no error finding of the gate: a typo, or a problem fixed
    since, so the exception should go before it silently waives a later one); name an exception
    that would match a finding but does not apply (requested, refused, not yet in effect).
    ``exceptions`` are ``domains.exceptions.ExceptionState`` s."""
    mine = [s for s in exceptions if s.waiver.gate == gate]

    def matches(finding: Finding, waiver) -> bool:
        return glob_match(finding.subject, waiver.subject) and glob_match(finding.rule, waiver.rule)

    out, used = [], set()
    for finding in findings:
        if finding.severity == "error":
            state = next((s for s in mine if s.in_force and matches(finding, s.waiver)), None)
            if state:
                used.add(id(state))
                finding = replace(
                    finding, severity="waived", details={**finding.details, "waiver": state.waiver.as_details()}
                )
            else:
                idle = next((s for s in mine if s.state != "renewed" and matches(finding, s.waiver)), None)
                if idle:
                    note = {"id": idle.waiver.id, "state": idle.state, "why": idle.reason, "source": idle.waiver.source}
                    finding = replace(finding, details={**finding.details, "exception_not_applied": note})
        out.append(finding)
    for state in mine:
        if state.state in ("expired", "expiring"):
            out.append(
                Finding(
                    "warning",
                    state.waiver.subject,
                    f"waiver-{state.state}",
                    state.reason,
                    "an exception in force (renew it with a new document that names it in renews)",
                    state.waiver.source,
                    state.waiver.owner,
                    runbook,
                    {"waiver": state.waiver.as_details()},
                )
            )
        if state.in_force and id(state) not in used:
            out.append(
                Finding(
                    "warning",
                    state.waiver.subject,
                    "waiver-matches",
                    f"{state.waiver.id} waives nothing: no error finding of {gate} has a subject matching "
                    f"{state.waiver.subject!r} and a rule matching {state.waiver.rule!r}",
                    "an exception in force matches a finding of its gate (remove it once the problem is fixed)",
                    state.waiver.source,
                    state.waiver.owner,
                    runbook,
                    {"waiver": state.waiver.as_details(), "subjects": sorted({f.subject for f in findings
                                                                              if f.severity == "error"})[:20]},
                )
            )  # fmt: skip
    return out


def glob_match(value: str, pattern: str) -> bool:
    """``pattern`` as a glob, or literally: a subject such as ``test_search[query=long]`` names
    itself, though ``[...]`` is a character class to ``fnmatch``."""
    return value == pattern or fnmatch.fnmatchcase(value, pattern)


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


def errored(spec: GateSpec, reason: str, config=None) -> GateResult:
    """A gate that could not be evaluated; with the root's ``config``, one finding says so and names
    the gate's owner and runbook (who looks into it, and where)."""
    found = []
    if config is not None:
        found.append(Finding("error", spec.name, "gate-evaluated", reason, "the gate evaluates its evidence",
                             config.source, config.owner_for(spec.name), config.runbook_for(spec.name)))  # fmt: skip
    return GateResult(spec.name, "error", spec.blocking, f"could not be evaluated: {reason}", found)


def verdict(results: list[GateResult]) -> str:
    return "blocked" if any(r.blocking and r.status in ("fail", "error") for r in results) else "pass"


def judge(spec: GateSpec, batch, config, at: datetime, evaluate, exceptions: list, **inputs) -> GateResult:
    """One gate, whoever asks: switched off -> ``skipped``; else ``evaluate(batch, config, at,
    **inputs)`` -> ``(findings, context)`` plus the errors of the gate's own evidence (fail closed),
    the exceptions in force applied, the status concluded.
    An evaluation that raises is the caller's ``errored``."""
    enabled, reason = config.gate_switch(spec.name)
    if not enabled:
        return skipped(spec, reason)
    from phase8_assets.domains.evidence_quality import own_evidence_findings  # it builds on this module

    findings, context = evaluate(batch, config, at, **inputs)
    findings = findings + own_evidence_findings(spec.name, spec.evidence, batch, config, at, findings)
    findings = apply_waivers(
        spec.name, findings, exceptions, at, config.owner_for(spec.name), config.runbook_for(spec.name)
    )
    return conclude(spec, findings, context)
