"""The audit trail at scale: appending records (one transaction per batch, as a gate run does)
and verifying the whole chain, by trail length.

A gate run on the demo evidence records ~6 to 20 events; a year of 50 runs a day is ~200k records.
Targets (2 shared cores): an append of 20 records (a gate run's) in under 150 ms whatever the
trail's length (the head is read by the primary key; building and redacting the OCSF records is
most of it); verify at 5,000 records/s or more (200k records within a minute).

    python benchmarks/audit_chain.py [--records 200000] [--batch 20]
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from phase8_assets.shared.audit_events import Actor, AuditEvent
from phase8_assets.warehouse import audit, connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="Trail length to build.")
    parser.add_argument("--batch", type=int, default=20, help="Records per transaction (one gate run).")
    args = parser.parse_args()
    actor = Actor("bench", "benchmark")
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "warehouse.duckdb") as conn:
        started, appends = time.perf_counter(), []
        for n in range(0, args.records, args.batch):
            events = [AuditEvent("gate.verdict", f"release {n + i}", "pass", actor, datetime.now(UTC), run_id=str(n))
                      for i in range(args.batch)]  # fmt: skip
            t = time.perf_counter()
            audit.record(conn, events)
            appends.append(time.perf_counter() - t)
        built = time.perf_counter() - started
        t = time.perf_counter()
        result = audit.verify(conn)
        verify_s = time.perf_counter() - t
    appends.sort()
    print(f"records {args.records}, batch {args.batch}: built in {built:.1f} s")
    print(f"append of {args.batch}: median {appends[len(appends) // 2] * 1000:.1f} ms, "
          f"p95 {appends[int(len(appends) * 0.95)] * 1000:.1f} ms, last {appends[-1] * 1000:.1f} ms (max)")  # fmt: skip
    print(f"verify: {result.checked} records intact={result.ok} in {verify_s:.2f} s")


if __name__ == "__main__":
    main()
