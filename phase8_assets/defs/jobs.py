"""Jobs. ``release_gate`` is the one CI calls: ingest + every gate, in one process.

In-process because a gate run is small and serial (every warehouse step shares one pool) and a
multiprocess executor costs ~13 s of start-up per run on two cores.
"""

import dagster as dg

from phase8_assets.defs.gates import GATE_PREFIX

release_gate = dg.define_asset_job(
    "release_gate",
    # Quality checks of the ingest assets (Great Expectations costs seconds to import) run on their
    # own schedule, not in the gate: the gate's own checks are on the gate assets.
    selection=dg.AssetSelection.key_prefixes([GATE_PREFIX]).upstream()
    - dg.AssetSelection.checks_for_assets("cost_line_items"),
    executor_def=dg.in_process_executor,
    description="Ingest the evidence and evaluate every release gate; fails when the verdict is blocked.",
)

# The reports' weeks: Monday to Sunday, UTC (weekly_reliability_report, finops_dashboard).
WEEKS = dg.WeeklyPartitionsDefinition(start_date="2026-01-05", day_offset=1, timezone="UTC")
