"""FinOps at scale: ingest + attribute FOCUS rows, against the DuckDB floor and a pandas pipeline.

Generates FOCUS rows as Parquet in a temporary directory (1 M and 10 M by default), then, each in a
fresh process so peak RSS is its own:

- phase8: the product's path (validate the file, load file -> DuckDB, attribute with tag
  normalisation, shared-cost split and exact remainders);
- floor:  the same columns loaded with plain casts (no validation) and attribution by hand as one
  ``GROUP BY`` over the raw tenant tag (no key normalisation, no shared split) — what any
  DuckDB pipeline pays at least;
- pandas: ``read_parquet``, ``json.loads`` per row, ``groupby`` — what a naive pipeline does
  (1 M only unless --pandas-10m: at 10 M it needs ~5 GB).

Prints rows/s and peak RSS per size; targets: phase8 within 1.5x of the floor, >= 10x pandas,
peak RSS under 2 GB at 10 M rows.

    python benchmarks/finops_scale.py [--sizes 1000000 10000000] [--pandas-10m]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICY = {
    "tenant_keys": ["tenant", "org"],
    "team_keys": ["team"],
    "tenant_aliases": {"acme-corp": "acme"},
    "shared": [{"name": "platform", "sub_account": "444455556666", "split": "proportional"}],
}


def generate(path: Path, rows: int) -> None:
    import duckdb

    duckdb.connect().execute(
        f"""
        COPY (
            SELECT
                round(random() * 10, 6)::VARCHAR AS BilledCost, round(random() * 9, 6)::VARCHAR AS EffectiveCost,
                '1.0' AS ListCost, '1.0' AS ContractedCost, '111122223333' AS BillingAccountId, 'USD' AS BillingCurrency,
                '2026-11-01T00:00:00Z' AS BillingPeriodStart, '2026-12-01T00:00:00Z' AS BillingPeriodEnd,
                strftime(TIMESTAMP '2026-11-01' + to_days((i % 28)::INT), '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodStart,
                strftime(TIMESTAMP '2026-11-02' + to_days((i % 28)::INT), '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodEnd,
                'Usage' AS ChargeCategory, 'AWS' AS ProviderName, 'Amazon EC2' AS ServiceName,
                ['Compute', 'Storage', 'Databases', 'Networking'][(i % 4)::INT + 1] AS ServiceCategory,
                CASE WHEN i % 50 = 0 THEN '444455556666' ELSE '123456789012' END AS SubAccountId,
                'r-' || (i % 100000)::VARCHAR AS ResourceId,
                CASE i % 20 WHEN 0 THEN NULL WHEN 1 THEN '{{" org": "acme-corp"}}'
                     ELSE '{{"tenant": "' || ['acme', 'globex', 'initech'][(i % 3)::INT + 1] || '", "team": "core"}}' END AS Tags
            FROM range({rows}) t(i)
        ) TO '{path}' (FORMAT parquet)
        """
    )


def run_phase8(path: Path, tmp: Path) -> dict:
    from datetime import UTC, datetime  # noqa: F401

    from phase8_assets.domains.finops import attribute
    from phase8_assets.warehouse import connect
    from phase8_assets.warehouse.store import record_cost_file

    with connect(tmp / "phase8.duckdb") as conn:
        t0 = time.perf_counter()
        rows = record_cost_file(conn, "/r", str(path), "sha", str(path))
        t_load = time.perf_counter() - t0
        attribute(conn, "/r", ["/r"], POLICY, ["acme", "globex", "initech"])
        total = time.perf_counter() - t0
        check = conn.execute(
            "SELECT (SELECT sum(billed) FROM cost_line_items) = (SELECT sum(billed) FROM cost_attribution)"
        ).fetchone()[0]
    return {"rows": rows, "load_s": t_load, "total_s": total, "exact": bool(check)}


def run_floor(path: Path, tmp: Path) -> dict:
    import duckdb

    conn = duckdb.connect(str(tmp / "floor.duckdb"))
    t0 = time.perf_counter()
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(  # the same canonical columns as phase8 loads, with plain casts and no validation
        f"""CREATE TABLE items AS SELECT strftime(CAST(BillingPeriodStart AS TIMESTAMPTZ), '%Y-%m') AS billing_period,
            ProviderName AS provider, BillingAccountId AS billing_account, SubAccountId AS sub_account,
            CAST(ChargePeriodStart AS TIMESTAMPTZ)::DATE AS day, ChargeCategory AS charge_category,
            ServiceCategory AS service_category, ServiceName AS service_name, ResourceId AS resource_id,
            BillingCurrency AS currency, CAST(BilledCost AS DECIMAL(38, 12)) AS billed,
            CAST(EffectiveCost AS DECIMAL(38, 12)) AS effective, Tags AS tags
            FROM read_parquet('{path}')"""
    )
    t_load = time.perf_counter() - t0
    conn.execute(
        "CREATE TABLE attributed AS SELECT day, currency, coalesce(json_extract_string(tags, '$.tenant'), '__unallocated__') AS tenant, "
        "service_category, sum(billed) AS billed, sum(effective) AS effective FROM items GROUP BY ALL"
    )
    rows = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    return {"rows": rows, "load_s": t_load, "total_s": time.perf_counter() - t0}


def run_pandas(path: Path, tmp: Path) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    frame = pd.read_parquet(path)
    frame["billed"] = frame["BilledCost"].astype(float)
    frame["effective"] = frame["EffectiveCost"].astype(float)
    frame["day"] = pd.to_datetime(frame["ChargePeriodStart"]).dt.date
    t_load = time.perf_counter() - t0
    frame["tenant"] = [
        json.loads(t).get("tenant", "__unallocated__") if t else "__unallocated__" for t in frame["Tags"]
    ]
    frame.groupby(["day", "BillingCurrency", "tenant"])[["billed", "effective"]].sum()
    return {"rows": len(frame), "load_s": t_load, "total_s": time.perf_counter() - t0}


def child(kind: str, path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = {"phase8": run_phase8, "floor": run_floor, "pandas": run_pandas}[kind](Path(path), Path(tmp))
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--pandas-10m", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"{'rows':>11} {'pipeline':>8} {'seconds':>8} {'rows/s':>12} {'peak RSS MB':>12} {'vs floor':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"focus-{n}.parquet"
            generate(path, n)
            results = {}
            for kind in ("floor", "phase8", "pandas"):
                if kind == "pandas" and n > 1_000_000 and not args.pandas_10m:
                    continue
                out = subprocess.run(
                    [sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, check=True
                )
                r = results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
                ratio = r["total_s"] / results["floor"]["total_s"]
                print(
                    f"{n:>11,} {kind:>8} {r['total_s']:>8.1f} {n / r['total_s']:>12,.0f} {r['rss_mb']:>12.0f} {ratio:>8.2f}x"
                )
            if "pandas" in results:
                print(
                    f"{'':>11} phase8 is {results['pandas']['total_s'] / results['phase8']['total_s']:.1f}x faster than pandas"
                )
            print(f"{'':>11} attribution exact to the cent: {results['phase8'].get('exact')}")
            path.unlink()


if __name__ == "__main__":
    main()
