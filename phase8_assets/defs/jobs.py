"""Jobs. ``release_gate`` is the one CI calls: ingest + every gate, in one process.

In-process because a gate run is small and serial (every warehouse step shares one pool) and a
multiprocess executor costs ~13 s of start-up per run on two cores.
"""

import dagster as dg

from phase8_assets.defs.gates import GATE_PREFIX

release_gate = dg.define_asset_job(
    "release_gate",
    selection=dg.AssetSelection.key_prefixes([GATE_PREFIX]).upstream(),
    executor_def=dg.in_process_executor,
    description="Ingest the evidence and evaluate every release gate; fails when the verdict is blocked.",
)
