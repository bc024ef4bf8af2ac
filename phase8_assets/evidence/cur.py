"""AWS CUR 2.0 (Data Exports) on S3 (evidence kind ``cur_exports``): the manifests.

An export delivers ``<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/*.parquet`` and, last,
``<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`` whose ``dataFiles``
list the complete delivery. phase8 reads the manifests as evidence and loads exactly the files a
manifest lists (a part still being written is not listed, so never read); a newer execution of the
same billing period replaces the earlier one's rows, never adds to them. The Parquet columns map
onto FOCUS (``focus_sql``): unblended cost is billed cost; effective cost is amortised as Cost
Explorer amortises it — covered usage at its Savings Plan or reservation effective cost, a Savings
Plan negation and upfront fee at 0 (the covered usage carries that cost), a Savings Plan's recurring
fee at its unused commitment, a reservation's fee at its unused upfront and recurring fees, a
reservation's upfront ``Fee`` at 0, everything else at its unblended cost.

The data files are part of the manifest's evidence: when collected (``spool_dir`` given), the
reader stages every listed file, checks it and writes its rows, in the warehouse's columns, to a
Parquet spool that ``cost_line_items`` loads. A listed file that is gone or unreadable, a column the
mapping needs that the file lacks, a line item without a cost, currency code or usage time (a missing
cost is never 0), covered usage or a commitment fee without what amortises it, a row of another
billing period than the manifest's, or a delivery without rows rejects the manifest: its period is
never loaded in part.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from phase8_assets.evidence import EvidenceError, ReadResult, json_document, on_abandon
from phase8_assets.evidence.revisions import derived_version

_PERIOD = re.compile(r"BILLING_PERIOD=(\d{4}-\d{2})")
CATEGORIES = {
    "AmazonEC2": "Compute", "AWSLambda": "Compute", "AmazonEKS": "Compute", "AmazonECS": "Compute",
    "AmazonS3": "Storage", "AmazonEFS": "Storage", "AmazonRDS": "Databases", "AmazonDynamoDB": "Databases",
    "AmazonCloudFront": "Networking", "AmazonVPC": "Networking", "AWSDataTransfer": "Networking",
    "AWSSupportBusiness": "Management and Governance", "AmazonCloudWatch": "Management and Governance",
}  # fmt: skip
REQUIRED = (
    "line_item_usage_start_date",
    "line_item_unblended_cost",
    "line_item_currency_code",
    "line_item_product_code",
)


# Every column ``focus_sql`` reads: a data file without one cannot be mapped.
DATA_COLUMNS = (
    "bill_billing_period_start_date", "bill_payer_account_id", "line_item_usage_account_id",
    "line_item_usage_start_date", "line_item_line_item_type", "line_item_product_code", "line_item_resource_id",
    "line_item_currency_code", "line_item_unblended_cost", "savings_plan_savings_plan_effective_cost",
    "reservation_effective_cost", "resource_tags",
)  # fmt: skip
# What amortises commitment fees (``focus_sql``): needed only by the line items that have such fees, so
# a file without them (an export of fewer columns, no commitments) reads each as missing (NULL).
AMORTISATION_COLUMNS = {
    "savings_plan_total_commitment_to_date": "DOUBLE", "savings_plan_used_commitment": "DOUBLE",
    "reservation_unused_amortized_upfront_fee_for_billing_period": "DOUBLE",
    "reservation_unused_recurring_fee": "DOUBLE", "reservation_reservation_a_r_n": "VARCHAR",
}  # fmt: skip
MAX_EXAMPLES = 3


def read_manifest(data: bytes | Path, uri: str, spool_dir: Path | None = None) -> ReadResult:
    """The manifest and, with ``spool_dir`` (the collector), its data files spooled (module doc);
    without it (``phase8 validate``, a manifest on its own) the manifest alone."""
    if isinstance(data, Path):
        data = data.read_bytes()
    try:
        doc = json_document(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvidenceError("(document)", f"not a JSON manifest ({exc})") from exc
    if not isinstance(doc, dict):
        raise EvidenceError("(document)", "expected a Data Exports manifest object")
    files = doc.get("dataFiles")
    if not isinstance(files, list) or not all(isinstance(f, str) and f.startswith("s3://") for f in files):
        legacy = " (this is a legacy CUR manifest: reportKeys)" if "reportKeys" in doc else ""
        raise EvidenceError("dataFiles", f"expected the list of the export's s3:// data file URIs{legacy}")
    if not files:
        raise EvidenceError("dataFiles", "empty; expected the s3:// URIs of the data files the execution delivered")
    if not isinstance(doc.get("executionId"), str) or not doc["executionId"]:
        raise EvidenceError("executionId", "expected the export execution's id")
    period = _PERIOD.search(uri)
    if not period:
        raise EvidenceError("(path)", "expected the manifest under metadata/BILLING_PERIOD=YYYY-MM/")
    columns = {c.get("name") for c in doc.get("columns") or [] if isinstance(c, dict)}
    missing = [c for c in REQUIRED if columns and c not in columns]
    if missing:
        raise EvidenceError("columns", f"CUR 2.0 column(s) missing: {', '.join(missing)}")
    # The version the delivery's rows are loaded under: its execution, as ``focus_sql`` maps it now
    # (``derived_version``), so a warehouse that loaded the execution under an earlier mapping loads it
    # again, never keeps those rows.
    execution = derived_version("cur_exports", doc["executionId"])
    record = {"period": period.group(1), "execution": execution, "data_files": list(files)}
    # A delivery's time is the last usage day it holds, as a FOCUS export's is its last charge day: an
    # export that stopped being delivered on the 3rd is stale on the 20th, though its month is not
    # over. The manifest alone (no data read) vouches for its billing period's first day only.
    observed, field = datetime.strptime(record["period"], "%Y-%m").replace(tzinfo=UTC), "BILLING_PERIOD"
    summary = {"period": record["period"], "files": len(files)}
    spool = None
    if spool_dir is not None:
        spool = spool_dir / "rows.parquet"
        summary |= _spool_delivery(list(files), record["period"], spool)
        last = summary["last_day"]
        observed = datetime(last.year, last.month, last.day, tzinfo=UTC)
        field = "line_item_usage_start_date (the last usage day delivered)"
        summary["last_day"] = last.isoformat()
    return ReadResult(observed_at=observed, timestamp_field=field, summary=summary, records=[record], spool=spool)


def _problems(period: str) -> list[tuple[str, str, str]]:
    """(column, what was expected, SQL condition) for every way a CUR row cannot be counted."""
    return [
        ("line_item_unblended_cost", "a cost on every line item (a missing cost is never 0)",
         "line_item_unblended_cost IS NULL"),
        ("line_item_currency_code", "an ISO 4217 currency code on every line item",
         "NOT coalesce(regexp_full_match(CAST(line_item_currency_code AS VARCHAR), '[A-Za-z]{3}'), false)"),
        ("line_item_usage_start_date", "a usage start time on every line item", "line_item_usage_start_date IS NULL"),
        ("savings_plan_savings_plan_effective_cost", "the effective cost of Savings Plan covered usage",
         "line_item_line_item_type = 'SavingsPlanCoveredUsage' AND savings_plan_savings_plan_effective_cost IS NULL"),
        ("reservation_effective_cost", "the effective cost of reserved (discounted) usage",
         "line_item_line_item_type = 'DiscountedUsage' AND reservation_effective_cost IS NULL"),
        ("savings_plan_total_commitment_to_date", "the commitment of a Savings Plan recurring fee (its amortised cost)",
         "line_item_line_item_type = 'SavingsPlanRecurringFee' AND savings_plan_total_commitment_to_date IS NULL"),
        ("savings_plan_used_commitment", "the used commitment of a Savings Plan recurring fee (its amortised cost)",
         "line_item_line_item_type = 'SavingsPlanRecurringFee' AND savings_plan_used_commitment IS NULL"),
        ("reservation_unused_amortized_upfront_fee_for_billing_period",
         "the unused upfront fee of a reservation fee (its amortised cost)",
         "line_item_line_item_type = 'RIFee' AND reservation_unused_amortized_upfront_fee_for_billing_period IS NULL"),
        ("reservation_unused_recurring_fee", "the unused recurring fee of a reservation fee (its amortised cost)",
         "line_item_line_item_type = 'RIFee' AND reservation_unused_recurring_fee IS NULL"),
        ("bill_billing_period_start_date", f"the manifest's billing period {period} (BILLING_PERIOD in its path)",
         f"strftime(TRY_CAST(bill_billing_period_start_date AS TIMESTAMP), '%Y-%m') IS DISTINCT FROM '{period}'"),
    ]  # fmt: skip


def _spool_delivery(files: list[str], period: str, spool: Path) -> dict:
    """Stage the data files, check them (module doc) and write their rows to ``spool``; a summary of
    the delivery, or ``EvidenceError`` (and no spool)."""
    from phase8_assets.evidence.roots import RootError, local_copy

    with tempfile.TemporaryDirectory(prefix="data-", dir=spool.parent) as tmp:
        staged = {}
        for uri in files:
            try:
                staged[local_copy(uri, Path(tmp))] = uri
            except RootError as exc:
                reason = str(exc).rstrip(".")
                raise EvidenceError("dataFiles", f"{reason}; expected every data file the manifest lists, delivered "
                                                 "before it") from None  # fmt: skip
        conn = duckdb.connect(config={"threads": min(4, os.cpu_count() or 1), "preserve_insertion_order": False})
        try:
            with on_abandon(conn.interrupt):  # the collector's time limit ends the pass
                return _check_and_spool(conn, staged, period, spool)
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        finally:
            conn.close()


def _check_and_spool(conn: duckdb.DuckDBPyConnection, staged: dict[str, str], period: str, spool: Path) -> dict:
    """``staged``: each local copy's data file URI."""
    # Data Exports' timestamps are UTC; a Parquet timestamp marked UTC-adjusted reads as TIMESTAMPTZ,
    # which DuckDB would turn into dates and months in the host's zone (November 1st 00:00 UTC is
    # October 31st in New York: a valid delivery rejected as another billing period).
    conn.execute("SET TimeZone = 'UTC'")

    def sql_list(paths) -> str:
        return ", ".join("'" + p.replace("'", "''") + "'" for p in paths)

    present: set[str] = set()
    for path, uri in staged.items():
        try:
            names = {
                r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM read_parquet([{sql_list([path])}])").fetchall()
            }
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0].replace(path, uri)
            raise EvidenceError("dataFiles", f"{uri}: not a readable CUR 2.0 Parquet file ({first})") from None
        missing = [c for c in DATA_COLUMNS if c not in names]
        if missing:
            raise EvidenceError(", ".join(missing), f"CUR 2.0 column(s) missing from the data file {uri}")
        present |= names
    absent = ", ".join(f"NULL::{t} AS {c}" for c, t in AMORTISATION_COLUMNS.items() if c not in present)
    source = (f"(SELECT *{', ' + absent if absent else ''} "
              f"FROM read_parquet([{sql_list(staged)}], union_by_name = true, filename = 'phase8_file'))")  # fmt: skip
    problems = _problems(period)
    try:
        *counts, total = conn.execute(
            f"SELECT {', '.join(f'count(*) FILTER (WHERE {cond})' for _, _, cond in problems)}, count(*) FROM {source}"
        ).fetchone()
        for (column, expected, cond), bad in zip(problems, counts, strict=True):
            if bad:
                examples = conn.execute(
                    f"SELECT phase8_file, CAST({column} AS VARCHAR) FROM {source} WHERE {cond} LIMIT {MAX_EXAMPLES}"
                ).fetchall()
                shown = ", ".join(f"{v!r} in {staged.get(f, f)}" for f, v in examples)
                raise EvidenceError(column, f"expected {expected}; {bad} row(s) without it: {shown}")
        if not total:
            raise EvidenceError("dataFiles", "no cost rows in the data files; expected the period's line items")
        target = str(spool).replace("'", "''")
        conn.execute(f"COPY ({focus_sql(source)}) TO '{target}' (FORMAT parquet)")
        rows, currencies, billed, last = conn.execute(
            "SELECT count(*), list(DISTINCT currency), sum(billed), max(charge_day) FROM read_parquet(?)", [str(spool)]
        ).fetchone()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        for path, uri in staged.items():
            first = first.replace(path, uri)
        raise EvidenceError("dataFiles", f"not readable as CUR 2.0 ({first})") from None
    return {"rows": rows, "currencies": sorted(currencies), "billed": str(billed), "last_day": last}


def focus_sql(source: str) -> str:
    """The canonical ``cost_line_items`` columns from CUR 2.0 rows (``source``: a table expression with
    every column of ``DATA_COLUMNS`` and ``AMORTISATION_COLUMNS``). Effective cost is the amortised
    cost as Cost Explorer shows it (module doc): a negation counted as well would take the Savings
    Plan's savings off the spend twice, an upfront fee would count a year's commitment on one day."""
    category = (
        "CASE line_item_product_code "
        + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in CATEGORIES.items())
        + " ELSE 'Other' END"
    )
    return f"""
        SELECT strftime(bill_billing_period_start_date, '%Y-%m') AS billing_period, 'AWS' AS provider,
               bill_payer_account_id AS billing_account, line_item_usage_account_id AS sub_account,
               CAST(line_item_usage_start_date AS DATE) AS charge_day,
               CASE WHEN line_item_line_item_type IN ('Credit', 'Refund') THEN 'Credit'
                    WHEN line_item_line_item_type = 'Tax' THEN 'Tax' ELSE 'Usage' END AS charge_category,
               {category} AS service_category, line_item_product_code AS service_name,
               line_item_resource_id AS resource_id, upper(line_item_currency_code) AS currency,
               CAST(line_item_unblended_cost AS DECIMAL(38, 12)) AS billed,
               CAST(CASE WHEN line_item_line_item_type = 'SavingsPlanCoveredUsage'
                              THEN savings_plan_savings_plan_effective_cost
                         WHEN line_item_line_item_type IN ('SavingsPlanNegation', 'SavingsPlanUpfrontFee') THEN 0
                         WHEN line_item_line_item_type = 'SavingsPlanRecurringFee'
                              THEN savings_plan_total_commitment_to_date - savings_plan_used_commitment
                         WHEN line_item_line_item_type = 'DiscountedUsage' THEN reservation_effective_cost
                         WHEN line_item_line_item_type = 'RIFee'
                              THEN reservation_unused_amortized_upfront_fee_for_billing_period
                                   + reservation_unused_recurring_fee
                         WHEN line_item_line_item_type = 'Fee' AND coalesce(reservation_reservation_a_r_n, '') <> ''
                              THEN 0
                         ELSE line_item_unblended_cost END AS DECIMAL(38, 12)) AS effective,
               CASE WHEN resource_tags IS NULL OR cardinality(resource_tags) = 0 THEN NULL
                    ELSE CAST(to_json(resource_tags) AS VARCHAR) END AS tags
        FROM {source}
    """
