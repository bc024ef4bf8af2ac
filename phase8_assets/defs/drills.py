"""Stream B, resilience: chaos drill runs, each catalogued drill's standing, cadence reminders,
per-run evidence reports, and the ``drill_evidence`` gate."""

import os
from collections import Counter
from datetime import timedelta
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.domains.drills import (
    DrillAssessment,
    assess,
    cadence_rows,
    findings,
    run_report,
    seen_runs,
)
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.shared import telemetry
from phase8_assets.shared.audit_events import AuditEvent, actor_from
from phase8_assets.shared.clock import format_timestamp, now_utc
from phase8_assets.shared.reports import markdown_table, render_markdown, slug, write_html, write_text
from phase8_assets.warehouse import audit
from phase8_assets.warehouse.store import record_drill_runs, record_reminders

GROUP = "resilience"
OWNERS = ["team:sre"]
OVERDUE_EVENT = "phase8.drill.overdue"


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Drill runs from Chaos Toolkit journals and LitmusChaos ChaosResults, normalised (one row per "
    "run, one per activity and probe), redacted, stored in drill_runs / drill_activities.",
)
def drill_journals(evidence_files: EvidenceBatch, warehouse: Warehouse) -> dg.Output:
    runs = seen_runs(evidence_files)
    with warehouse.get_connection() as conn:
        new_runs = record_drill_runs(conn, runs, now_utc())
    outcomes = Counter(s.run.outcome for s in runs)
    return dg.Output(
        runs,
        metadata={
            "runs": len(runs),
            "new_run_rows": new_runs,
            "activities": sum(len(s.run.activities) for s in runs),
            "by_outcome": dg.MetadataValue.md(markdown_table(["outcome", "runs"], sorted(outcomes.items()))),
        },
    )


def _assessment_table(assessment: DrillAssessment) -> str:
    rows = [
        [
            st.drill.id,
            st.drill.owner,
            st.last.label if st.last else "never",
            f"{st.last.run.recovery_s:g} s" if st.last and st.last.run.recovery_s is not None else "—",
            st.drill.recovery_objective_text or "—",
            st.state,
            format_timestamp(st.due_at) if st.due_at else "—",
            st.runbook.state,
            st.last.file.uri if st.last else "—",
        ]
        for st in assessment.drills
    ]
    headers = ["drill", "owner", "last run", "recovery", "objective", "cadence", "due", "runbook", "evidence"]
    return markdown_table(headers, rows, empty="_no catalogued drills_")


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    deps=[drill_journals],
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=35), warn_window=timedelta(days=28)),
    description="Per catalogued drill: last run, outcome, recovery time measured from the journal, deviation, "
    "cadence standing and runbook, at the evaluation time. Must be refreshed at least monthly (the cadence).",
)
def drill_evidence(settings: Phase8Settings, evidence_files: EvidenceBatch) -> dg.Output:
    config = settings.load()
    assessment = assess(evidence_files, config, settings.evaluation_time(config))
    states = Counter(st.state for st in assessment.drills)
    return dg.Output(
        assessment,
        metadata={
            "evaluated_at": format_timestamp(assessment.at),
            "drills": len(assessment.drills),
            "runs": len(assessment.runs),
            "unmatched_runs": len(assessment.unmatched),
            "catalogs": dg.MetadataValue.json(assessment.catalogs),
            **{f"drills_{state.replace('-', '_')}": n for state, n in sorted(states.items())},
            "standing": dg.MetadataValue.md(_assessment_table(assessment)),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Due / overdue / never-run per drill. Records each overdue drill once per due date in "
    "drill_reminders and emits a `phase8.drill.overdue` OpenTelemetry event for each new one.",
)
def drill_cadence(
    context: dg.AssetExecutionContext, settings: Phase8Settings, warehouse: Warehouse, drill_evidence: DrillAssessment
) -> dg.Output:
    rows = cadence_rows(drill_evidence)
    overdue = [r for r in rows if r["state"] in ("overdue", "never-run")]
    root = settings.load().root_uris[0]
    with warehouse.get_connection() as conn:
        new = record_reminders(conn, root, overdue, drill_evidence.at)
        actor = actor_from(os.environ, context.run.tags, os_user=False)
        audited = audit.record(conn, [
            AuditEvent("drill.overdue", f"drill {r['drill']}", r["state"], actor, now_utc(),
                       f"due {r['due']}; owner {r['owner']}", details={"root": root})
            for r in new
        ], Path(warehouse.database).parent) if new else []  # fmt: skip
    audit.emit(audited)
    for reminder in new:
        message = f"drill {reminder['drill']} is {reminder['state']} (due {reminder['due']}); owner {reminder['owner']}"
        context.log.warning(message)
        telemetry.emit_event(
            OVERDUE_EVENT,
            {
                "phase8.drill.id": reminder["drill"],
                "phase8.drill.state": reminder["state"],
                "phase8.drill.due": reminder["due"],
                "phase8.drill.owner": reminder["owner"],
                "phase8.evidence.root": root,
            },
            body=message,
        )
    telemetry.flush()
    headers = ["drill", "owner", "cadence", "state", "last_run", "due", "overdue_by", "runbook"]
    return dg.Output(
        rows,
        metadata={
            "overdue": len(overdue),
            "new_reminders": len(new),
            "cadence": dg.MetadataValue.md(
                markdown_table(headers, [[r[h] for h in headers] for r in rows], empty="_no drills_")
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"html"},
    description="One HTML evidence report per drill run (hypothesis before/after, method, rollbacks, timings) "
    "under reports/drills/, and an index; readable without the journal.",
)
def drill_run_reports(warehouse: Warehouse, drill_evidence: DrillAssessment):
    folder = warehouse.reports_dir / "drills"
    index = []
    for seen in drill_evidence.runs:
        drill = drill_evidence.drill_of(seen)
        title, sections = run_report(seen, drill)
        when = f"{seen.at:%Y-%m-%d}" if seen.at else "undated"
        name = f"{drill.id if drill else 'unmatched'}/{when}-{slug(seen.run.title)[:40]}-{seen.file.sha256[:8]}"
        path = write_html(folder / f"{name}.html", title, sections, subtitle=seen.file.uri)
        index.append([drill.id if drill else "(unmatched)", when, seen.run.outcome, f"[{name}.html]({path.as_uri()})"])
    index.sort()
    md = (
        render_markdown("Drill runs", [], f"{len(index)} run(s)")
        + "\n"
        + markdown_table(["drill", "date", "outcome", "report"], index)
    )
    write_text(folder / "index.md", md + "\n")
    return dg.MaterializeResult(
        metadata={
            "reports": len(index),
            "folder": dg.MetadataValue.path(str(folder)),
            "index": dg.MetadataValue.md(md),
        }
    )


def drill_gate(batch: EvidenceBatch, config, at, drill_evidence: DrillAssessment):
    gate = "drill_evidence"
    found = findings(drill_evidence, config.owner_for(gate), config.runbook_for(gate))
    ok = sum(1 for st in drill_evidence.drills if st.state in ("current", "due-soon"))
    return (
        found,
        f"{ok} of {len(drill_evidence.drills)} drill(s) inside their cadence, {len(drill_evidence.runs)} run(s) read",
    )


drill_evidence_gate = gate_asset(
    "drill_evidence",
    group=GROUP,
    owners=OWNERS,
    evaluate=drill_gate,
    ins={"drill_evidence": dg.AssetIn("drill_evidence")},
)

drill_cadence_job = dg.define_asset_job(
    "drill_cadence_job",
    selection=dg.AssetSelection.assets(drill_cadence, drill_run_reports).upstream(),
    executor_def=dg.in_process_executor,
    description="Re-read the drill evidence, record overdue drills (once per due date) and write the run reports.",
)


@dg.schedule(
    job=drill_cadence_job,
    cron_schedule="0 7 1 * *",
    execution_timezone="UTC",
    description="1st of the month, 07:00 UTC: every overdue drill recorded once per due date and announced.",
)
def drill_cadence_reminder(context: dg.ScheduleEvaluationContext, settings: Phase8Settings) -> dg.RunRequest:
    """Monthly drill reminder.

    Phase 8 commits to a monthly fault-injection cadence; a drill that slips is noticed on the
    1st of the month, not at the next release. The run evaluates cadence at the tick's time
    (not the config's pinned time), and the reminder for a drill and due date is recorded and
    emitted once, however many ticks or re-runs see it.
    """
    at = format_timestamp(context.scheduled_execution_time)
    return dg.RunRequest(
        run_key=at,
        run_config={"resources": {"settings": {"config": {"evidence": list(settings.evidence), "as_of": at}}}},
        tags={"phase8/as_of": at},
    )
