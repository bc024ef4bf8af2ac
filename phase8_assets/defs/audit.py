"""The audit trail as an asset: one daily partition per UTC day, written as OCSF JSON Lines for
archive or SIEM, with a check that the whole chain still verifies."""

from collections import Counter
from pathlib import Path

import dagster as dg

from phase8_assets.defs.resources import DUCKDB_POOL, Warehouse
from phase8_assets.shared.reports import write_text
from phase8_assets.warehouse import audit

GROUP = "reports"
OWNERS = ["team:security"]
DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "json"},
    pool=DUCKDB_POOL,
    partitions_def=DAYS,
    description="The day's audit records (who waived what, exceptions, gates switched off, plugins refused, "
    "warehouse operations...) as OCSF 1.5.0 JSON Lines under $PHASE8_HOME/audit/, and whether the hash chain of "
    "the whole trail verifies.",
    check_specs=[
        dg.AssetCheckSpec(
            "audit_chain_intact",
            asset="audit_trail",
            description="No audit record was edited, deleted or re-ordered (phase8 audit verify).",
        )
    ],
)
def audit_trail(context: dg.AssetExecutionContext, warehouse: Warehouse):
    window = DAYS.time_window_for_partition_key(context.partition_key)
    with warehouse.get_connection() as conn:
        result = audit.verify(conn, Path(warehouse.database).parent)
        day = [r for r in audit.rows(conn, window.start) if r["occurred_at"] < audit.timestamp(window.end)]
    path = write_text(
        warehouse.reports_dir.parent / "audit" / f"{context.partition_key}.ocsf.jsonl",
        "".join(audit.canonical(r["record"]) + "\n" for r in day),
    )
    kinds = Counter(r["event_type"] for r in day)
    yield dg.MaterializeResult(
        metadata={
            "records": len(day),
            "file": dg.MetadataValue.path(str(path)),
            "by_type": dg.MetadataValue.json(dict(sorted(kinds.items()))),
            "actors": dg.MetadataValue.json(sorted({f"{r['actor']} ({r['actor_source']})" for r in day})),
        }
    )
    yield dg.AssetCheckResult(
        check_name="audit_chain_intact",
        passed=result.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        description="intact" if result.ok else result.problem,
        metadata={"checked": result.checked, "first_bad": result.first_bad or 0},
    )


audit_trail_job = dg.define_asset_job(
    "audit_trail_job",
    selection=dg.AssetSelection.assets(audit_trail),
    executor_def=dg.in_process_executor,
    description="Write one day of the audit trail as OCSF JSON Lines and verify the chain.",
)

audit_trail_schedule = dg.build_schedule_from_partitioned_job(
    audit_trail_job,
    hour_of_day=1,
    name="audit_trail_schedule",
    description="01:00 UTC: the previous day's audit records leave the warehouse for archive, and a broken chain "
    "shows up within a day.",
)
