"""FOCUS conformance with Great Expectations (GX Core 1.x): each export's schema and a bounded
sample, outside the bulk load path. GX is imported here, lazily (it costs seconds to import)."""

from __future__ import annotations

import os

from phase8_assets.evidence.focus import COSTS, ISO_8601, MANDATORY, TIMES

SAMPLE_ROWS = 5_000
CHARGE_CATEGORIES = ["Usage", "Purchase", "Tax", "Credit", "Adjustment"]
SERVICE_CATEGORIES = [
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases", "Developer Tools",
    "Multicloud", "Identity", "Integration", "Internet of Things", "Management and Governance", "Media", "Migration",
    "Mobile", "Networking", "Security", "Storage", "Web", "Other",
]  # fmt: skip
NUMBER = r"^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$"


def validate_sample(frame, columns: list[str]) -> list[dict]:
    """Run the FOCUS 1.2 expectations on ``frame`` (all text); one dict per failed expectation,
    naming the column, the rule and the failing sample rows (0-based positions in the sample)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("focus")
        .add_dataframe_asset("export")
        .add_batch_definition_whole_dataframe("sample")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name="focus-1.2")
    provider = "ServiceProviderName" if "ServiceProviderName" in columns else "ProviderName"
    for column in (*MANDATORY, provider):
        suite.add_expectation(gx.expectations.ExpectColumnToExist(column=column))
    present = set(columns)
    for column in COSTS:
        if column in present:
            suite.add_expectation(gx.expectations.ExpectColumnValuesToMatchRegex(column=column, regex=NUMBER))
    for column in TIMES:
        if column in present:
            suite.add_expectation(gx.expectations.ExpectColumnValuesToMatchRegex(column=column, regex=ISO_8601))
    for column in ("BilledCost", "BillingCurrency", "ChargePeriodStart", "BillingAccountId"):
        if column in present:
            suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    if "BillingCurrency" in present:
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToMatchRegex(column="BillingCurrency", regex=r"^[A-Z]{3}$")
        )
    if "ChargeCategory" in present:
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeInSet(column="ChargeCategory", value_set=CHARGE_CATEGORIES)
        )
    if "ServiceCategory" in present:
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeInSet(column="ServiceCategory", value_set=SERVICE_CATEGORIES)
        )
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    failures = []
    for r in result.results:
        if r.success:
            continue
        details = r.result or {}
        failures.append(
            {
                "column": r.expectation_config.kwargs.get("column"),
                "expectation": r.expectation_config.type,
                "failing_rows": list(details.get("partial_unexpected_index_list") or [])[:10],
                "examples": [str(v) for v in (details.get("partial_unexpected_list") or [])[:5]],
                "unexpected": details.get("unexpected_count"),
            }
        )
    return failures
