"""The two SLO gates' findings: page-level burn blocks, ticket-level burn warns, an exhausted
budget blocks; no data, data that stopped, or an SLO that cannot be evaluated, fails closed.

An SLI whose newest point is older than the ``otel_metrics`` maximum age, while its service
sends no other metric either, is stale evidence in both gates, even when the OTLP files are fresh
(other services still export to them): its burn rate says nothing about now, and its budget
nothing about the time since. (A delta exporter sends no SLI point while no request comes; the
service's other metrics, such as runtime gauges, show it is still exporting.)"""

from __future__ import annotations

from datetime import datetime

from phase8_assets.domains.gates import Finding
from phase8_assets.domains.slo import SloDef
from phase8_assets.shared.clock import format_duration, format_timestamp


def _owner(slo: SloDef, config, gate: str) -> str:
    return slo.owner or config.owner_for(gate, "otel_metrics")


def _not_evaluable(slos: list[SloDef], results: dict, config, gate: str) -> list[Finding]:
    out = []
    for slo in slos:
        problem = slo.problem or results["problems"].get(slo.name)
        if problem:
            out.append(
                Finding("error", slo.name, "sli-evaluable", problem, "an SLI over OTLP metrics this product can read",
                        slo.source, _owner(slo, config, gate), config.runbook_for(gate), {"service": slo.service})
            )  # fmt: skip
        unmatched = results.get("unmatched", {}).get(slo.name)
        if unmatched:
            out.append(
                Finding(
                    "error", slo.name, "sli-selector", f"{unmatched['field']}: {unmatched['reason']}",
                    "a selector that matches at least one OTLP data stream (a stream that counted 0 events is fine)",
                    slo.source, _owner(slo, config, gate), config.runbook_for(gate),
                    {"service": slo.service, **unmatched},
                )
            )  # fmt: skip
    return out


def _stale(st, config, gate: str) -> Finding | None:
    """An error when the service's newest point (its SLI's ``total``, or any of its metrics: a delta
    exporter sends no SLI point while no request comes) is older than ``otel_metrics``' max age."""
    kind = config.evidence.get("otel_metrics")
    newest = st.newest
    if kind is None or newest is None or st.at - newest <= kind.max_age:
        return None
    slo = st.slo
    age = st.at - newest
    return Finding(
        "error", slo.name, "sli-max-age",
        f"no data for {format_duration(age)} from {slo.total.text if slo.total else 'the SLI'} nor any other "
        f"metric of its service (newest point {format_timestamp(newest)}); the SLI's data stopped",
        f"{kind.max_age_text} ({format_duration(kind.max_age)}), the otel_metrics max_age",
        slo.source, _owner(slo, config, gate), config.runbook_for(gate),
        {"service": slo.service, "newest": format_timestamp(newest), "age_seconds": int(age.total_seconds()),
         "max_age": kind.max_age_text, "otel_metrics": config.paths_of("otel_metrics")},
    )  # fmt: skip


def _overcounted(st, config, gate: str) -> Finding | None:
    """An error when the good (or bad) selector counted more events than ``total`` over the budget
    period: the selectors match different requests (a good selector without the total's service or
    route filter), and clipping the difference at 0 bad would pass any SLO."""
    if not st.overcounted:
        return None
    slo = st.slo
    which = "bad" if slo.bad is not None else "good"
    selector = slo.bad if slo.bad is not None else slo.good
    return Finding(
        "error", slo.name, "sli-consistency",
        f"{which} {selector.text if selector else ''} counted {st.budget_counted:,.0f} events since "
        f"{format_timestamp(st.budget_start)}, total {slo.total.text if slo.total else ''} {st.budget_events:,.0f}",
        f"{which} events a subset of total (at most a tenth of the error budget more): selectors over the "
        "same requests",
        slo.source, _owner(slo, config, gate), config.runbook_for(gate),
        {"service": slo.service, which: st.budget_counted, "total": st.budget_events,
         "since": format_timestamp(st.budget_start)},
    )  # fmt: skip


def _data_findings(st, config, gate: str) -> list[Finding]:
    """What both SLO gates say of an SLI's data itself: it stopped, or good/bad counts more than total."""
    return [f for f in (_stale(st, config, gate), _overcounted(st, config, gate)) if f is not None]


def burn_findings(slos: list[SloDef], results: dict, config, at: datetime, gate: str) -> list[Finding]:
    runbook = config.runbook_for(gate)
    out = _not_evaluable(slos, results, config, gate)
    if not slos:
        out.append(
            Finding("error", "slo definitions", "slo-present", "no OpenSLO SLO in the evidence", "at least one SLO",
                    config.paths_of("slo_definitions"), config.owner_for(gate, "slo_definitions"), runbook, {})
        )  # fmt: skip
    for st in results["statuses"]:
        slo = st.slo
        owner = _owner(slo, config, gate)
        if st.last_event is None:
            out.append(
                Finding("error", slo.name, "sli-data", "no data points match the SLI", "OTLP data for the SLI",
                        slo.source, owner, runbook, {"service": slo.service})
            )  # fmt: skip
            continue
        out.extend(_data_findings(st, config, gate))
        for a in st.alerts:
            c = a.condition
            details = {
                "service": slo.service,
                "condition": c.name,
                "severity": c.severity,
                "factor": c.factor,
                "long_window": format_duration(c.long),
                "short_window": format_duration(c.short),
                "long_burn": a.long.burn(slo.target),
                "short_burn": a.short.burn(slo.target),
                "long_events": a.long.total,
                "short_events": a.short.total,
                "target": slo.target,
                "evaluated_at": format_timestamp(at),
            }
            window = f"{format_duration(c.long)}/{format_duration(c.short)}"
            if a.active:
                out.append(
                    Finding(
                        "error" if c.severity == "page" else "warning",
                        slo.name,
                        f"burn-rate:{c.name}",
                        f"{c.severity}: burn {a.long.burn(slo.target):.1f}x over {format_duration(c.long)} and "
                        f"{a.short.burn(slo.target):.1f}x over {format_duration(c.short)}",
                        f"< {c.factor:g}x in the {window} windows",
                        slo.source,
                        owner,
                        runbook,
                        details,
                    )
                )
            elif a.insufficient and c.severity == "page":
                out.append(
                    Finding("warning", slo.name, f"insufficient-data:{c.name}",
                            f"{a.long.total:,.0f} events in {format_duration(c.long)}",
                            f">= {slo.min_events} events to judge a burn rate", slo.source, owner, runbook, details)
                )  # fmt: skip
            if a.covered < c.long:
                out.append(
                    Finding("warning", slo.name, f"insufficient-coverage:{c.name}",
                            f"data covers {format_duration(a.covered)} of the {format_duration(c.long)} window"
                            + (f" (since {format_timestamp(st.data_from)})" if st.data_from else ""),
                            f"data over the whole {format_duration(c.long)} window", slo.source, owner, runbook,
                            {**details, "covered": format_duration(a.covered), "data_from": format_timestamp(st.data_from)})
                )  # fmt: skip
    return out


def budget_findings(slos: list[SloDef], results: dict, config, gate: str) -> list[Finding]:
    runbook = config.runbook_for(gate)
    out = _not_evaluable(slos, results, config, gate)
    for st in results["statuses"]:
        slo = st.slo
        details = {
            "service": slo.service,
            "window": slo.window_text,
            "rolling": slo.rolling,
            "since": format_timestamp(st.budget_start),
            "events": st.budget_total,
            "bad": st.budget_bad,
            "consumed": st.consumed,
            "remaining": st.remaining,
            "target": slo.target,
            "covered_fraction": st.budget_coverage,
            "min_window_coverage": slo.min_window_coverage,
        }
        if st.remaining is None:
            out.append(
                Finding("error", slo.name, "budget-data", f"no events since {format_timestamp(st.budget_start)}",
                        "events in the SLO window", slo.source, _owner(slo, config, gate), runbook, details)
            )  # fmt: skip
            continue
        out.extend(_data_findings(st, config, gate))
        if st.budget_coverage < slo.min_window_coverage:
            stopped = st.last_event is not None and st.last_event < st.at  # data that stopped covers nothing since
            out.append(
                Finding(
                    "error",
                    slo.name,
                    "window-coverage",
                    f"data covers {format_duration(st.budget_covered)} of the {slo.window_text} window "
                    f"({st.budget_coverage:.1%}"
                    + (f", since {format_timestamp(st.data_from)}" if st.data_from else "")
                    + (f", none after {format_timestamp(st.last_event)}" if stopped else "")
                    + ")",
                    f">= {slo.min_window_coverage:.0%} of the window covered by data",
                    slo.source,
                    _owner(slo, config, gate),
                    runbook,
                    details,
                )
            )
        if st.remaining < slo.min_budget_remaining:
            out.append(
                Finding(
                    "error",
                    slo.name,
                    "budget-remaining",
                    f"{st.remaining:.1%} of the error budget left ({st.consumed:.1%} consumed since "
                    f"{format_timestamp(st.budget_start)})",
                    f">= {slo.min_budget_remaining:.0%} left",
                    slo.source,
                    _owner(slo, config, gate),
                    runbook,
                    details,
                )
            )
    return out
