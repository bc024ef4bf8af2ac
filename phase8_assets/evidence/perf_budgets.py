"""Performance budgets (``phase8/v1`` ``kind: PerfBudgets``): limits per benchmark and measure.

A rule's ``benchmark`` is an exact name, a glob, or ``re:<regex>``; for a given benchmark and
measure the most specific matching rule wins: the exact name beats a glob, a glob beats a regex,
and between two globs (or two regexes) the one with more literal characters wins; a tie goes to
the rule declared first. ``absolute`` reads ``<stat|measure> <op> <number><unit>``: a statistic
(mean, median, min, max, p90, p95, p99) of the rule's measure, or another measure's mean
(``ops >= 300``). Values are converted to SI base units (ms → s, KB → B); a limit whose unit does
not fit its measure's (a bare number on a time) is not compared (``Absolute.unit_problem``). ``drift`` is the
cumulative rule: ``{limit: "+8%", anchor: <PerfBaseline path in the root>, inconclusive: warn|fail}``
judges the release against a frozen anchor rather than the moving baseline.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from phase8_assets.evidence import EvidenceError, ReadResult, artifact_time, load_artifact

STATS = ("mean", "median", "min", "max", "p90", "p95", "p99")
# Chosen with benchmarks/perf_accuracy.py (150 releases x 20 benchmarks, 2 % run-to-run noise): at
# 0.05 the gate flags 0.29 % of unchanged benchmarks and finds 98.8 % of regressions >= 10 % (96 %
# of the 10 % ones); at 0.01, 0.12 % and 95.3 % (83 %). The default relative limit is +10 %.
DEFAULT_FALSE_DISCOVERY_RATE = 0.05
VALUE_UNITS = {
    "": 1.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ns": 1e-9,
    "/s": 1.0,
    "ops/s": 1.0,
    "B": 1.0,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "%": 0.01,
}
# The SI base unit a limit's unit is in (what the readers convert measures to); "" is a bare number.
LIMIT_BASE = {"s": "s", "ms": "s", "us": "s", "µs": "s", "μs": "s", "ns": "s", "/s": "1/s", "ops/s": "1/s",
              "B": "B", "KB": "B", "MB": "B", "GB": "B", "%": "ratio", "": ""}  # fmt: skip
_ABSOLUTE = re.compile(r"^\s*([A-Za-z0-9_/()]+)\s*(<=|<|>=|>)\s*([0-9.eE+-]+)\s*([A-Za-z/%µμ]*)\s*$")


@dataclass(frozen=True)
class Absolute:
    stat: str
    op: str
    limit: float  # SI base units
    text: str
    unit: str = ""  # as written ("ms", "KB", "%", "" for a bare number)

    def unit_problem(self, measure_unit: str) -> str | None:
        """Why this limit cannot be compared with a measure in ``measure_unit`` (an SI base unit), or None.
        A bare number on a time measure would be seconds: k6's own thresholds ("p(95)<250") are ms."""
        base = LIMIT_BASE.get(self.unit, "")
        if base == "" and measure_unit == "s":
            return f"{self.text!r} gives no unit for a measure in seconds (a bare number would be seconds): write e.g. ms or s"
        if base and measure_unit in set(LIMIT_BASE.values()) - {""} and base != measure_unit:
            return f"{self.text!r} is in {self.unit} ({base}) but the measure is in {measure_unit}"
        return None

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.limit, "<": value < self.limit, ">=": value >= self.limit, ">": value > self.limit}[
            self.op
        ]


@dataclass(frozen=True)
class Drift:
    limit: float  # 0.08 for +8%
    limit_text: str
    anchor: str  # the PerfBaseline file's path in the root
    inconclusive: str  # warn | fail


@dataclass(frozen=True)
class BudgetRule:
    name: str
    benchmark: str
    measure: str
    absolute: Absolute | None
    relative: float | None  # 0.10 for +10%
    relative_text: str | None
    direction: str | None
    owner: str
    runbook: str | None
    order: int
    drift: Drift | None = None

    def specificity(self, benchmark: str) -> tuple[int, int, int]:
        if self.benchmark == benchmark:
            kind, literal = 3, len(self.benchmark)
        elif self.benchmark.startswith("re:"):
            kind, literal = 0, len(re.sub(r"[\\^$.|?*+()\[\]{}]", "", self.benchmark[3:]))
        elif any(c in self.benchmark for c in "*?["):
            kind, literal = 1, len(re.sub(r"[*?\[\]]", "", self.benchmark))
        else:
            kind, literal = 2, len(self.benchmark)  # written like a name, matched as a glob
        return kind, literal, -self.order

    def matches(self, benchmark: str, measure: str) -> bool:
        if measure != self.measure:
            return False
        if self.benchmark == benchmark:  # pytest names hold [..], which a glob reads as a class
            return True
        if self.benchmark.startswith("re:"):
            return re.search(self.benchmark[3:], benchmark) is not None
        return fnmatch.fnmatchcase(benchmark, self.benchmark)


@dataclass(frozen=True)
class PerfBudgets:
    rules: tuple[BudgetRule, ...]
    base_branch: str | None
    max_runs: int
    min_runs: int
    false_discovery_rate: float
    change_point_p_value: float

    def rule_for(self, benchmark: str, measure: str, want: str) -> BudgetRule | None:
        """The most specific rule for a benchmark/measure that sets ``want`` (absolute, relative or drift)."""
        hits = [r for r in self.rules if getattr(r, want) is not None and r.matches(benchmark, measure)]
        return max(hits, key=lambda r: r.specificity(benchmark)) if hits else None


def _percent(text: str) -> float:
    return float(text.strip("+%")) / 100


def _absolute(text: str, measure: str | None, where: str) -> tuple[Absolute, str]:
    match = _ABSOLUTE.match(text)
    lhs, op, number, unit = match.groups()
    if unit not in VALUE_UNITS:
        raise EvidenceError(where, f"unknown unit {unit!r} in {text!r}; expected one of {'|'.join(VALUE_UNITS)}")
    try:
        value = float(number) * VALUE_UNITS[unit]
    except ValueError as exc:
        raise EvidenceError(where, f"expected a number in {text!r}, got {number!r}") from exc
    if lhs in STATS:
        return Absolute(lhs, op, value, text.strip(), unit), measure or "time"
    if measure and measure != lhs:
        raise EvidenceError(where, f"{text!r} limits measure {lhs!r} but the rule's measure is {measure!r}")
    return Absolute("mean", op, value, text.strip(), unit), lhs


def _drift(spec: dict, where: str) -> Drift:
    from phase8_assets.evidence.roots import RootError, check_relative

    try:
        anchor = check_relative(spec["anchor"], "anchor")
    except RootError as exc:
        raise EvidenceError(f"{where}.anchor", str(exc).split(": ", 1)[-1]) from exc
    return Drift(_percent(spec["limit"]), spec["limit"], anchor, spec.get("inconclusive", "warn"))


def read(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "PerfBudgets")
    reviewed = artifact_time(doc, "reviewed").at
    rules, names = [], set()
    for i, item in enumerate(doc["rules"]):
        where = f"rules[{i}]"
        if item["name"] in names:
            raise EvidenceError(f"{where}.name", f"{item['name']!r} is declared twice")
        names.add(item["name"])
        if item["benchmark"].startswith("re:"):
            try:
                re.compile(item["benchmark"][3:])
            except re.error as exc:
                raise EvidenceError(f"{where}.benchmark", f"not a valid regular expression ({exc})") from exc
        absolute, measure = (None, item.get("measure") or "time")
        if item.get("absolute"):
            absolute, measure = _absolute(item["absolute"], item.get("measure"), f"{where}.absolute")
        relative = item.get("relative")
        rules.append(
            BudgetRule(
                name=item["name"],
                benchmark=item["benchmark"],
                measure=measure,
                absolute=absolute,
                relative=_percent(relative) if relative else None,
                relative_text=relative,
                direction=item.get("direction"),
                owner=item["owner"],
                runbook=item.get("runbook"),
                order=i,
                drift=_drift(item["drift"], f"{where}.drift") if item.get("drift") else None,
            )
        )
    baseline = doc.get("baseline") or {}
    budgets = PerfBudgets(
        rules=tuple(rules),
        base_branch=baseline.get("branch"),
        max_runs=int(baseline.get("max_runs", 20)),
        min_runs=int(baseline.get("min_runs", 5)),
        false_discovery_rate=float(doc.get("false_discovery_rate", DEFAULT_FALSE_DISCOVERY_RATE)),
        change_point_p_value=float(doc.get("change_point_p_value", 0.001)),
    )
    if budgets.min_runs > budgets.max_runs:
        raise EvidenceError("baseline.min_runs", f"{budgets.min_runs} is more than max_runs {budgets.max_runs}")
    return ReadResult(
        observed_at=reviewed,
        timestamp_field="reviewed",
        summary={"rules": [r.name for r in rules]},
        records=[budgets],
    )
