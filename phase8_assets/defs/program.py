"""The Phase 8 program: per item its owner, gates, evidence ages, cadence and coverage (the
``phase8_program`` asset and its scorecard), and the ``program_completeness`` gate.

The gate is decided from the config and the evidence only. What a persistent Dagster instance knows
(whether each item's schedules and sensors are on and ticked within their period) is shown in the
asset's metadata, never used by the gate: CI's ephemeral in-process runs must decide the same."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.defs.scorecard import save_card, scorecard_folder, write_scorecard
from phase8_assets.domains.program import (
    GATE,
    HEADERS,
    Program,
    assess,
    coverage,
    findings,
    latest_statuses,
    rows,
    scorecard_data,
)
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import markdown_table
from phase8_assets.warehouse import history

GROUP = "program"
OWNERS = ["team:platform-reliability"]
TREND_WEEKS = 12

# The schedules and sensors that keep each item's cadence, and how often each should tick.
AUTOMATION = {
    "performance": {"weekly_report_schedule": timedelta(days=7), "new_evidence": timedelta(hours=1)},
    "chaos_drills": {"drill_cadence_reminder": timedelta(days=31)},
    "finops": {"finops_dashboard_schedule": timedelta(days=7), "budget_alerts": timedelta(hours=2)},
    "supportability": {"run_failure_incident": timedelta(hours=1)},
}


def automation_rows(instance: dg.DagsterInstance, now: datetime) -> list[list]:
    """Each item's schedules and sensors: on or off, last tick, ticked within its period."""
    states = {s.instigator_name: s for s in instance.all_instigator_state()}
    out = []
    for item, instigators in AUTOMATION.items():
        for name, period in instigators.items():
            state = states.get(name)
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1) if state else []
            last = datetime.fromtimestamp(ticks[0].timestamp, UTC) if ticks else None
            within = "yes" if last and now - last <= period else "no"
            out.append(
                [
                    item,
                    name,
                    "on" if state and state.is_running else "off",
                    format_timestamp(last) if last else "never",
                    f"{within} ({period})",
                ]
            )
    return out


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "html", "python"},
    pool=DUCKDB_POOL,
    description="The Phase 8 program, item by item: owner and family, the gates covering it and their latest "
    "status, its evidence's newest age vs maximum age, its declared cadence and whether the evidence shows it "
    "kept, its coverage in the platform's terms; a one-page scorecard (reports/program/<root-id>/scorecard.html "
    "and .md) with a trend over the weekly history.",
)
def phase8_program(
    context: dg.AssetExecutionContext, settings: Phase8Settings, warehouse: Warehouse, evidence_files: EvidenceBatch
) -> dg.Output:
    config = settings.load()
    at = settings.evaluation_time(config)
    program = assess(evidence_files, config, at)
    coverage(program, evidence_files, config)
    roots = config.root_uris[:1]
    end = (at + timedelta(days=7 - at.weekday())).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    with warehouse.get_connection() as conn:
        recorded = history.gate_statuses(conn, roots, end - timedelta(weeks=TREND_WEEKS), end)
    found, summary = findings(program, config)
    run_id = context.run.run_id
    card = scorecard_data(
        program, found, summary, recorded, run_id=run_id, release=config.release, root=roots[0], weeks=TREND_WEEKS
    )
    folder = scorecard_folder(warehouse.reports_dir, roots)
    html, md = write_scorecard(folder, card)
    save_card(folder, card)  # last: a run whose scorecard was not written is never stamped as having one
    table = rows(card["items"], latest_statuses([r for r in recorded if r[1] != run_id]))
    metadata = {
        "evaluated_at": format_timestamp(at),
        "items_covered": sum(s.covered for s in program.items),
        "cadences_kept": sum(s.cadence_state == "kept" for s in program.items),
        "program_declared": program.declared,
        "scorecard": dg.MetadataValue.path(str(html)),
        "scorecard_markdown": dg.MetadataValue.path(str(md)),
        "items": dg.MetadataValue.md(markdown_table(HEADERS, table)),
    }
    if not context.instance.is_ephemeral:  # the UI or the daemon: information, never part of the gate
        metadata["automation"] = dg.MetadataValue.md(
            markdown_table(
                ["item", "schedule or sensor", "state", "last tick", "ticked within its period"],
                automation_rows(context.instance, datetime.now(UTC)),
                empty="_none_",
            )
        )
    return dg.Output(program, metadata=metadata)


def program_gate(batch: EvidenceBatch, config, at, phase8_program: Program):
    return findings(phase8_program, config)


program_completeness_gate = gate_asset(
    GATE, group=GROUP, owners=OWNERS, evaluate=program_gate, ins={"phase8_program": dg.AssetIn("phase8_program")}
)
