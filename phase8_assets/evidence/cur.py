"""AWS CUR 2.0 (Data Exports) on S3 (evidence kind ``cur_exports``): the manifests.

An export delivers ``<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/*.parquet`` and, last,
``<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`` whose ``dataFiles``
list the complete delivery. phase8 reads the manifests as evidence and loads exactly the files a
manifest lists (a part still being written is not listed, so never read); a newer execution of the
same billing period replaces the earlier one's rows, never adds to them. The Parquet columns map
onto FOCUS (``CUR_TO_FOCUS``): unblended cost is billed cost; effective cost is amortised — the
Savings Plan or reservation effective cost of covered usage, the unblended cost otherwise.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from phase8_assets.evidence import EvidenceError, ReadResult, json_document

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


def read_manifest(data: bytes, uri: str) -> ReadResult:
    try:
        doc = json_document(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvidenceError("(document)", f"not a JSON manifest ({exc})") from exc
    if not isinstance(doc, dict):
        raise EvidenceError("(document)", "expected a Data Exports manifest object")
    files = doc.get("dataFiles")
    if not isinstance(files, list) or not all(isinstance(f, str) and f.startswith("s3://") for f in files):
        raise EvidenceError("dataFiles", "expected the list of the export's s3:// data file URIs")
    if not isinstance(doc.get("executionId"), str) or not doc["executionId"]:
        raise EvidenceError("executionId", "expected the export execution's id")
    period = _PERIOD.search(uri)
    if not period:
        raise EvidenceError("(path)", "expected the manifest under metadata/BILLING_PERIOD=YYYY-MM/")
    columns = {c.get("name") for c in doc.get("columns") or [] if isinstance(c, dict)}
    missing = [c for c in REQUIRED if columns and c not in columns]
    if missing:
        raise EvidenceError("columns", f"CUR 2.0 column(s) missing: {', '.join(missing)}")
    record = {"period": period.group(1), "execution": doc["executionId"], "data_files": list(files)}
    # The billing period is the time a manifest vouches for: current until the month ends
    # (``PERIOD_KINDS``), so a delivery that stopped months ago is stale, never timeless.
    start = datetime.strptime(record["period"], "%Y-%m").replace(tzinfo=UTC)
    return ReadResult(observed_at=start, timestamp_field="BILLING_PERIOD (current until the month ends)",
                      summary={"period": record["period"], "files": len(files)}, records=[record])  # fmt: skip


def focus_sql(paths: list[str]) -> str:
    """The canonical ``cost_line_items`` columns from CUR 2.0 Parquet files."""
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
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
               line_item_resource_id AS resource_id, line_item_currency_code AS currency,
               CAST(line_item_unblended_cost AS DECIMAL(38, 12)) AS billed,
               CAST(CASE line_item_line_item_type
                        WHEN 'SavingsPlanCoveredUsage' THEN savings_plan_savings_plan_effective_cost
                        WHEN 'DiscountedUsage' THEN reservation_effective_cost
                        ELSE line_item_unblended_cost END AS DECIMAL(38, 12)) AS effective,
               CASE WHEN resource_tags IS NULL OR cardinality(resource_tags) = 0 THEN NULL
                    ELSE CAST(to_json(resource_tags) AS VARCHAR) END AS tags
        FROM read_parquet([{listed}], union_by_name = true)
    """
