"""The gate factory: each gate is a leaf asset carrying one check, so a failing gate never
skips another. A gate that fails blocks with an ERROR-severity failed check; one that only warns is
a WARN-severity failed check (it never blocks); pass and skipped are passed checks.

One gate run, whoever launches it (the UI, a schedule, ``dagster job execute``, ``phase8 gate``):
each gate's step records its own result in the gate run log under the run id, brings the run's row
up to date, and the step that completes the run writes the reports under
``$PHASE8_HOME/reports/<root-id>/<release>/`` and renders the program scorecard again with the run's
statuses. A final step would never run on a blocked run; a step that crashes instead has the
job's failure hook (``record_stopped_gates``) record the gates it stops as ``error``, so the run
is completed all the same."""

import os
import traceback
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

import dagster as dg

from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.defs.scorecard import complete_scorecard
from phase8_assets.domains.audit import report_events
from phase8_assets.domains.exceptions import exception_states
from phase8_assets.domains.gate_report import (
    STATUS_ICON,
    assemble,
    banner_of,
    report_folder,
    report_link,
    report_sections,
    root_id,
    shown_path,
    title_of,
    to_json,
    to_junit,
    to_markdown,
)
from phase8_assets.domains.gates import GATES, GateResult, errored, judge
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.evidence.config import EvidenceConfig
from phase8_assets.shared import telemetry
from phase8_assets.shared.audit_events import Actor, actor_from
from phase8_assets.shared.clock import now_utc
from phase8_assets.shared.reports import markdown_table, write_html, write_text
from phase8_assets.warehouse import audit, transaction
from phase8_assets.warehouse.store import record_gate_result, record_gate_run, recorded_gate_results

GATE_PREFIX = "gates"
RESULT_KEY = "phase8/gate_result"
FINDING_COLUMNS = ["severity", "subject", "rule", "observed", "limit", "evidence", "owner", "runbook"]
PATH_COLUMNS = ("subject", "evidence", "runbook")  # shown relative to the evidence root
SEVERITY_ORDER = ("error", "warning", "waived")


def run_tags(config: EvidenceConfig) -> dict[str, str]:
    """Tags naming the release and the evidence root a gate run judged."""
    return {
        "phase8/release.version": str(config.release.get("version", "")),
        "phase8/release.commit": str(config.release.get("commit", "")),
        "phase8/evidence_root": config.root_uris[0],
        "phase8/root_id": root_id(config.root_uris[0]),
    }


def write_gate_reports(folder: Path, report: dict) -> list[Path]:
    """``gate-report.json`` / ``.xml`` / ``.md`` / ``.html`` in ``folder``."""
    title, subtitle = title_of(report)
    return [
        write_text(folder / "gate-report.json", to_json(report)),
        write_text(folder / "gate-report.xml", to_junit(report)),
        write_text(folder / "gate-report.md", to_markdown(report)),
        write_html(folder / "gate-report.html", title, report_sections(report), subtitle, banner_of(report)),
    ]


def record_in_run(
    warehouse: Warehouse,
    run_id: str,
    gates: list[dict],
    config: EvidenceConfig,
    at: datetime,
    missing_reason: str,
    *,
    final: bool = False,
    actor: Actor | None = None,
    stopped: Collection[str] = (),
) -> tuple[dict, list[str]]:
    """Record ``gates`` under ``run_id`` and bring the run's row up to date.

    Returns the run's report and the known gates that have not reported. A known gate not recorded
    yet is ``error`` with ``missing_reason`` in the report; with ``final`` (the run is over) it is
    recorded so, as are the ``stopped`` gates (a step they need failed: they will not report), which
    then no longer count as missing. The run's evaluation time is the one its first recorded gate gave.

    The step that completes the run (every gate recorded, or ``final``) records the run's audit
    events (verdict, waived findings, exceptions, gates switched off, ...) as ``actor``, in the same
    transaction, once per run."""
    audited: list[dict] = []
    with warehouse.get_connection() as conn, transaction(conn):
        for gate in gates:
            record_gate_result(conn, run_id, gate)
        first_at, recorded = recorded_gate_results(conn, run_id)
        missing = sorted(set(GATES) - {g["gate"] for g in recorded})
        report = assemble(
            recorded, config.release, config.root_uris, first_at or at, run_id, missing_reason, config.links, config
        )
        if final or stopped:
            for gate in report["gates"]:
                if gate["gate"] in missing and (final or gate["gate"] in stopped):
                    record_gate_result(conn, run_id, gate)
            if not final:
                missing = [g for g in missing if g not in stopped]
        record_gate_run(conn, run_id, report, now_utc())
        if actor is not None and (final or not missing) and not audit.run_audited(conn, run_id):
            digests = audit.evidence_digests(conn, config.root_uris)
            back_on = audit.switched_back_on(conn, report["evidence_roots"], run_id, report)
            events = report_events({**report, "evidence_digests": digests}, actor, now_utc(), run_id, back_on)
            audited = audit.append(conn, events, Path(warehouse.database).parent)
    if audited:
        with warehouse.get_connection() as conn:
            audit.committed(conn, Path(warehouse.database).parent, audited)
    audit.emit(audited)
    return report, missing


def emit_blocked(gate: dict, run_id: str) -> None:
    """A ``phase8.gate.blocked`` event carrying the gate's first error finding (redacted by the helper)."""
    finding = next((f for f in gate["findings"] if f["severity"] == "error"), None) or {}
    attributes = {
        "cicd.pipeline.name": "release_gate",
        "cicd.pipeline.run.id": run_id,
        "phase8.gate": gate["gate"],
        "phase8.gate.status": gate["status"],
        "phase8.gate.summary": gate["summary"],
    }
    for key in ("subject", "rule", "observed", "limit", "evidence", "owner", "runbook"):
        if finding.get(key) is not None:
            attributes[f"phase8.finding.{key}"] = finding[key]
    telemetry.emit_event("phase8.gate.blocked", attributes, body=f"{gate['gate']}: {gate['summary']}")


def gates_stopped_by(step_key: str) -> set[str]:
    """The gates that can no longer report once step ``step_key`` of ``release_gate`` failed: those
    downstream of its asset, and the gate itself when it is a gate's step."""
    from phase8_assets.definitions import defs  # the definitions import this module

    graph = defs.resolve_asset_graph()
    todo = [k for k in graph.get_all_asset_keys() if k.to_python_identifier() == step_key]
    seen: set[dg.AssetKey] = set()
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(graph.get(key).child_keys)
    return {k.path[1] for k in seen if len(k.path) == 2 and k.path[0] == GATE_PREFIX and k.path[1] in GATES}


CRASH_TEXT_CHARS = 300


def crash_text(cls_name: str, message: str) -> str:
    """What a crashed step raised, in one redacted line (the gate's finding and the report carry it:
    ``phase8 gate``'s Dagster instance, and with it the step's log, is gone when the command ends)."""
    from phase8_assets.shared.redaction import redact_text

    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    text = first if first.startswith(f"{cls_name}:") or not cls_name else f"{cls_name}: {first}"
    text = redact_text(text)
    return text if len(text) <= CRASH_TEXT_CHARS else text[: CRASH_TEXT_CHARS - 1] + "…"


def failed_step_reason(step_key: str, crash: str, own: bool = False) -> str:
    """``upstream step failed (<step>: <what it raised>)``, or ``its step failed (…)`` for the gate's own."""
    what = f"{step_key}: {crash}" if crash else step_key
    return f"its step failed ({what})" if own else f"upstream step failed ({what})"


def exception_crash_text(exc: BaseException | None) -> str:
    """``crash_text`` of an exception, Dagster's wrappers taken off."""
    while exc is not None and type(exc).__module__.startswith("dagster") and exc.__cause__ is not None:
        exc = exc.__cause__
    if exc is None:
        return ""
    return crash_text(type(exc).__name__, "".join(traceback.format_exception_only(type(exc), exc)))


def record_stopped(
    warehouse: Warehouse,
    config: EvidenceConfig,
    at: datetime,
    run_id: str,
    step_key: str,
    stopped: set[str],
    crash: str,
    actor: Actor,
) -> tuple[dict, list[str], str]:
    """Step ``step_key`` of run ``run_id`` failed, raising ``crash`` (``crash_text``): the gates it
    stops (``gates_stopped_by``) are recorded as ``error`` naming the step, and the blocking ones
    emitted as blocked. When no gate is missing after them, the run is complete: its reports are
    written and the program scorecard rendered with its statuses. Returns the run's report, the
    gates still missing and the reason recorded."""
    own = {gate_key(g).to_python_identifier() for g in stopped} == {step_key}
    reason = failed_step_reason(step_key, crash, own)
    report, missing = record_in_run(warehouse, run_id, [], config, at, reason, actor=actor, stopped=stopped)
    for gate in report["gates"]:
        if (
            gate["gate"] in stopped
            and gate["blocking"]
            and gate["status"] == "error"
            and gate["summary"].endswith(reason)
        ):
            emit_blocked(gate, run_id)
    if not missing:
        write_gate_reports(warehouse.reports_dir / report_folder(report), report)
        complete_scorecard(warehouse.reports_dir, config.root_uris, report)
    return report, missing, reason


# What ends a step without stopping its gates: an interruption, or a blocking check that failed (its
# gate is recorded). By class name: the failure hook has the exception, ``phase8 gate`` its
# serialised error chain.
ENDED = ("DagsterExecutionInterruptedError", "KeyboardInterrupt", "DagsterAssetCheckFailedError")


def ended_step(error: BaseException) -> bool:
    """``error`` is, or derives from, one of ``ENDED``."""
    return any(cls.__name__ in ENDED for cls in type(error).__mro__)


@dg.failure_hook(name="record_stopped_gates", required_resource_keys={"settings", "warehouse"})
def record_stopped_gates(context: dg.HookContext) -> None:
    """A failed step of ``release_gate``, however the run was launched: the gates it stops are
    recorded as ``error`` naming the step (``record_stopped``), so the run still completes with a
    verdict (and its audit record). The step that records the last gate completes it, this hook
    included. A step ended by an interruption, or a blocking check that failed (its gate is
    recorded), records nothing here. ``phase8 gate`` runs the job without this hook on its own
    instance, and records each failed step's gates the same way when the run is over."""
    if ended_step(context.op_exception):
        return
    stopped = gates_stopped_by(context.step_key)
    if not stopped:
        return
    settings: Phase8Settings = context.resources.settings
    config = settings.load()
    run = context.instance.get_run_by_id(context.run_id)
    actor = actor_from(os.environ, run.tags if run is not None else {}, os_user=False)
    crash = exception_crash_text(context.op_exception)
    at = settings.evaluation_time(config)
    warehouse: Warehouse = context.resources.warehouse
    report, missing, reason = record_stopped(
        warehouse, config, at, context.run_id, context.step_key, stopped, crash, actor
    )
    if not missing:
        context.log.info(f"release gate {report['verdict']}: {', '.join(sorted(stopped))} not evaluated ({reason})")


def finding_line(finding: dict) -> str:
    """One finding in a sentence: subject, rule, observed vs limit, evidence, owner, runbook (and waiver)."""
    text = (
        f"{finding['subject']}: {finding['rule']}: {finding['observed']} (limit {finding['limit']}); "
        f"evidence {finding['evidence']}; owner {finding['owner']}; runbook {finding['runbook']}"
    )
    waiver = finding.get("details", {}).get("waiver")
    if finding["severity"] == "waived" and waiver:
        text += f"; waived by {waiver.get('owner')} ({waiver.get('ticket')}, expires {waiver.get('expires')})"
    return text


def gate_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([GATE_PREFIX, name])


def check_result(
    result: GateResult, context_metadata: dict | None = None, roots: list[str] = ()
) -> dg.AssetCheckResult:
    """The check's evaluation, explaining itself: status, summary, findings table (errors first; every
    finding's subject, rule, observed value, limit, evidence file, owner and runbook, paths relative to
    the evidence ``roots``; details in the JSON result), the release and root it judged, full result.

    Its outcome shows the gate's status in the UI: ``fail``/``error`` of a blocking gate is a failed
    ERROR check (it blocks), ``warn`` (and any finding of a warn-level gate) a failed WARN check,
    ``pass`` and ``skipped`` (with its reason in the description) a passed check."""
    spec = GATES[result.gate]
    findings = sorted(result.findings, key=lambda f: SEVERITY_ORDER.index(f.severity))
    rows = [
        [shown_path(getattr(f, c), list(roots)) if c in PATH_COLUMNS else getattr(f, c) for c in FINDING_COLUMNS]
        for f in findings
    ]
    metadata = {
        "status": dg.MetadataValue.text(result.status),
        "summary": dg.MetadataValue.text(result.summary),
        "errors": sum(f.severity == "error" for f in result.findings),
        "warnings": sum(f.severity == "warning" for f in result.findings),
        "waived": sum(f.severity == "waived" for f in result.findings),
        "findings": dg.MetadataValue.md(markdown_table(FINDING_COLUMNS, rows, empty="_no findings_")),
        **(context_metadata or {}),
        RESULT_KEY: dg.MetadataValue.json(result.as_dict()),
    }
    warns = not spec.blocking or result.status == "warn"
    return dg.AssetCheckResult(
        check_name=result.gate,
        asset_key=gate_key(result.gate),
        passed=result.status in ("pass", "skipped"),
        severity=dg.AssetCheckSeverity.WARN if warns else dg.AssetCheckSeverity.ERROR,
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
        pool=DUCKDB_POOL,
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
    def _gate(
        context: dg.AssetExecutionContext,
        settings: Phase8Settings,
        warehouse: Warehouse,
        evidence_files: EvidenceBatch,
        **inputs,
    ):
        config = settings.load()
        at = settings.evaluation_time(config)
        result = evaluate_gate(context, config, at, evidence_files, inputs)
        telemetry.count(
            "phase8.gate.evaluations",
            1,
            {"phase8.gate": name, "phase8.gate.status": result.status, "phase8.gate.blocking": spec.blocking},
            description="Gate evaluations by gate and status",
        )
        tags = run_tags(config)  # the root judged, over the default root's tag the job was launched with
        new_tags = {k: v for k, v in tags.items() if context.run.tags.get(k) != v}
        if new_tags:
            context.instance.add_run_tags(context.run.run_id, new_tags)
        gate = result.as_dict()
        report, missing = record_in_run(
            warehouse,
            context.run.run_id,
            [gate],
            config,
            at,
            "the gate has not reported yet",
            actor=actor_from(os.environ, context.run.tags, os_user=False),
        )
        folder = warehouse.reports_dir / report_folder(report)
        if not missing:
            write_gate_reports(folder, report)
            complete_scorecard(warehouse.reports_dir, config.root_uris, report)
            context.log.info(f"release gate {report['verdict']}: reports in {folder}")
        if spec.blocking and result.status in ("fail", "error"):
            emit_blocked(gate, context.run.run_id)
            errors = [f for f in gate["findings"] if f["severity"] == "error"] or [None]
            context.log.error(
                f"gate {name} {result.status}: {result.summary}\n"
                + "\n".join(f"  - {finding_line(f)}" for f in errors if f)
            )
        yield dg.MaterializeResult(metadata={"status": result.status, "summary": result.summary})
        yield check_result(
            result,
            {
                "release": dg.MetadataValue.text(
                    f"{tags['phase8/release.version']} (commit {tags['phase8/release.commit'][:12]})"
                ),
                "evidence_root": dg.MetadataValue.text(tags["phase8/evidence_root"]),
                "report": dg.MetadataValue.url(report_link(report))
                if report_link(report)
                else dg.MetadataValue.path(str(folder / "gate-report.html")),
            },
            config.root_uris,
        )

    def evaluate_gate(context, config: EvidenceConfig, at: datetime, batch: EvidenceBatch, inputs: dict) -> GateResult:
        try:
            return judge(spec, batch, config, at, evaluate, exception_states(batch, config, at), **inputs)
        except Exception as exc:  # the gate could not be evaluated: status `error`, still blocking
            context.log.error(traceback.format_exc())
            return errored(spec, f"{type(exc).__name__}: {exc}", config)

    _gate.__name__ = f"{name}_gate"
    return _gate
