"""AWS CUR 2.0 on S3 (moto's server on 127.0.0.1): manifests decide what is read; restatements replace."""

import json
from pathlib import Path

import duckdb
import pytest

from phase8_assets_tests.conftest import gate_report

pytestmark = pytest.mark.slow
BUCKET = "billing"
PREFIX = "cur/chatterbox-cur2"


def parquet(tmp_path, name: str, rows: list[tuple], period: str = "2026-11-01") -> bytes:
    """CUR 2.0 Parquet: the columns phase8 maps, resource_tags as a map, as Data Exports writes them."""
    path = tmp_path / name

    def tag_map(tags: dict) -> str:
        return "MAP {" + ", ".join(f"'{k}': '{v}'" for k, v in tags.items()) + "}::MAP(VARCHAR, VARCHAR)"

    values = ", ".join(
        f"(TIMESTAMP '{period}', '111122223333', '{acct}', TIMESTAMP '{day}', '{kind}', '{product}', 'r-{i}', '{(currency or ['USD'])[0]}', "
        f"{'NULL::DOUBLE' if cost is None else cost}, {'NULL' if sp_cost is None else sp_cost}, NULL, {tag_map(tags)})"
        for i, (acct, day, kind, product, cost, sp_cost, tags, *currency) in enumerate(rows)
    )
    duckdb.connect().execute(
        f"""COPY (SELECT * FROM (VALUES {values}) t(bill_billing_period_start_date, bill_payer_account_id,
            line_item_usage_account_id, line_item_usage_start_date, line_item_line_item_type, line_item_product_code,
            line_item_resource_id, line_item_currency_code, line_item_unblended_cost, savings_plan_savings_plan_effective_cost,
            reservation_effective_cost, resource_tags)) TO '{path}' (FORMAT parquet)"""
    )
    return path.read_bytes()


def put_manifest(s3, execution: str, files: list[str]) -> str:
    body = {"executionId": execution, "exportArn": "arn:aws:bcm-data-exports:us-east-1:111122223333:export/x",
            "columns": [{"name": n, "type": "string"} for n in ("line_item_usage_start_date", "line_item_unblended_cost",
                                                                 "line_item_currency_code", "line_item_product_code")],
            "dataFiles": [f"s3://{BUCKET}/{PREFIX}/data/BILLING_PERIOD=2026-11/{f}" for f in files]}  # fmt: skip
    key = f"{PREFIX}/metadata/BILLING_PERIOD=2026-11/chatterbox-cur2-Manifest.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())
    return f"s3://{BUCKET}/{key}"


def put_root(s3) -> None:
    """The evidence config and allocation policy of the root ``s3://billing``."""
    s3.put_object(Bucket=BUCKET, Key="phase8.yaml", Body=(
        b'apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: "10.4.0", commit: "abcdef1"}\n'
        b"evaluation_time: '2026-11-20T12:00:00Z'\ntenants: [acme, globex]\n"
        b"evidence:\n  cur_exports: {paths: ['cur/*/metadata/**/*-Manifest.json'], max_age: P3D}\n"
        b"  cost_allocation: {paths: ['allocation.yaml'], max_age: P365D}\n"
    ))  # fmt: skip
    s3.put_object(
        Bucket=BUCKET,
        Key="allocation.yaml",
        Body=b'apiVersion: phase8/v1\nkind: CostAllocation\nreviewed: "2026-10-01"\ntenant_keys: [tenant]\n',
    )


def test_cur_manifests_decide_what_is_loaded_and_restatements_replace(s3, tmp_path, home):
    s3.create_bucket(Bucket=BUCKET)
    rows = [
        ("123456789012", "2026-11-03 00:00:00", "Usage", "AmazonEC2", 10.0, None, {"user_tenant": "acme"}),
        (
            "123456789012",
            "2026-11-03 00:00:00",
            "SavingsPlanCoveredUsage",
            "AmazonEC2",
            8.0,
            5.0,
            {"user_tenant": "globex"},
        ),
        ("123456789012", "2026-11-03 00:00:00", "Usage", "AmazonS3", 2.0, None, {}),
    ]
    data = f"{PREFIX}/data/BILLING_PERIOD=2026-11"
    s3.put_object(
        Bucket=BUCKET, Key=f"{data}/chatterbox-cur2-00001.snappy.parquet", Body=parquet(tmp_path, "a.parquet", rows)
    )
    s3.put_object(Bucket=BUCKET, Key=f"{data}/chatterbox-cur2-00002.snappy.parquet",
                  Body=parquet(tmp_path, "b.parquet", [rows[0]]))  # a part not listed (still being written)  # fmt: skip
    put_manifest(s3, "exec-1", ["chatterbox-cur2-00001.snappy.parquet"])
    put_root(s3)
    gate_report([f"s3://{BUCKET}"], home)

    def tenants():
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
            return dict(
                conn.execute(
                    "SELECT tenant, sum(billed)::DOUBLE || '/' || sum(effective)::DOUBLE FROM cost_attribution GROUP BY 1"
                ).fetchall()
            )

    # Only the listed file; CUR's user_tenant tag is the tenant; covered usage is amortised at its SP cost.
    assert tenants() == {"acme": "10.0/10.0", "globex": "8.0/5.0", "__unallocated__": "2.0/2.0"}
    # A restated November (a new execution listing both parts) replaces the period, never doubles it.
    put_manifest(s3, "exec-2", ["chatterbox-cur2-00001.snappy.parquet", "chatterbox-cur2-00002.snappy.parquet"])
    gate_report([f"s3://{BUCKET}"], home)
    assert tenants() == {"acme": "20.0/20.0", "globex": "8.0/5.0", "__unallocated__": "2.0/2.0"}
    gate_report([f"s3://{BUCKET}"], home)  # the same execution again adds nothing
    assert tenants()["acme"] == "20.0/20.0"


def test_data_files_are_copied_whole_each_to_its_own_name_and_a_missing_one_is_named(s3, tmp_path):
    """A manifest's data files are staged in chunks whatever their bytes (no line splitting), two files
    of one name in different folders are two copies, and one that is gone is named, not a botocore
    traceback."""
    from phase8_assets.defs.finops import _local_copy
    from phase8_assets.evidence import EvidenceError
    from phase8_assets.evidence.roots import CHUNK_BYTES

    s3.create_bucket(Bucket="deliveries")
    binary = bytes(range(256)).replace(b"\n", b"").replace(b"\r", b"") * (CHUNK_BYTES // 128)  # no line ends
    s3.put_object(Bucket="deliveries", Key="x/a/part 1+.parquet", Body=binary)
    s3.put_object(Bucket="deliveries", Key="x/b/part 1+.parquet", Body=b"second\r\nfile\r")
    first = _local_copy("s3://deliveries/x/a/part 1+.parquet", tmp_path)
    second = _local_copy("s3://deliveries/x/b/part 1+.parquet", tmp_path)
    assert first != second
    assert (Path(first).read_bytes(), Path(second).read_bytes()) == (binary, b"second\r\nfile\r")
    with pytest.raises(EvidenceError, match=r"^\(file\): s3://deliveries/x/a/gone.parquet: cannot read: NoSuchKey"):
        _local_copy("s3://deliveries/x/a/gone.parquet", tmp_path)


USAGE = ("123456789012", "2026-11-03 00:00:00", "Usage", "AmazonEC2", 10.0, None, {"user_tenant": "acme"})


@pytest.mark.parametrize(
    "parts, field, reason",
    [
        # the manifest lists a part that is not in the bucket
        (
            {"00001": [USAGE], "00009": None},
            "dataFiles",
            r"^s3://billing/cur/chatterbox-cur2/data/BILLING_PERIOD=2026-11/chatterbox-cur2-00009.snappy.parquet: "
            r"cannot read: NoSuchKey.*; expected every data file the manifest lists, delivered before it$",
        ),
        (
            {"00001": b"PAR1 truncated"},
            "dataFiles",
            r"chatterbox-cur2-00001.snappy.parquet: not a readable CUR 2.0 Parquet",
        ),
        # a line item whose cost the export left empty: unknown, never 0
        (
            {"00001": [USAGE, (*USAGE[:4], None, None, {})]},
            "line_item_unblended_cost",
            r"^expected a cost on every line item .*; 1 row\(s\) without it: None in s3://billing/.*00001.snappy.parquet$",
        ),
        (
            {"00001": [USAGE, (*USAGE[:2], "SavingsPlanCoveredUsage", *USAGE[3:5], None, {})]},
            "savings_plan_savings_plan_effective_cost",
            r"^expected the effective cost of Savings Plan covered usage",
        ),
        # an export without the commitment columns: its Savings Plan fee cannot be amortised
        (
            {"00001": [USAGE, (*USAGE[:2], "SavingsPlanRecurringFee", "ComputeSavingsPlans", 7.0, None, {})]},
            "savings_plan_total_commitment_to_date",
            r"^expected the commitment of a Savings Plan recurring fee \(its amortised cost\); 1 row\(s\)",
        ),
        (
            {"00001": [USAGE], "00003": [(*USAGE[:4], 1.0, None, {}, "null")]},
            "line_item_currency_code",
            r"^expected an ISO 4217 currency code on every line item; 1 row\(s\) without it: 'null' in .*00003",
        ),
        # October's rows in November's delivery would be counted in the wrong month
        (
            {"00001": [USAGE], "00002": ([USAGE], "2026-10-01")},
            "bill_billing_period_start_date",
            r"^expected the manifest's billing period 2026-11 .*: '2026-10-01 00:00:00' in s3://billing/.*00002",
        ),
        ({}, "dataFiles", r"^empty; expected the s3:// URIs of the data files"),
    ],
    ids=[
        "listed-file-missing",
        "not-parquet",
        "cost-missing",
        "sp-effective-cost-missing",
        "sp-commitment-missing",
        "currency-not-a-code",
        "other-period",
        "no-files",
    ],
)
def test_a_delivery_that_cannot_be_counted_whole_is_a_rejected_manifest(s3, tmp_path, home, parts, field, reason):
    """A manifest whose data files cannot all be read and counted is unreadable evidence: rejected (the
    blocking evidence_validity gate names the manifest, the field and what was expected), and nothing
    of its period is loaded, rather than failing only the warn-level cost load."""
    import re

    s3.create_bucket(Bucket=BUCKET)
    data = f"{PREFIX}/data/BILLING_PERIOD=2026-11"
    for part, content in parts.items():
        if content is None:
            continue
        rows, period = content if isinstance(content, tuple) else (content, "2026-11-01")
        body = content if isinstance(content, bytes) else parquet(tmp_path, f"{part}.parquet", rows, period)
        s3.put_object(Bucket=BUCKET, Key=f"{data}/chatterbox-cur2-{part}.snappy.parquet", Body=body)
    manifest = put_manifest(s3, "exec-1", [f"chatterbox-cur2-{part}.snappy.parquet" for part in parts])
    put_root(s3)
    report = gate_report([f"s3://{BUCKET}"], home)
    validity = next(g for g in report["gates"] if g["gate"] == "evidence_validity")
    assert validity["status"] == "fail" and validity["blocking"]
    [finding] = [f for f in validity["findings"] if f["rule"] == "readable"]
    assert finding["evidence"] == manifest
    assert finding["details"]["field"] == field
    assert re.search(reason, finding["details"]["reason"]), finding["details"]["reason"]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM cost_line_items").fetchone() == (0,)


def test_create_new_export_file_versioning_counts_the_newest_execution_of_a_period(s3, tmp_path, home):
    """ "Create new export file" keeps every execution in its own folder, each with its manifest: the
    executions of one export and period are deliveries of that period, the newest counts and the older
    one is named in the cost_budgets gate, never summed."""
    s3.create_bucket(Bucket=BUCKET)
    put_root(s3)
    day = ("123456789012", "2026-11-03 00:00:00", "Usage", "AmazonEC2", 10.0, None, {"user_tenant": "acme"})
    later = ("123456789012", "2026-11-04 00:00:00", "Usage", "AmazonEC2", 10.0, None, {"user_tenant": "acme"})
    manifests = {}
    for folder, rows in (("20261104T061500Z-exec-1", [day]), ("20261105T061500Z-exec-2", [day, later])):
        data = f"{PREFIX}/data/BILLING_PERIOD=2026-11/{folder}/chatterbox-cur2-00001.snappy.parquet"
        s3.put_object(Bucket=BUCKET, Key=data, Body=parquet(tmp_path, f"{folder}.parquet", rows))
        key = f"{PREFIX}/metadata/BILLING_PERIOD=2026-11/{folder}/chatterbox-cur2-Manifest.json"
        body = {"executionId": folder.split("-", 1)[1], "dataFiles": [f"s3://{BUCKET}/{data}"]}
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())
        manifests[folder] = f"s3://{BUCKET}/{key}"
    report = gate_report([f"s3://{BUCKET}"], home)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT sum(billed)::DOUBLE FROM cost_attribution").fetchone() == (20.0,)  # not 30
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    (found,) = [f for f in gate["findings"] if f["rule"] == "newest-delivery-counts"]
    assert found["subject"] == manifests["20261104T061500Z-exec-1"]
    assert found["details"]["counted"] == manifests["20261105T061500Z-exec-2"]
    assert found["details"]["kind"] == "cur_exports" and found["details"]["billed_not_counted"] == "10.000000000000"


def test_commitments_are_amortised_as_cost_explorer_does(s3, tmp_path, home):
    """Effective cost is Cost Explorer's amortised cost: covered usage at its effective cost, the
    Savings Plan negation and upfront fee at 0, the recurring fee and the reservation fee at their
    unused part, a reservation's upfront fee at 0. Counting the negation as well took the covered
    usage's on-demand cost off its tenant (globex at -30 instead of 70) and the budget never warned."""
    s3.create_bucket(Bucket=BUCKET)
    for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):  # the other tests' deliveries
        s3.delete_object(Bucket=BUCKET, Key=listed["Key"])
    day, ec2 = "2026-11-03 00:00:00", "AmazonEC2"
    globex = {"user_tenant": "globex"}
    # type, product, unblended, SP effective, SP commitment, SP used, RI effective, RI unused upfront,
    # RI unused recurring, RI ARN, tags
    items = [
        ("Usage", ec2, 10.0, None, None, None, None, None, None, "", {"user_tenant": "acme"}),
        ("SavingsPlanCoveredUsage", ec2, 100.0, 70.0, None, None, None, None, None, "", globex),
        ("SavingsPlanNegation", ec2, -100.0, None, None, None, None, None, None, "", globex),
        ("SavingsPlanRecurringFee", "ComputeSavingsPlans", 80.0, None, 80.0, 70.0, None, None, None, "", {}),
        ("SavingsPlanUpfrontFee", "ComputeSavingsPlans", 8760.0, None, None, None, None, None, None, "", {}),
        ("DiscountedUsage", "AmazonRDS", 0.0, None, None, None, 40.0, None, None, "arn:ri", {"user_tenant": "acme"}),
        ("RIFee", "AmazonRDS", 30.0, None, None, None, None, 4.0, 1.0, "arn:ri", {}),
        ("Fee", "AmazonRDS", 5000.0, None, None, None, None, None, None, "arn:ri", {}),
        ("Fee", "AWSSupportBusiness", 100.0, None, None, None, None, None, None, "", {}),
    ]

    def value(v):
        return "NULL::DOUBLE" if v is None else repr(v)

    def tag_map(tags: dict) -> str:
        return "MAP {" + ", ".join(f"'{k}': '{v}'" for k, v in tags.items()) + "}::MAP(VARCHAR, VARCHAR)"

    values = ", ".join(
        f"(TIMESTAMP '2026-11-01', '111122223333', '123456789012', TIMESTAMP '{day}', '{kind}', '{product}', 'r-{i}', "
        f"'USD', {', '.join(value(v) for v in costs)}, '{arn}', "
        f"{tag_map(tags)})"
        for i, (kind, product, *costs, arn, tags) in enumerate(items)
    )
    path = tmp_path / "sp.parquet"
    duckdb.connect().execute(
        f"""COPY (SELECT * FROM (VALUES {values}) t(bill_billing_period_start_date, bill_payer_account_id,
            line_item_usage_account_id, line_item_usage_start_date, line_item_line_item_type, line_item_product_code,
            line_item_resource_id, line_item_currency_code, line_item_unblended_cost,
            savings_plan_savings_plan_effective_cost, savings_plan_total_commitment_to_date,
            savings_plan_used_commitment, reservation_effective_cost,
            reservation_unused_amortized_upfront_fee_for_billing_period, reservation_unused_recurring_fee,
            reservation_reservation_a_r_n, resource_tags)) TO '{path}' (FORMAT parquet)"""
    )
    key = f"{PREFIX}/data/BILLING_PERIOD=2026-11/chatterbox-cur2-00001.snappy.parquet"
    s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    put_manifest(s3, "exec-1", ["chatterbox-cur2-00001.snappy.parquet"])
    put_root(s3)
    gate_report([f"s3://{BUCKET}"], home)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        got = dict(conn.execute("SELECT tenant, sum(effective)::DOUBLE FROM cost_attribution GROUP BY 1").fetchall())
    # acme: 10 usage + 40 reserved usage; globex: 70 covered usage; unallocated: 10 unused commitment
    # + 5 unused reservation fees + 100 support (the upfront fees are amortised into the usage).
    assert got == {"acme": 50.0, "globex": 70.0, "__unallocated__": 115.0}

    # A warehouse that loaded this execution before (as the earlier mapping left it: keyed by the bare
    # execution id, the negation counted) loads it again: a reused home judges as a fresh one.
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute("UPDATE cost_files SET sha256 = 'exec-1'")
        conn.execute("UPDATE cost_line_items SET sha256 = 'exec-1', effective = billed")
    gate_report([f"s3://{BUCKET}"], home)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        again = dict(conn.execute("SELECT tenant, sum(effective)::DOUBLE FROM cost_attribution GROUP BY 1").fetchall())
    assert again == got


def test_utc_adjusted_timestamps_are_read_in_utc_whatever_the_host_zone(tmp_path):
    """Parquet timestamps marked UTC-adjusted read as TIMESTAMPTZ: on a host in New York, DuckDB took
    November 1st 00:00 UTC as October 31st and rejected a valid November delivery as another billing
    period (and would have put late-evening usage on the day before)."""
    from phase8_assets.evidence.cur import _check_and_spool

    path = tmp_path / "part.parquet"
    duckdb.connect().execute(
        f"""COPY (SELECT TIMESTAMPTZ '2026-11-01 00:00:00+00' AS bill_billing_period_start_date,
            '111122223333' AS bill_payer_account_id, '123456789012' AS line_item_usage_account_id,
            TIMESTAMPTZ '2026-11-01 02:00:00+00' AS line_item_usage_start_date, 'Usage' AS line_item_line_item_type,
            'AmazonEC2' AS line_item_product_code, 'i-1' AS line_item_resource_id, 'USD' AS line_item_currency_code,
            10.0::DOUBLE AS line_item_unblended_cost, NULL::DOUBLE AS savings_plan_savings_plan_effective_cost,
            NULL::DOUBLE AS reservation_effective_cost, MAP {{}}::MAP(VARCHAR, VARCHAR) AS resource_tags)
            TO '{path}' (FORMAT parquet)"""
    )
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'America/New_York'")  # the host's zone, DuckDB's default
    spool = tmp_path / "rows.parquet"
    summary = _check_and_spool(conn, {str(path): "s3://billing/part.parquet"}, "2026-11", spool)
    assert summary["rows"] == 1
    rows = duckdb.connect().execute(f"SELECT billing_period, charge_day::VARCHAR FROM '{spool}'").fetchall()
    assert rows == [("2026-11", "2026-11-01")]


def test_a_delivery_that_stopped_mid_month_is_stale(s3, tmp_path, home):
    """A delivery's time is its last usage day, as a FOCUS export's is its last charge day. It was its
    billing period, current until the month ended: a November export that stopped on the 2nd still
    counted as fresh on the 20th, and the budgets were judged on two days of cost without a word."""
    s3.create_bucket(Bucket=BUCKET)
    for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):  # the other tests' deliveries
        s3.delete_object(Bucket=BUCKET, Key=listed["Key"])
    put_root(s3)

    def freshness(last_day: int) -> list:
        rows = [(*USAGE[:1], f"2026-11-{d:02d} 00:00:00", *USAGE[2:]) for d in range(1, last_day + 1)]
        key = f"{PREFIX}/data/BILLING_PERIOD=2026-11/chatterbox-cur2-00001.snappy.parquet"
        s3.put_object(Bucket=BUCKET, Key=key, Body=parquet(tmp_path, f"{last_day}.parquet", rows))
        put_manifest(s3, f"exec-{last_day}", ["chatterbox-cur2-00001.snappy.parquet"])
        report = gate_report([f"s3://{BUCKET}"], home)
        gate = next(g for g in report["gates"] if g["gate"] == "evidence_freshness")
        return [(f["subject"], f["rule"], f["observed"]) for f in gate["findings"]]

    assert freshness(2) == [("cur_exports", "max-age", "newest is 18d 12h old")]
    assert freshness(19) == []  # delivered up to yesterday


FOCUS_HEADER = (
    "BilledCost,EffectiveCost,ListCost,ContractedCost,BillingAccountId,BillingCurrency,BillingPeriodStart,"
    "BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeClass,ProviderName,ServiceName,"
    "ServiceCategory,SubAccountId,ResourceId,Tags\n"
)


def focus_csv(days: list[int], cost: float = 10.0) -> bytes:
    """AWS's FOCUS 1.0 export of the payer account ``parquet`` writes: acme's EC2, one row a day."""
    rows = "".join(
        f"{cost},{cost},{cost},{cost},111122223333,USD,2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,"
        f"2026-11-{d:02d}T00:00:00Z,2026-11-{d + 1:02d}T00:00:00Z,Usage,,AWS,Amazon Elastic Compute Cloud,Compute,"
        f'123456789012,i-{d},"{{""user:tenant"": ""acme""}}"\n'
        for d in days
    )
    return (FOCUS_HEADER + rows).encode()


@pytest.mark.parametrize("focus_key", ["focus/a-first/focus-00001.csv", "focus/z-last/focus-00001.csv"])
def test_focus_and_cur_of_one_billing_account_count_once(s3, tmp_path, home, focus_key):
    """AWS Data Exports delivers a FOCUS 1.0 export and a CUR 2.0 export of the same payer account:
    both were summed, doubling the account's cost against every budget. One source counts per billing
    account and charge day (FOCUS, whatever the file names' order); the CUR days it holds are set aside
    with a warning naming both files, and CUR days FOCUS lacks still count."""
    s3.create_bucket(Bucket=BUCKET)
    for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):  # the other tests' deliveries
        s3.delete_object(Bucket=BUCKET, Key=listed["Key"])
    put_root(s3)
    config = s3.get_object(Bucket=BUCKET, Key="phase8.yaml")["Body"].read()
    config += b"  cost_exports: {paths: ['focus/**/*.csv'], max_age: P3D}\n"
    s3.put_object(Bucket=BUCKET, Key="phase8.yaml", Body=config)
    s3.put_object(Bucket=BUCKET, Key=focus_key, Body=focus_csv([17, 18, 19]))
    rows = [(*USAGE[:1], f"2026-11-{d:02d} 00:00:00", *USAGE[2:]) for d in (16, 17, 18, 19)]
    key = f"{PREFIX}/data/BILLING_PERIOD=2026-11/chatterbox-cur2-00001.snappy.parquet"
    s3.put_object(Bucket=BUCKET, Key=key, Body=parquet(tmp_path, "cur.parquet", rows))
    manifest = put_manifest(s3, "exec-1", ["chatterbox-cur2-00001.snappy.parquet"])
    report = gate_report([f"s3://{BUCKET}"], home)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        daily = dict(
            conn.execute("SELECT day(charge_day), sum(billed)::DOUBLE FROM cost_attribution GROUP BY 1").fetchall()
        )
    assert daily == {16: 10.0, 17: 10.0, 18: 10.0, 19: 10.0}  # not 20 on the days both exports hold
    gate = next(g for g in report["gates"] if g["gate"] == "cost_budgets")
    (found,) = [f for f in gate["findings"] if f["rule"] == "one-source-per-account"]
    assert found["subject"] == manifest and found["evidence"] == manifest
    assert found["details"]["counted"] == f"s3://{BUCKET}/{focus_key}"
    assert found["details"]["billing_account"] == "111122223333"
    assert (found["details"]["first_day"], found["details"]["days"]) == ("2026-11-17", 3)
    assert f"s3://{BUCKET}/{focus_key}" in found["observed"] and "111122223333" in found["observed"]


def test_the_budget_sensor_reads_the_deliveries_again_only_when_an_object_changed(s3, tmp_path, home, monkeypatch):
    """Every hourly tick downloaded every data file of every CUR delivery though nothing had changed.
    A tick whose listings show the same objects (ETags) reuses the last read; a data file rewritten
    under the same manifest, or a new execution, is read again."""
    import dagster as dg

    from phase8_assets.defs.finops import budget_alerts
    from phase8_assets.defs.resources import Phase8Settings, Warehouse
    from phase8_assets.evidence import roots

    s3.create_bucket(Bucket=BUCKET)
    for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):  # the other tests' deliveries
        s3.delete_object(Bucket=BUCKET, Key=listed["Key"])
    put_root(s3)
    config = s3.get_object(Bucket=BUCKET, Key="phase8.yaml")["Body"].read()
    s3.put_object(
        Bucket=BUCKET, Key="phase8.yaml", Body=config + b"  cost_budgets: {paths: ['budgets.yaml'], max_age: P365D}\n"
    )
    s3.put_object(Bucket=BUCKET, Key="budgets.yaml", Body=(
        b'apiVersion: phase8/v1\nkind: CostBudgets\nreviewed: "2026-10-01"\n'
        b"budgets:\n  - {name: acme-monthly, tenant: acme, amount: 100, currency: USD, owner: team:finops}\n"
    ))  # fmt: skip
    key = f"{PREFIX}/data/BILLING_PERIOD=2026-11/chatterbox-cur2-00001.snappy.parquet"
    rows = [(*USAGE[:1], f"2026-11-{d:02d} 00:00:00", *USAGE[2:]) for d in range(1, 20)]
    s3.put_object(Bucket=BUCKET, Key=key, Body=parquet(tmp_path, "a.parquet", rows))
    put_manifest(s3, "exec-1", ["chatterbox-cur2-00001.snappy.parquet"])
    gate_report([f"s3://{BUCKET}"], home)  # loads the delivery

    downloads = []
    real = roots.local_copy
    monkeypatch.setattr(roots, "local_copy", lambda uri, folder: downloads.append(uri) or real(uri, folder))
    resources = {"settings": Phase8Settings(evidence=[f"s3://{BUCKET}"]),
                 "warehouse": Warehouse(database=str(home / "warehouse.duckdb"))}  # fmt: skip

    def tick(cursor):
        downloads.clear()
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources,
                                          sensor_name="budget_alerts")  # fmt: skip
        return budget_alerts.evaluate_tick(context)

    with dg.instance_for_test() as instance:
        first = tick(None)
        assert len(downloads) == 1 and first.skip_message == "4 new threshold crossing(s) announced"
        unchanged = tick(first.cursor)
        assert downloads == []  # nothing changed: nothing downloaded
        assert unchanged.skip_message == "no new threshold crossing among 1 judged budget(s)"
        s3.put_object(Bucket=BUCKET, Key=key, Body=parquet(tmp_path, "b.parquet", rows[:-1]))  # rewritten in place
        rewritten = tick(unchanged.cursor)
        assert len(downloads) == 1
        again = tick(rewritten.cursor)
        assert downloads == []
        put_manifest(s3, "exec-2", ["chatterbox-cur2-00001.snappy.parquet"])  # a new execution
        new = tick(again.cursor)
        assert len(downloads) == 1 and len(new.run_requests) == 1  # read, and loaded before it is judged
