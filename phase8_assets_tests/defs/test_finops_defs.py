"""The cost_budgets gate in release_gate: a budget that selects no cost fails it (without blocking),
never reading as 0 spent."""

import csv
import gzip
import io
import shutil

import pytest

from phase8_assets_tests.conftest import DATA, gate_report

pytestmark = pytest.mark.slow


def test_budgets_selecting_no_cost_in_their_currency_fail_the_gate_without_blocking(tmp_path, home):
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    budgets = root / "policy/cost-budgets.yaml"  # a tenant's alias for its id, a lower-case category
    budgets.write_text(budgets.read_text().replace("tenant: acme,", "tenant: acme-corp,").replace("Compute", "compute"))
    november = root / "evidence/cost/focus-2026-11.csv.gz"  # the November export, billed in EUR
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(november.read_bytes()).decode())))
    for row in rows:
        row["BillingCurrency"] = "EUR"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    november.write_bytes(gzip.compress(out.getvalue().encode(), mtime=0))

    report = gate_report([root], home)
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    assert (gate["status"], gate["blocking"], report["verdict"]) == ("fail", False, "pass")
    found = {f["subject"]: f for f in gate["findings"] if f["rule"] == "scope-selects-cost"}
    assert sorted(found) == ["acme-monthly", "compute-monthly", "globex-monthly", "initech-monthly"]
    assert all(f["severity"] == "error" and f["evidence"].endswith("policy/cost-budgets.yaml") for f in found.values())
    assert found["acme-monthly"]["observed"] == (
        "tenant acme-corp selects no cost from 2026-11-01 to 2026-11-20; the period holds tenant: "
        "__unallocated__, acme, globex, initech; currency: EUR"
    )
    assert "service_category: Compute, " in found["compute-monthly"]["observed"]
    assert found["globex-monthly"]["observed"] == (
        "tenant globex selects only EUR cost from 2026-11-01 to 2026-11-20; the budget counts USD"
    )
    assert found["globex-monthly"]["owner"] == "team:finops"


def test_a_month_to_date_snapshot_delivered_again_in_its_own_folder_counts_once(tmp_path, home):
    """An export's earlier daily snapshot of November, kept in its own delivery folder beside the
    current one, is superseded (named in the gate) rather than summed: November costs what the
    newest says."""
    import duckdb

    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    november = root / "evidence/cost/focus-2026-11.csv.gz"
    lines = gzip.decompress(november.read_bytes()).decode().splitlines(keepends=True)
    rows = list(csv.DictReader(io.StringIO("".join(lines))))
    early = [line for line, row in zip(lines[1:], rows, strict=True) if row["ChargePeriodStart"] < "2026-11-08"]
    snapshot = root / "evidence/cost/20261108T0600Z/focus-2026-11.csv.gz"
    snapshot.parent.mkdir()
    snapshot.write_bytes(gzip.compress((lines[0] + "".join(early)).encode(), mtime=0))
    config = root / "phase8.yaml"
    config.write_text(
        config.read_text().replace(
            '["evidence/cost/*.csv.gz"]', '["evidence/cost/*.csv.gz", "evidence/cost/*/*.csv.gz"]'
        )
    )

    report = gate_report([root], home)
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    (found,) = [f for f in gate["findings"] if f["rule"] == "newest-delivery-counts"]
    assert (found["severity"], found["subject"], found["owner"]) == ("warning", str(snapshot), "team:finops")
    assert found["details"]["counted"] == str(november.parent) and found["details"]["days"] == 7
    assert f"re-delivered by {november.parent}, which counts instead (the later last charge day)" in found["observed"]
    assert not [f for f in gate["findings"] if f["rule"].startswith(("actual", "forecast"))]  # as without the copy
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        counted = conn.execute(
            "SELECT sum(effective) FROM cost_attribution WHERE charge_day >= DATE '2026-11-01'"
        ).fetchone()[0]
        exported = conn.execute(
            "SELECT sum(CAST(EffectiveCost AS DECIMAL(38, 12))) FROM read_csv(?, all_varchar = true)", [str(november)]
        ).fetchone()[0]
    assert counted == exported


def test_a_second_budgets_or_allocation_file_fails_the_gate_rather_than_going_unread(tmp_path, home):
    """Paths matching two CostBudgets files read only the first: the other's budgets (here one at
    523 % of its amount) were silently not judged and the gate passed with no findings."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    config = root / "phase8.yaml"
    config.write_text(
        config.read_text()
        .replace('["policy/cost-budgets.yaml"]', '["policy/cost-budgets*.yaml"]')
        .replace('["policy/cost-allocation.yaml"]', '["policy/cost-allocation*.yaml"]')
    )
    (root / "policy/cost-budgets.yaml").rename(root / "policy/cost-budgets-a.yaml")
    (root / "policy/cost-budgets-b.yaml").write_text(
        'apiVersion: phase8/v1\nkind: CostBudgets\nreviewed: "2026-10-01"\n'
        "budgets:\n  - {name: acme-tight, tenant: acme, amount: 1000, currency: USD, owner: team:finops}\n"
    )
    allocation = (root / "policy/cost-allocation.yaml").read_text()
    (root / "policy/cost-allocation-old.yaml").write_text(
        allocation.replace("reviewed:", "# before the split\nreviewed:")
    )

    report = gate_report([root], home)
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    assert (gate["status"], gate["blocking"]) == ("fail", False)
    found = {f["subject"]: f for f in gate["findings"] if f["rule"] == "one-policy-file"}
    assert sorted(found) == ["cost_allocation", "cost_budgets"]
    budgets = found["cost_budgets"]
    assert budgets["severity"] == "error" and budgets["evidence"] == str(root / "policy/cost-budgets-b.yaml")
    assert budgets["observed"] == (
        f"2 CostBudgets files: {root}/policy/cost-budgets-a.yaml, {root}/policy/cost-budgets-b.yaml; "
        f"only {root}/policy/cost-budgets-a.yaml is read"
    )
    assert budgets["owner"] == "team:finops" and budgets["runbook"].endswith("cost-budgets.md")
    assert found["cost_allocation"]["evidence"] == str(root / "policy/cost-allocation.yaml")


def test_a_parquet_export_with_a_tags_map_attributes_as_its_csv_does_on_a_fresh_or_reused_home(tmp_path, home):
    """A FOCUS Parquet export whose Tags is a map column made cost_attribution fail (cost_budgets
    "could not be evaluated: upstream step failed", naming nothing); a warehouse that loaded it so keeps
    those rows unless the file is loaded again, which it is (the reader's revision is in its version)."""
    import duckdb

    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    config = root / "phase8.yaml"
    config.write_text(config.read_text().replace('["evidence/cost/*.csv.gz"]', '["evidence/cost/*"]'))
    november = root / "evidence/cost/focus-2026-11.csv.gz"
    duckdb.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN Tags IS NULL THEN NULL ELSE CAST(json(Tags) AS MAP(VARCHAR, VARCHAR)) "
        f"END AS Tags) FROM read_csv('{november}', all_varchar = true, nullstr = 'NULL')) "
        f"TO '{root / 'evidence/cost/focus-2026-11.parquet'}' (FORMAT parquet)"
    )
    november.unlink()

    def attributed(report) -> list:
        gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
        assert (gate["status"], gate["findings"]) == ("pass", [])
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
            return conn.execute(
                "SELECT tenant, sum(effective)::DOUBLE FROM cost_attribution WHERE charge_day >= '2026-11-01' "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()

    fresh = attributed(gate_report([root], home))
    assert [t for t, _ in fresh] == ["__unallocated__", "acme", "globex", "initech"]
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:  # as the earlier reader left it
        conn.execute("UPDATE cost_line_items SET sha256 = split_part(sha256, '#', 1), tags = replace(tags, '\"', '')")
        conn.execute("UPDATE cost_files SET sha256 = split_part(sha256, '#', 1)")
    assert attributed(gate_report([root], home)) == fresh


def test_a_config_without_a_cost_kind_fails_the_gate_rather_than_reading_no_spend(tmp_path, home):
    """No cost_exports (nor cur_exports) in phase8.yaml: no cost is not 0 spent under every budget."""
    import re

    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    config = root / "phase8.yaml"
    config.write_text(re.sub(r"  cost_exports:\n(    .*\n)+", "", config.read_text()))
    assert "cost_exports" not in config.read_text() and "cur_exports" not in config.read_text()
    gate = next(g for g in gate_report([root], home)["gates"] if g["gate"] == "cost_budgets")
    assert (gate["status"], gate["blocking"]) == ("fail", False)
    (finding,) = [f for f in gate["findings"] if f["severity"] == "error"]
    assert (finding["rule"], finding["observed"]) == ("evidence-configured", "no cost_exports or cur_exports kind")
    assert finding["evidence"].endswith("phase8.yaml") and finding["runbook"]


LABS = "999988887777"  # a second billing account, whose export stopped on 5 November


def _rewrite(source, target, keep, change) -> None:
    """``target``: the FOCUS rows of ``source`` that ``keep`` selects, each changed by ``change``."""
    rows = [change(row) for row in csv.DictReader(io.StringIO(gzip.decompress(source.read_bytes()).decode()))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(row for row in rows if keep(row))
    target.write_bytes(gzip.compress(out.getvalue().encode(), mtime=0))


def second_account_root(tmp_path):
    """The demo data plus two other billing accounts' FOCUS exports: account 999988887777's November
    export (globex's ML cost, tagged with the allocation's alias globex-corp) stopped on the 5th while
    the main account's runs to the 19th; account 555566667777 was last charged on 10 October and has
    no November cost. A budget (ml-monthly) selects only the stopped account's cost."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    cost = root / "evidence/cost"

    def account(number, category=None):
        def change(row):
            row = {
                **row,
                "BillingAccountId": number,
                "SubAccountId": number,
                "ResourceId": f"{number}-{row['ResourceId']}",
            }
            ml = {"ServiceCategory": category, "ServiceName": "Amazon SageMaker", "Tags": '{" org": "globex-corp"}'}
            return row | (ml if category else {})

        return change

    _rewrite(cost / "focus-2026-11.csv.gz", cost / "focus-labs-2026-11.csv.gz",
             lambda r: r["ChargePeriodStart"] < "2026-11-06" and "lobex" in r["Tags"],
             account(LABS, "AI and Machine Learning"))  # fmt: skip
    _rewrite(cost / "focus-2026-10.csv.gz", cost / "focus-old-2026-10.csv.gz",
             lambda r: r["ChargePeriodStart"] < "2026-10-11", account("555566667777"))  # fmt: skip
    budgets = root / "policy/cost-budgets.yaml"
    budgets.write_text(
        budgets.read_text()
        + "  - {name: ml-monthly, service_category: AI and Machine Learning, amount: 900, currency: USD, owner: team:ml}\n"
    )
    return root


def test_a_billing_account_whose_export_stopped_is_named_while_the_kind_stays_fresh(tmp_path, home):
    """Freshness looked at the kind's newest file only: a second billing account's export that stopped
    on 5 November, beside the main account's current to the 19th, gave no finding and the budgets
    silently lacked that account's cost since. Now the account is a warning (an account closed mid-month
    is legitimate) naming its last charge day, the kind's max_age and its newest file, and the budget
    whose scope selects only its cost says its actual and forecast are built on stale cost. An account
    last charged in October, with no November cost, is not stale in November."""
    root = second_account_root(tmp_path)
    labs = root / "evidence/cost/focus-labs-2026-11.csv.gz"

    report = gate_report([root], home)
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    assert (gate["blocking"], report["verdict"]) == (False, "pass")
    (account,) = [f for f in gate["findings"] if f["rule"] == "account-max-age"]
    assert (account["severity"], account["subject"]) == ("warning", f"billing account {LABS}")
    assert (account["evidence"], account["owner"]) == (str(labs), "team:finops")
    assert account["runbook"].endswith("cost-budgets.md")
    assert account["observed"].startswith("last charge day 2026-11-05 (15d 12h old) in 2026-11, while cost_exports")
    assert "globex-monthly, ml-monthly" in account["observed"]
    assert account["limit"].startswith("P3D (3d 0h), the max_age of cost_exports")
    assert account["details"] | {"budgets": ["globex-monthly", "ml-monthly"], "last_charge_day": "2026-11-05",
                                 "kind": "cost_exports", "max_age": "P3D", "month": "2026-11"} == account["details"]  # fmt: skip
    (stale,) = [f for f in gate["findings"] if f["rule"] == "current-cost"]
    assert (stale["severity"], stale["subject"], stale["owner"]) == ("warning", "ml-monthly", "team:ml")
    assert stale["evidence"] == str(labs)
    assert "built only on cost of billing account 999988887777, last charged 2026-11-05" in stale["observed"]
    assert "555566667777" not in str(gate["findings"])  # October's account: nothing to say in November


def test_a_correction_of_an_earlier_period_counts_in_the_month_that_invoices_it_and_is_named(tmp_path, home):
    """FOCUS ``ChargeClass: Correction``: a charge of a previously invoiced billing period, invoiced in
    this one. FOCUS totals a billing period (the invoice) with its corrections; counted on its original
    charge day, a late October charge invoiced in November silently raised October, left November's
    budget without it, and the gate said nothing."""
    import duckdb

    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    november = root / "evidence/cost/focus-2026-11.csv.gz"
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(november.read_bytes()).decode())))
    late = dict(rows[0])  # acme's EC2, re-rated: 9,000 more for October 15th, on November's invoice
    late |= {"BilledCost": "9000", "EffectiveCost": "9000", "ListCost": "9000", "ContractedCost": "9000",
             "ChargePeriodStart": "2026-10-15T00:00:00Z", "ChargePeriodEnd": "2026-10-16T00:00:00Z",
             "ChargeClass": "Correction"}  # fmt: skip
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows([*rows, late])
    november.write_bytes(gzip.compress(out.getvalue().encode(), mtime=0))

    report = gate_report([root], home)
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    found = {f["rule"]: f for f in gate["findings"] if f["subject"] in ("acme-monthly", str(november))}
    assert found["actual>=100%"]["details"]["actual"] > 11000  # November's invoice holds it
    correction = found["corrections-invoiced"]
    assert (correction["severity"], correction["evidence"]) == ("warning", str(november))
    assert "2026-10-15..2026-10-15" in correction["observed"] and "billed 9,000.00" in correction["observed"]

    def october(warehouse) -> float:
        with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as conn:
            return conn.execute(
                "SELECT round(sum(effective), 6)::DOUBLE FROM cost_attribution WHERE tenant = 'acme' "
                "AND charge_day >= '2026-10-01' AND charge_day < '2026-11-01'"
            ).fetchone()[0]

    gate_report([DATA], tmp_path / "before")  # the evidence without the correction
    assert october(home) == october(tmp_path / "before")  # October as it was invoiced, not reopened
