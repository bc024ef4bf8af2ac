"""OpenSLO definitions (evidence kind ``slo_definitions``): ``openslo/v1`` SLO, SLI, AlertPolicy,
AlertCondition, and the older ``openslo/v1alpha`` SLO shape (as Sloth accepts it).

Defined outcomes for the odd shapes real files have:

- durations follow the spec's units: ``m`` is a *minute*, ``M`` a month, ``w`` a week, ``Q`` a
  quarter, ``Y`` a year. A time window under one hour is implausible for an SLO and gets a
  warning that says how it was read (a real example writes ``1m`` meaning a month);
- ``timeSliceWindow`` may be a bare number, which the spec reads as minutes (``5`` is ``5m``);
  ``timeSliceTarget`` is a ratio in (0, 1];
- an objective without ``op`` is a ratio objective (``target`` only), as the spec allows;
- an objective may name its own SLI (``indicator`` or ``indicatorRef``, a composite SLO's parts):
  it is judged on that SLI against its own target; ``compositeWeight`` is not combined (a warning);
- ``alertPolicies:`` left empty is no alert policy (the default multiwindow policy applies);
- a calendar ``startTime`` without an offset is read in the window's ``timeZone``;
- Sloth's own formats (``prometheus/v1``, ``sloth.slok.dev/v1``) are not OpenSLO: rejected, saying so.

Each document becomes a plain record ``{"kind", "name", "spec", "source"}`` (v1alpha SLOs are
converted to the v1 shape first, each objective keeping its own ``ratioMetrics`` as its
``indicator``); SLOs are resolved against SLIs and alert policies by
``domains/slo.py``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phase8_assets.evidence import EvidenceError, ReadResult, mapping
from phase8_assets.shared.clock import TimeParseError, parse_timestamp
from phase8_assets.shared.yaml_loader import YamlError, load_yaml_documents

KINDS = ("SLO", "SLI", "AlertPolicy", "AlertCondition", "Service", "DataSource", "AlertNotificationTarget")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwMQY])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
UNIT_MONTHS = {"M": 1, "Q": 3, "Y": 12}
ALPHA_UNITS = {
    "Second": "s",
    "Minute": "m",
    "Hour": "h",
    "Day": "d",
    "Week": "w",
    "Month": "M",
    "Quarter": "Q",
    "Year": "Y",
}


def parse_openslo_duration(text: object, where: str) -> tuple[int, str]:
    """``2w`` -> (2, "w"); the unit letters of the OpenSLO spec (``m`` minute, ``M`` month)."""
    match = _DURATION.match(str(text)) if text is not None else None
    if not match:
        raise EvidenceError(where, f"expected an OpenSLO duration such as 30d, 2w, 1M or 5m, got {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    try:
        approx_timedelta(count, unit)
    except OverflowError:  # beyond what a timedelta holds (999999999 days): no window is that long
        raise EvidenceError(where, f"expected a duration of at most 999999999 days, got {count}{unit}") from None
    return count, unit


def slice_window(value: object, where: str) -> timedelta:
    """An objective's ``timeSliceWindow``: a duration shorthand, or a bare number of minutes (the
    spec: "number | duration-shorthand ... if specified as a number in minutes")."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise EvidenceError(where, f"expected a positive number of minutes or a duration such as 5m, got {value}")
        return timedelta(minutes=value)
    return approx_timedelta(*parse_openslo_duration(value, where))


def approx_timedelta(count: int, unit: str) -> timedelta:
    """A duration as a timedelta; months, quarters and years count 30, 90 and 365 days."""
    if unit in UNIT_SECONDS:
        return timedelta(seconds=count * UNIT_SECONDS[unit])
    return timedelta(days=count * {"M": 30, "Q": 90, "Y": 365}[unit])


def _alpha_to_v1(doc: dict, warnings: list[str]) -> dict:
    """The v1alpha SLO shape (ratioMetrics under objectives, timeWindows count/unit) as v1."""
    spec = dict(mapping(doc.get("spec"), "spec"))
    objectives = spec.get("objectives") or []
    windows = spec.pop("timeWindows", None) or []
    v1_windows = []
    for i, w in enumerate(windows):
        unit = ALPHA_UNITS.get(str(w.get("unit"))) if isinstance(w, dict) else None
        if unit is None or not isinstance(w.get("count"), int):
            raise EvidenceError(f"spec.timeWindows[{i}]", f"expected count and unit (Day, Week, ...), got {w!r}")
        v1_windows.append(
            {
                "duration": f"{w['count']}{unit}",
                "isRolling": not w.get("calendar"),
                **({"calendar": w["calendar"]} if w.get("calendar") else {}),
            }
        )
    spec["timeWindow"] = v1_windows
    indicator = None
    v1_objectives = []
    for objective in objectives if isinstance(objectives, list) else []:
        if not isinstance(objective, dict):
            v1_objectives.append(objective)  # refused, with its place, by _check_slo
            continue
        objective = dict(objective)
        ratio = objective.pop("ratioMetrics", None)
        if ratio is not None and not isinstance(ratio, dict):
            raise EvidenceError(
                f"spec.objectives[{len(v1_objectives)}].ratioMetrics", f"expected a mapping, got {ratio!r}"
            )
        if ratio is not None:  # each objective's own SLI (they may differ: say 100 ms and 300 ms)
            objective["indicator"] = {"metadata": {"name": doc["metadata"]["name"]}, "spec": {"ratioMetric": {
                k: {"metricSource": {"type": v.get("source"), "spec": {k2: v2 for k2, v2 in v.items() if k2 != "source"}}}
                for k, v in ratio.items() if isinstance(v, dict)} | ({"counter": ratio["counter"]} if "counter" in ratio else {})}}  # fmt: skip
            indicator = indicator or objective["indicator"]
        v1_objectives.append(objective)
    spec["objectives"] = v1_objectives
    if indicator:
        spec["indicator"] = indicator
    warnings.append(f"{doc['metadata']['name']}: openslo/v1alpha read as openslo/v1")
    return {**doc, "apiVersion": "openslo/v1", "spec": spec}


def _target(objective: dict, where: str) -> object:
    """An objective's target as a ratio: ``target`` (a ratio) or ``targetPercent`` (a percentage).
    One that reads two ways is refused: both, disagreeing, or a ``targetPercent`` of at most 1 (a
    ratio in the percent field: 0.999 % would be an objective whose budget nothing ever spends)."""
    percent = objective.get("targetPercent")
    if "targetPercent" not in objective or isinstance(percent, bool) or not isinstance(percent, (int, float)):
        return objective.get("target", percent)
    if 0 < percent <= 1:
        raise EvidenceError(
            f"{where}.targetPercent",
            f"{percent!r} is a percentage here ({percent!r} %); for {percent * 100:g} % write targetPercent: "
            f"{percent * 100:g} or target: {percent!r} (a ratio)",
        )
    if (
        "target" in objective
        and objective["target"] != percent / 100
        and not (isinstance(objective["target"], (int, float)) and abs(objective["target"] - percent / 100) < 1e-12)
    ):
        raise EvidenceError(
            f"{where}.targetPercent",
            f"target {objective['target']!r} and targetPercent {percent!r} disagree; give one",
        )
    return objective.get("target", percent / 100)


def _check_slo(name: str, spec: dict, where: str, warnings: list[str]) -> None:
    windows = spec.get("timeWindow")
    if not isinstance(windows, list) or len(windows) != 1:
        raise EvidenceError(f"{where}spec.timeWindow", "expected exactly one time window")
    window = windows[0]
    if not isinstance(window, dict):
        raise EvidenceError(f"{where}spec.timeWindow[0]", f"expected a mapping with duration, got {window!r}")
    count, unit = parse_openslo_duration(window.get("duration"), f"{where}spec.timeWindow[0].duration")
    length = approx_timedelta(count, unit)
    if length < timedelta(hours=1):
        warnings.append(
            f"{name}: timeWindow {window.get('duration')!r} is {length} by the OpenSLO spec "
            "(m = minute, M = month); implausible for an SLO, evaluated as written"
        )
    if not window.get("isRolling", False) and not isinstance(window.get("calendar"), dict):
        raise EvidenceError(f"{where}spec.timeWindow[0].calendar", "a calendar window needs calendar.startTime")
    if isinstance(window.get("calendar"), dict):
        try:
            parse_timestamp(str(window["calendar"].get("startTime")), "startTime")
        except TimeParseError as exc:
            raise EvidenceError(f"{where}spec.timeWindow[0].calendar.startTime", str(exc).split(": ", 1)[-1]) from exc
        zone = window["calendar"].get("timeZone")
        if zone is not None:
            try:
                ZoneInfo(str(zone))
            except (ZoneInfoNotFoundError, ValueError):
                raise EvidenceError(
                    f"{where}spec.timeWindow[0].calendar.timeZone",
                    f"expected an IANA time zone such as America/New_York, got {zone!r}",
                ) from None
    method = spec.get("budgetingMethod")
    if method not in ("Occurrences", "Timeslices", "RatioTimeslices"):
        raise EvidenceError(
            f"{where}spec.budgetingMethod", f"expected Occurrences|Timeslices|RatioTimeslices, got {method!r}"
        )
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise EvidenceError(f"{where}spec.objectives", "expected at least one objective")
    for i, objective in enumerate(objectives):
        if not isinstance(objective, dict):
            raise EvidenceError(f"{where}spec.objectives[{i}]", f"expected a mapping with target, got {objective!r}")
        target = _target(objective, f"{where}spec.objectives[{i}]")
        if not isinstance(target, (int, float)) or not 0 < target < 1:
            raise EvidenceError(
                f"{where}spec.objectives[{i}].target", f"expected a ratio between 0 and 1, got {target!r}"
            )
        if method != "Occurrences":
            if objective.get("timeSliceWindow") is None:
                raise EvidenceError(f"{where}spec.objectives[{i}].timeSliceWindow", f"required with {method}")
            slice_window(objective["timeSliceWindow"], f"{where}spec.objectives[{i}].timeSliceWindow")
            slice_target = objective.get("timeSliceTarget")
            if slice_target is not None and (
                isinstance(slice_target, bool)
                or not isinstance(slice_target, (int, float))
                or not 0 < slice_target <= 1
            ):
                raise EvidenceError(
                    f"{where}spec.objectives[{i}].timeSliceTarget",
                    f"expected a ratio in (0, 1] (0.95, not 95), got {slice_target!r}",
                )
    _check_indicators(name, spec, objectives, where, warnings)


def _check_indicators(name: str, spec: dict, objectives: list[dict], where: str, warnings: list[str]) -> None:
    """The SLO's SLI (``indicator`` or ``indicatorRef``), or each objective's own (a composite SLO):
    every objective has exactly one, and never two to choose between."""
    if "indicator" in spec and "indicatorRef" in spec:
        raise EvidenceError(f"{where}spec.indicatorRef", "give an indicator or an indicatorRef, not both")
    for i, objective in enumerate(objectives):
        if "indicator" in objective and "indicatorRef" in objective:
            raise EvidenceError(
                f"{where}spec.objectives[{i}].indicatorRef", "give an indicator or an indicatorRef, not both"
            )
    if "indicator" not in spec and "indicatorRef" not in spec:
        if not any("indicator" in o or "indicatorRef" in o for o in objectives):
            raise EvidenceError(
                f"{where}spec.indicator", "expected an indicator or an indicatorRef (or one on every objective)"
            )
        for i, objective in enumerate(objectives):
            if "indicator" not in objective and "indicatorRef" not in objective:
                raise EvidenceError(
                    f"{where}spec.objectives[{i}].indicatorRef",
                    "expected an indicator or an indicatorRef: the SLO has none, so every objective needs its own",
                )
    if any("compositeWeight" in o for o in objectives):
        warnings.append(
            f"{name}: compositeWeight is not combined: each objective is judged on its own SLI against its own target"
        )


def read(data: bytes, uri: str) -> ReadResult:
    try:
        docs = load_yaml_documents(data, uri)
    except YamlError as exc:
        raise EvidenceError("(document)", str(exc).split(": ", 1)[-1]) from exc
    warnings: list[str] = []
    records = []
    for d, doc in enumerate(docs):
        where = f"document {d + 1}." if len(docs) > 1 else ""
        if not isinstance(doc, dict):
            raise EvidenceError(where.rstrip(".") or "(document)", "expected an OpenSLO object")
        api = doc.get("apiVersion") or doc.get("version")
        if api in ("prometheus/v1", "sloth.slok.dev/v1"):
            raise EvidenceError(
                f"{where}apiVersion", f"{api!r} is a Sloth spec, not OpenSLO; use the OpenSLO form (openslo/v1)"
            )
        if api not in ("openslo/v1", "openslo/v1alpha"):
            raise EvidenceError(f"{where}apiVersion", f"expected openslo/v1 (or openslo/v1alpha), got {api!r}")
        kind = doc.get("kind")
        if kind not in KINDS:
            raise EvidenceError(f"{where}kind", f"expected one of {'|'.join(KINDS)}, got {kind!r}")
        name = mapping(doc.get("metadata"), f"{where}metadata").get("name")
        if not isinstance(name, str) or not name:
            raise EvidenceError(f"{where}metadata.name", "is required")
        if api == "openslo/v1alpha":
            if kind != "SLO":
                raise EvidenceError(f"{where}kind", f"only SLO is read in openslo/v1alpha, got {kind!r}")
            doc = _alpha_to_v1(doc, warnings)
        spec = doc.get("spec")
        if not isinstance(spec, dict):
            raise EvidenceError(f"{where}spec", "expected a mapping")
        if kind == "SLO":
            _check_slo(name, spec, where, warnings)
        records.append(
            {
                "kind": kind,
                "name": name,
                "metadata": doc.get("metadata") or {},
                "spec": spec,
                "source": uri if len(docs) == 1 else f"{uri}#{d}",
            }
        )
    if not records:
        raise EvidenceError("(document)", "no OpenSLO documents")
    return ReadResult(
        observed_at=None,
        timestamp_field="(definitions carry no time)",
        summary={"documents": [f"{r['kind']}/{r['name']}" for r in records]},
        records=records,
        warnings=warnings,
    )
