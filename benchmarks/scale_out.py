"""N `phase8 gate` runs on N evidence roots at once, as N processes sharing one warehouse: the
embedded DuckDB file (one PHASE8_HOME: the runs take turns on its lock) against DuckLake (one lake,
each run its own home). Prints runs/min and the p95 gate time per N. Not part of CI.

    PHASE8_WAREHOUSE='ducklake://postgres@127.0.0.1:5432/lake?data_path=s3://bucket/prefix' \\
    AWS_ENDPOINT_URL=… AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \\
    python benchmarks/scale_out.py --n 1 2 [--rounds 2]

Every N runs on a fresh warehouse: a fresh home for the file; for DuckLake a new catalog database
``<db>_n<N>_r<round>`` beside the named one (created here, so the URL's user needs CREATEDB) and a
new data prefix. Without PHASE8_WAREHOUSE only the file is measured.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ["perf-regression", "slo-fast-burn", "overdue-drill", "plugin-revoked-key", "isolation-cache-leak",
         "retention-violation", "stale-evidence", "health-fail"]  # fmt: skip


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))]


def fresh_lake(url: str, tag: str) -> str:
    """A new, empty catalog database and data prefix beside the ones ``url`` names."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from phase8_assets.warehouse.lake import parse

    lake = parse(url)
    name = f"{lake.dbname}_{tag}"
    with psycopg.connect(lake.libpq(), autocommit=True) as pg:
        pg.execute(f"DROP DATABASE IF EXISTS {name}")
        pg.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}", query=f"data_path={lake.data_path}{tag}-{uuid.uuid4().hex[:6]}/"))


def round_of(n: int, lake_url: str | None, tmp: Path) -> tuple[float, list[float]]:
    """Start N gates at once; (makespan, each gate's seconds)."""
    phase8 = Path(sys.executable).with_name("phase8")
    env = {**os.environ, "OTEL_SDK_DISABLED": "true"}
    env.pop("PHASE8_WAREHOUSE", None)
    if lake_url:
        env["PHASE8_WAREHOUSE"] = lake_url
    started, procs = time.perf_counter(), []
    for i in range(n):
        home = tmp / (f"home{i}" if lake_url else "home")  # the file: one shared home, one warehouse
        command = [str(phase8), "gate", "--evidence", str(REPO / "data" / "scenarios" / ROOTS[i]), "--home", str(home),
                   "--out", str(tmp / f"out{i}"), "--lock-wait", "900"]  # fmt: skip
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    times = []
    for proc in procs:
        _, err = proc.communicate()
        times.append(time.perf_counter() - started)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"phase8 gate exited {proc.returncode}: {err[-2000:]}")
    return time.perf_counter() - started, times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    lake = os.environ.get("PHASE8_WAREHOUSE", "").strip() or None
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print("backend   N  runs/min  p95 gate s  (rounds)")
    for backend in ["file", *(["ducklake"] if lake else [])]:
        for n in args.n:
            makespans, times = [], []
            for r in range(args.rounds):
                with tempfile.TemporaryDirectory() as tmp:
                    url = fresh_lake(lake, f"n{n}_r{r}") if backend == "ducklake" else None
                    makespan, each = round_of(n, url, Path(tmp))
                makespans.append(makespan)
                times += each
            rate = 60 * n * len(makespans) / sum(makespans)
            print(f"{backend:8s} {n:2d}  {rate:8.2f}  {p95(times):10.1f}  ({args.rounds})", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
