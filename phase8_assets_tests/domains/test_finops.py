"""FinOps: FOCUS files as their producers write them, exact attribution (hypothesis), budgets."""

import csv
import io
import itertools
import json
import re
import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase8_assets.domains.finops import (
    UNALLOCATED,
    attribute,
    backtest,
    budget_states,
    daily_spend,
    mark_stale,
    stale_accounts,
    superseded,
    tenant_rows,
)
from phase8_assets.evidence import EvidenceError, focus
from phase8_assets.evidence.cost_policy import read_allocation, read_budgets
from phase8_assets.warehouse import connect
from phase8_assets.warehouse.store import record_cost_file
from phase8_assets_tests.conftest import DATA

ALLOCATION = read_allocation((DATA / "policy/cost-allocation.yaml").read_bytes(), "x").records[0]
TENANTS = ["acme", "globex", "initech"]
HEADER = ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId", "BillingCurrency",
          "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
          "ProviderName", "ServiceName", "ServiceCategory", "SubAccountId", "Tags", "ResourceId"]  # fmt: skip
_n = itertools.count()


def csv_bytes(rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def line(day: date, billed, effective, currency="USD", category="Compute", sub="123456789012", tags=None,
         resource="i-0abc") -> list:  # fmt: skip
    return [str(billed), str(effective), str(billed), str(billed), "1", currency, f"{day:%Y-%m-01}T00:00:00Z",
            "2030-01-01T00:00:00Z", f"{day:%Y-%m-%d} 00:00:00", f"{day:%Y-%m-%d} 23:59:59", "Usage", "AWS", "EC2",
            category, sub, json.dumps(tags) if tags is not None else "NULL", resource]  # fmt: skip


@pytest.fixture
def wh(tmp_path):
    with connect(tmp_path / "w.duckdb") as conn:
        yield conn


def _loaded(wh) -> list[str]:
    """The deliveries loaded (every one counts here: these tests have no evidence root)."""
    return [r[0] for r in wh.execute("SELECT sha256 FROM cost_files ORDER BY 1").fetchall()]


def spooled(path: Path, uri: str | None = None) -> Path:
    """The export as ``cost_line_items`` loads it: validated and spooled by its reader."""
    folder = path.parent / f"spool-{next(_n)}"
    folder.mkdir()
    return focus.read(path, uri or str(path), spool_dir=folder).spool


def load(wh, tmp_path, rows, uri=None, root="/root"):
    path = tmp_path / f"export-{next(_n)}.csv"
    path.write_bytes(csv_bytes(rows))
    return record_cost_file(wh, root, uri or str(path), str(hash(path.read_bytes())), spooled(path, uri))


@pytest.mark.realdata
def test_real_focus_files_have_defined_outcomes(real_samples):
    sample = focus.read((real_samples / "finops/focus_sample.csv").read_bytes(), "x")
    assert sample.summary["rows"] == 1000 and sample.summary["billing_periods"] == ["2024-09", "2024-10"]
    assert Decimal(sample.summary["billed"]) < 100  # NULL strings are nulls; costs like 0.00000080000 exact
    for name, missing in (
        ("focus_spec_commitment_discount_purchase_scenario_3.csv", "BillingCurrency"),
        ("focus_spec_saas_virtual_currency_pricing_model_a2.csv", "ServiceCategory"),  # BOM, US short dates
        ("focus_spec_zero_percent_utilization_cdf.csv", "ServiceCategory"),
    ):
        with pytest.raises(EvidenceError, match="mandatory FOCUS column") as info:
            focus.read((real_samples / "finops" / name).read_bytes(), name)
        assert missing in info.value.field


def test_a_csv_export_is_sniffed_once_and_read_with_what_was_found(tmp_path):
    """The source names the dialect DuckDB sniffed (no second sniff when it is read), the same rows
    as auto-detection give, whatever the file is called; a file without a dialect falls back."""
    import duckdb

    rows = [line(date(2026, 11, d), f"{d}.25", "1", tags={"team": "a;b"}) for d in (1, 2, 3)]
    semicolons = csv_bytes(rows).decode().replace(",", ";").replace("\n", "\r\n").encode()
    path = tmp_path / "it's a ;export.csv"
    path.write_bytes(semicolons)
    conn = duckdb.connect()
    source = focus.source_sql(conn, path)
    assert "auto_detect = false, delim = ';'" in source and "new_line = '\\r\\n'" in source
    auto = f"read_csv('{str(path).replace(chr(39), chr(39) * 2)}', all_varchar = true, header = true, nullstr = ['NULL', ''])"
    assert conn.execute(f"SELECT * FROM {source}").fetchall() == conn.execute(f"SELECT * FROM {auto}").fetchall()
    assert focus.read(path, "x").summary["rows"] == 3
    nul = tmp_path / "nul.csv"  # a NUL byte cannot go into SQL text: auto-detection reads this one
    nul.write_text("\n".join([",".join([*HEADER, "Note\x00x"]), *(",".join([*r[:-1], "NULL", "n"]) for r in rows)]))
    assert "auto_detect = true" in focus.source_sql(conn, nul) and focus.read(nul, "nul.csv").summary["rows"] == 3
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "auto_detect = true" in focus.source_sql(conn, empty)
    with pytest.raises(EvidenceError, match="mandatory FOCUS column"):
        focus.read(empty, "empty.csv")


def test_bad_values_are_rejected_with_column_and_rows():
    good = line(date(2026, 11, 1), "1.5", "1.2")
    hour30 = list(good)
    hour30[9] = "2026-11-01T30:00:00Z"  # the FOCUS spec's own example file has this
    with pytest.raises(EvidenceError, match=r"row 2: '2026-11-01T30:00:00Z'") as info:
        focus.read(csv_bytes([good, hour30]), "x")
    assert info.value.field == "ChargePeriodEnd"
    us_date = list(good)
    us_date[8] = "11/1/26"
    with pytest.raises(EvidenceError, match="ISO 8601") as info:
        focus.read(csv_bytes([us_date]), "x")
    assert info.value.field == "ChargePeriodStart"
    comma = list(good)
    comma[0] = "12,50"
    with pytest.raises(EvidenceError) as info:
        focus.read(csv_bytes([comma]), "x")
    assert info.value.field == "BilledCost"
    bom = b"\xef\xbb\xbf" + csv_bytes([good])
    assert focus.read(bom, "x").summary["rows"] == 1


@pytest.mark.parametrize(
    "column, value, field, expected",
    [
        (5, "null", "BillingCurrency", "an ISO 4217 currency code"),  # the FOCUS spec's examples write nulls so
        (5, " ", "BillingCurrency", "an ISO 4217 currency code"),
        (5, "US Dollar", "BillingCurrency", "an ISO 4217 currency code"),
        (13, "NULL", "ServiceCategory", "a value (FOCUS requires one)"),  # budgets are scoped by it
    ],
)
def test_a_currency_or_service_category_no_budget_could_count_is_rejected(column, value, field, expected):
    """A line item whose currency is no currency code, or without a service category, would be cost of a
    currency or category of its own that no budget counts: the file is rejected, naming the row."""
    bad = line(date(2026, 11, 1), "1.5", "1.2")
    bad[column] = value
    with pytest.raises(
        EvidenceError, match=rf"^{field}: expected {re.escape(expected)}.*; 1 bad value\(s\): row 2: "
    ) as info:
        focus.read(csv_bytes([line(date(2026, 11, 1), "1", "1"), bad]), "x")
    assert info.value.field == field
    lower = focus.read(csv_bytes([line(date(2026, 11, 1), "1", "1", currency="usd")]), "x")
    assert lower.summary["currencies"] == ["USD"]  # the code a USD budget counts


def test_a_truncated_parquet_file_is_rejected_naming_the_evidence_file(wh, tmp_path):
    whole = tmp_path / "whole.parquet"
    (tmp_path / "rows.csv").write_bytes(csv_bytes([line(date(2026, 11, 3), 10, 10)]))
    wh.execute(f"COPY (SELECT * FROM read_csv('{tmp_path / 'rows.csv'}')) TO '{whole}' (FORMAT parquet)")
    truncated = tmp_path / "cut.parquet"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    uri = "s3://billing/focus/2026-11.parquet"
    with pytest.raises(EvidenceError) as info:
        focus.read(truncated.read_bytes(), uri)
    assert uri in info.value.reason and "/tmp" not in info.value.reason
    with pytest.raises(EvidenceError) as info:
        spooled(truncated, uri)
    assert uri in info.value.reason and str(truncated) not in info.value.reason
    assert not list(tmp_path.glob("spool-*/*"))  # nothing is left to load


@pytest.mark.parametrize("tags", ['"tenant": "acme","env": "prod"', "{tenant=acme}", '["tenant", "acme"]'])
def test_tags_that_are_no_json_object_reject_the_export_naming_the_row(tags):
    """Azure's brace-less tags, a map printed as text, a list: no tenant could be read from them, and
    one such row made cost_attribution fail for every export ("upstream step failed", naming nothing)."""
    bad = line(date(2026, 11, 1), "1.5", "1.2")
    bad[15] = tags
    with pytest.raises(EvidenceError, match=r"^Tags: expected a JSON object of tag keys and values") as info:
        focus.read(csv_bytes([line(date(2026, 11, 1), "1", "1", tags={"tenant": "acme"}), bad]), "x")
    assert info.value.field == "Tags" and f"row 2: {tags!r}" in info.value.reason
    none = [line(date(2026, 11, 1), "1", "1") for _ in range(4)]  # no tags, as exporters write none
    for row, text in zip(none, ("{}", "", "null", " NULL "), strict=True):
        row[15] = text
    assert focus.read(csv_bytes(none), "x").summary["rows"] == 4


def test_a_parquet_tags_map_is_read_as_its_json_object(wh, tmp_path):
    """A Parquet export whose Tags is a map column (as Data Exports writes its tag maps) was stored as
    DuckDB's text of the map (``{tenant=acme}``), which cost_attribution could not parse: it failed."""
    (tmp_path / "rows.csv").write_bytes(csv_bytes([line(date(2026, 11, 3), 10, 8, tags={"tenant": "acme"}),
                                                   line(date(2026, 11, 3), 5, 5)]))  # fmt: skip
    export = tmp_path / "export.parquet"
    wh.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN Tags IS NULL THEN NULL ELSE CAST(json(Tags) AS MAP(VARCHAR, VARCHAR)) "
        f"END AS Tags) FROM read_csv('{tmp_path / 'rows.csv'}', all_varchar = true, nullstr = 'NULL')) "
        f"TO '{export}' (FORMAT parquet)"
    )
    record_cost_file(wh, "/root", str(export), "v1", spooled(export))
    assert wh.execute("SELECT tags FROM cost_line_items ORDER BY billed DESC").fetchall() == [
        ('{"tenant":"acme"}',),
        (None,),
    ]
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=_loaded(wh))
    got = wh.execute("SELECT tenant, sum(effective)::DOUBLE FROM cost_attribution GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("__unallocated__", 5.0), ("acme", 8.0)]


def test_cost_tags_are_redacted_before_they_are_stored(wh, tmp_path):
    from phase8_assets_tests.corpus.secrets import SECRETS, leaks

    day = date(2026, 11, 3)
    secret_tags = {"tenant": "acme", "deploy-note": SECRETS[3].in_context(), "db_password": "plain-looking"}
    load(wh, tmp_path, [line(day, 10, 10, tags=secret_tags), line(day, 5, 5, tags={"tenant": "globex"})] * 3)
    stored = wh.execute("SELECT tags FROM cost_line_items").fetchall()
    assert len(stored) == 6 and not leaks(repr(stored)) and "plain-looking" not in repr(stored)
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=_loaded(wh))  # the tenant tag still attributes
    got = dict(wh.execute("SELECT tenant, sum(billed)::DOUBLE FROM cost_attribution GROUP BY 1").fetchall())
    assert got == {"acme": 30, "globex": 15}


def test_tags_are_normalised_and_aliases_resolved(wh, tmp_path):
    day = date(2026, 11, 3)
    load(wh, tmp_path, [
        line(day, 10, 10, tags={"Tenant ": "Acme"}),
        line(day, 20, 20, tags={"user:tenant": "globex"}),
        line(day, 30, 30, tags={" org": "initech-corp", "env": "prod"}),
        line(day, 40, 40, tags={"environment": "prod"}),  # untagged for tenancy
    ])  # fmt: skip
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=_loaded(wh))
    got = dict(wh.execute("SELECT tenant, sum(billed)::DOUBLE FROM cost_attribution GROUP BY 1").fetchall())
    assert got == {"acme": 10, "globex": 20, "initech": 30, UNALLOCATED: 40}


def test_shared_costs_split_proportional_and_fixed(wh, tmp_path):
    day = date(2026, 11, 3)
    load(wh, tmp_path, [
        line(day, 300, 300, tags={"tenant": "acme"}),
        line(day, 100, 100, tags={"tenant": "globex"}),
        line(day, 40, 40, sub="444455556666"),  # platform: proportional 3:1
        line(day, 10, 10, category="Management and Governance"),  # support: fixed 0.5 / 0.3 / 0.2
        line(day + timedelta(days=1), 8, 8, sub="444455556666"),  # no direct cost that day: unallocated
    ])  # fmt: skip
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=_loaded(wh))
    rows = wh.execute("SELECT tenant, source, sum(billed) FROM cost_attribution GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    got = {(t, s): v for t, s, v in rows}
    assert got[("acme", "shared:platform")] == Decimal("30") and got[("globex", "shared:platform")] == Decimal("10")
    assert (got[("acme", "shared:support")], got[("globex", "shared:support")], got[("initech", "shared:support")]) == (
        Decimal("5"), Decimal("3"), Decimal("2"))  # fmt: skip
    assert got[(UNALLOCATED, "unallocated")] == Decimal("8")


def test_shared_rule_tag_keys_are_normalised_like_tenant_keys(wh, tmp_path):
    policy = read_allocation(
        b"apiVersion: phase8/v1\nkind: CostAllocation\nreviewed: 2026-11-01\ntenant_keys: [tenant]\n"
        b"shared: [{name: common, split: even, tag: {key: ' Shared', value: 'Yes'}}]\n",
        "x",
    ).records[0]
    day = date(2026, 11, 3)
    load(wh, tmp_path, [
        line(day, 30, 30, tags={"user:shared": "yes"}),  # AWS user tag
        line(day, 30, 30, tags={"user_Shared": " YES"}),  # the same tag as CUR 2.0 columns name it
        line(day, 30, 30, tags={"shared": "yes"}),
    ])  # fmt: skip
    attribute(wh, "/root", ["/root"], policy, TENANTS, versions=_loaded(wh))
    got = dict(wh.execute("SELECT tenant, sum(billed)::DOUBLE FROM cost_attribution GROUP BY 1").fetchall())
    assert got == {"acme": 30, "globex": 30, "initech": 30}


money = st.decimals(min_value=Decimal("-50"), max_value=Decimal("5000"), places=6, allow_nan=False)
tag_choice = st.sampled_from([
    None, {"tenant": "acme"}, {"Tenant ": "GLOBEX"}, {"user:tenant": "initech"}, {" org": "acme-corp"},
    {"env": "prod"}, {"tenant": "umbrella"},
])  # fmt: skip
item = st.tuples(
    st.integers(0, 4), money, money, st.sampled_from(["USD", "EUR"]),
    st.sampled_from(["Compute", "Storage", "Management and Governance"]), st.sampled_from(["123456789012", "444455556666"]),
    tag_choice,
)  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(item, min_size=1, max_size=40))
def test_attributed_plus_unallocated_equals_the_input_to_the_cent(wh, tmp_path, items):
    root = f"/root{next(_n)}"
    rows = [
        line(date(2026, 11, 1) + timedelta(days=d), b, e, cur, cat, sub, tags) for d, b, e, cur, cat, sub, tags in items
    ]
    load(wh, tmp_path, rows, root=root)
    attribute(wh, root, [root], ALLOCATION, TENANTS, versions=_loaded(wh))
    query = "SELECT charge_day, currency, sum(billed), sum(effective) FROM {} WHERE root = ? GROUP BY ALL ORDER BY 1, 2"
    assert (
        wh.execute(query.format("cost_line_items"), [root]).fetchall()
        == wh.execute(query.format("cost_attribution"), [root]).fetchall()
    )
    # Tenant isolation: a tenant's export holds that tenant's rows only.
    for tenant in [*TENANTS, "umbrella", UNALLOCATED]:
        assert {r[2] for r in tenant_rows(wh, root, tenant)} <= {tenant}


def test_a_redelivered_file_replaces_its_period(wh, tmp_path):
    day = date(2026, 11, 3)
    first = load(wh, tmp_path, [line(day, 10, 10, tags={"tenant": "acme"})], uri="s3://billing/focus-2026-11.csv")
    restated = load(
        wh,
        tmp_path,
        [line(day, 12, 12, tags={"tenant": "acme"}), line(day, 1, 1)],
        uri="s3://billing/focus-2026-11.csv",
    )
    assert (first, restated) == (1, 2)
    assert wh.execute("SELECT count(*), sum(billed) FROM cost_line_items").fetchone() == (2, Decimal("13"))


def test_month_to_date_redeliveries_count_each_day_once_from_the_newest(wh, tmp_path):
    """Daily snapshots of one export, each delivery in its own folder: each charge day counts once,
    from the newest delivery holding it; another export of the same account (no shared line item) is
    summed."""
    day = date(2026, 11, 1)

    def delivery(name: str, rows) -> str:
        path = tmp_path / name
        path.write_bytes(csv_bytes(rows))
        uri = f"s3://billing/focus/{name.removesuffix('.csv')}/part-00001.csv"
        record_cost_file(wh, "/root", uri, name, spooled(path, uri))
        return name

    tags = {"tenant": "acme"}
    older = delivery("2026-11-03.csv", [line(day + timedelta(d), 10, 10, tags=tags) for d in range(3)])
    # a partial window, one day later, day 3 restated: day 1 only the older one holds still counts
    newer = delivery("2026-11-04.csv", [line(day + timedelta(d), 12 if d == 2 else 10, 10, tags=tags)
                                        for d in range(1, 4)])  # fmt: skip
    gpu = delivery("gpu.csv", [line(day + timedelta(1), 100, 100, tags=tags, resource="i-gpu")])
    focus_files = {v: f"s3://billing/focus/{v.removesuffix('.csv')}/part-00001.csv" for v in (older, newer, gpu)}
    folder = {v: uri.rsplit("/", 1)[0] for v, uri in focus_files.items()}
    versions, excluded, replaced = superseded(wh, ["/root"], focus_files, {})
    assert versions == sorted(focus_files)
    ((uri, by, period, days, billed, tie),) = [
        (r.uri, r.by, r.billing_period, r.days, r.billed, r.tie) for r in replaced
    ]
    assert (uri, by, period) == (focus_files[older], folder[newer], "2026-11") and not tie
    assert days == [day + timedelta(1), day + timedelta(2)] and Decimal(billed) == 20
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=versions, excluded=excluded)
    assert wh.execute("SELECT sum(billed) FROM cost_attribution").fetchone() == (Decimal("142"),)  # 10 + 32 + 100
    # Two deliveries ending on the same day: nothing says which is newer, so both count, and it is said.
    again = delivery("2026-11-05.csv", [line(day + timedelta(d), 11, 11, tags=tags) for d in range(1, 4)])
    focus_files[again] = f"s3://billing/focus/{again.removesuffix('.csv')}/part-00001.csv"
    folder[again] = focus_files[again].rsplit("/", 1)[0]
    versions, excluded, replaced = superseded(wh, ["/root"], focus_files, {})
    assert {(r.uri, r.by, r.tie, r.counted_too) for r in replaced} == {
        (focus_files[older], folder[again], False, None),
        (focus_files[newer], folder[again], True, "tie"),
    }
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=versions, excluded=excluded)
    # day 1: 10 (older only); days 2-4: again 33 and newer 32, both counted; gpu 100
    assert wh.execute("SELECT sum(billed) FROM cost_attribution").fetchone() == (Decimal("175"),)


def test_a_narrower_export_delivered_later_does_not_replace_a_broader_one(wh, tmp_path):
    """A billing-account export (subscriptions A and B) and a later subscription-A export share
    line items, but the narrower one lacks B's: nothing is left out, and the overlap is said."""
    day = date(2026, 11, 1)
    files = {}
    for name, subs, days in (("account", ("A", "B"), range(0, 14)), ("sub-a", ("A",), range(0, 15))):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(csv_bytes([line(day + timedelta(d), 100, 100, sub=sub, tags={"tenant": "acme"},
                                         resource=f"vm-{sub}") for d in days for sub in subs]))  # fmt: skip
        uri = f"s3://billing/{name}/part-00001.csv"
        record_cost_file(wh, "/root", uri, name, spooled(path, uri))
        files[name] = uri
    versions, excluded, replaced = superseded(wh, ["/root"], files, {})
    assert excluded == []
    ((found,),) = [[(r.uri, r.counted_too, len(r.days)) for r in replaced]]
    assert found == (files["account"], "partial", 14)
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=versions, excluded=excluded)
    assert wh.execute("SELECT sum(billed) FROM cost_attribution").fetchone() == (Decimal(100 * (28 + 15)),)


def test_the_numbered_parts_of_one_delivery_are_summed_however_their_line_items_overlap(wh, tmp_path):
    """An export splits a large delivery into numbered files in one folder; their line items overlap
    (the same resource on the same day in both): they are one delivery, all of it counts."""
    day = date(2026, 11, 1)
    files = {}
    for n, days in ((1, range(0, 3)), (2, range(2, 5))):  # day 3 is in both parts
        path = tmp_path / f"part-{n}.csv"
        path.write_bytes(csv_bytes([line(day + timedelta(d), 10, 10, tags={"tenant": "acme"}) for d in days]))
        uri = f"s3://billing/focus/20261105T0615Z-exec/part-0000{n}.csv"
        record_cost_file(wh, "/root", uri, path.name, spooled(path, uri))
        files[path.name] = uri
    versions, excluded, replaced = superseded(wh, ["/root"], files, {})
    assert (versions, excluded, replaced) == (sorted(files), [], [])
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=versions, excluded=excluded)
    assert wh.execute("SELECT sum(billed) FROM cost_attribution").fetchone() == (Decimal("60"),)


def test_a_bad_redelivery_is_refused_while_loading_and_keeps_the_stored_period(wh, tmp_path):
    day = date(2026, 11, 3)
    uri = "s3://billing/focus-2026-11.csv"
    assert load(wh, tmp_path, [line(day, 10, 10, tags={"tenant": "acme"})], uri=uri) == 1
    late = list(line(day, 5, 5))
    late[8] = "2026-11-03T23:30:00-02:00"  # zoned: UTC is the next day
    bad = list(line(day, 1, 1))
    bad[1] = "1.5 USD"
    missing = list(line(day, 2, 2))
    missing[5] = "NULL"
    unreported = list(line(day, 3, 3))
    unreported[1] = ""  # an effective cost the export did not fill: missing, never 0
    for rows, column, rows_named in (
        ([line(day, 12, 12), bad], "EffectiveCost", "row 2: '1.5 USD'"),
        ([missing, line(day, 1, 1)], "BillingCurrency", "row 1: None"),
        ([line(day, 1, 1), unreported], "EffectiveCost", "row 2: None"),
    ):
        with pytest.raises(EvidenceError, match=rows_named) as info:
            load(wh, tmp_path, rows, uri=uri)
        assert info.value.field == column
    assert wh.execute("SELECT count(*), sum(billed) FROM cost_files JOIN cost_line_items USING (root, sha256)").fetchone() == (
        1, Decimal("10"))  # fmt: skip
    load(wh, tmp_path, [late], uri="s3://billing/late.csv")
    assert wh.execute("SELECT charge_day FROM cost_line_items WHERE billed = 5").fetchone() == (
        day + timedelta(days=1),
    )


def test_budgets_forecast_month_end_by_trailing_mean_or_run_rate(wh, tmp_path):
    rows = [line(date(2026, 11, d), 50 if d <= 5 else 130, 50 if d <= 5 else 130, tags={"tenant": "acme"})
            for d in range(1, 11)]  # fmt: skip  # acme's spend steps up on the 6th
    load(wh, tmp_path, rows)
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=_loaded(wh))
    doc = (
        'apiVersion: phase8/v1\nkind: CostBudgets\nreviewed: "2026-10-01"\n{forecast}'
        "budgets: [{{name: acme, tenant: acme, amount: 3000, currency: USD, owner: team:finops}}]\n"
    )
    at = datetime(2026, 11, 12, tzinfo=UTC)
    (trailing,) = budget_states(wh, "/root", read_budgets(doc.format(forecast="").encode(), "x").records[0], at)
    # month to date 900, then (50 + 50 + 5 * 130) / 7 a day for the 20 days left
    assert trailing.actual == 900 and trailing.days_elapsed == 10
    assert trailing.forecast == pytest.approx(900 + 750 / 7 * 20) and trailing.forecast_label == "trailing 7-day"
    assert trailing.crossed == [("forecast", 0.8), ("forecast", 1.0)]
    run_rate_doc = doc.format(forecast="forecast: {method: run_rate}\n").encode()
    (run_rate,) = budget_states(wh, "/root", read_budgets(run_rate_doc, "x").records[0], at)
    assert run_rate.forecast == pytest.approx(2700) and run_rate.crossed == [("forecast", 0.8)]


def test_the_trailing_forecast_beats_the_run_rate_on_the_demo_history(wh):
    for path in sorted((DATA / "evidence/cost").glob("*.csv.gz")):
        with tempfile.TemporaryDirectory() as tmp:
            spool = focus.read(path, str(path), spool_dir=Path(tmp)).spool
            record_cost_file(wh, "/demo", str(path), path.name, spool)
    attribute(wh, "/demo", ["/demo"], ALLOCATION, TENANTS, versions=_loaded(wh))
    budgets = read_budgets((DATA / "policy/cost-budgets.yaml").read_bytes(), "x").records[0]
    months = [date(2026, 9, 1), date(2026, 10, 1)]  # the complete months of the demo's 90 days
    errors = {"trailing": [], "run_rate": []}
    for method, found in errors.items():
        for budget in budgets["budgets"]:
            daily = daily_spend(wh, "/demo", budget, date(2026, 8, 1), date(2026, 11, 30))
            found += backtest(daily, months, method)
    assert len(errors["trailing"]) == 4 * (29 + 30)
    for first, last in ((1, 10), (11, 20), (21, 31)):  # better in every third of the month
        total = {m: sum(e for d, e in found if first <= d <= last) for m, found in errors.items()}
        assert total["trailing"] < total["run_rate"], (first, total)
    assert max(e for _, e in errors["trailing"]) < 0.05 < max(e for _, e in errors["run_rate"])


@pytest.mark.realdata
def test_great_expectations_names_failing_columns_and_rows(real_samples):
    import duckdb

    from phase8_assets.domains.focus_quality import validate_sample
    from phase8_assets.evidence.focus import columns, source_sql

    conn = duckdb.connect()
    source = source_sql(conn, real_samples / "finops/focus_sample.csv")
    names = columns(conn, source)
    frame = conn.execute(f"SELECT * FROM {source} LIMIT 200").df()
    assert validate_sample(frame, names) == []
    frame.loc[3, "BilledCost"] = "12,50"
    frame.loc[7, "BillingCurrency"] = "usd"
    frame.loc[9, "ChargePeriodStart"] = "9/18/24"
    failures = {
        (f["column"], f["expectation"]): f
        for f in validate_sample(frame.drop(columns=["ListCost"]), [n for n in names if n != "ListCost"])
    }
    assert failures[("BilledCost", "expect_column_values_to_match_regex")]["failing_rows"] == [3]
    assert failures[("BillingCurrency", "expect_column_values_to_match_regex")]["examples"] == ["usd"]
    assert failures[("ChargePeriodStart", "expect_column_values_to_match_regex")]["failing_rows"] == [9]
    assert ("ListCost", "expect_column_to_exist") in failures


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**25), max_value=10**25).map(str),
        st.sampled_from(["0.00000080000", "12,50", "1e5", "999999.9999999999995", "1000000", " 7 ", "NaN", "-0"]),
        st.text(alphabet="0123456789.-+eE_ ,", max_size=24),
    )
)
def test_costs_parse_as_decimal_38_12_would(value):
    """The fast cost parse (64-bit first) gives exactly what parsing as DECIMAL(38, 12) gives."""
    import duckdb

    from phase8_assets.evidence.focus import _decimal

    fast, plain = duckdb.execute(
        f"SELECT {_decimal('v')}, TRY_CAST(v AS DECIMAL(38, 12)) FROM (SELECT ?::VARCHAR AS v)", [value]
    ).fetchone()
    assert fast == plain


def test_a_budget_selecting_no_cost_in_its_currency_is_not_judged_and_says_what_the_month_holds(wh, tmp_path):
    days = [date(2026, 11, d) for d in range(1, 11)]
    rows = [line(d, 40, 40, tags={"tenant": "acme"}) for d in days]
    rows += [line(d, 30, 30, currency="EUR", category="Storage", tags={"tenant": "globex"}) for d in days]
    rows += [line(days[0], 5, 5, currency="EUR", tags={"tenant": "acme"})]  # judged in USD: reported, not converted
    load(wh, tmp_path, rows)
    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=_loaded(wh))
    doc = (
        'apiVersion: phase8/v1\nkind: CostBudgets\nreviewed: "2026-10-01"\nbudgets:\n'
        "  - {name: acme, tenant: acme, amount: 3000, currency: USD, owner: team:finops}\n"
        "  - {name: acme-corp, tenant: acme-corp, amount: 3000, currency: USD, owner: team:finops}\n"
        "  - {name: compute, service_category: compute, amount: 3000, currency: USD, owner: team:finops}\n"
        "  - {name: globex, tenant: globex, amount: 1, currency: USD, owner: team:finops}\n"
    )
    at = datetime(2026, 11, 12, tzinfo=UTC)
    states = {s.budget["name"]: s for s in budget_states(wh, "/root", read_budgets(doc.encode(), "x").records[0], at)}
    assert states["acme"].unmatched is None and states["acme"].actual == 400
    assert states["acme"].uncounted == ["EUR"]
    for name in ("acme-corp", "compute", "globex"):  # no spend, no forecast, no crossing: not 0, not judged
        s = states[name]
        assert (s.actual, s.forecast, s.crossed) == (None, None, []) and s.unmatched["since"] == "2026-11-01", name
    # globex's 300 EUR is not 0 USD: its scope matches, in another currency
    assert states["globex"].unmatched["scope_currencies"] == ["EUR"]
    assert states["acme-corp"].unmatched["scope_currencies"] == []
    assert states["acme-corp"].unmatched["period_holds"] == {"tenant": ["acme", "globex"], "currency": ["EUR", "USD"]}
    assert states["compute"].unmatched["period_holds"]["service_category"] == ["Compute", "Storage"]
    # A month without any cost yet (its first export has not landed): 0 so far, judged, not a scope
    # that selects nothing; an export that stopped is the cost exports' freshness finding.
    december = budget_states(wh, "/root", read_budgets(doc.encode(), "x").records[0], datetime(2026, 12, 2, tzinfo=UTC))
    assert [(s.unmatched, s.actual) for s in december] == [(None, 0)] * 4


def test_the_dashboard_of_a_week_without_cost_or_budgets_says_so_rather_than_showing_a_total(wh):
    from phase8_assets.domains.finops_report import dashboard

    this_week, *_, budgets = dashboard(wh, "root", date(2026, 11, 16), date(2026, 11, 23), None)
    assert this_week.text.startswith("No cost data for this week in the warehouse")
    assert "1.00" not in this_week.text and "0.00" not in this_week.text  # no total made up of no data
    assert (budgets.heading, budgets.text) == (
        "Budgets",
        "No readable CostBudgets file in the evidence: no budget was judged.",
    )


def test_a_billing_account_whose_cost_stopped_is_stale_in_its_month_and_its_budgets_are_named(wh, tmp_path):
    """Per billing account of the month judged: B's cost stopped on the 5th while A's runs to the 18th
    (the kind is fresh): stale, with the budgets its cost feeds, and globex's budget, all of whose cost
    is B's, built on stale cost only. C was last charged in October (nothing this month: not stale);
    D's kind is stale as a whole (no max_age given: that is the kind's own error)."""

    def of(account, rows):
        for row in rows:
            row[4] = account
        return rows

    nov = [date(2026, 11, d) for d in range(1, 19)]
    files = {
        "a.csv": ("cost_exports", of("A", [line(d, 40, 40, tags={"tenant": "acme"}) for d in nov])),
        "b.csv": ("cost_exports", of("B", [line(d, 30, 30, category="Storage", tags={"tenant": "globex"}, resource="b")
                                            for d in nov[:5]] + [line(nov[0], 5, 5, tags={"tenant": "acme"})])),
        "c.csv": ("cost_exports", of("C", [line(date(2026, 10, d), 9, 9, tags={"tenant": "initech"}) for d in (1, 10)])),
        "d.csv": ("cur_exports", of("D", [line(nov[2], 7, 7, tags={"tenant": "initech"})])),
    }  # fmt: skip
    for name, (_, rows) in files.items():
        load(wh, tmp_path, rows, uri=f"/root/{name}")
    deliveries = {
        v: (files[u.rsplit("/", 1)[1]][0], u) for v, u in wh.execute("SELECT sha256, uri FROM cost_files").fetchall()
    }
    at = datetime(2026, 11, 19, 12, tzinfo=UTC)

    stale = stale_accounts(wh, ["/root"], deliveries, {"cost_exports": timedelta(days=3)}, at)
    assert [(a.account, a.kind, a.last_day, a.newest, a.month) for a in stale] == [
        ("B", "cost_exports", date(2026, 11, 5), "/root/b.csv", "2026-11")
    ]
    assert stale[0].age == timedelta(days=14, hours=12) and stale[0].name == "billing account B"
    assert stale_accounts(wh, ["/root"], deliveries, {"cost_exports": timedelta(days=15)}, at) == []
    # December: no account has cost yet, none is stale this month.
    assert (
        stale_accounts(
            wh, ["/root"], deliveries, {"cost_exports": timedelta(days=3)}, datetime(2026, 12, 9, tzinfo=UTC)
        )
        == []
    )

    attribute(wh, "/root", ["/root"], ALLOCATION, TENANTS, versions=_loaded(wh))
    doc = (
        'apiVersion: phase8/v1\nkind: CostBudgets\nreviewed: "2026-10-01"\nbudgets:\n'
        "  - {name: acme, tenant: acme, amount: 3000, currency: USD, owner: team:finops}\n"
        "  - {name: globex, tenant: globex, amount: 3000, currency: USD, owner: team:finops}\n"
        "  - {name: initech, tenant: initech, amount: 3000, currency: USD, owner: team:finops}\n"
    )
    states = budget_states(wh, "/root", read_budgets(doc.encode(), "x").records[0], at)
    mark_stale(wh, ["/root"], ALLOCATION, TENANTS, _loaded(wh), stale, states, at)
    assert stale[0].budgets == ["acme", "globex"]
    assert [([a.account for a in s.stale], s.stale_only) for s in states] == [
        (["B"], False),
        (["B"], True),
        ([], False),
    ]


@pytest.mark.parametrize(
    "start, end, expected",
    [
        # BigQuery (the GCP FOCUS view) exports a TIMESTAMP to CSV as "YYYY-MM-DD HH:MM:SS[.ffffff] UTC"
        ("2026-11-03 00:00:00 UTC", "2026-11-04 00:00:00 UTC", date(2026, 11, 3)),
        ("2026-11-03 00:00:00.123456 UTC", "2026-11-04 00:00:00 UTC", date(2026, 11, 3)),
        # .NET's round-trip format: seven fraction digits (ISO 8601 sets no limit)
        ("2026-11-03T00:00:00.0000000Z", "2026-11-04T00:00:00.0000000Z", date(2026, 11, 3)),
        ("2026-11-03T23:30:00.1234567-02:00", "2026-11-04T00:00:00.000000000Z", date(2026, 11, 4)),
    ],
)
def test_utc_timestamps_as_bigquery_and_dotnet_write_them_are_read(start, end, expected):
    """They were rejected as no ISO 8601 timestamps: a valid export of the GCP FOCUS view failed."""
    row = line(date(2026, 11, 3), "2.5", "2")
    row[6], row[8], row[9] = "2026-11-01 00:00:00 UTC", start, end
    result = focus.read(csv_bytes([row]), "x")
    assert result.observed_at.date() == expected
    assert result.summary["billing_periods"] == ["2026-11"] and result.summary["billed"].startswith("2.5")


def test_a_timestamp_in_another_named_zone_is_still_rejected():
    row = line(date(2026, 11, 3), "1", "1")
    row[8] = "2026-11-03 00:00:00 CET"
    with pytest.raises(EvidenceError, match="ISO 8601") as info:
        focus.read(csv_bytes([row]), "x")
    assert info.value.field == "ChargePeriodStart"


@pytest.mark.parametrize("second", ["BilledCost", "billedcost", "BILLEDCOST"])
def test_a_column_the_export_holds_twice_is_ambiguous_and_rejects_it(second):
    """DuckDB names a repeated column ``BilledCost_1``: the file was read with its first one, the
    other cost silently dropped (which of the two the bill means, nobody can tell)."""
    rows = csv_bytes([line(date(2026, 11, 3), "1.5", "1.2")]).decode().splitlines()
    text = f"{rows[0]},{second}\n{rows[1]},99\n"
    with pytest.raises(EvidenceError, match="2 columns") as info:
        focus.read(text.encode(), "x")
    assert info.value.field == "BilledCost"


def test_column_names_in_another_case_are_the_focus_columns():
    """A FOCUS table read through Athena or Glue (which lower-case every column) and saved as CSV was
    rejected as missing every mandatory column, though each one is there."""
    rows = [line(date(2026, 11, 3), "1.5", "1.2", tags={"tenant": "acme"}, sub="42")]
    text = csv_bytes(rows).decode()
    header, body = text.split("\n", 1)
    lower = focus.read(f"{header.lower()}\n{body}".encode(), "x", spool_dir=None)
    assert lower.summary == focus.read(text.encode(), "x").summary
    with tempfile.TemporaryDirectory() as tmp:
        spool = focus.read(f"{header.lower()}\n{body}".encode(), "x", spool_dir=Path(tmp)).spool
        got = duckdb.connect().execute(f"SELECT sub_account, tags, provider FROM read_parquet('{spool}')").fetchall()
    assert got == [("42", '{"tenant": "acme"}', "AWS")]


@pytest.mark.parametrize(
    "header",
    [
        "identity/LineItemId,bill/PayerAccountId,lineItem/UsageStartDate,lineItem/UnblendedCost,lineItem/CurrencyCode",
        "identity_line_item_id,bill_payer_account_id,line_item_usage_start_date,line_item_unblended_cost",
    ],
)
def test_a_cur_data_file_among_the_focus_exports_says_where_it_belongs(header):
    """A legacy CUR or CUR 2.0 file matched by the cost_exports paths was rejected as missing all 14
    FOCUS columns, which does not say what the file is or how phase8 reads it."""
    with pytest.raises(EvidenceError, match=r"an AWS CUR data file: .*cur_exports.*Manifest\.json"):
        focus.read(
            f"{header}\n{','.join(['x', '1', '2026-11-01T00:00:00Z', '1.5', 'USD'][: header.count(',') + 1])}\n".encode(),
            "x",
        )
