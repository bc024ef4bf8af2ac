"""Peak memory of collecting bulk evidence, by file size: it must not grow with the file.

For each bulk format (OTLP/JSON lines; FOCUS as CSV, gzip CSV and Parquet, the shapes CUR 2.0
data files are loaded in too) and three sizes, a fresh process collects a root holding one such
file: the collector hashes it while streaming (``EvidenceRoot.stage``) and its reader streams it
(OTLP line by line) or lets DuckDB read it in place (FOCUS). The child reports its peak RSS above
the RSS it had after importing everything; the file is 4x and 16x larger from row to row.

    python benchmarks/evidence_memory.py [--scale 1]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from finops_scale import generate as generate_focus  # noqa: E402
from slo_throughput import write_files as write_otlp  # noqa: E402

KINDS = {  # kind -> (evidence kind, file name, glob)
    "otlp": ("otel_metrics", "metrics.jsonl"),
    "focus-csv": ("cost_exports", "focus.csv"),
    "focus-csv-gz": ("cost_exports", "focus.csv.gz"),
    "focus-parquet": ("cost_exports", "focus.parquet"),
}


def write(kind: str, folder: Path, units: int) -> Path:
    """One evidence file of ``kind``: ``units`` thousand OTLP points or FOCUS rows."""
    import duckdb

    target = folder / KINDS[kind][1]
    if kind == "otlp":
        (folder / "parts").mkdir()
        parts, _ = write_otlp(folder / "parts", units * 1000, datetime(2026, 11, 20, tzinfo=UTC))
        with open(target, "wb") as out:
            for part in parts:
                out.write(part.read_bytes())
                part.unlink()
        return target
    parquet = folder / "focus.parquet"
    generate_focus(parquet, units * 1000)
    if kind != "focus-parquet":
        compression = "gzip" if kind.endswith("gz") else "none"
        conn = duckdb.connect()
        conn.execute("SET enable_progress_bar = false")
        conn.execute(
            f"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{target}' (FORMAT csv, HEADER, COMPRESSION {compression})"
        )
        parquet.unlink()
    return target


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM starts afresh at exec; ru_maxrss keeps the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, path: str) -> None:
    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import load_config

    readers()  # import every reader (and DuckDB) before measuring
    root = Path(path).parent
    (root / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: '1.0.0', commit: 4f2c9e1}\n"
        "limits: {max_file_bytes: 8000000000, read_timeout_seconds: 3600}\n"
        f"evidence: {{{KINDS[kind][0]}: {{paths: ['{Path(path).name}'], max_age: P3650D}}}}\n"
    )
    config = load_config([str(root)])
    baseline = peak_rss_mb()
    t0 = time.perf_counter()
    batch = collect(config)
    seconds = time.perf_counter() - t0
    assert not batch.rejections, batch.rejections
    peak = peak_rss_mb()
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak, "seconds": seconds, "summary": batch.files[0].summary}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1, help="multiply every size (default: 1)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = {"otlp": (25, 100, 400), "focus-csv": (100, 400, 1600), "focus-csv-gz": (100, 400, 1600),
             "focus-parquet": (250, 1000, 4000)}  # fmt: skip
    print(f"{'format':<14} {'units (k)':>9} {'file MB':>9} {'collect s':>9} {'RSS after import MB':>20} "
          f"{'peak RSS MB':>12} {'growth MB':>10}")  # fmt: skip
    for kind, units_list in sizes.items():
        for units in units_list:
            with tempfile.TemporaryDirectory() as tmp:
                path = write(kind, Path(tmp), units * args.scale)
                size = path.stat().st_size / 1e6
                out = subprocess.run(
                    [sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, check=True
                ).stdout
                r = json.loads(out.strip().splitlines()[-1])
                print(
                    f"{kind:<14} {units * args.scale:>9} {size:>9.1f} {r['seconds']:>9.2f} {r['baseline_mb']:>20.0f} "
                    f"{r['peak_mb']:>12.0f} {r['peak_mb'] - r['baseline_mb']:>10.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
