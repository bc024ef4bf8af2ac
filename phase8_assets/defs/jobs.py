"""Jobs. ``release_gate`` is the one CI calls: ingest + every gate, in one process.

In-process because a gate run is small and serial (every warehouse step shares one pool) and a
multiprocess executor costs ~13 s of start-up per run on two cores.
"""

import dagster as dg

from phase8_assets.defs.gates import GATE_PREFIX, record_stopped_gates
from phase8_assets.defs.resources import default_evidence
from phase8_assets.domains.gate_report import root_id
from phase8_assets.evidence.roots import RootError, open_root


def default_root_tag() -> dict[str, str]:
    """``phase8/root_id`` of the code location's default evidence root, for runs submitted without
    it (the UI's launchpad, ``dagster job launch``): the queue's one run per root then holds for them
    at submission. ``phase8 gate`` gives each run its own root's tag; a run configured with another
    root is re-tagged when it starts (``gate_asset``)."""
    try:
        return {"phase8/root_id": root_id(open_root(default_evidence()[0]).uri)}
    except RootError:  # no such folder here: the run says so when it starts
        return {}


release_gate = dg.define_asset_job(
    "release_gate",
    # Quality checks of the ingest assets (Great Expectations costs seconds to import) run on their
    # own schedule, not in the gate: the gate's own checks are on the gate assets.
    selection=dg.AssetSelection.key_prefixes([GATE_PREFIX]).upstream()
    - dg.AssetSelection.checks_for_assets("cost_line_items"),
    executor_def=dg.in_process_executor,
    run_tags=default_root_tag(),
    # A failed step's gates are recorded as error at once, so a run launched from the UI or by
    # `dagster job execute` completes with a verdict too (a final step would never run).
    hooks={record_stopped_gates},
    description="Ingest the evidence and evaluate every release gate; fails when the verdict is blocked.",
)

# The reports' weeks: Monday to Sunday, UTC (weekly_reliability_report, finops_dashboard).
WEEKS = dg.WeeklyPartitionsDefinition(start_date="2026-01-05", day_offset=1, timezone="UTC")
