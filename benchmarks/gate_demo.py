"""How long `phase8 gate` takes on the embedded demo evidence (target: under 2 minutes on 2 cores).

Prints the cold figure (a new process on a fresh PHASE8_HOME: imports, warehouse creation, ingest,
every gate, reports) and the warm figure (in-process, warehouse already there), best of N.

    python benchmarks/gate_demo.py [--runs 3]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 120.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    phase8 = Path(sys.executable).with_name("phase8")
    cold = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "PHASE8_HOME": str(Path(tmp) / "home"), "OTEL_SDK_DISABLED": "true"}
            started = time.perf_counter()
            proc = subprocess.run(
                [str(phase8), "gate", "--evidence", str(REPO / "data"), "--out", tmp],
                env=env,
                capture_output=True,
                text=True,
            )
            cold.append(time.perf_counter() - started)
            assert proc.returncode == 0, proc.stderr
    from phase8_assets.gate_run import run_gate

    warm = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            started = time.perf_counter()
            run_gate([str(REPO / "data")], out=Path(tmp), as_of=None, home=Path(tmp) / "home")
            warm.append(time.perf_counter() - started)
    best_cold, best_warm = min(cold), min(warm)
    print(
        f"phase8 gate on data/, cold process, fresh home: best {best_cold:.2f} s of {args.runs} "
        f"({best_cold / TARGET_S:.1%} of the {TARGET_S:.0f} s target)"
    )
    print(
        f"phase8 gate on data/, in-process, warm:         best {best_warm:.2f} s of {args.runs} "
        f"(cold/warm ratio {best_cold / best_warm:.1f}x)"
    )


if __name__ == "__main__":
    main()
