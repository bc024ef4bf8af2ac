"""Reports and automation: the weekly reliability report (weekly partitions, Monday 06:00 UTC for
the last complete week) and the sensor that ingests new evidence files as they appear."""

import hashlib
import json
import warnings
from datetime import UTC, datetime, timedelta

import dagster as dg

from phase8_assets.defs.drills import drill_journals
from phase8_assets.defs.evidence import evidence_files
from phase8_assets.defs.finops import cost_attribution, cost_line_items
from phase8_assets.defs.jobs import WEEKS
from phase8_assets.defs.perf import benchmark_runs
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.defs.scorecard import scorecard_folder
from phase8_assets.defs.slo import sli_series
from phase8_assets.domains.weekly import changes, drift_sections, sections, trend_figure
from phase8_assets.shared.reports import Section, render_markdown, write_html, write_text
from phase8_assets.warehouse import history

GROUP = "reports"
OWNERS = ["team:platform-reliability"]


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def drift_anchors(config) -> list[tuple]:
    """(Anchor, frozen_at, drift limit) of every benchmark a drift rule judges against the root's
    PerfBaseline: read from the root as it is now (the anchor is evidence, not history)."""
    from phase8_assets.evidence.collect import collect

    batch = collect(config, kinds={"perf_baselines", "perf_budgets"})
    budgets = [f.records[0] for f in batch.files_of("perf_budgets")]
    out = []
    for f in batch.files_of("perf_baselines"):
        baseline = f.records[0]
        for anchor in baseline.anchors.values():
            rule = budgets[0].rule_for(anchor.benchmark, anchor.measure, "drift") if budgets else None
            if rule and f.uri.endswith("/" + rule.drift.anchor):
                out.append((anchor, baseline.frozen_at, rule.drift.limit))
    return sorted(out, key=lambda a: a[0].key)


def write_week(
    conn, roots: list[str], folder, start: datetime, end: datetime, anchors: list[tuple] = ()
) -> tuple[str, str, int]:
    """One week's report files from history; returns (html path, markdown, number of changes).
    ``anchors`` (``drift_anchors``) add a drift chart per anchored benchmark, from its anchor to ``end``."""
    s, e = _naive(start), _naive(end)
    week = {
        "gate_runs": history.gate_runs(conn, roots, s, e),
        "benchmarks": history.benchmark_weeks(conn, roots, s, e),
        "change_points": history.change_points(conn, roots, s, e),
        "slos": history.slo_week(conn, roots, s, e),
        "drills": history.drill_week(conn, roots, s, e),
        "cost": history.cost_week(conn, roots, s, e),
        "cost_days": history.cost_days(conn, roots, s, e),
        "audit": history.audit_week(conn, roots, s, e),
    }
    title = f"Weekly reliability report: week of {start:%Y-%m-%d}"
    subtitle = f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (UTC), evidence roots: {', '.join(roots)}"
    parts = sections(week, start, end, trend_figure(history.benchmark_trend(conn, roots, e)))
    if anchors:
        since = min(_naive(frozen) for _, frozen, _ in anchors) - timedelta(weeks=8)
        rows = history.anchored_weeks(conn, roots, sorted({a.benchmark for a, _, _ in anchors}), since, e)
        parts += drift_sections(rows, list(anchors))
    scorecard = scorecard_folder(folder.parent, roots) / "scorecard.html"
    parts.append(Section("Program scorecard", f"Item by item (owner, gates, evidence age, cadence, coverage, trend): "
                         f"{scorecard} (Markdown: {scorecard.with_suffix('.md').name} beside it)."))  # fmt: skip
    html = write_html(folder / f"{start:%Y-%m-%d}.html", title, parts, subtitle)
    markdown = render_markdown(title, [p for p in parts if p.figure is None], subtitle)
    write_text(folder / f"{start:%Y-%m-%d}.md", markdown)
    return str(html), markdown, len(changes(week))


# BackfillPolicy is beta in Dagster 1.13; say so once here, not on every CLI start.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "html"},
    pool=DUCKDB_POOL,
    partitions_def=WEEKS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="One self-contained HTML report (plotly inline, works offline) and a Markdown summary per week, "
    "from the warehouse's history: benchmark trends and change points, SLO budgets, drills, gate verdicts, and "
    "what changed since the week before, and a drift chart per benchmark since its PerfBaseline anchor. A backfill "
    "of many weeks is one run.",
)
def weekly_reliability_report(
    context: dg.AssetExecutionContext, settings: Phase8Settings, warehouse: Warehouse
) -> dg.MaterializeResult:
    config = settings.load()
    folder = warehouse.reports_dir / "weekly"
    anchors = drift_anchors(config)
    written = []
    with warehouse.get_connection() as conn:
        for key in context.partition_keys:
            window = WEEKS.time_window_for_partition_key(key)
            written.append((key, *write_week(conn, config.root_uris, folder, window.start, window.end, anchors)))
    key, path, markdown, n = written[-1]
    return dg.MaterializeResult(
        metadata={
            "weeks": len(written),
            "report": dg.MetadataValue.path(path),
            "changes": n,
            "preview": dg.MetadataValue.md(markdown[:20_000]),
        }
    )


weekly_report_job = dg.define_asset_job(
    "weekly_report_job",
    selection=dg.AssetSelection.assets(weekly_reliability_report),
    executor_def=dg.in_process_executor,
    description="Write the weekly reliability report for one week (or a backfilled range, in one run).",
)

weekly_report_schedule = dg.build_schedule_from_partitioned_job(
    weekly_report_job,
    hour_of_day=6,
    name="weekly_report_schedule",
    description="Monday 06:00 UTC: the report of the last complete week (Monday to Sunday), so regressions, "
    "burned budgets and overdue drills reach people weekly without anyone running anything.",
)

ingest_evidence_job = dg.define_asset_job(
    "ingest_evidence_job",
    selection=dg.AssetSelection.assets(
        evidence_files, drill_journals, benchmark_runs, sli_series, cost_line_items, cost_attribution
    )
    - dg.AssetSelection.checks_for_assets(cost_line_items),  # Great Expectations: budget_job runs it
    executor_def=dg.in_process_executor,
    description="Read every evidence file and load the history tables, cost included (no gates).",
)


def evidence_versions(settings: Phase8Settings) -> dict[str, str]:
    """Every configured evidence file under the roots (local or S3) with its version (mtime or ETag)."""
    config = settings.load()
    found = {}
    for kind in config.evidence.values():
        for loc in kind.sources:
            for ref in loc.base.glob(loc.path):
                found[ref.uri] = ref.version
    return found


@dg.sensor(
    job=ingest_evidence_job,
    minimum_interval_seconds=120,
    description="Every 2 minutes: a new or changed evidence file starts one ingest run.",
)
def new_evidence(context: dg.SensorEvaluationContext, settings: Phase8Settings):
    """Ingest evidence as it lands.

    CI jobs, drills and billing exports drop files under the evidence root at any time; history
    (benchmark trends, SLO series, drill runs) should not wait for the next release gate. The cursor
    holds every file's version, so each new, changed or removed file (history marks a removed one as
    no longer counting) triggers one run, once. The run key counts the runs requested: the same
    versions coming back (an S3 object re-uploaded after a revert: its ETag is its content's) are a
    new run, not one the instance already had."""
    state = json.loads(context.cursor) if context.cursor else {}
    seen, requests = (state["files"], state["requests"]) if "files" in state else (state, 0)  # or the older form
    now = evidence_versions(settings)
    new = sorted(uri for uri, version in now.items() if seen.get(uri) != version)
    gone = sorted(set(seen) - set(now))
    if not new and not gone:
        return dg.SkipReason(f"no new evidence among {len(now)} file(s)")
    change = hashlib.sha256(json.dumps([[[u, now[u]] for u in new], gone]).encode()).hexdigest()[:24]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{change}-{requests + 1}",
                tags={"phase8/new_files": str(len(new)), "phase8/removed_files": str(len(gone))},
            )
        ],
        cursor=json.dumps({"files": now, "requests": requests + 1}, sort_keys=True),
    )
