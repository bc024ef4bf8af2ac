"""Ingest + gate decision for many benchmarks (default 1,000 benchmarks x 200 runs).

Writes pytest-benchmark JSON files (one per run, 1,000 benchmarks each, 5 raw samples per
benchmark) to a temporary evidence root, then times, separately:

1. ingest: read every file through the reader (the collector's thread pool) and load the long
   tables in DuckDB (Arrow, no row-by-row inserts);
2. change points over the full history of every series;
3. the gate decision: history from DuckDB, baselines, tests with samples, Benjamini-Hochberg,
   absolute budgets.

Target: ingest + decision well under a minute on 2 cores. Prints peak RSS too.

    python benchmarks/perf_scale.py [--benchmarks 1000] [--runs 200]
"""

import argparse
import json
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from phase8_assets.domains.perf import (
    check_budgets,
    judge_regressions,
    select_baselines,
    series_change_points,
    series_from_history,
)
from phase8_assets.evidence import readers
from phase8_assets.evidence.collect import collect
from phase8_assets.evidence.config import load_config
from phase8_assets.warehouse import connect
from phase8_assets.warehouse.store import bench_history, bench_samples, record_benchmarks

CANDIDATE = "c0ffee00" * 5
BUDGETS = """apiVersion: phase8/v1
kind: PerfBudgets
reviewed: "2026-10-01"
false_discovery_rate: 0.05
rules:
  - {name: time, benchmark: "*", relative: "+10%", absolute: "mean <= 50ms", owner: team:perf}
"""


def write_root(root: Path, benchmarks: int, runs: int, rng: np.random.Generator) -> int:
    (root / "bench").mkdir(parents=True)
    (root / "phase8.yaml").write_text(
        'apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: "1", commit: "' + CANDIDATE + '"}\n'
        "evidence:\n  benchmarks: {paths: [bench/*.json], max_age: P30D}\n"
        "  perf_budgets: {paths: [budgets.yaml], max_age: P365D}\n"
    )
    (root / "budgets.yaml").write_text(BUDGETS)
    levels = rng.uniform(1e-5, 1e-2, benchmarks)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    size = 0
    for r in range(runs):
        candidate = r == runs - 1
        values = levels * rng.lognormal(0, 0.02, benchmarks)
        doc = {
            "datetime": (start + timedelta(hours=r)).isoformat(),
            "commit_info": {"id": CANDIDATE if candidate else f"{r:08x}" * 5, "branch": "rel" if candidate else "main"},
            "machine_info": {"node": "ci"},
            "version": "5.1.0",
            "benchmarks": [
                {
                    "fullname": f"tests/perf/test_{b // 50}.py::test_case_{b}",
                    "params": None,
                    "stats": {
                        "mean": float(v),
                        "median": float(v),
                        "min": float(v) * 0.97,
                        "max": float(v) * 1.05,
                        "stddev": float(v) * 0.02,
                        "rounds": 5,
                        "ops": 1 / float(v),
                        "data": [float(x) for x in v * rng.lognormal(0, 0.03, 5)],
                    },  # fmt: skip
                }
                for b, v in enumerate(values)
            ],
        }
        text = json.dumps(doc)
        size += len(text)
        (root / "bench" / f"run-{r:04d}.json").write_text(text)
    return size


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(root: Path, tmp: Path, runs: int) -> dict:
    """Ingest, history, change points and the decision over ``root``, each timed (seconds)."""
    config = load_config([str(root)], set(readers()))
    t0 = time.perf_counter()
    batch = collect(config)
    t_read = time.perf_counter() - t0
    with connect(tmp / "warehouse.duckdb") as conn:
        stored = record_benchmarks(conn, batch.files_of("benchmarks"), datetime.now(UTC))
        t_ingest = time.perf_counter() - t0
        assert len(stored) == runs, stored

        budgets = batch.files_of("perf_budgets")[0].records[0]
        root_uri = batch.files_of("benchmarks")[0].root
        t1 = time.perf_counter()
        current = [f.sha256 for f in batch.files_of("benchmarks")]
        series = series_from_history(bench_history(conn, root_uri, current))
        t_history = time.perf_counter() - t1

        t2 = time.perf_counter()
        points = series_change_points(series, CANDIDATE, "main", budgets.change_point_p_value)
        t_cp = time.perf_counter() - t2

        t3 = time.perf_counter()
        comps = select_baselines(series, CANDIDATE, "main", budgets, points)
        run_ids = sorted({str(c.series.run_ids[i]) for c in comps for i in [*c.candidate, *c.baseline[-5:]]})
        samples = bench_samples(conn, root_uri, run_ids)
        judged = judge_regressions(comps, budgets, samples)
        checks = check_budgets(series, CANDIDATE, budgets)
        t_decide = time.perf_counter() - t3
    return {
        "read_s": t_read,
        "ingest_s": t_ingest,
        "history_s": t_history,
        "change_points_s": t_cp,
        "decide_s": t_decide,
        "series": len(series),
        "change_points": sum(map(len, points.values())),
        "regressed": sum(c.status == "regressed" for c in judged),
        "budgets": len(checks),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--benchmarks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(8)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        size = write_root(root, args.benchmarks, args.runs, rng)
        print(f"{args.benchmarks} benchmarks x {args.runs} runs: {args.runs} files, {size / 1e6:.0f} MB of JSON")
        m = measure(root, Path(tmp), args.runs)
    results = args.benchmarks * args.runs * 2
    t_ingest = m["ingest_s"]
    print(f"ingest (read {m['read_s']:.1f} s + DuckDB load): {t_ingest:6.1f} s  ({results / t_ingest:,.0f} results/s)")
    print(f"history from DuckDB:                {m['history_s']:6.1f} s  ({m['series']} series)")
    print(f"change points, full history:        {m['change_points_s']:6.1f} s  ({m['change_points']} found)")
    print(
        f"gate decision (baselines+tests):    {m['decide_s']:6.1f} s  ({m['regressed']} regressed, {m['budgets']} budgets)"
    )
    total = t_ingest + m["history_s"] + m["change_points_s"] + m["decide_s"]
    print(
        f"ingest + decision: {total:.1f} s (target well under 60 s: {total / 60:.0%} of it); peak RSS {peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
