"""Charts for the performance assets: a series' history with its baseline band, change points,
budget line and the candidate. Plotly figures for the shared report writer."""

from __future__ import annotations

from phase8_assets.domains.perf import BudgetCheck, Comparison, Series, base_runs
from phase8_assets.evidence.perf_budgets import PerfBudgets
from phase8_assets.shared.reports import plotly_template

# Display units per base unit, largest first: the chart uses the largest its typical value reaches.
UNITS = {
    "s": [(1.0, "s"), (1e3, "ms"), (1e6, "µs"), (1e9, "ns")],
    "B": [(1e-9, "GB"), (1e-6, "MB"), (1e-3, "KB"), (1.0, "B")],
}


def display_unit(unit: str, values) -> tuple[float, str]:
    """(factor, unit) for a chart of ``values`` in ``unit``: the median lands between 1 and 1000 where it can
    (a 40 µs benchmark in µs, not 0.04 ms), NaN ignored; unknown units stay as they are."""
    import numpy as np

    choices = UNITS.get(unit)
    finite = np.asarray(values, dtype=float)
    finite = np.abs(finite[np.isfinite(finite)])
    if not choices or not finite.size:
        return 1.0, unit
    typical = float(np.median(finite))
    for factor, name in choices:
        if typical * factor >= 1.0:
            return factor, name
    return choices[-1]


def history_figure(
    s: Series,
    candidate_commit: str,
    base_branch: str,
    points: list[tuple[int, float]],
    comparison: Comparison | None = None,
    budgets: PerfBudgets | None = None,
) -> dict:
    """The chart as the figure dict plotly's ``Figure(...).to_dict()`` gives for it (same keys in the
    same order, so the report writer renders the same bytes). Reports hold one per series, and
    building them as graph objects (validation, template copies, ``add_vline``) was most of the
    time of the perf report steps."""
    import numpy as np

    factor, unit = display_unit(s.unit, s.values)
    history = base_runs(s, candidate_commit, base_branch)
    x = [np.datetime_as_string(t, "s") for t in s.run_at]
    data = [
        {
            "hovertemplate": "%{x}<br>%{y:.4g} " + unit + "<br>%{text}<extra></extra>",
            "mode": "lines+markers",
            "name": f"{base_branch} history",
            "text": [str(s.commits[i] or "")[:10] for i in history],
            "x": [str(x[i]) for i in history],
            "y": (s.values[history] * factor).round(9).tolist(),
            "type": "scatter",
        }
    ]
    if comparison is not None and len(comparison.baseline) >= 2:
        base = s.values[comparison.baseline] * factor
        mean, sd = float(np.mean(base)), float(np.std(base, ddof=1))
        xs = [str(x[comparison.baseline[0]]), str(x[comparison.baseline[-1]])]
        data.append(
            {
                "fill": "toself",
                "mode": "none",
                "name": "baseline ±2 sd",
                "opacity": 0.25,
                "x": xs + xs[::-1],
                "y": [mean + 2 * sd] * 2 + [mean - 2 * sd] * 2,
                "type": "scatter",
            }
        )
    if comparison is not None and len(comparison.candidate):
        color = {"regressed": "#d1242f", "inconclusive": "#bf8700"}.get(comparison.status, "#1a7f37")
        data.append(
            {
                "marker": {"color": color, "size": 12, "symbol": "diamond"},
                "mode": "markers",
                "name": f"candidate ({comparison.status})",
                "x": [str(x[i]) for i in comparison.candidate],
                "y": (s.values[comparison.candidate] * factor).round(9).tolist(),
                "type": "scatter",
            }
        )
    shapes = [
        {
            "line": {"color": "#8250df", "dash": "dash"},
            "type": "line",
            "x0": x[history[index]],
            "x1": x[history[index]],
            "xref": "x",
            "y0": 0,
            "y1": 1,
            "yref": "y domain",
        }
        for index, _p in points
        if index < len(history)
    ]
    annotations = []
    rule = budgets.rule_for(s.benchmark, s.measure, "absolute") if budgets else None
    if rule is not None and rule.absolute.stat == "mean":
        y = rule.absolute.limit * factor
        shapes.append(
            {
                "line": {"color": "#bc4c00"},
                "type": "line",
                "x0": 0,
                "x1": 1,
                "xref": "x domain",
                "y0": y,
                "y1": y,
                "yref": "y",
            }
        )
        annotations.append(
            {
                "showarrow": False,
                "text": f"budget {rule.absolute.text}",
                "x": 1,
                "xanchor": "right",
                "xref": "x domain",
                "y": y,
                "yanchor": "bottom",
                "yref": "y",
            }
        )
    better = "lower" if s.direction == "lower" else "higher" if s.direction == "higher" else "?"
    layout = {"template": plotly_template()}
    if shapes:
        layout["shapes"] = shapes
    if annotations:
        layout["annotations"] = annotations
    layout |= {
        "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
        "legend": {"orientation": "h"},
        "title": {"text": f"{s.subject} ({better} is better)"},
        "yaxis": {"title": {"text": unit}},
        "height": 320,
    }
    return {"data": data, "layout": layout}


def budget_figure(checks: list[BudgetCheck]):
    """One bar per absolute budget: the worst candidate value as a share of its limit (1 = at the limit)."""
    import plotly.graph_objects as go

    measured = [b for b in checks if b.value is not None and b.rule.absolute.limit]
    ratios = [round(b.value / b.rule.absolute.limit, 6) for b in measured]
    fig = go.Figure(
        go.Bar(
            x=ratios,
            y=[f"{b.series.subject} ({b.rule.absolute.text})" for b in measured],
            orientation="h",
            marker={"color": ["#1a7f37" if b.passed else "#d1242f" for b in measured]},
        )
    )
    fig.add_vline(x=1.0, line_dash="dash")
    fig.update_layout(
        height=120 + 28 * len(measured), margin={"l": 20, "r": 20, "t": 20, "b": 40}, xaxis_title="value / limit"
    )
    return fig
