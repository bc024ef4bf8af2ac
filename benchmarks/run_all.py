"""Every speed figure of the product in one run: each figure a whole new process, median of N.

Prints the machine (CPU, cores, RAM, load average, Python/DuckDB/Dagster versions, commit), then a
Markdown table of figures (wall seconds and peak RSS of the whole process, the load average when
each figure started) and the ratios the targets are stated in:

- demo: ``phase8 gate`` on ``data/`` with a fresh home vs a trivial in-process job with the same
  number of steps and blocking checks as ``release_gate`` (target <= 1.5x); ``import
  phase8_assets.definitions`` vs ``import dagster`` (target <= 1.3x);
- FinOps: a full ``phase8 gate`` over one FOCUS Parquet export (10 M rows) vs a plain DuckDB
  load-and-group-by of the same file (target <= 1.5x), and the load-and-attribute step alone;
- OTLP: 30 days of 1-minute histograms for 3 services (129,600 points) collected (read, validated)
  and loaded into the warehouse: points/s;
- perf: 1,000 benchmarks x 200 runs, ingest + decision in-process vs the whole ``phase8 gate``
  (the difference is Dagster and the rest of the job).

Inputs are generated in a temporary directory, never in the repository. The machine may be shared:
read each figure with its load average. Not part of CI.

    python benchmarks/run_all.py [--runs 5] [--quick] [--only demo focus otlp perf]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
PY = sys.executable
PHASE8 = str(Path(sys.executable).with_name("phase8"))


# --- children: each runs in a process of its own -------------------------------------------------


def child_steps() -> dict:
    """Steps and blocking checks of ``release_gate`` (what the trivial job mirrors)."""
    from phase8_assets.definitions import defs

    job = defs.resolve_job_def("release_gate")
    graph = job.asset_layer.asset_graph
    return {
        "steps": len(job.graph.node_dict),
        "checks": len(graph.asset_check_keys),
        "blocking": sum(1 for key in graph.asset_check_keys if graph.get(key).blocking),
    }


def child_trivial(steps: int, checks: int, blocking: int) -> dict:
    """A job of ``steps`` trivial assets in a chain, the last ``checks`` of them leaves with a
    passing check each (``blocking`` of them blocking), run in-process on an ephemeral instance as
    ``phase8 gate`` does."""
    import dagster as dg

    inner = steps - checks
    assets = []
    for i in range(inner):

        @dg.asset(name=f"a{i}", deps=[f"a{i - 1}"] if i else [])
        def _inner() -> int:
            return 1

        assets.append(_inner)
    for g in range(checks):
        key = dg.AssetKey(f"g{g}")

        @dg.asset(
            key=key,
            deps=[f"a{inner - 1}"] if inner else [],
            check_specs=[dg.AssetCheckSpec(f"c{g}", asset=key, blocking=g < blocking)],
        )
        def _gate():
            yield dg.Output(1)
            yield dg.AssetCheckResult(passed=True)

        assets.append(_gate)
    job = dg.define_asset_job("trivial", executor_def=dg.in_process_executor)
    defs = dg.Definitions(assets=assets, jobs=[job])
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("trivial").execute_in_process(instance=instance)
    assert result.success and len(result.get_asset_check_evaluations()) == checks
    return {}


def child_otlp(root: str) -> dict:
    """The product's path for OTLP metrics, without Dagster: the collector reads and validates
    each file, parsing it once into a Parquet spool, then ``sli_series`` loads the spool."""
    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import load_config
    from phase8_assets.warehouse import connect
    from phase8_assets.warehouse.store import record_otlp_files

    readers()
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "w.duckdb") as conn:
        t0 = time.perf_counter()
        batch = collect(load_config([root]), kinds={"otel_metrics"})
        assert not batch.rejections, batch.rejections
        t_collect = time.perf_counter() - t0
        files = batch.files_of("otel_metrics")
        at = datetime.now(UTC)
        points = sum(record_otlp_files(conn, [(f.root, f.sha256, f.uri, f.spool) for f in files], at).values())
        t_total = time.perf_counter() - t0
    return {"points": points, "files": len(files), "collect_s": t_collect, "total_s": t_total}


def child_perf(root: str, runs: int) -> dict:
    sys.path.insert(0, str(BENCH))
    from perf_scale import measure

    with tempfile.TemporaryDirectory() as tmp:
        return measure(Path(root), Path(tmp), runs)


# --- inputs --------------------------------------------------------------------------------------


def write_otlp_root(root: Path, days: int) -> int:
    """``days`` files of 1-minute delta histograms for 3 services, one export per line."""
    (root / "otel").mkdir(parents=True)
    end = datetime(2026, 11, 20, tzinfo=UTC)
    start = end - timedelta(days=days)
    points = 0
    for d in range(days):
        with open(root / "otel" / f"metrics-{d:03d}.jsonl", "w") as fh:
            for m in range(1440):
                t = start + timedelta(days=d, minutes=m + 1)
                t_ns, s_ns = int(t.timestamp()) * 10**9, int((t - timedelta(minutes=1)).timestamp()) * 10**9
                resources = []
                for s, service in enumerate(("chat-api", "chat-realtime", "chat-search")):
                    count = 50 + (d * 1440 + m + s * 7) % 40
                    errors = (m + s) % 97 == 0
                    point = {
                        "attributes": [
                            {"key": "http.route", "value": {"stringValue": "/api/v4/posts"}},
                            {"key": "http.response.status_code", "value": {"intValue": "500" if errors else "200"}},
                        ],
                        "startTimeUnixNano": str(s_ns), "timeUnixNano": str(t_ns), "count": str(count),
                        "sum": count * 0.05, "bucketCounts": [str(count - 3), "2", "1", "0"],
                        "explicitBounds": [0.1, 0.5, 1.0],
                    }  # fmt: skip
                    resources.append(
                        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                         "scopeMetrics": [{"scope": {"name": "io.opentelemetry.http"}, "metrics": [
                             {"name": "http.server.request.duration", "unit": "s",
                              "histogram": {"aggregationTemporality": 1, "dataPoints": [point]}}]}]}
                    )  # fmt: skip
                    points += 1
                fh.write(json.dumps({"resourceMetrics": resources}, separators=(",", ":")) + "\n")
    (root / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: '1.0.0', commit: 4f2c9e1}\n"
        "evaluation_time: '2026-11-20T00:00:00Z'\n"
        "evidence: {otel_metrics: {paths: ['otel/*.jsonl'], max_age: P3650D}}\n"
    )
    return points


def write_focus_root(root: Path, rows: int) -> None:
    sys.path.insert(0, str(BENCH))
    from finops_scale import generate

    (root / "policy").mkdir(parents=True)
    generate(root / "focus.parquet", rows)
    for name in ("cost-allocation.yaml", "cost-budgets.yaml"):
        shutil.copy(REPO / "data" / "policy" / name, root / "policy" / name)
    (root / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: '1.0.0', commit: 4f2c9e1}\n"
        "evaluation_time: '2026-11-29T00:00:00Z'\ntenants: [acme, globex, initech]\n"
        "limits: {max_file_bytes: 4000000000, read_timeout_seconds: 3600}\n"
        "evidence:\n  cost_exports: {paths: ['*.parquet'], max_age: P3650D}\n"
        "  cost_allocation: {paths: [policy/cost-allocation.yaml], max_age: P3650D}\n"
        "  cost_budgets: {paths: [policy/cost-budgets.yaml], max_age: P3650D}\n"
    )


def write_perf_root(root: Path, benchmarks: int, runs: int) -> None:
    import numpy as np

    sys.path.insert(0, str(BENCH))
    from perf_scale import write_root

    write_root(root, benchmarks, runs, np.random.default_rng(8))


# --- measuring -----------------------------------------------------------------------------------


def run_once(cmd: list[str], env: dict) -> dict:
    """Wall seconds and peak RSS (MiB) of one new process; its last stdout line if it is JSON."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and cmd[0] != PHASE8):  # a gate may block
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-3000:]}")
    lines = stdout.strip().splitlines()
    inner = {}
    if lines and lines[-1].startswith("{"):
        inner = json.loads(lines[-1])
    return {"wall_s": wall, "rss_mib": usage.ru_maxrss / 1024, "rc": proc.returncode, **inner}


def figure(name: str, cmd_for, runs: int, env: dict, rows: list) -> dict:
    """Median of ``runs`` new processes; ``cmd_for(tmp)`` gives the command for a fresh temp dir."""
    return interleaved([(name, cmd_for)], runs, env, rows)[0]


def interleaved(specs: list[tuple[str, object]], runs: int, env: dict, rows: list) -> list[dict]:
    """``figure`` for several commands measured in turn (A B A B ...), so a machine whose speed
    drifts from minute to minute (a shared host) weighs on each alike; each figure keeps its
    per-run wall times (``walls``) for ratios taken run by run."""
    load = os.getloadavg()[0]
    results: list[list[dict]] = [[] for _ in specs]
    for _ in range(runs):
        for i, (_, cmd_for) in enumerate(specs):
            with tempfile.TemporaryDirectory() as tmp:
                results[i].append(run_once(cmd_for(Path(tmp)), env))
    figures = []
    for (name, _), got in zip(specs, results, strict=True):
        med = {k: statistics.median(r[k] for r in got) for k in got[0] if isinstance(got[0][k], float)}
        med.update({k: v for k, v in got[0].items() if not isinstance(v, float)})
        med["load"] = load
        med["walls"] = [r["wall_s"] for r in got]
        rows.append((name, med))
        print(f"| {name} | {med['wall_s']:.2f} | {med['rss_mib']:.0f} | {load:.2f} |", flush=True)
        figures.append(med)
    return figures


def child_cmd(*args: str) -> list[str]:
    return [PY, str(Path(__file__).resolve()), "--child", *args]


def machine(commit: str | None) -> str:
    import importlib.metadata as md

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    if commit is None:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=REPO
        ).stdout
    return (
        f"- commit `{commit.strip() or 'unknown'}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- {cpu}, {os.cpu_count()} cores, {int(mem) / 1024**2:.1f} GiB RAM; "
        f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
        f"- Python {platform.python_version()}, duckdb {md.version('duckdb')}, dagster {md.version('dagster')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="new processes per figure; the median counts")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 process per figure, small inputs")
    parser.add_argument("--only", nargs="+", choices=["demo", "focus", "otlp", "perf"], help="these groups only")
    parser.add_argument("--commit", help="the commit measured (default: git HEAD of this checkout)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {"steps": child_steps, "trivial": child_trivial, "otlp": child_otlp, "perf": child_perf}[kind]
        print(json.dumps(fn(*[int(x) if x.isdigit() else x for x in rest])))
        return
    runs = 1 if args.quick else args.runs
    groups = args.only or ["demo", "focus", "otlp", "perf"]
    focus_rows, otlp_days, perf_size = (1_000_000, 3, (100, 20)) if args.quick else (10_000_000, 30, (1000, 200))
    env = {**os.environ, "OTEL_SDK_DISABLED": "true", "NO_COLOR": "1"}
    env.pop("DAGSTER_HOME", None)
    # Python keeps bytecode caches by default, as the installed packages have theirs: without them
    # (PYTHONDONTWRITEBYTECODE=1 in some shells) every process would compile the product's source
    # and no other package's. Written once here, so no measured process pays for it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([PY, "-m", "compileall", "-q", str(REPO / "phase8_assets"), str(BENCH)], check=True, env=env)
    print(machine(args.commit))
    print(f"- each figure: median of {runs} new process(es)\n")
    print("| figure | wall s | peak RSS MiB | load avg (1 min) at start |\n|---|---|---|---|", flush=True)
    rows: list = []
    ratios: list[str] = []

    def gate(root: str, *extra: str):
        return lambda tmp: [PHASE8, "gate", "--evidence", root, "--home", str(tmp / "h"), "--out", str(tmp), *extra]

    if "demo" in groups:
        steps = run_once(child_cmd("steps"), env)
        g, t = interleaved(
            [
                ("demo `phase8 gate` on data/, fresh home", gate(str(REPO / "data"))),
                (
                    f"trivial in-process job, {steps['steps']} steps, {steps['checks']} checks "
                    f"({steps['blocking']} blocking), run in turn with the gate",
                    lambda tmp: child_cmd("trivial", *(str(steps[k]) for k in ("steps", "checks", "blocking"))),
                ),
            ],
            runs,
            env,
            rows,
        )
        d, c = interleaved(
            [
                ("`import dagster`", lambda tmp: [PY, "-c", "import dagster"]),
                ("`import phase8_assets.definitions`", lambda tmp: [PY, "-c", "import phase8_assets.definitions"]),
            ],
            runs,
            env,
            rows,
        )
        pairs = statistics.median(a / b for a, b in zip(g["walls"], t["walls"], strict=True))
        ratios.append(f"demo gate / trivial job: {g['wall_s'] / t['wall_s']:.2f}x time (target <= 1.5x; median of "
                      f"the {runs} run-by-run ratios {pairs:.2f}x), {g['rss_mib'] / t['rss_mib']:.2f}x peak RSS")  # fmt: skip
        ratios.append(f"code location import / import dagster: {c['wall_s'] / d['wall_s']:.2f}x (target <= 1.3x)")
    with tempfile.TemporaryDirectory() as inputs:
        inputs = Path(inputs)
        if "focus" in groups:
            root = inputs / "focus"
            write_focus_root(root, focus_rows)
            path = str(root / "focus.parquet")
            label = f"{focus_rows / 1e6:g} M FOCUS rows"
            fl = figure(f"{label}: plain DuckDB load + group-by", lambda tmp: [PY, str(BENCH / "finops_scale.py"),
                        "--child", "bare", path], runs, env, rows)  # fmt: skip
            f64 = figure(f"{label}: the same, costs parsed as the product does (64-bit first)", lambda tmp: [
                         PY, str(BENCH / "finops_scale.py"), "--child", "bare64", path], runs, env, rows)  # fmt: skip
            at = figure(f"{label}: load + attribute step alone", lambda tmp: [PY, str(BENCH / "finops_scale.py"),
                        "--child", "phase8", path], runs, env, rows)  # fmt: skip
            fg = figure(f"{label}: full `phase8 gate`", gate(str(root)), runs, env, rows)
            ratios.append(f"{label}: full gate / DuckDB floor {fg['wall_s'] / fl['wall_s']:.2f}x (target <= 1.5x), "
                          f"/ the floor with the product's cost parse {fg['wall_s'] / f64['wall_s']:.2f}x; "
                          f"load + attribute / floor {at['wall_s'] / fl['wall_s']:.2f}x; "
                          f"peak RSS gate {fg['rss_mib']:.0f} MiB, floor {fl['rss_mib']:.0f} MiB")  # fmt: skip
        if "otlp" in groups:
            root = inputs / "otlp"
            points = write_otlp_root(root, otlp_days)
            o = figure(f"OTLP {otlp_days} days x 1-min histograms x 3 services ({points:,} points): collect + load",
                       lambda tmp: child_cmd("otlp", str(root)), runs, env, rows)  # fmt: skip
            ratios.append(f"OTLP: {o['points'] / o['total_s']:,.0f} points/s (collect {o['collect_s']:.1f} s, "
                          f"load {o['total_s'] - o['collect_s']:.1f} s, whole process {o['wall_s']:.1f} s)")  # fmt: skip
            shutil.rmtree(root)
        if "perf" in groups:
            root = inputs / "perf"
            write_perf_root(root, *perf_size)
            label = f"perf {perf_size[0]:,} benchmarks x {perf_size[1]} runs"
            p = figure(f"{label}: ingest + decision in-process", lambda tmp: child_cmd("perf", str(root),
                       str(perf_size[1])), runs, env, rows)  # fmt: skip
            last = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=perf_size[1])).strftime("%Y-%m-%dT%H:%M:%SZ")
            pg = figure(f"{label}: full `phase8 gate`", gate(str(root), "--as-of", last), runs, env, rows)
            inner = p["ingest_s"] + p["history_s"] + p["change_points_s"] + p["decide_s"]
            ratios.append(f"{label}: decision {p['decide_s']:.1f} s (+ change points {p['change_points_s']:.1f} s, "
                          f"history {p['history_s']:.1f} s, ingest {p['ingest_s']:.1f} s); whole gate {pg['wall_s']:.1f} s, "
                          f"Dagster and the rest of the job {pg['wall_s'] - inner:.1f} s over the in-process work")  # fmt: skip
    print()
    for line in ratios:
        print(f"- {line}")


if __name__ == "__main__":
    main()
