"""The gate factory: each gate is a leaf asset carrying one check, so a failing gate never
skips another. Blocking gates have an ERROR-severity blocking check; warn-level gates a WARN one."""

import traceback
from collections.abc import Callable

import dagster as dg

from phase8_assets.defs.resources import Phase8Settings
from phase8_assets.domains.exceptions import exception_states
from phase8_assets.domains.gate_report import STATUS_ICON
from phase8_assets.domains.gates import GATES, GateResult, errored, judge
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.shared import telemetry
from phase8_assets.shared.reports import markdown_table

GATE_PREFIX = "gates"
RESULT_KEY = "phase8/gate_result"


def gate_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([GATE_PREFIX, name])


def check_result(result: GateResult) -> dg.AssetCheckResult:
    """The check's evaluation, explaining itself: status, summary, findings table, full result."""
    spec = GATES[result.gate]
    rows = [
        [f.severity, f.subject, f.rule, f.observed, f.limit, f.evidence, f.owner, f.runbook] for f in result.findings
    ]
    metadata = {
        "status": dg.MetadataValue.text(result.status),
        "summary": dg.MetadataValue.text(result.summary),
        "errors": sum(f.severity == "error" for f in result.findings),
        "warnings": sum(f.severity == "warning" for f in result.findings),
        "waived": sum(f.severity == "waived" for f in result.findings),
        "findings": dg.MetadataValue.md(
            markdown_table(
                ["severity", "subject", "rule", "observed", "limit", "evidence", "owner", "runbook"],
                rows,
                empty="_no findings_",
            )
        ),
        RESULT_KEY: dg.MetadataValue.json(result.as_dict()),
    }
    return dg.AssetCheckResult(
        check_name=result.gate,
        asset_key=gate_key(result.gate),
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR if spec.blocking else dg.AssetCheckSeverity.WARN,
        description=f"{STATUS_ICON[result.status]}: {result.summary}",
        metadata=metadata,
    )


def gate_asset(name: str, *, group: str, owners: list[str], evaluate: Callable, ins: dict | None = None):
    """A leaf gate asset ``gates/<name>`` with its check ``<name>``.

    ``evaluate(batch, config, at, **inputs)`` returns ``(findings, context)``; waivers, skipping and
    the status rule are applied here, once, for every gate.
    """
    spec = GATES[name]
    key = gate_key(name)
    all_ins = {"evidence_files": dg.AssetIn("evidence_files"), **(ins or {})}

    @dg.asset(
        key=key,
        group_name=group,
        owners=owners,
        kinds={"python"},
        ins=all_ins,
        description=f"Gate `{name}`: {spec.description}",
        check_specs=[
            dg.AssetCheckSpec(
                name,
                asset=key,
                blocking=spec.blocking,
                description=f"{'Blocks' if spec.blocking else 'Warns on'} the release: {spec.description}",
            )
        ],
        tags={"phase8/gate": name},
    )
    def _gate(context: dg.AssetExecutionContext, settings: Phase8Settings, evidence_files: EvidenceBatch, **inputs):
        result = evaluate_gate(context, settings, evidence_files, inputs)
        telemetry.count(
            "phase8.gate.evaluations",
            1,
            {"phase8.gate": name, "phase8.gate.status": result.status, "phase8.gate.blocking": spec.blocking},
            description="Gate evaluations by gate and status",
        )
        yield dg.MaterializeResult(metadata={"status": result.status, "summary": result.summary})
        yield check_result(result)

    def evaluate_gate(context, settings, batch: EvidenceBatch, inputs: dict) -> GateResult:
        try:
            config = settings.load()
            at = settings.evaluation_time(config)
            return judge(spec, batch, config, at, evaluate, exception_states(batch, config, at), **inputs)
        except Exception as exc:  # the gate could not be evaluated: status `error`, still blocking
            context.log.error(traceback.format_exc())
            return errored(spec, f"{type(exc).__name__}: {exc}")

    _gate.__name__ = f"{name}_gate"
    return _gate
