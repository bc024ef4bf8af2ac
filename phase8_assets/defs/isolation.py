"""Stream D, tenancy isolation: isolation test results (history), the coverage of the isolation matrix
with its heat map, and the ``tenancy_isolation`` gate."""

from collections import Counter

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.domains.isolation import (
    GATE,
    MATRIX_KIND,
    RESULTS_KIND,
    Coverage,
    assess,
    findings,
    heatmap,
    latest_results,
    summary,
    tenant_view,
)
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.shared.clock import format_duration, format_timestamp, now_utc
from phase8_assets.shared.reports import Section, markdown_table, render_markdown, slug, write_html, write_text
from phase8_assets.warehouse.store import record_isolation_results

GROUP = "isolation"
OWNERS = ["team:tenancy"]


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Tenancy-isolation test results from JUnit XML (pytest, Surefire, jest-junit): one row per test "
    "with its dimension, resource, tenants and outcome (retries folded in, flaky passes kept), stored in "
    "isolation_results.",
)
def isolation_results(evidence_files: EvidenceBatch, warehouse: Warehouse) -> dg.Output:
    files = evidence_files.files_of(RESULTS_KIND)
    with warehouse.get_connection() as conn:
        new_rows = record_isolation_results(conn, files, now_utc())
    results = latest_results(files)
    outcomes = Counter(r.outcome for r in results)
    return dg.Output(
        results,
        metadata={
            "tests": len(results),
            "files": len(files),
            "new_result_rows": new_rows,
            "by_outcome": dg.MetadataValue.md(markdown_table(["outcome", "tests"], sorted(outcomes.items()))),
        },
    )


def _cell_rows(coverage: Coverage) -> list[list]:
    return [
        [
            s.cell.resource,
            s.cell.dimension,
            s.state,
            s.newest.outcome if s.newest else "—",
            format_duration(s.age) if s.age is not None else "—",
            s.cell.max_age_text,
            len(s.results),
            s.newest.uri if s.newest else "—",
        ]
        for s in coverage.cells
    ]


CELL_HEADERS = ["resource", "dimension", "state", "latest", "age", "max age", "tests", "evidence"]


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"html", "python"},
    deps=[isolation_results],
    description="Per (resource × dimension) cell of the isolation matrix: the latest result and its age at the "
    "evaluation time, a heat map (reports/isolation/coverage.html) and each tenant's own results "
    "(reports/isolation/tenants/<tenant>.md).",
)
def isolation_coverage(settings: Phase8Settings, warehouse: Warehouse, evidence_files: EvidenceBatch) -> dg.Output:
    config = settings.load()
    coverage = assess(evidence_files, settings.evaluation_time(config))
    states = Counter(s.state for s in coverage.cells)
    text = summary(coverage) + f", evaluated at {format_timestamp(coverage.at)}"
    sections = [
        Section("Coverage", text, figure=heatmap(coverage) if coverage.cells else None),
        Section("Cells", table=(CELL_HEADERS, _cell_rows(coverage))),
    ]
    path = write_html(warehouse.reports_dir / "isolation" / "coverage.html", "Tenancy isolation coverage", sections,
                      subtitle=coverage.matrix_uri or "no isolation matrix")  # fmt: skip
    markdown = render_markdown("Tenancy isolation coverage", [Section("Cells", table=(CELL_HEADERS, _cell_rows(coverage)))], text)  # fmt: skip
    write_text(path.with_suffix(".md"), markdown + "\n")
    for tenant in config.tenants:  # what a tenant may be shown: the tests that involved it, no other
        rows = [[r.resource, r.dimension, r.test, ", ".join(r.tenants), r.outcome,
                 format_timestamp(r.run_at) if r.run_at else "—"] for r in tenant_view(coverage, tenant)]  # fmt: skip
        table = markdown_table(["resource", "dimension", "test", "tenants", "outcome", "run at"], rows, empty="_none_")
        write_text(path.parent / "tenants" / f"{slug(tenant)}.md", f"# Isolation results of {tenant}\n\n{table}\n")
    return dg.Output(
        coverage,
        metadata={
            "evaluated_at": format_timestamp(coverage.at),
            "cells": len(coverage.cells),
            **{f"cells_{state.replace('-', '_')}": n for state, n in sorted(states.items())},
            "report": dg.MetadataValue.path(str(path)),
            "coverage": dg.MetadataValue.md(markdown_table(CELL_HEADERS, _cell_rows(coverage), empty="_no matrix_")),
        },
    )


def isolation_gate(batch: EvidenceBatch, config, at, isolation_coverage: Coverage):
    expected = {kind: config.paths_of(kind) for kind in (RESULTS_KIND, MATRIX_KIND)}
    found = findings(
        isolation_coverage, batch, config.owner_for(GATE, RESULTS_KIND), config.runbook_for(GATE), expected
    )
    return found, summary(isolation_coverage)


tenancy_isolation_gate = gate_asset(
    GATE, group=GROUP, owners=OWNERS, evaluate=isolation_gate,
    ins={"isolation_coverage": dg.AssetIn("isolation_coverage")},
)  # fmt: skip
