"""Budget forecasts on the demo history: how far from the real month-end spend each method was.

Loads the demo FOCUS exports (``data/evidence/cost``) into a temporary warehouse, attributes them
with the demo ``CostAllocation``, and for every budget in ``data/policy/cost-budgets.yaml`` and every
complete month of the history replays each day of the month: the forecast made with the spend
known that day against what the month really cost. Prints the mean absolute percentage error per
third of the month and the worst day, per method.

    python benchmarks/forecast_accuracy.py [--evidence data] [--windows 7 14]
"""

import argparse
import calendar
import statistics
import tempfile
from datetime import date
from pathlib import Path

THIRDS = {"days 1-10": (1, 10), "days 11-20": (11, 20), "days 21-": (21, 31)}


def main() -> None:
    from phase8_assets.domains.finops import attribute, backtest, daily_spend
    from phase8_assets.evidence import focus
    from phase8_assets.evidence.cost_policy import read_allocation, read_budgets
    from phase8_assets.warehouse import connect
    from phase8_assets.warehouse.store import record_cost_file

    parser = argparse.ArgumentParser()
    parser.add_argument("--evidence", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    parser.add_argument("--windows", type=int, nargs="+", default=[7, 14])
    args = parser.parse_args()
    policy = read_allocation((args.evidence / "policy/cost-allocation.yaml").read_bytes(), "x").records[0]
    budgets = read_budgets((args.evidence / "policy/cost-budgets.yaml").read_bytes(), "x").records[0]
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "w.duckdb") as conn:
        for i, path in enumerate(sorted((args.evidence / "evidence/cost").glob("*"))):
            (Path(tmp) / str(i)).mkdir()
            spool = focus.read(path, str(path), spool_dir=Path(tmp) / str(i)).spool
            record_cost_file(conn, "/demo", str(path), path.name, spool)
        versions = [r[0] for r in conn.execute("SELECT sha256 FROM cost_files").fetchall()]
        attribute(conn, "/demo", ["/demo"], policy, ["acme", "globex", "initech"], versions=versions)
        first, last = conn.execute("SELECT min(charge_day), max(charge_day) FROM cost_line_items").fetchone()
        months = []
        month = date(first.year, first.month, 1)
        while month <= last:
            if (
                month >= first
                and date(month.year, month.month, calendar.monthrange(month.year, month.month)[1]) <= last
            ):
                months.append(month)
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        print(f"history {first} .. {last}; complete months: {', '.join(f'{m:%Y-%m}' for m in months)}")
        print(f"{len(budgets['budgets'])} budgets: {', '.join(b['name'] for b in budgets['budgets'])}\n")
        methods = [("run_rate", 0, "month-to-date run rate")] + [
            ("trailing", w, f"trailing {w}-day") for w in args.windows
        ]
        print(f"{'method':>24} " + " ".join(f"{t:>11}" for t in THIRDS) + f" {'all days':>9} {'worst day':>10}")
        for method, window, label in methods:
            errors = []
            for b in budgets["budgets"]:
                daily = daily_spend(conn, "/demo", b, first, last)
                errors += backtest(daily, months, method, window or 7)
            cells = [statistics.mean(e for d, e in errors if lo <= d <= hi) for lo, hi in THIRDS.values()] + [
                statistics.mean(e for _, e in errors),
                max(e for _, e in errors),
            ]
            print(f"{label:>24} " + " ".join(f"{c:>10.2%}" for c in cells[:3]) + f" {cells[3]:>8.2%} {cells[4]:>9.2%}")


if __name__ == "__main__":
    main()
