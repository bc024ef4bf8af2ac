"""Our own outputs are tenant-scoped too: every per-tenant output of the product holds that tenant's rows
and no other tenant's, for any mix of tenants' data (hypothesis).

Per-tenant outputs today: a tenant's cost attribution rows, a tenant budget's spend and month state,
the FinOps dashboard's per-tenant series, and a tenant's isolation results."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phase8_assets.domains.finops import UNALLOCATED, budget_states, daily_spend, tenant_rows
from phase8_assets.domains.finops_report import dashboard
from phase8_assets.domains.isolation import assess, tenant_view
from phase8_assets.evidence.collect import EvidenceBatch, EvidenceFile
from phase8_assets.warehouse import migrate

TENANTS = ["acme", "globex", "initech", UNALLOCATED]
ROOT = "/r"
FIRST = date(2026, 11, 1)
AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

cost_rows = st.lists(
    st.tuples(
        st.integers(0, 19),  # day of November
        st.sampled_from(TENANTS),
        st.sampled_from(["Compute", "Storage"]),
        st.sampled_from(["direct", "shared:platform"]),
        st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False),
    ),
    max_size=40,
)


@pytest.fixture(scope="module")
def wh():
    conn = duckdb.connect()
    migrate(conn)
    yield conn
    conn.close()


def load(conn, rows):
    conn.execute("DELETE FROM cost_attribution")
    if rows:
        conn.executemany(
            "INSERT INTO cost_attribution VALUES (?, ?, 'USD', ?, NULL, ?, ?, ?, ?)",
            [[ROOT, FIRST + timedelta(days=d), t, cat, src, amount, amount] for d, t, cat, src, amount in rows],
        )
    conn.execute(  # another root's rows: never part of this root's outputs
        "INSERT INTO cost_attribution VALUES ('/other', ?, 'USD', 'acme', NULL, 'Compute', 'direct', 7, 7)", [FIRST]
    )


def mine(rows, tenant):
    return [r for r in rows if r[1] == tenant]


@settings(max_examples=40, deadline=None)
@given(rows=cost_rows)
def test_cost_attribution_and_budget_rows_hold_one_tenants_rows(wh, rows):
    load(wh, rows)
    budgets = {
        "basis": "effective",
        "forecast": {},
        "budgets": [
            {"name": t.strip("_"), "tenant": t, "amount": 1000, "currency": "USD", "owner": "team:finops",
             "actual_thresholds": [0.8, 1.0], "forecast_thresholds": [0.8, 1.0]}
            for t in TENANTS
        ],
    }  # fmt: skip
    states = {s.budget["tenant"]: s for s in budget_states(wh, ROOT, budgets, AT)}
    for tenant in TENANTS:
        own = mine(rows, tenant)
        exported = tenant_rows(wh, ROOT, tenant)
        assert {r[2] for r in exported} <= {tenant}
        assert sorted(Decimal(r[7]) for r in exported) == sorted(a for *_, a in own)
        spend = daily_spend(wh, ROOT, {"currency": "USD", "tenant": tenant}, FIRST, AT.date())
        expected: dict[date, float] = {}
        for d, *_, amount in own:
            expected[FIRST + timedelta(days=d)] = expected.get(FIRST + timedelta(days=d), 0.0) + float(amount)
        assert spend == pytest.approx(expected)
        if own:
            assert states[tenant].actual == pytest.approx(sum(float(a) for *_, a in own))
        elif any(mine(rows, t) for t in TENANTS):  # nothing of this tenant (another root's rows do not count)
            assert states[tenant].actual is None and states[tenant].unmatched["scope_currencies"] == []
        else:  # no cost in the root's month at all yet: 0 so far
            assert (states[tenant].actual, states[tenant].unmatched) == (0, None)


@settings(max_examples=25, deadline=None)
@given(rows=cost_rows)
def test_the_dashboards_tenant_series_hold_one_tenants_spend(wh, rows):
    load(wh, rows)
    sections = dashboard(wh, ROOT, date(2026, 11, 16), date(2026, 11, 23), None)
    figure = next(s.figure for s in sections if s.figure is not None and s.heading.startswith("Spend by tenant"))
    names = [trace.name for trace in figure.data]
    assert len(names) == len(set(names)) and set(names) == {t for _, t, *_ in rows}
    for trace in figure.data:
        per_day: dict[str, float] = {}
        for d, _, _, _, amount in mine(rows, trace.name):
            key = f"{FIRST + timedelta(days=d)}"
            per_day[key] = per_day.get(key, 0.0) + float(amount)
        assert dict(zip(trace.x, trace.y, strict=True)) == pytest.approx({k: round(v, 2) for k, v in per_day.items()})
    week = next(s for s in sections if s.heading == "This week").table[1]
    for tenant, this_week, *_ in week:
        total = sum(float(a) for d, t, *_, a in rows if t == tenant and d >= 15)
        assert this_week == f"{total:,.2f}"


@settings(max_examples=40, deadline=None)
@given(
    tests=st.lists(
        st.tuples(st.sampled_from(TENANTS[:3]), st.sampled_from(TENANTS[:3]), st.sampled_from(["passed", "failed"])),
        max_size=20,
    )
)
def test_a_tenants_isolation_results_name_that_tenant_only(tests):
    records = [
        {"classname": "iso", "name": f"t{i}", "dimension": "data", "resource": "messages", "tenants": [a, b],
         "outcome": outcome, "attempts": [outcome], "run_at": AT, "message": ""}
        for i, (a, b, outcome) in enumerate(tests)
    ]  # fmt: skip
    results = EvidenceFile(ROOT, "isolation_results", "/r/a.xml", "0", 1, AT, "", {}, [], records)
    coverage = assess(EvidenceBatch(roots=[ROOT], files=[results]), AT)
    for tenant in TENANTS[:3]:
        view = tenant_view(coverage, tenant)
        assert all(tenant in r.tenants for r in view)
        assert sorted(r.name for r in view) == sorted(f"t{i}" for i, (a, b, _) in enumerate(tests) if tenant in (a, b))


def test_the_burn_down_says_so_for_a_budget_whose_scope_has_no_cost(wh):
    """Never a flat 0 line: a budget with no cost in its scope this month is named, not drawn."""
    load(wh, [(3, "acme", "Compute", "direct", Decimal("12.50"))])
    budgets = {
        "basis": "effective",
        "forecast": {},
        "budgets": [
            {"name": name, "tenant": tenant, "amount": 100, "currency": "USD", "owner": "team:finops",
             "actual_thresholds": [0.8], "forecast_thresholds": [1.0]}
            for name, tenant in (("acme", "acme"), ("typo", "acme-corp"))
        ],
    }  # fmt: skip
    sections = dashboard(wh, ROOT, date(2026, 11, 16), date(2026, 11, 23), budgets)
    text = next(s for s in sections if s.heading == "Budgets").text
    assert text.startswith("acme: OVER BUDGET") or text.startswith("acme: within budget")
    assert text.endswith("typo: no USD cost in its scope this month; not drawn.")
    figure = next(s.figure for s in sections if s.heading.startswith("Budget burn-down"))
    assert {trace.legendgroup for trace in figure.data} == {"acme"}
