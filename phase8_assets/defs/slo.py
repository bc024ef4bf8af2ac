"""Stream A, reliability: OpenSLO definitions, OTLP metrics into DuckDB, burn rates per SLO and
window, error budgets, Prometheus rules, and the ``slo_burn_rate`` and ``error_budget`` gates."""

import tempfile
from collections import Counter
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.domains.slo import (
    REPORT_WINDOWS,
    SloDef,
    SloStatus,
    UnmatchedSelector,
    resolve,
    sli_status,
)
from phase8_assets.domains.slo_findings import budget_findings, burn_findings
from phase8_assets.domains.slo_rules import prometheus_rules
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.collect import EvidenceBatch, spool_of
from phase8_assets.shared import telemetry
from phase8_assets.shared.clock import format_duration, format_timestamp, now_utc
from phase8_assets.shared.reports import markdown_table, write_text
from phase8_assets.warehouse.store import record_otlp_files, record_slo_snapshots

GROUP = "reliability"
OWNERS = ["team:sre"]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _burn(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="OpenSLO SLOs with their SLIs (OTLP selectors) and alert policies resolved; the default policy "
    "is the SRE Workbook's multiwindow, multi-burn-rate one, scaled to each SLO's window.",
)
def slo_definitions(evidence_files: EvidenceBatch) -> dg.Output:
    records = [r for f in evidence_files.files_of("slo_definitions") for r in f.records]
    slos = resolve(records)
    rows = [
        [s.name, s.service, f"{s.target:.4%}", s.window_text + (" rolling" if s.rolling else " calendar"), s.budgeting,
         ", ".join(f"{c.severity} {c.factor:g}x {format_duration(c.long)}/{format_duration(c.short)}" for c in s.conditions),
         s.problem or "ok"]
        for s in slos
    ]  # fmt: skip
    return dg.Output(
        slos,
        metadata={
            "slos": len(slos),
            "not_evaluable": sum(1 for s in slos if s.problem),
            "definitions": dg.MetadataValue.md(
                markdown_table(
                    ["slo", "service", "target", "window", "budgeting", "conditions", "status"], rows, empty="_none_"
                )
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="OTLP/JSON metric files into DuckDB (otel_points), one row per data point, each file once: the points "
    "the collector parsed (a Parquet spool) loaded as they are.",
)
def sli_series(context: dg.AssetExecutionContext, evidence_files: EvidenceBatch, warehouse: Warehouse):
    files = evidence_files.files_of("otel_metrics")
    with tempfile.TemporaryDirectory() as tmp, warehouse.get_connection() as conn:
        spooled = []
        for f in files:
            try:
                spooled.append((f.root, f.version, f.uri, spool_of(f, Path(tmp))))
            except EvidenceError as exc:  # validated when collected; changed since?
                context.log.warning(f"{f.uri}: {exc}")
        stored = record_otlp_files(conn, spooled, now_utc())
        new_files, new_points = len(stored), sum(stored.values())
        total = conn.execute(
            "SELECT count(*), count(DISTINCT metric), min(time_ns), max(time_ns) FROM otel_points "
            "WHERE root IN (SELECT unnest(?))",
            [sorted({f.root for f in files})],
        ).fetchone()
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            "new_files": new_files,
            "new_points": new_points,
            "points": total[0],
            "metrics": total[1],
        }
    )


def _status(slo: SloDef, conn, roots: list[str], versions: list[str], at) -> SloStatus:
    return sli_status(conn, roots, slo, at, REPORT_WINDOWS, versions=versions)


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    deps=[sli_series],
    description="Per SLO and window (5m to 3d): events, error ratio and burn rate at the evaluation time, and which "
    "alert conditions (page / ticket) are active.",
)
def slo_burn_rates(
    settings: Phase8Settings, warehouse: Warehouse, evidence_files: EvidenceBatch, slo_definitions: list[SloDef]
) -> dg.Output:
    config = settings.load()
    at = settings.evaluation_time(config)
    roots = sorted({f.root for f in evidence_files.files_of("otel_metrics")})
    versions = sorted({f.version for f in evidence_files.files_of("otel_metrics")})
    statuses, problems, unmatched = [], {}, {}
    with warehouse.get_connection() as conn:
        for slo in slo_definitions:
            if slo.problem:
                continue
            try:
                statuses.append(_status(slo, conn, roots, versions, at))
            except UnmatchedSelector as exc:
                unmatched[slo.name] = exc.as_dict()
            except EvidenceError as exc:
                problems[slo.name] = f"{exc.field}: {exc.reason}"
        snapshots = [
            (st.slo.name, st.slo.service, st.slo.target, st.remaining,
             sum(a.active and a.condition.severity == "page" for a in st.alerts),
             sum(a.active and a.condition.severity == "ticket" for a in st.alerts))
            for st in statuses
        ]  # fmt: skip
        record_slo_snapshots(conn, config.root_uris[0], snapshots, at)
    for st in statuses:  # the key figures, as gauges
        attrs = {"phase8.slo": st.slo.name, "service.name": st.slo.service}
        for w in st.windows:
            if w.burn(st.slo.target) is not None:
                telemetry.gauge("phase8.slo.burn_rate", w.burn(st.slo.target),
                                {**attrs, "phase8.window": format_duration(w.window)}, description="Burn rate")  # fmt: skip
        if st.remaining is not None:
            telemetry.gauge("phase8.slo.budget_remaining", st.remaining, attrs, description="Error budget left (ratio)")
    rows = [
        [st.slo.name, format_duration(w.window), f"{w.total:,.0f}", _pct(w.ratio), _burn(w.burn(st.slo.target))]
        for st in statuses
        for w in st.windows
    ]
    alerts = [
        [st.slo.name, a.condition.name, a.condition.severity, f"{a.condition.factor:g}",
         _burn(a.long.burn(st.slo.target)), _burn(a.short.burn(st.slo.target)),
         "insufficient data" if a.insufficient else ("ACTIVE" if a.active else "-")]
        for st in statuses
        for a in st.alerts
    ]  # fmt: skip
    active = Counter(a.condition.severity for st in statuses for a in st.alerts if a.active)
    return dg.Output(
        {"statuses": statuses, "problems": problems, "unmatched": unmatched},
        metadata={
            "evaluated_at": format_timestamp(at),
            "slos": len(statuses),
            "page_alerts": active.get("page", 0),
            "ticket_alerts": active.get("ticket", 0),
            "burn_rates": dg.MetadataValue.md(markdown_table(["slo", "window", "events", "error ratio", "burn"], rows)),
            "alerts": dg.MetadataValue.md(
                markdown_table(["slo", "condition", "severity", "factor", "long burn", "short burn", "state"], alerts)
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Error budget per SLO over its window (rolling, or the calendar period containing the evaluation "
    "time): consumed and remaining, against the release policy's minimum, and how much of the window the data covers.",
)
def error_budgets(slo_burn_rates: dict) -> dg.Output:
    rows = [
        [st.slo.name, format_timestamp(st.budget_start), f"{st.budget_total:,.0f}", f"{st.budget_bad:,.0f}",
         _pct(st.consumed), _pct(st.remaining), _pct(st.slo.min_budget_remaining), _pct(st.budget_coverage)]
        for st in slo_burn_rates["statuses"]
    ]  # fmt: skip
    return dg.Output(
        [(st.slo.name, st.consumed, st.remaining) for st in slo_burn_rates["statuses"]],
        metadata={
            "budgets": dg.MetadataValue.md(
                markdown_table(
                    ["slo", "since", "events", "bad", "consumed", "remaining", "minimum", "window covered"],
                    rows,
                    empty="_none_",
                )
            )
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"prometheus"},
    description="Prometheus recording and alerting rules for every SLO (the same multiwindow burn-rate alerts), "
    "for teams that also run Prometheus; `phase8 slo-rules` writes them to infra/monitoring/.",
)
def slo_prometheus_rules(warehouse: Warehouse, slo_definitions: list[SloDef]) -> dg.MaterializeResult:
    text = prometheus_rules(slo_definitions)
    path = write_text(warehouse.reports_dir / "slo-rules.yaml", text)
    return dg.MaterializeResult(
        metadata={
            "rules_file": dg.MetadataValue.path(str(path)),
            "groups": text.count("- name: "),
            "alerts": text.count("- alert: "),
        }
    )


def burn_gate(batch, config, at, slo_definitions: list[SloDef], slo_burn_rates: dict):
    found = burn_findings(slo_definitions, slo_burn_rates, config, at, "slo_burn_rate")
    pages = sum(
        1 for st in slo_burn_rates["statuses"] for a in st.alerts if a.active and a.condition.severity == "page"
    )
    return found, f"{len(slo_burn_rates['statuses'])} SLO(s) evaluated, {pages} page-level alert(s) active"


def budget_gate(batch, config, at, slo_definitions: list[SloDef], slo_burn_rates: dict):
    found = budget_findings(slo_definitions, slo_burn_rates, config, "error_budget")
    failed = {f.subject for f in found if f.severity == "error"}  # e.g. its data stopped (sli-max-age)
    ok = sum(
        1
        for st in slo_burn_rates["statuses"]
        if st.remaining is not None
        and st.remaining >= st.slo.min_budget_remaining
        and st.budget_coverage >= st.slo.min_window_coverage
        and st.slo.name not in failed
    )
    return found, f"{ok} of {len(slo_definitions)} SLO(s) within their error budget"


_ins = {"slo_definitions": dg.AssetIn("slo_definitions"), "slo_burn_rates": dg.AssetIn("slo_burn_rates")}
slo_burn_rate_gate = gate_asset("slo_burn_rate", group=GROUP, owners=OWNERS, evaluate=burn_gate, ins=_ins)
error_budget_gate = gate_asset("error_budget", group=GROUP, owners=OWNERS, evaluate=budget_gate, ins=_ins)
