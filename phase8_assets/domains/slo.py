"""SLOs, error budgets and multiwindow, multi-burn-rate alerts: pure functions.

**Selecting OTLP data** (an SLI's ``metricSource``, ``type: otlp``). Semantic conventions give the
defaults: ``metric`` is ``http.server.request.duration`` and ``service.name`` the SLO's
``service`` unless the selector says otherwise; ``error.type: "*"`` (present) selects failed
requests, ``http.response.status_code`` the status::

    metricSource:
      type: otlp
      spec:
        metric: http.server.request.duration      # an OTLP metric name
        filter:                                   # every matcher must hold
          service.name: chat-api                  # exact
          http.response.status_code: "~5.."       # ~regex, !~regex, !=value, * present, !* absent
        le: 0.3                                   # histograms only: count requests <= 0.3 s

A metricSource may name an OpenSLO ``DataSource`` (``metricSourceRef``) instead of giving ``type``:
the type is then the DataSource's (``otlp`` or ``OpenTelemetry``); one that is not defined, defined
twice differently, or of another type than the metricSource's own ``type`` is a named problem.

The event count of a point is its value (sums) or its count (histograms); with ``le`` it is the
count of the buckets whose upper bound is at most ``le`` (``le`` must be a bucket boundary, so the
count is exact; an exponential histogram's boundaries move with its scale, so there it is the
buckets wholly under ``le``: a lower bound on fast requests, never more). Ratio SLIs give
``good`` and ``total``, or ``bad`` and ``total``.

**Counting events.** Delta points are increments. Cumulative points become increments per
sequence (service + attributes + ``startTimeUnixNano``, the data model's unbroken sequence of one
writer): the difference to the previous point of the sequence. A new start time is a new
sequence: a process restart (a reset) when it begins after the earlier sequences' last point, and
then its first value is the increment; else another writer (a replica whose resource attributes
are the same), differenced on its own and never interleaved with the first. Within a sequence
with a start time the count only grows: a count that goes back, or a second value at one time, is
two writers with one start time that cannot be told apart, a named problem (``startTimeUnixNano``)
instead of a count; without start times (0) a value that drops is a restart, Prometheus' rule,
unless the value takes turns between two counters (three drops at every other point, each coming
back at least to where it was, the lows and the highs each only growing): two writers, the same
named problem.
A stream exported as deltas and as cumulative counts at once is refused (``aggregationTemporality``);
one after the other (a deploy switched temporality) both count.
A stream's first point counts whole when its counter started at most an hour before it
(the process started then: its whole count belongs to that export); a counter that began earlier
carries history we cannot place in time, so its first point only anchors the differences, as
Prometheus' ``increase`` ignores a series' first sample. So does a *true reset point* (start time
equal to its time: the collector's Prometheus receiver and ``metricstarttime`` processor write one
with the counter's absolute value when they first see a series, and again after each collector
restart): counted, it put the service's whole history into the window of the restart. (Computed in DuckDB:
``warehouse.store.otel_increments``; memory follows the timestamps, not the points.)

**Burn rate** over a window = error ratio / (1 − target); with ``Timeslices`` budgeting the error
ratio is the share of bad time slices (a slice is bad below ``timeSliceTarget``), with
``RatioTimeslices`` the mean of the slices' error ratios. **Budget** over the SLO's window
(rolling, or the calendar period containing the evaluation time): consumed = bad / ((1 − target)
× total); remaining = 1 − consumed.

**Default policy**: the SRE Workbook's, for a 30-day window: page when 1h and 5m both burn ≥ 14.4,
or 6h and 30m ≥ 6; ticket when 1d and 2h ≥ 3, or 3d and 6h ≥ 1. For another window length W the
windows stay and the factors scale by W / 30 d, so each condition still means the same share of
the budget spent in its long window (2 %, 5 %, 10 %, 10 %) — Sloth's approach. An
``AlertCondition`` (``kind: burnrate``, ``threshold``, ``lookbackWindow``, ``alertAfter``,
``severity``: page, critical, high, sev1, p1, ... page; ticket, warning, low, ... file a ticket; any other
word is a problem) replaces the defaults of the SLOs whose alert policies name it: the long window is
``lookbackWindow``, the short one a twelfth of it (the Workbook's ratio), and the condition must
already have held ``alertAfter`` earlier. Fewer than ``min_events`` events in a condition's long
window is *insufficient data*: a warning, never a silent pass.

**Coverage.** Nothing is extrapolated: a window reaching back before the SLI's data begins is
judged on the data it has, and says so. An alert condition whose long window the data does not
cover is *insufficient coverage* (a warning naming the window and the span covered); the budget
reports the covered fraction of its window (the elapsed part of a calendar period) and fails
closed below ``phase8/min-window-coverage`` (default 90 %). Covered is the time the ``total``
selector's increments account for (``warehouse.store.otel_coverage``): a delta point from its
start time, a cumulative difference from the previous export (it counts every request between
the two, however far apart), never the time after the last point or between delta exports that
are missing — data that stopped four days ago covers 26 of 30 days, not 30.

**Objectives.** Each of an SLO's ``objectives`` is its own ``SloDef`` (target, time slices,
budget, alerts): ``<slo>/<displayName or target>`` when there are several.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # numpy is imported where it is used: the code location loads without it
    import numpy as np

from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.openslo import approx_timedelta, parse_openslo_duration, slice_window
from phase8_assets.shared.clock import add_duration, parse_timestamp
from phase8_assets.warehouse.store import otel_coverage, otel_increments, otel_service_last, otel_streams

THIRTY_DAYS = timedelta(days=30)
DEFAULT_MIN_EVENTS = 100
MIN_BUDGET_ANNOTATION = "phase8/min-budget-remaining"
MIN_EVENTS_ANNOTATION = "phase8/min-events"
MIN_COVERAGE_ANNOTATION = "phase8/min-window-coverage"
DEFAULT_MIN_COVERAGE = 0.9
OWNER_ANNOTATION = "phase8/owner"


@dataclass(frozen=True)
class Condition:
    name: str
    severity: str  # page | ticket
    factor: float
    long: timedelta
    short: timedelta
    alert_after: timedelta = timedelta(0)


WORKBOOK = (
    ("page-1h", "page", 14.4, timedelta(hours=1), timedelta(minutes=5)),
    ("page-6h", "page", 6.0, timedelta(hours=6), timedelta(minutes=30)),
    ("ticket-1d", "ticket", 3.0, timedelta(days=1), timedelta(hours=2)),
    ("ticket-3d", "ticket", 1.0, timedelta(days=3), timedelta(hours=6)),
)


def default_conditions(window: timedelta) -> list[Condition]:
    """The Workbook's four conditions, factors scaled to the SLO's window (same budget shares)."""
    scale = window / THIRTY_DAYS
    return [Condition(n, s, f * scale, long, short) for n, s, f, long, short in WORKBOOK]


@dataclass(frozen=True)
class Selector:
    metric: str
    service: str | None
    matchers: tuple[tuple[str, str], ...]
    le: float | None

    @property
    def text(self) -> str:
        """The selector as written, e.g. ``http.server.request.duration{service.name="api", error.type="*"}``."""
        pairs = ([("service.name", self.service)] if self.service is not None else []) + list(self.matchers)
        return self.metric + "{" + ", ".join(f"{k}={v!r}" for k, v in pairs) + "}"

    def matches(self, attrs: dict) -> bool:
        for key, rule in self.matchers:
            value = attrs.get(key)
            text = "" if value is None else str(value)
            if rule == "*":
                ok = value is not None
            elif rule == "!*":
                ok = value is None
            elif rule.startswith("!~"):
                ok = value is None or not re.fullmatch(rule[2:], text)
            elif rule.startswith("~"):
                ok = value is not None and re.fullmatch(rule[1:], text) is not None
            elif rule.startswith("!="):
                ok = text != rule[2:]
            else:
                ok = text == rule
            if not ok:
                return False
        return True


@dataclass
class SloDef:
    name: str
    display: str
    service: str
    source: str
    target: float
    window: timedelta
    window_text: str
    rolling: bool
    calendar_start: datetime | None
    budgeting: str
    slice_window: timedelta | None
    slice_target: float | None
    good: Selector | None
    bad: Selector | None
    total: Selector | None
    conditions: list[Condition]
    min_budget_remaining: float
    min_events: int
    min_window_coverage: float
    owner: str | None
    problem: str | None = None  # why it cannot be evaluated (fail closed)


SEMCONV_METRIC = "http.server.request.duration"


OTLP_TYPES = ("otlp", "opentelemetry")


def _source_type(ms: object, where: str, data_sources: dict | None) -> tuple[object, str]:
    """A metricSource's type and where it comes from: its own ``type``, or, when it names a
    DataSource (``metricSourceRef``) and leaves ``type`` out, as OpenSLO v1 allows, the DataSource's."""
    if not isinstance(ms, dict):
        return None, ""
    ref = ms.get("metricSourceRef")
    if ref is None:
        return ms.get("type"), ""
    if data_sources is not None:
        _unique(("DataSource", ref), data_sources["sources"], f"{where}.metricSource.metricSourceRef")
    data_source = (data_sources or {}).get("by_name", {}).get(("DataSource", ref))
    if data_source is None:
        raise EvidenceError(f"{where}.metricSource.metricSourceRef", f"DataSource {ref!r} is not defined")
    ds_type = (data_source.get("spec") or {}).get("type") if isinstance(data_source.get("spec"), dict) else None
    own = ms.get("type")
    if (
        own is not None
        and str(own).lower() != str(ds_type).lower()
        and not (str(own).lower() in OTLP_TYPES and str(ds_type).lower() in OTLP_TYPES)
    ):
        raise EvidenceError(
            f"{where}.metricSource.type", f"{own!r} but DataSource {ref!r} is of type {ds_type!r}: which one is meant?"
        )
    return (own if own is not None else ds_type), f" (DataSource {ref!r})"


def _selector(
    source: dict | None, where: str, default_service: str = "", data_sources: dict | None = None
) -> Selector | None:
    if source is None:
        return None
    ms = source.get("metricSource") if isinstance(source, dict) else None
    kind, origin = _source_type(ms, where, data_sources)
    if not isinstance(ms, dict) or str(kind or "").lower() not in OTLP_TYPES:
        raise EvidenceError(where, f"metricSource.type {kind!r}{origin} cannot be evaluated here; expected otlp")
    spec = ms.get("spec") or {}
    if not isinstance(spec, dict):
        raise EvidenceError(f"{where}.metricSource.spec", f"expected a mapping (metric, filter, le), got {spec!r}")
    metric = spec.get("metric", SEMCONV_METRIC)
    if not isinstance(metric, str) or not metric:
        raise EvidenceError(f"{where}.metricSource.spec.metric", "expected an OTLP metric name")
    matchers = spec.get("filter") or {}
    if not isinstance(matchers, dict):
        raise EvidenceError(
            f"{where}.metricSource.spec.filter", f"expected a mapping of attribute: matcher, got {matchers!r}"
        )
    matchers = dict(matchers)
    for key, rule in matchers.items():
        pattern = str(rule)[2:] if str(rule).startswith("!~") else str(rule)[1:] if str(rule).startswith("~") else None
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise EvidenceError(
                    f"{where}.metricSource.spec.filter.{key}", f"{rule!r} is not a valid regular expression ({exc})"
                ) from None
    service = matchers.pop("service.name", None) or default_service or None
    le = spec.get("le")
    if le is not None and not isinstance(le, (int, float)):
        raise EvidenceError(f"{where}.metricSource.spec.le", f"expected a number (a bucket bound), got {le!r}")
    return Selector(metric, str(service) if service is not None else None,
                    tuple(sorted((k, str(v)) for k, v in matchers.items())), float(le) if le is not None else None)  # fmt: skip


def _ratio_selectors(
    indicator: object, service: str, data_sources: dict | None = None
) -> tuple[Selector | None, Selector | None, Selector]:
    """An SLI's (good, bad, total) selectors: total and exactly one of good or bad."""
    spec = indicator.get("spec") if isinstance(indicator, dict) else None
    ratio = spec.get("ratioMetric") if isinstance(spec, dict) else None
    if not isinstance(ratio, dict):
        raise EvidenceError(
            "indicator.spec", "only ratioMetric SLIs are evaluated (thresholdMetric: use le on a histogram)"
        )
    good = _selector(ratio.get("good"), "ratioMetric.good", service, data_sources)
    bad = _selector(ratio.get("bad"), "ratioMetric.bad", service, data_sources)
    total = _selector(ratio.get("total"), "ratioMetric.total", service, data_sources)
    if total is None or (good is None) == (bad is None):
        raise EvidenceError("ratioMetric", "expected total and exactly one of good or bad")
    return good, bad, total


def _percent(text: object, default: float, field: str) -> float:
    if text is None:
        return default
    value = str(text).strip()
    try:
        return float(value.rstrip("%")) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise EvidenceError(field, f"expected a percentage such as 5% or a ratio such as 0.05, got {text!r}") from None


def _count(text: object, default: int, field: str) -> int:
    if text is None or text == "":
        return default
    try:
        return int(str(text).strip())
    except ValueError:
        raise EvidenceError(field, f"expected a whole number, got {text!r}") from None


# OpenSLO leaves severity free text ("sev1", "page", ...): the words that page and those that file a
# ticket; anything else is a problem, never a silent ticket (that turned a "sev1" burn into a warning).
PAGE_SEVERITIES = frozenset({"page", "critical", "high", "urgent", "emergency", "fatal", "sev0", "sev1", "p0", "p1"})
TICKET_SEVERITIES = frozenset({"ticket", "warning", "warn", "low", "medium", "moderate", "minor", "info"})


def _severity(text: object, field: str) -> str:
    word = re.sub(r"[\s_-]", "", str(text).lower())
    if word in PAGE_SEVERITIES:
        return "page"
    if word in TICKET_SEVERITIES:
        return "ticket"
    raise EvidenceError(
        field,
        f"severity {text!r} is neither page-level ({', '.join(sorted(PAGE_SEVERITIES))}) nor ticket-level "
        f"({', '.join(sorted(TICKET_SEVERITIES))})",
    )


def _by_name(records: list[dict]) -> tuple[dict[tuple[str, str], dict], dict[tuple[str, str], list[str]]]:
    """Records by (kind, name), and where each (kind, name) is defined differently: OpenSLO names
    are unique per kind, and a second definition (an old copy of a policy in another file) must
    not silently replace the first. An identical copy is the same definition."""
    by_name: dict[tuple[str, str], dict] = {}
    sources: dict[tuple[str, str], list[str]] = {}
    seen: dict[tuple[str, str], set[str]] = {}
    for r in records:
        key = (r["kind"], r["name"])
        body = json.dumps([r.get("metadata"), r["spec"]], sort_keys=True, default=str)
        by_name.setdefault(key, r)
        if body not in seen.setdefault(key, set()):
            seen[key].add(body)
            sources.setdefault(key, []).append(r["source"])
    return by_name, sources


def _unique(key: tuple[str, object], sources: dict[tuple[str, str], list[str]], field: str) -> None:
    where = sources.get(key, [])
    if len(where) > 1:
        raise EvidenceError(
            field, f"{key[0]} {key[1]!r} is defined {len(where)} times, differently ({', '.join(where)}): "
            "which one counts is ambiguous; keep one",
        )  # fmt: skip


def _conditions(
    policies: list[dict], by_name: dict[tuple[str, str], dict], sources: dict, window: timedelta, where: str
) -> list[Condition]:
    out = []
    for policy in policies:
        spec = policy.get("spec") or {}
        if not isinstance(spec, dict) or not isinstance(spec.get("conditions") or [], list):
            raise EvidenceError(f"{where}.spec.conditions", "expected a list of alert conditions")
        if not spec.get("conditions"):  # never the default policy in place of the one written
            name = (policy.get("metadata") or {}).get("name") if isinstance(policy.get("metadata"), dict) else None
            raise EvidenceError(
                f"{where}.spec.conditions",
                f"alert policy {name or policy.get('name')!r} has no conditions; expected spec.conditions with a "
                "conditionRef or an inline AlertCondition",
            )
        for c in spec.get("conditions") or []:
            if not isinstance(c, dict):
                raise EvidenceError(
                    f"{where}.spec.conditions", f"expected conditionRef or an inline AlertCondition, got {c!r}"
                )
            if "conditionRef" in c:
                _unique(("AlertCondition", c["conditionRef"]), sources, where)
                ref = by_name.get(("AlertCondition", c["conditionRef"]))
                if ref is None:
                    raise EvidenceError(where, f"alert condition {c['conditionRef']!r} is not defined")
                c = {"metadata": ref["metadata"], "spec": ref["spec"]}
            cs = c.get("spec") or {}
            cond = cs.get("condition") if isinstance(cs, dict) else None
            if not isinstance(cond, dict):
                raise EvidenceError(f"{where}.condition", f"expected a burnrate condition, got {cond!r}")
            if cond.get("kind") != "burnrate":
                raise EvidenceError(where, f"only burnrate conditions are evaluated, got {cond.get('kind')!r}")
            threshold = cond.get("threshold")
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 0:
                raise EvidenceError(f"{where}.threshold", f"expected a burn rate > 0 such as 14.4, got {threshold!r}")
            long = approx_timedelta(*parse_openslo_duration(cond.get("lookbackWindow"), f"{where}.lookbackWindow"))
            after = cond.get("alertAfter")
            out.append(
                Condition(
                    name=(c.get("metadata") or {}).get("name") or f"burnrate-{cond.get('threshold')}",
                    severity=_severity(cs.get("severity", "page"), f"{where}.severity"),
                    factor=float(threshold),
                    long=long,
                    short=long / 12,
                    alert_after=approx_timedelta(*parse_openslo_duration(after, f"{where}.alertAfter"))
                    if after
                    else timedelta(0),
                )
            )
    return out or default_conditions(window)


def _objectives(name: str, display: str, spec: dict) -> list[tuple[str, str, dict]]:
    """(name, display name, objective) for each objective of an SLO. OpenSLO allows several (say
    99 % and 99.9 %), and each is its own target with its own budget and alerts: judging only the
    first would pass a release the stricter one blocks. With one objective the SLO keeps its
    name; with several each is ``<slo>/<objective>``, the objective named by its ``displayName``
    or else its target (``objectives[i]`` when two would read alike)."""
    objectives = spec["objectives"]
    if len(objectives) == 1:
        return [(name, display, objectives[0])]
    labels = []
    for objective in objectives:
        target = objective.get("target", (objective.get("targetPercent") or 0) / 100)
        labels.append(str(objective.get("displayName") or f"{float(target):.6g}"))
    labels = [f"objectives[{i}]" if labels.count(x) > 1 else x for i, x in enumerate(labels)]
    return [(f"{name}/{x}", f"{display} ({x})", o) for x, o in zip(labels, objectives, strict=True)]


def _indicator(spec: dict, by_name: dict, sources: dict, where: str) -> dict | None:
    """An SLO's or an objective's SLI: inline (``indicator``) or an SLI by name (``indicatorRef``)."""
    if spec.get("indicator") is not None:
        return spec["indicator"]
    if "indicatorRef" not in spec:
        return None
    _unique(("SLI", spec["indicatorRef"]), sources, f"{where}indicatorRef")
    ref = by_name.get(("SLI", spec["indicatorRef"]))
    if ref is None:
        raise EvidenceError(f"{where}indicatorRef", f"SLI {spec['indicatorRef']!r} is not defined")
    return {"spec": ref["spec"]}


def resolve(records: list[dict]) -> list[SloDef]:
    """SLO records with their SLIs and alert policies resolved, one per objective (``_objectives``);
    unusable ones carry ``problem`` (among them: a name defined twice, differently: ``_by_name``)."""
    by_name, sources = _by_name(records)
    data_sources = {"by_name": by_name, "sources": sources}  # metricSourceRef -> DataSource
    out = []
    for r in records:
        if r["kind"] != "SLO" or by_name[("SLO", r["name"])] is not r and len(sources[("SLO", r["name"])]) == 1:
            continue  # an identical copy (the same file under two roots) counts once
        spec, meta = r["spec"], r["metadata"]
        raw_annotations = meta.get("annotations") or {}
        annotations = raw_annotations if isinstance(raw_annotations, dict) else {}
        window_spec = spec["timeWindow"][0]
        count, unit = parse_openslo_duration(window_spec["duration"], "timeWindow")
        window = approx_timedelta(count, unit)
        calendar = window_spec.get("calendar")
        start = None
        if not window_spec.get("isRolling", False) and calendar:
            instant = parse_timestamp(str(calendar["startTime"]), "startTime")
            zone = ZoneInfo(calendar.get("timeZone") or "UTC")
            # Without an offset it is wall-clock time in the window's zone; with one, that instant
            # (a "-05:00" or a lower-case "z" was once taken for wall-clock time as well).
            start = instant.at.replace(tzinfo=zone) if instant.was_naive else instant.at.astimezone(zone)
        # What every objective of the SLO shares: its window, SLI and alert policies.
        slo = SloDef(
            name=r["name"],
            display=meta.get("displayName") or r["name"],
            service=str(spec.get("service") or ""),
            source=r["source"],
            target=0.0,
            window=window,
            window_text=str(window_spec["duration"]),
            rolling=bool(window_spec.get("isRolling", False)),
            calendar_start=start,
            budgeting=spec["budgetingMethod"],
            slice_window=None,
            slice_target=None,
            good=None,
            bad=None,
            total=None,
            conditions=default_conditions(window),
            min_budget_remaining=0.0,
            min_events=DEFAULT_MIN_EVENTS,
            min_window_coverage=DEFAULT_MIN_COVERAGE,
            owner=str(annotations[OWNER_ANNOTATION]) if annotations.get(OWNER_ANNOTATION) else None,
        )
        try:
            _unique(("SLO", r["name"]), sources, "metadata.name")
            if not isinstance(raw_annotations, dict):
                raise EvidenceError("metadata.annotations", f"expected a mapping, got {raw_annotations!r}")
            at = "metadata.annotations."
            slo.min_budget_remaining = _percent(annotations.get(MIN_BUDGET_ANNOTATION), 0.0, at + MIN_BUDGET_ANNOTATION)
            slo.min_events = _count(
                annotations.get(MIN_EVENTS_ANNOTATION), DEFAULT_MIN_EVENTS, at + MIN_EVENTS_ANNOTATION
            )
            slo.min_window_coverage = _percent(
                annotations.get(MIN_COVERAGE_ANNOTATION), DEFAULT_MIN_COVERAGE, at + MIN_COVERAGE_ANNOTATION
            )
            indicator = _indicator(spec, by_name, sources, "")
            if indicator is not None:  # else every objective has its own (the reader checked)
                slo.good, slo.bad, slo.total = _ratio_selectors(indicator, slo.service, data_sources)
            policies = []
            for p in spec.get("alertPolicies") or []:
                if isinstance(p, dict) and "alertPolicyRef" in p:
                    _unique(("AlertPolicy", p["alertPolicyRef"]), sources, "alertPolicies")
                    ref = by_name.get(("AlertPolicy", p["alertPolicyRef"]))
                    if ref is None:
                        raise EvidenceError("alertPolicies", f"alert policy {p['alertPolicyRef']!r} is not defined")
                    policies.append(ref)
                elif isinstance(p, dict):
                    policies.append(p)
                else:  # a bare name is not a reference: the defaults would apply without a word
                    raise EvidenceError("alertPolicies", f"expected alertPolicyRef or an inline AlertPolicy, got {p!r}")
            slo.conditions = _conditions(policies, by_name, sources, window, "alertPolicies")
        except EvidenceError as exc:
            slo.problem = f"{exc.field}: {exc.reason}"
        for i, (name, display, objective) in enumerate(_objectives(slo.name, slo.display, spec)):
            # An objective with its own indicator or indicatorRef (openslo/v1alpha: ratioMetrics per
            # objective; a v1 composite SLO's parts) is judged on it, not on the SLO's.
            own, problem = (slo.good, slo.bad, slo.total), slo.problem
            if ("indicator" in objective or "indicatorRef" in objective) and problem is None:
                try:
                    own = _ratio_selectors(_indicator(objective, by_name, sources, ""), slo.service, data_sources)
                except EvidenceError as exc:
                    problem = f"objectives[{i}].{exc.field}: {exc.reason}"
            if own[2] is None and problem is None:  # never judged on no SLI at all
                problem = f"objectives[{i}].indicatorRef: the SLO has no SLI and neither has this objective"
            out.append(
                replace(
                    slo,
                    good=own[0],
                    bad=own[1],
                    total=own[2],
                    problem=problem,
                    name=name,
                    display=display,
                    target=float(objective.get("target", (objective.get("targetPercent") or 0) / 100)),
                    slice_window=slice_window(objective["timeSliceWindow"], "timeSliceWindow")
                    if slo.budgeting != "Occurrences"  # Occurrences has no slices (the reader checked the rest)
                    else None,
                    slice_target=objective.get("timeSliceTarget"),
                )
            )
    return out


@dataclass
class Events:
    """Event increments at their times (ns), sorted, with prefix sums for O(log n) windows."""

    times: np.ndarray
    counts: np.ndarray
    spans: tuple[np.ndarray, np.ndarray] | None = None  # the time the data covers: disjoint (start, end] in ns
    cum: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        import numpy as np

        order = np.argsort(self.times, kind="stable")
        self.times, self.counts = self.times[order], self.counts[order]
        self.cum = np.concatenate([[0.0], np.cumsum(self.counts)])

    def between(self, start_ns: int, end_ns: int) -> float:
        """Events with start < time <= end."""
        import numpy as np

        lo = np.searchsorted(self.times, start_ns, side="right")
        hi = np.searchsorted(self.times, end_ns, side="right")
        return float(self.cum[hi] - self.cum[lo])

    @property
    def last_ns(self) -> int | None:
        return int(self.times[-1]) if len(self.times) else None

    @property
    def first_ns(self) -> int | None:
        """Where the data begins: its first covered instant, else its first point (a cumulative
        stream's first point only anchors the differences, so nothing before it is known)."""
        if self.spans is not None and len(self.spans[0]):
            return int(self.spans[0][0])
        return int(self.times[0]) if len(self.times) else None

    def covered(self, start_ns: int, end_ns: int) -> int:
        """Nanoseconds of (start, end] the data covers: its spans (``otel_coverage``), or without
        them the time from its first to its last point. Never past the last point: data that
        stopped covers nothing after it."""
        import numpy as np

        if self.spans is None:
            if not len(self.times):
                return 0
            lo, hi = np.array([self.times[0]]), np.array([self.times[-1]])
        else:
            lo, hi = self.spans
        return int(np.sum(np.maximum(np.minimum(hi, end_ns) - np.maximum(lo, start_ns), 0)))


class UnmatchedSelector(EvidenceError):
    """A selector that matches no data stream at all (not: streams that counted 0 events)."""

    def __init__(self, role: str, sel: Selector, reason: str, keys: list[str]):
        super().__init__(f"ratioMetric.{role}", f"{sel.text} {reason}")
        self.role, self.selector, self.keys = role, sel, keys

    def as_dict(self) -> dict:
        """What a finding needs, as plain data (asset outputs are pickled; this exception is not)."""
        return {"field": self.field, "reason": self.reason, "selector": self.selector.text, "role": self.role,
                "attribute_keys": self.keys}  # fmt: skip


def pick_streams(streams: list[tuple], sel: Selector, role: str = "total") -> list[tuple[str, str]]:
    """The (service, attrs) streams a selector takes, from (service, attrs, kind, bounds, monotonic) rows.

    A selector that takes no stream at all, or names an attribute that occurs in none of the
    service's streams of the metric (so a negative matcher such as ``!~5..`` would hold
    vacuously), raises ``UnmatchedSelector`` listing the attribute keys that do occur: counting
    it as zero events would pass a gate on data it never saw. With ``le``, every chosen stream
    must be a histogram having ``le`` as a bucket boundary. Events come from histograms and
    monotonic sums only: a gauge or a non-monotonic sum (an UpDownCounter, e.g. active requests)
    holds a level that goes up and down, and differencing it as a counter would invent events."""
    if not streams:
        raise UnmatchedSelector(role, sel, f"matches no stream: {sel.metric} has no data points", [])
    own = [row for row in streams if sel.service is None or row[0] == sel.service]
    keys = sorted({key for row in own for key in json.loads(row[1])} | ({"service.name"} if own else set()))
    if not own:
        services = ", ".join(sorted({repr(row[0]) for row in streams}))
        raise UnmatchedSelector(role, sel, f"matches no stream: {sel.metric} comes from service.name {services}", keys)
    absent = [key for key, _ in sel.matchers if key not in keys]
    if absent:
        raise UnmatchedSelector(
            role, sel, f"names {', '.join(absent)}, which occurs in no stream (attribute keys: {', '.join(keys)})", keys
        )
    out = []
    for service, attrs_json, kind, bounds, monotonic in own:
        if sel.matchers and not sel.matches(json.loads(attrs_json)):
            continue
        if kind == "gauge" or (kind == "sum" and not monotonic):
            what = "a gauge" if kind == "gauge" else "a non-monotonic sum (an UpDownCounter)"
            raise EvidenceError(
                f"ratioMetric.{role}",
                f"{sel.text} selects {what}: its values are levels, not event counts; "
                "expected a monotonic sum (a counter) or a histogram",
            )
        if sel.le is not None:
            if kind not in ("histogram", "exponentialHistogram"):
                raise EvidenceError("le", f"le needs a histogram; {sel.metric} is a {kind}")
            if kind == "histogram" and not any(abs(b - sel.le) <= 1e-12 * max(1.0, abs(b)) for b in bounds or []):
                raise EvidenceError("le", f"{sel.le} is not a bucket boundary of {sel.metric} (bounds {list(bounds)})")
        out.append((service, attrs_json))
    if not out:
        raise UnmatchedSelector(role, sel, f"matches no stream (attribute keys: {', '.join(keys)})", keys)
    return sorted(set(out))


def sli_events(conn, roots: list[str], sel: Selector, role: str = "total", *, versions: list[str]) -> Events:
    """A selector's events from the warehouse: increments per timestamp, computed in DuckDB from
    the OTLP file versions in the roots now (``versions``: their sha256)."""
    streams = pick_streams(otel_streams(conn, roots, sel.metric, versions=versions), sel, role)
    times, counts = otel_increments(conn, roots, sel.metric, streams, sel.le, versions=versions)
    return Events(times, counts, otel_coverage(conn, roots, sel.metric, streams, versions=versions))


def sli_status(conn, roots: list[str], slo: SloDef, at: datetime, windows: list[timedelta], *, versions: list[str]):
    """An SLO's ``SloStatus`` from the warehouse (``sli_events``, ``evaluate``), with the newest
    point of any metric of its service (``SloStatus.newest``)."""
    role, x = ("good", slo.good) if slo.good else ("bad", slo.bad)
    events = [sli_events(conn, roots, sel, name, versions=versions) for sel, name in ((x, role), (slo.total, "total"))]
    status = evaluate(slo, *events, at, windows)
    if slo.total.service is not None:  # is the service still exporting, even with no SLI point lately?
        last = otel_service_last(conn, roots, slo.total.service, versions=versions)
        status.service_last = datetime.fromtimestamp(last / 1e9, at.tzinfo) if last is not None else None
    return status


@dataclass
class WindowBurn:
    """A window's counts: events (Occurrences) or time slices with data (Timeslices)."""

    window: timedelta
    total: float
    bad: float
    events: float = 0.0  # requests seen, whatever the budgeting method (for "insufficient data")

    @property
    def ratio(self) -> float | None:
        return self.bad / self.total if self.total > 0 else None

    def burn(self, target: float) -> float | None:
        return None if self.ratio is None else self.ratio / (1 - target)


@dataclass
class AlertState:
    condition: Condition
    long: WindowBurn
    short: WindowBurn
    active: bool
    insufficient: bool
    covered: timedelta  # how much of the long window the data covers


@dataclass
class SloStatus:
    slo: SloDef
    at: datetime
    windows: list[WindowBurn]
    alerts: list[AlertState]
    budget_start: datetime
    budget_total: float
    budget_bad: float
    last_event: datetime | None
    data_from: datetime | None  # where the SLI's data begins
    budget_covered: timedelta  # how much of the budget period (start to evaluation time) the data covers
    service_last: datetime | None = None  # the newest point of any metric of the SLI's service
    # the budget period's events (``total``) and what the ``good`` (or ``bad``) selector counted in it
    budget_events: float = 0.0
    budget_counted: float = 0.0

    @property
    def overcounted(self) -> bool:
        """The good (or bad) selector counted more events than ``total`` over the budget period: the
        selectors do not describe the same requests, and the bad count (clipped at 0) understates
        what failed. A tenth of the error budget is allowed for exports of two metrics that end a
        moment apart at the period's edges; selectors over one histogram agree exactly."""
        slack = max(1.0, 0.1 * (1 - self.slo.target) * self.budget_events)
        return self.budget_counted > self.budget_events + slack

    @property
    def newest(self) -> datetime | None:
        """The newest sign the service still exports: its SLI's last point, or any metric's of the
        service (delta exporters send no SLI point while no request comes; runtime metrics go on)."""
        known = [t for t in (self.last_event, self.service_last) if t is not None]
        return max(known) if known else None

    @property
    def budget_coverage(self) -> float:
        """The covered fraction of the budget period (its elapsed part, for a calendar window)."""
        period = self.at - self.budget_start
        return min(self.budget_covered / period, 1.0) if period > timedelta(0) else 1.0

    @property
    def consumed(self) -> float | None:
        allowed = (1 - self.slo.target) * self.budget_total
        return self.budget_bad / allowed if allowed > 0 else None

    @property
    def remaining(self) -> float | None:
        return None if self.consumed is None else 1 - self.consumed


def _ns(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000_000)


def budget_start(slo: SloDef, at: datetime) -> datetime:
    """Start of the budget period containing ``at``: rolling, or the calendar period from startTime."""
    if slo.rolling or slo.calendar_start is None or slo.calendar_start > at:
        return at - slo.window
    count, unit = parse_openslo_duration(slo.window_text, "timeWindow")
    first = slo.calendar_start
    if unit in ("M", "Q", "Y"):
        months = count * {"M": 1, "Q": 3, "Y": 12}[unit]
        local = at.astimezone(first.tzinfo)
        k = max(((local.year - first.year) * 12 + local.month - first.month) // months, 0)
        while k > 0 and add_duration(first, f"P{k * months}M") > at:
            k -= 1
        return add_duration(first, f"P{k * months}M") if k else first
    length = approx_timedelta(count, unit)
    return first + length * ((at - first) // length)


def _sliced(slo: SloDef, good_or_bad: Events, total: Events, start: int, stop: int, w: timedelta, events: float):
    """Timeslices: a slice is bad when its good ratio is under ``timeSliceTarget``; the window's
    ratio is bad slices / slices with data. RatioTimeslices: the mean of the slices' error ratios
    (as ``bad`` over ``total`` = number of slices). Slices without requests carry no information
    and are left out."""
    import numpy as np

    size = int(slo.slice_window.total_seconds() * 1e9)
    edges = np.arange(stop, start - 1, -size)[::-1]
    if len(edges) < 2:
        edges = np.array([start, stop])

    def per_slice(ev: Events) -> np.ndarray:
        idx = np.searchsorted(ev.times, edges, side="right")
        return np.diff(ev.cum[idx])

    t = per_slice(total)
    x = per_slice(good_or_bad)
    bad = np.maximum(t - x if slo.bad is None else x, 0.0)
    seen = t > 0
    ratios = bad[seen] / t[seen]
    if slo.budgeting == "RatioTimeslices":
        return WindowBurn(w, float(seen.sum()), float(ratios.sum()), events)
    slice_target = slo.slice_target if slo.slice_target is not None else slo.target
    return WindowBurn(w, float(seen.sum()), float(np.sum(1 - ratios < slice_target)), events)


def evaluate(slo: SloDef, good_or_bad: Events, total: Events, at: datetime, windows: list[timedelta]) -> SloStatus:
    """Burn per window, the alert conditions and the budget at ``at`` (``good_or_bad`` as the SLI says).

    Counts are over the data inside each window, never scaled up: how much of a window the data
    covers is reported beside it (``AlertState.covered``, ``SloStatus.budget_covered``)."""
    end = _ns(at)
    begins = total.first_ns

    def covered(w: timedelta) -> timedelta:
        return timedelta(microseconds=total.covered(end - int(w.total_seconds() * 1e9), end) // 1000)

    def burn(w: timedelta, shift: timedelta = timedelta(0)) -> WindowBurn:
        stop = end - int(shift.total_seconds() * 1e9)
        start = stop - int(w.total_seconds() * 1e9)
        t = total.between(start, stop)
        x = good_or_bad.between(start, stop)
        bad = max(t - x if slo.bad is None else x, 0.0)
        if slo.budgeting == "Occurrences" or not slo.slice_window:
            return WindowBurn(w, t, bad, t)
        return _sliced(slo, good_or_bad, total, start, stop, w, t)

    alerts = []
    for c in slo.conditions:
        long, short = burn(c.long), burn(c.short)
        insufficient = long.events < slo.min_events
        hot = [b.burn(slo.target) for b in (long, short)]
        at_least = c.factor * (1 - 1e-9)  # "burns at 14.4x" must not miss by a rounding error
        active = not insufficient and all(h is not None and h >= at_least for h in hot)
        if active and c.alert_after:
            earlier = [burn(c.long, c.alert_after), burn(c.short, c.alert_after)]
            active = all((b.burn(slo.target) or 0) >= at_least for b in earlier)
        alerts.append(AlertState(c, long, short, active, insufficient, covered(c.long)))
    start = budget_start(slo, at)
    period = burn(at - start)
    since = end - int((at - start).total_seconds() * 1e9)
    last = total.last_ns
    return SloStatus(
        slo=slo,
        at=at,
        windows=[burn(w) for w in windows],
        alerts=alerts,
        budget_start=start,
        budget_total=period.total,
        budget_bad=period.bad,
        last_event=datetime.fromtimestamp(last / 1e9, at.tzinfo) if last else None,
        data_from=datetime.fromtimestamp(begins / 1e9, at.tzinfo) if begins is not None else None,
        budget_covered=covered(at - start),
        budget_events=period.events,
        budget_counted=good_or_bad.between(since, end),
    )


REPORT_WINDOWS = [timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2),
                  timedelta(hours=6), timedelta(days=1), timedelta(days=3)]  # fmt: skip
