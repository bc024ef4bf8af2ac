"""Foundation assets: every evidence file read and recorded, and the two evidence gates."""

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.domains.evidence_quality import evidence_freshness, evidence_validity
from phase8_assets.evidence import prefetch
from phase8_assets.evidence.collect import collect
from phase8_assets.shared import telemetry
from phase8_assets.shared.clock import format_timestamp, now_utc
from phase8_assets.shared.reports import markdown_table
from phase8_assets.warehouse.store import record_batch

GROUP = "evidence"
OWNERS = ["team:platform-reliability"]


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Every evidence file the config names, read by its reader; recorded in evidence_files "
    "and evidence_rejections (one row per content, so re-runs add nothing).",
)
def evidence_files(context: dg.AssetExecutionContext, settings: Phase8Settings, warehouse: Warehouse) -> dg.Output:
    config = settings.load()
    batch, why = prefetch.take(settings.evidence, config)  # read while the run started (``phase8 gate``)
    read_by = "a process `phase8 gate` started with the run"
    if batch is None:
        read_by = f"this step ({why})" if why else "this step"
        if why:
            context.log.info(f"evidence read by this step: the read started with the run is not used ({why})")
        batch = collect(config)
    with warehouse.get_connection() as conn:
        new_rows = record_batch(conn, batch, now_utc())
    batch.set_aside_future(settings.evaluation_time(config), config.clock_skew)
    for rejection in batch.rejections:
        context.log.warning(f"rejected {rejection}")
    for kind in sorted({f.kind for f in batch.files} | {r.kind for r in batch.rejections}):
        for outcome, n in (("ingested", len(batch.files_of(kind))), ("rejected", len(batch.rejections_of(kind)))):
            if n:
                telemetry.count(
                    "phase8.evidence.files", n, {"phase8.evidence.kind": kind, "phase8.evidence.outcome": outcome},
                    description="Evidence files read, by kind and outcome",
                )  # fmt: skip
    kinds = sorted({f.kind for f in batch.files} | set(config.evidence))
    per_kind = [
        [
            kind,
            len(batch.files_of(kind)),
            len(batch.rejections_of(kind)),
            max((format_timestamp(f.observed_at) for f in batch.files_of(kind) if f.observed_at), default="—"),
        ]
        for kind in kinds
    ]
    return dg.Output(
        batch,
        metadata={
            "evidence_roots": dg.MetadataValue.json(batch.roots),
            "read_by": read_by,
            "files": len(batch.files),
            "rejections": len(batch.rejections),
            "future_dated": len(batch.future),
            "waivers": len(batch.waivers),
            "new_file_rows": new_rows["new_files"],
            "new_rejection_rows": new_rows["new_rejections"],
            "by_kind": dg.MetadataValue.md(
                markdown_table(["kind", "files", "rejected", "newest evidence time"], per_kind)
            ),
            "rejected": dg.MetadataValue.md(
                markdown_table(
                    ["file", "kind", "field", "reason"],
                    [[r.uri, r.kind, r.field, r.reason] for r in batch.rejections],
                    empty="_none_",
                )
            ),
        },
    )


evidence_validity_gate = gate_asset("evidence_validity", group=GROUP, owners=OWNERS, evaluate=evidence_validity)
evidence_freshness_gate = gate_asset("evidence_freshness", group=GROUP, owners=OWNERS, evaluate=evidence_freshness)
