"""The weekly reliability report: sections and "what changed since last week" from history rows.

Pure: takes what ``warehouse/history.py`` returns for one week, gives report sections and plain
sentences. The same history gives the same report, byte for byte.
"""

from __future__ import annotations

from datetime import datetime

from phase8_assets.domains.perf import format_value
from phase8_assets.shared.reports import Section

MOVE = 0.15  # a weekly mean that moved this much (and no change point said so) is worth a sentence


def _subject(benchmark: str, params: str, measure: str) -> str:
    name = f"{benchmark}[{params}]" if params and "[" not in benchmark else benchmark
    return f"{name} / {measure}"


def changes(week: dict) -> list[str]:
    """Plain sentences: new regressions and recoveries, budgets crossed, drills gone overdue, verdicts."""
    out = []
    for bench, params, measure, run_at, commit, _before, _after, change in week["change_points"]:
        worse = change > 0  # timings: up is worse (change points are recorded on time-like series too)
        kind = "regressed" if worse else "improved"
        out.append(
            f"{_subject(bench, params, measure)} {kind} by {abs(change):.0%} on {run_at:%Y-%m-%d} "
            f"(commit {str(commit or '?')[:10]})."
        )
    explained = {(b, p, m) for b, p, m, *_ in week["change_points"]}
    for bench, params, measure, unit, direction, this, last, _runs in week["benchmarks"]:
        if this is None or last is None or last == 0 or (bench, params, measure) in explained:
            continue
        move = (this - last) / last
        if abs(move) >= MOVE:
            worse = (move > 0) == (direction != "higher")
            out.append(
                f"{_subject(bench, params, measure)} {'got worse' if worse else 'recovered or improved'}: "
                f"{format_value(last, unit)} last week, {format_value(this, unit)} this week ({move:+.0%})."
            )
    for slo, service, _target, remaining, before, pages, _tickets in week["slos"]:
        if remaining is not None and remaining < 0 and (before is None or before >= 0):
            out.append(f"SLO {slo} ({service}) ran out of error budget: {remaining:.0%} left.")
        elif remaining is not None and before is not None and remaining >= 0 > before:
            out.append(f"SLO {slo} ({service}) is back within its error budget: {remaining:.0%} left.")
        if pages:
            out.append(f"SLO {slo} ({service}) had a page-level burn-rate alert active.")
    for drill, due, state in week["drills"]["overdue"]:
        out.append(f"Drill {drill} went {state} (due {due}).")
    for run in week["gate_runs"]:
        if run["verdict"] == "blocked":
            out.append(f"Release {run['version']} was blocked on {run['at']:%Y-%m-%d} by {', '.join(run['failing'])}.")
    return out


RECORDED = {  # what the week's history holds, each: does it hold any this week
    "benchmark runs": lambda week: any(row[5] is not None for row in week["benchmarks"]),
    "SLO evaluations": lambda week: any(row[3] is not None for row in week["slos"]),
    "drill runs": lambda week: bool(week["drills"]["runs"]),
    "gate runs": lambda week: bool(week["gate_runs"]),
    "cost": lambda week: any(row[2] is not None for row in week.get("cost", [])),
}


def unrecorded(week: dict) -> list[str]:
    """What the history holds nothing of this week: about those, the report cannot say "no change"."""
    return [what for what, held in RECORDED.items() if not held(week)]


def change_text(week: dict) -> str:
    """The "what changed" section: the changes, else "nothing changed" only about what was recorded:
    a week the warehouse holds nothing of (ingest stopped, a new warehouse) is no data, not no change."""
    found = changes(week)
    missing = unrecorded(week)
    if len(missing) == len(RECORDED):
        lead = ["No data: the warehouse holds no benchmark run, SLO evaluation, drill run, gate run or cost for "
                "this week, so nothing can be said about what changed (which is not the same as nothing changed). "
                "Is evidence being ingested (the new_evidence sensor, phase8 gate)?"]  # fmt: skip
        return "\n\n".join(lead + found)
    if not found:
        found = ["Nothing changed in what was recorded: no new change points, SLO error budgets run out, overdue "
                 "drills or blocked releases."]  # fmt: skip
    if missing:
        found.append(f"Nothing was recorded this week for: {', '.join(missing)}.")
    return "\n\n".join(found)


def sections(week: dict, start: datetime, end: datetime, trend_figure=None) -> list[Section]:
    bench_rows = [
        [_subject(b, p, m), format_value(last, unit), format_value(this, unit),
         f"{(this - last) / last:+.1%}" if this is not None and last else "—", runs]
        for b, p, m, unit, direction, this, last, runs in week["benchmarks"]
    ]  # fmt: skip
    cp_rows = [
        [_subject(b, p, m), f"{t:%Y-%m-%d %H:%M}", str(c or "")[:10], f"{before:.4g}", f"{after:.4g}", f"{ch:+.1%}"]
        for b, p, m, t, c, before, after, ch in week["change_points"]
    ]
    slo_rows = [
        [slo, service, f"{target:.3%}", "—" if rem is None else f"{rem:.1%}", "—" if prev is None else f"{prev:.1%}",
         "—" if pages is None else pages, "—" if tickets is None else tickets]
        for slo, service, target, rem, prev, pages, tickets in week["slos"]
    ]  # fmt: skip
    drill_rows = [
        [title, tool, outcome, f"{at:%Y-%m-%d %H:%M}", "—" if rec is None else f"{rec:.0f} s"]
        for title, tool, outcome, at, rec in week["drills"]["runs"]
    ]
    cost_days = week.get("cost_days", 7)
    partial = cost_days < 7  # a week still being billed: a change against a full week would only mislead
    cost_rows = [
        [tenant, currency, "—" if last is None else f"{last:,.2f}", "—" if this is None else f"{this:,.2f}",
         f"partial week ({cost_days} of 7 days)" if partial
         else f"{(this - last) / last:+.1%}" if this is not None and last else "—"]
        for tenant, currency, this, last in week.get("cost", [])
    ]  # fmt: skip
    gate_rows = [
        [f"{r['at']:%Y-%m-%d %H:%M}", r["version"], r["verdict"], ", ".join(r["failing"]) or "—"]
        for r in week["gate_runs"]
    ]
    out = [
        Section("What changed since last week", change_text(week)),
        Section(
            "Gate verdicts",
            f"{len(gate_rows)} distinct evaluation(s)." if gate_rows else "No release was evaluated this week.",
            (["evaluated at", "release", "verdict", "blocking gates"], gate_rows) if gate_rows else None,
        ),
        Section(
            "Benchmarks (base branch, weekly mean of run means)",
            "" if bench_rows else "No benchmark runs this week or the week before.",
            (["series", "last week", "this week", "change", "runs"], bench_rows) if bench_rows else None,
        ),
    ]
    if trend_figure is not None:
        out.append(Section("Benchmark trend (12 weeks, relative to each series' first week)", figure=trend_figure))
    out += [
        Section(
            "Change points this week",
            "" if cp_rows else "None.",
            (["series", "first run after", "commit", "before", "after", "change"], cp_rows) if cp_rows else None,
        ),
        Section(
            "SLOs: error budget remaining (latest evaluation of the week)",
            "" if slo_rows else "No SLO was evaluated this week.",
            (["slo", "service", "target", "remaining", "a week earlier", "page alerts", "ticket alerts"], slo_rows)
            if slo_rows
            else None,
        ),
        Section(
            "Drills run this week",
            "" if drill_rows else "No drill ran this week.",
            (["drill run", "tool", "outcome", "ended", "recovery"], drill_rows) if drill_rows else None,
        ),
        Section(
            "Cost by tenant (effective, attributed)",
            (
                f"Cost data covers {cost_days} of 7 days of this week: no change is computed against the full "
                "week before."
                if partial
                else ""
            )
            if cost_rows
            else "No cost data this week (no FOCUS exports configured, or none for these days).",
            (["tenant", "currency", "last week", "this week", "change"], cost_rows) if cost_rows else None,
        ),
        audit_section(week.get("audit", [])),
    ]
    return out


AUDIT_HEADINGS = {"finding.waived": "waived", "exception.expiring": "exception expiring",
                  "exception.expired": "exception expired", "gate.switched_off": "gate switched off"}  # fmt: skip


def audit_section(rows: list[tuple]) -> Section:
    """From the audit trail: who waived what, exceptions expiring, gates switched off."""
    table = [
        [AUDIT_HEADINGS.get(kind, kind), target, actor, (reason or "—")[:120], ticket or "—", runs]
        for kind, target, actor, reason, ticket, runs in rows
    ]
    return Section(
        "Audit: waivers, expiring exceptions, gates switched off",
        "" if table else "No finding was waived, no exception expiring and no gate switched off in this week's runs.",
        (["decision", "on", "by", "why", "ticket", "runs"], table) if table else None,
    )


def trend_figure(rows: list[tuple], max_series: int = 12):
    """Weekly means relative to each series' first week (1.0 = unchanged), for the series that moved most."""
    if not rows:
        return None
    import plotly.graph_objects as go

    series: dict[str, list[tuple]] = {}
    for b, p, m, week, value in rows:
        series.setdefault(_subject(b, p, m), []).append((week, value))
    moved = sorted(series.items(), key=lambda kv: -abs(kv[1][-1][1] / kv[1][0][1] - 1) if kv[1][0][1] else 0)
    fig = go.Figure()
    for name, points in sorted(moved[:max_series]):
        base = points[0][1] or 1.0
        fig.add_trace(
            go.Scatter(
                x=[f"{w:%Y-%m-%d}" for w, _ in points],
                y=[round(v / base, 6) for _, v in points],
                mode="lines+markers",
                name=name,
            )
        )
    fig.update_layout(height=420, yaxis_title="relative to first week", legend={"font": {"size": 10}},
                      margin={"l": 50, "r": 20, "t": 20, "b": 40})  # fmt: skip
    return fig


def drift_sections(rows: list[tuple], anchors: list[tuple], max_series: int = 12) -> list[Section]:
    """One chart per anchored benchmark: its weekly mean on the base branch as a change since its
    PerfBaseline anchor (positive = worse, whichever direction is better), with the drift limit.
    ``rows`` from ``history.anchored_weeks``; ``anchors``: (Anchor, frozen_at, limit or None)."""
    import plotly.graph_objects as go

    weeks: dict[tuple, list[tuple]] = {}
    for b, p, m, week, value, _runs in rows:
        weeks.setdefault((b, p, m), []).append((week, value))
    out = []
    for anchor, frozen_at, limit in anchors[:max_series]:
        points = weeks.get(anchor.key, [])
        sign = 1.0 if anchor.direction == "lower" else -1.0
        drift = [round(sign * (v / anchor.mean - 1) * 100, 4) for _, v in points]
        name = _subject(*anchor.key)
        text = (
            f"anchor: release {anchor.release} ({anchor.commit[:10]}), {anchor.runs} runs, frozen {frozen_at:%Y-%m-%d}"
        )
        if not points:
            out.append(Section(f"Drift: {name}", f"{text}; no base-branch runs since.", None))
            continue
        fig = go.Figure(go.Scatter(x=[f"{w:%Y-%m-%d}" for w, _ in points], y=drift, mode="lines+markers", name=name))
        fig.add_hline(y=0, line_color="#8c959f")
        if limit is not None:
            fig.add_hline(y=limit * 100, line_dash="dash", line_color="#d1242f", annotation_text=f"limit +{limit:.0%}")
        fig.update_layout(height=300, yaxis_title="% worse than the anchor", title=f"{name}: {text}",
                          margin={"l": 50, "r": 20, "t": 50, "b": 40})  # fmt: skip
        out.append(Section(f"Drift: {name}", figure=fig))
    return out
