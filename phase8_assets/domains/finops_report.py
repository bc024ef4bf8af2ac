"""The weekly FinOps dashboard: spend by tenant and service over time, budget burn-down with its
forecast, the unallocated share and the week's top movers, from ``cost_attribution``."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import duckdb

from phase8_assets.domains.finops import UNALLOCATED, cost_column, daily_spend, forecast_month_end, forecast_policy
from phase8_assets.shared.reports import Section

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def dashboard(
    conn: duckdb.DuckDBPyConnection, root: str, start: date, end: date, budgets: dict | None
) -> list[Section]:
    """Sections for the week [start, end)."""
    import plotly.graph_objects as go

    since = end - timedelta(days=90)
    daily = conn.execute(
        "SELECT charge_day, tenant, sum(effective)::DOUBLE FROM cost_attribution WHERE root = ? AND charge_day >= ? "
        "AND charge_day < ? GROUP BY ALL ORDER BY 1, 2",
        [root, since, end],
    ).fetchall()
    by_service = conn.execute(
        "SELECT service_category, sum(effective)::DOUBLE FROM cost_attribution WHERE root = ? AND charge_day >= ? "
        "AND charge_day < ? GROUP BY ALL ORDER BY 2 DESC",
        [root, start, end],
    ).fetchall()
    week = dict(conn.execute(
        "SELECT tenant, sum(effective)::DOUBLE FROM cost_attribution WHERE root = ? AND charge_day >= ? AND charge_day < ? GROUP BY 1",
        [root, start, end],
    ).fetchall())  # fmt: skip
    prev = dict(conn.execute(
        "SELECT tenant, sum(effective)::DOUBLE FROM cost_attribution WHERE root = ? AND charge_day >= ? AND charge_day < ? GROUP BY 1",
        [root, start - timedelta(days=7), start],
    ).fetchall())  # fmt: skip
    movers = conn.execute(
        """
        WITH w AS (
            SELECT tenant, service_category,
                   sum(effective) FILTER (WHERE charge_day >= ?)::DOUBLE AS this_week,
                   sum(effective) FILTER (WHERE charge_day < ?)::DOUBLE AS last_week
            FROM cost_attribution WHERE root = ? AND charge_day >= ? AND charge_day < ? GROUP BY ALL
        )
        SELECT tenant, service_category, coalesce(last_week, 0), coalesce(this_week, 0),
               coalesce(this_week, 0) - coalesce(last_week, 0) AS move
        FROM w ORDER BY abs(move) DESC, tenant, service_category LIMIT 5
        """,
        [start, start, root, start - timedelta(days=7), end],
    ).fetchall()
    currencies = [c for (c,) in conn.execute(
        "SELECT DISTINCT currency FROM cost_attribution WHERE root = ? AND charge_day >= ? AND charge_day < ? ORDER BY 1",
        [root, start, end],
    ).fetchall()]  # fmt: skip
    currency = "/".join(currencies) or "(no currency)"
    total = sum(week.values())
    through = max((d for d, _, _ in daily if d >= start), default=None)
    covered = (through - start).days + 1 if through else 0
    partial = (
        "" if covered >= 7
        else f" Cost data runs through {through} ({covered} of 7 days): the changes compare a partial week." if through
        else ""
    )  # fmt: skip
    spent = (
        f"{total:,.2f} {currency} effective cost; unallocated share "
        + (f"{week.get(UNALLOCATED, 0) / total:.1%}." if total else "— (the week's cost nets to 0).")
        if week
        else "No cost data for this week in the warehouse (no export covers these days, or none was loaded): "
        "no spend is known, which is not 0 spent."
    )
    figure = go.Figure()
    for tenant in sorted({t for _, t, _ in daily}):
        points = [(d, v) for d, t, v in daily if t == tenant]
        figure.add_trace(go.Bar(x=[f"{d}" for d, _ in points], y=[round(v, 2) for _, v in points], name=tenant))
    figure.update_layout(
        barmode="stack", height=380, yaxis_title="effective cost / day", margin={"l": 50, "r": 20, "t": 20, "b": 40}
    )
    sections = [
        Section(
            "This week",
            f"{spent}{partial}",
            (
                ["tenant", f"this week ({currency})", f"last week ({currency})", "change"],
                [
                    [
                        t,
                        f"{v:,.2f}",
                        f"{prev.get(t, 0):,.2f}",
                        f"{(v - prev.get(t, 0)) / prev[t]:+.1%}" if prev.get(t) else "—",
                    ]
                    for t, v in sorted(week.items())
                ],
            ),
        ),  # fmt: skip
        Section("Spend by tenant, last 90 days", figure=figure),
        Section(
            "Spend by service category this week",
            "",
            (["service category", "effective"], [[s, f"{v:,.2f}"] for s, v in by_service]),
        ),
        Section(
            "Top movers (week over week)",
            "",
            (
                ["tenant", "service category", "last week", "this week", "change"],
                [[t, s, f"{a:,.2f}", f"{b:,.2f}", f"{m:+,.2f}"] for t, s, a, b, m in movers],
            ),
        ),  # fmt: skip
    ]
    if not budgets:
        sections.append(Section("Budgets", "No readable CostBudgets file in the evidence: no budget was judged."))
    else:
        month_start = (
            date(end.year, end.month, 1)
            if end.day > 1
            else date((end - timedelta(days=1)).year, (end - timedelta(days=1)).month, 1)
        )
        days = calendar.monthrange(month_start.year, month_start.month)[1]
        burn = go.Figure()
        column = cost_column(budgets)
        forecast = forecast_policy(budgets)
        last = month_start + timedelta(days=days - 1)
        verdicts = []
        for n, b in enumerate(budgets["budgets"]):
            since = month_start - timedelta(days=forecast["window_days"])
            spend = daily_spend(conn, root, b, since, end - timedelta(days=1), column)
            cumulative, running = [], 0.0
            for d in sorted(d for d in spend if d >= month_start):
                running += spend[d]
                cumulative.append((d, running))
            if not cumulative:  # never a flat 0: the cost_budgets gate names what the scope selected
                verdicts.append(f"{b['name']}: no {b['currency']} cost in its scope this month; not drawn.")
                continue
            projected = forecast_month_end(spend, cumulative[-1][0], forecast["method"], forecast["window_days"])
            share = projected / b["amount"] if b["amount"] else float("inf")
            verdicts.append(
                f"{b['name']}: {'OVER BUDGET' if share > 1 else 'within budget'}, forecast {projected:,.2f} of "
                f"{b['amount']:,.2f} {b['currency']} ({share:.0%}); spent {running:,.2f} by {cumulative[-1][0]}."
            )
            color = PALETTE[n % len(PALETTE)]  # one colour per budget: its actual, forecast and budget lines
            for name, x, y, dash in (
                ("actual", [f"{d}" for d, _ in cumulative], [round(v, 2) for _, v in cumulative], "solid"),
                ("forecast", [f"{cumulative[-1][0]}", f"{last}"], [round(running, 2), round(projected, 2)], "dot"),
                ("budget", [f"{month_start}", f"{last}"], [b["amount"], b["amount"]], "dash"),
            ):
                burn.add_trace(go.Scatter(x=x, y=y, name=f"{b['name']} {name}", legendgroup=b["name"],
                                          line={"dash": dash, "color": color}))  # fmt: skip
        burn.update_layout(
            height=380,
            yaxis_title=f"cumulative {column} cost ({currency})",
            margin={"l": 50, "r": 20, "t": 20, "b": 40},
        )
        title = f"Budget burn-down, {month_start:%B %Y} (dotted: {forecast['label']} forecast)"
        sections.append(Section("Budgets", "\n\n".join(verdicts) or "No spend against any budget this month."))
        sections.append(Section(title, figure=burn))
    return sections
