"""Demo FOCUS 1.2 exports: 90 days of cloud cost for three tenants across compute, storage, network
and databases, a shared platform account, about 5 % untagged, and tags written the untidy ways real
exports write them (``tenant``, ``Tenant ``, ``user:tenant``, ``org``; ``env`` and ``environment``).
One gzip CSV per billing month, as FOCUS exports are delivered."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME
from phase8_assets.shared.reports import write_bytes, write_text

COLUMNS = [
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId", "BillingAccountName",
    "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ProviderName", "ServiceProviderName", "ServiceName",
    "ServiceCategory", "SubAccountId", "SubAccountName", "ResourceId", "RegionId", "Tags",
]  # fmt: skip
# tenant -> daily USD per service category
TENANTS = {
    "acme": {"Compute": 120.0, "Storage": 40.0, "Networking": 18.0, "Databases": 55.0},
    "globex": {"Compute": 80.0, "Storage": 25.0, "Networking": 12.0, "Databases": 35.0},
    "initech": {"Compute": 45.0, "Storage": 15.0, "Networking": 6.0, "Databases": 20.0},
}
SERVICES = {
    "Compute": "Amazon EC2",
    "Storage": "Amazon S3",
    "Networking": "Amazon CloudFront",
    "Databases": "Amazon RDS",
}
TAG_STYLES = [
    lambda t: {"tenant": t, "env": "production"},
    lambda t: {"Tenant ": t.capitalize(), "environment": "production"},
    lambda t: {"user:tenant": t, "user:team": "core"},
    lambda t: {" org": f"{t}-corp", "env": "prod"},
]
BUDGETS = """\
apiVersion: phase8/v1
kind: CostBudgets
reviewed: "2026-10-01"
basis: effective
budgets:
  - {name: acme-monthly, tenant: acme, amount: 11000, currency: USD, owner: team:finops}
  - {name: globex-monthly, tenant: globex, amount: 7500, currency: USD, owner: team:finops}
  - {name: initech-monthly, tenant: initech, amount: 4200, currency: USD, owner: team:finops}
  - {name: compute-monthly, service_category: Compute, amount: 13500, currency: USD, owner: team:platform-reliability}
"""
ALLOCATION = """\
apiVersion: phase8/v1
kind: CostAllocation
reviewed: "2026-10-01"
tenant_keys: [tenant, org, customer]
team_keys: [team]
tenant_aliases: {acme-corp: acme, globex-corp: globex, initech-corp: initech}
shared:
  - {name: platform, sub_account: "444455556666", split: proportional}
  - {name: support, service_category: Management and Governance, split: fixed, weights: {acme: 0.5, globex: 0.3, initech: 0.2}}
"""


def _ts(d: date, hour: int = 0) -> str:
    return f"{d:%Y-%m-%d}T{hour:02d}:00:00Z"


def _row(day: date, cost: float, category: str, service: str, sub: str, resource: str, tags: dict | None,
         charge_category: str = "Usage") -> list:  # fmt: skip
    period = date(day.year, day.month, 1)
    nxt = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    effective = round(cost * 0.92, 6) if category == "Compute" else round(cost, 6)  # commitments amortised
    return [
        f"{cost:.6f}", f"{effective:.6f}", f"{cost * 1.1:.6f}", f"{cost:.6f}", "111122223333", "Chatterbox Inc",
        "USD", _ts(period), _ts(nxt), _ts(day), _ts(day + timedelta(days=1)), charge_category, "NULL",
        f"{service} usage", "AWS", "AWS", service, category, sub, "chatterbox-" + sub[-4:], resource, "eu-west-1",
        json.dumps(tags) if tags is not None else "NULL",
    ]  # fmt: skip


def rows(start: date, end: date, rng: random.Random, extra: dict | None = None) -> dict[str, list[list]]:
    """Line items per billing month for the days [start, end]."""
    months: dict[str, list[list]] = {}
    day = start
    while day <= end:
        out = months.setdefault(f"{day:%Y-%m}", [])
        for n, (tenant, costs) in enumerate(TENANTS.items()):
            for category, daily in costs.items():
                growth = 1 + (day - start).days / 900
                for part in (0.6, 0.4):
                    cost = daily * part * growth * rng.uniform(0.85, 1.15)
                    style = TAG_STYLES[(n + (day - start).days) % len(TAG_STYLES)]
                    out.append(
                        _row(
                            day,
                            cost,
                            category,
                            SERVICES[category],
                            "123456789012",
                            f"{tenant}-{category.lower()}-{part}",
                            style(tenant),
                        )
                    )
        # shared platform account (proportional) and support plan (fixed weights)
        out.append(
            _row(
                day,
                60 * rng.uniform(0.9, 1.1),
                "Compute",
                "Amazon EKS",
                "444455556666",
                "platform-eks",
                {"team": "platform"},
            )
        )
        out.append(
            _row(
                day,
                12.0,
                "Management and Governance",
                "AWS Support (Business)",
                "111122223333",
                "support",
                None,
                "Usage",
            )
        )
        # untagged: about 5 % of the spend
        out.append(
            _row(
                day,
                38 * rng.uniform(0.7, 1.3),
                "Compute",
                "Amazon EC2",
                "123456789012",
                "i-0untagged",
                {"env": "production"},
            )
        )
        if day.day == 1 and day != start:
            out.append(
                _row(day, -25.0, "Compute", "Amazon EC2", "123456789012", "credit", {"tenant": "acme"}, "Credit")
            )
        for tenant, (category, amount, since) in (extra or {}).items():
            if day >= since:
                out.append(
                    _row(day, amount, category, "Amazon EC2 (GPU)", "123456789012", f"{tenant}-gpu", {"tenant": tenant})
                )
        day += timedelta(days=1)
    return months


def csv_gz(lines: list[list]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(lines)
    return gzip.compress(text.getvalue().encode(), mtime=0)


def exports(at: datetime, rng: random.Random) -> dict[str, bytes]:
    end = (at - timedelta(days=1)).date()  # exports run a day behind
    return {f"evidence/cost/focus-{m}.csv.gz": csv_gz(r) for m, r in rows(end - timedelta(days=89), end, rng).items()}


def gpu_experiment(at: datetime, rng: random.Random) -> bytes:
    """acme's GPU experiment since 10 November: its forecast crosses the budget."""
    end = (at - timedelta(days=1)).date()
    start = date(end.year, end.month, 10)
    months = rows(start, end, rng, extra={"acme": ("Compute", 220.0, start)})
    gpu = [r for r in months[f"{end:%Y-%m}"] if r[20] == "acme-gpu"]
    return csv_gz(gpu)


def scenarios(out: Path, rng: random.Random) -> list[Path]:
    folder = out / "scenarios/cost-forecast-over-budget"
    return [
        write_text(
            folder / "phase8.yaml",
            "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
            "description: acme's GPU experiment puts its month-end forecast over budget; cost_budgets warns\n"
            'evidence:\n  cost_exports:\n    extra_paths: ["cost/*.csv.gz"]\n',
        ),
        write_bytes(folder / "cost/gpu-experiment-2026-11.csv.gz", gpu_experiment(EVALUATION_TIME, rng)),
    ]
