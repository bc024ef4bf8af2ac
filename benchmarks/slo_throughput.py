"""OTLP/JSON ingest and SLO evaluation throughput, and peak memory, by input size.

For each size (100 k and 1 M data points; 10 M with --huge) a fresh process writes OTLP/JSON lines
(the collector file exporter's shape: one export per line, 1,000 histogram points per export,
100 k points per file) to a temporary directory, streams them into DuckDB, evaluates an SLO
(burn rates over the SRE Workbook windows and the budget), deletes the files, and reports
points/s and peak RSS. Ingest streams, so peak memory must stay flat as the input grows.

    python benchmarks/slo_throughput.py [--huge]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

POINTS_PER_LINE = 1_000
POINTS_PER_FILE = 100_000
SLO = """apiVersion: openslo/v1
kind: SLO
metadata: {name: svc-0-availability}
spec:
  service: svc-0
  indicator:
    metadata: {name: e}
    spec:
      ratioMetric:
        bad: {metricSource: {type: otlp, spec: {metric: http.server.request.duration, filter: {service.name: svc-0, http.response.status_code: "~5.."}}}}
        total: {metricSource: {type: otlp, spec: {metric: http.server.request.duration, filter: {service.name: svc-0}}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""


def write_files(folder: Path, points: int, at: datetime) -> tuple[list[Path], int]:
    """Delta histograms: 10 services x 100 streams (routes x status codes) per export line."""
    lines_total = points // POINTS_PER_LINE
    files, size = [], 0
    step = timedelta(days=30) / lines_total
    for f in range(max(points // POINTS_PER_FILE, 1)):
        path = folder / f"metrics-{f:04d}.jsonl"
        with open(path, "w") as fh:
            for i in range(min(POINTS_PER_FILE, points) // POINTS_PER_LINE):
                n = f * (POINTS_PER_FILE // POINTS_PER_LINE) + i
                t = int((at - timedelta(days=30) + step * (n + 1)).timestamp() * 1e9)
                start = int(t - step.total_seconds() * 1e9)
                resource_metrics = []
                for svc in range(10):
                    data = []
                    for s in range(100):
                        code = 500 if s % 50 == 0 else 200
                        count = 1 + (n * 7 + s) % 40
                        data.append(
                            {"attributes": [{"key": "http.route", "value": {"stringValue": f"/r{s % 50}"}},
                                            {"key": "http.response.status_code", "value": {"intValue": str(code)}}],
                             "startTimeUnixNano": str(start), "timeUnixNano": str(t), "count": str(count),
                             "sum": count * 0.05, "bucketCounts": [str(count), "0", "0"], "explicitBounds": [0.1, 0.5]}
                        )  # fmt: skip
                    resource_metrics.append(
                        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"svc-{svc}"}}]},
                         "scopeMetrics": [{"metrics": [{"name": "http.server.request.duration", "unit": "s",
                                                        "histogram": {"aggregationTemporality": 1, "dataPoints": data}}]}]}
                    )  # fmt: skip
                line = json.dumps({"resourceMetrics": resource_metrics}, separators=(",", ":"))
                size += len(line) + 1
                fh.write(line + "\n")
        files.append(path)
    return files, size


def _spooled(path: Path, folder: Path) -> Path:
    """The product's path: the reader validates the file and spools its rows (parsed once)."""
    from phase8_assets.evidence import otlp_metrics

    folder.mkdir()
    return otlp_metrics.read(path, str(path), spool_dir=folder).spool


def child(points: int) -> None:
    from phase8_assets.domains.slo import REPORT_WINDOWS, evaluate, resolve, sli_events
    from phase8_assets.evidence import openslo
    from phase8_assets.warehouse import connect
    from phase8_assets.warehouse.store import record_otlp_file

    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        files, size = write_files(Path(tmp), points, at)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with connect(Path(tmp) / "warehouse.duckdb") as conn:
            t0 = time.perf_counter()
            stored = sum(
                record_otlp_file(conn, "/root", str(i), str(p), _spooled(p, Path(tmp) / f"spool{i}"), at)
                for i, p in enumerate(files)
            )
            t_ingest = time.perf_counter() - t0
            for p in files:
                p.unlink()  # the input is gone: what remains in memory is ours
            (slo,) = resolve(openslo.read(SLO.encode(), "slo.yaml").records)
            t1 = time.perf_counter()
            versions = [str(i) for i in range(len(files))]
            events = [sli_events(conn, ["/root"], sel, versions=versions) for sel in (slo.bad, slo.total)]
            status = evaluate(slo, *events, at, REPORT_WINDOWS)
            t_eval = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "points": stored,
                "mb": size / 1e6,
                "ingest_s": t_ingest,
                "eval_s": t_eval,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_before_ingest_mb": rss_before,
                "consumed": status.consumed,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--huge", action="store_true", help="also 10 M points (about 3 GB of JSON on disk)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    sizes = [100_000, 1_000_000] + ([10_000_000] if args.huge else [])
    print(f"{'points':>11} {'JSON MB':>8} {'ingest s':>9} {'points/s':>10} {'evaluate s':>11} {'peak RSS MB':>12}")
    results = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['points']:>11,} {r['mb']:>8.0f} {r['ingest_s']:>9.1f} {r['points'] / r['ingest_s']:>10,.0f} "
            f"{r['eval_s']:>11.2f} {r['rss_mb']:>12.0f}"
        )
    growth = results[-1]["rss_mb"] / results[0]["rss_mb"]
    print(f"peak RSS grew {growth:.2f}x for {results[-1]['points'] / results[0]['points']:.0f}x the input (streaming)")


if __name__ == "__main__":
    main()
