"""Two checkouts of the product head to head: ``phase8 gate`` on each one's ``data/`` with a fresh
home, runs interleaved (A, B, A, B, ...) so both see the same machine load, medians printed.

On a shared machine a figure taken an hour apart can differ by 10 % for reasons of its own;
interleaving is how a change of a few per cent is measured. Both checkouts run on this interpreter
and its packages (each checkout's ``phase8_assets`` first on ``PYTHONPATH``). Not part of CI.

    python benchmarks/ab_gate.py /path/to/checkout-a /path/to/checkout-b [--pairs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASE8 = str(Path(sys.executable).with_name("phase8"))


def run(checkout: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OTEL_SDK_DISABLED": "true", "NO_COLOR": "1"}
    env.pop("DAGSTER_HOME", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [PHASE8, "gate", "--evidence", str(checkout / "data"), "--home", f"{tmp}/h", "--out", tmp]
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, cwd=checkout)
        wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{checkout}: phase8 gate exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args()
    checkouts = [args.a.resolve(), args.b.resolve()]
    for checkout in checkouts:  # bytecode written once, outside the measured runs
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(checkout / "phase8_assets")], check=True)
    times: dict[Path, list[float]] = {c: [] for c in checkouts}
    print(f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for _ in range(args.pairs):
        for checkout in checkouts:
            times[checkout].append(run(checkout))
    a, b = (statistics.median(times[c]) for c in checkouts)
    for checkout in checkouts:
        values = times[checkout]
        print(f"{checkout}: median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})")
    print(f"B / A: {b / a:.3f} ({(b - a) / a:+.1%})")


if __name__ == "__main__":
    main()
