"""The code location: assembles assets, jobs and resources; nothing is defined here."""

import gc

import dagster as dg

from phase8_assets.defs import (
    audit,
    drills,
    evidence,
    finops,
    governance,
    isolation,
    observability,
    perf,
    plugins,
    program,
    reports,
    slo,
    supportability,
    upgrade,
)
from phase8_assets.defs.jobs import release_gate
from phase8_assets.defs.resources import default_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [
            evidence,
            perf,
            slo,
            drills,
            upgrade,
            finops,
            governance,
            plugins,
            supportability,
            isolation,
            program,
            reports,
            audit,
        ]
    ),
    asset_checks=[finops.focus_conformance],
    jobs=[
        release_gate,
        drills.drill_cadence_job,
        reports.weekly_report_job,
        reports.ingest_evidence_job,
        finops.budget_job,
        finops.finops_dashboard_job,
        audit.audit_trail_job,
    ],
    schedules=[
        drills.drill_cadence_reminder,
        reports.weekly_report_schedule,
        finops.finops_dashboard_schedule,
        audit.audit_trail_schedule,
    ],
    sensors=[
        reports.new_evidence,
        finops.budget_alerts,
        observability.release_gate_trace,
        observability.run_failure_incident,
    ],
    resources=default_resources(),
)

# Everything imported and built above lives as long as the process (the code server, a CLI command).
# Moved out of the cyclic collector's reach, it is no longer walked by each full collection during
# runs nor at exit: a new process importing the code location takes 0.58 s instead of 0.75 s here,
# as long as `import dagster` alone (benchmarks/run_all.py).
gc.freeze()
