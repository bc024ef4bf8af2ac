"""Tenancy isolation: which (resource × dimension) cells of the matrix the current results cover, and
the ``tenancy_isolation`` gate's findings.

The gate reads the evidence as it is now (the history table is for trends and audit):

- every isolation test counts by its latest run in the root (a test re-run in a newer file supersedes
  the older file's result; within one file nothing supersedes: same-named results there are other
  tests, in other suites); a failed or errored latest run is an error, whatever its cell;
- a flaky pass (failed, then passed on rerun) is an error by default (a test that sometimes leaks is
  a leak); the matrix may make it a warning per resource;
- a cell is covered by a passed (or flaky) result no older than the cell's maximum age; a skipped
  test covers nothing; a cell without such a result is an error (``cell-covered`` or ``result-age``);
- no readable matrix, or an unreadable results file (its outcomes are unknown), is an error: fail
  closed; a result dated in the future beyond a small skew covers nothing and is an error;
- results for cells the matrix does not name, and results without a dimension or resource, warn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from phase8_assets.domains.gates import Finding
from phase8_assets.evidence.collect import EvidenceBatch, EvidenceFile
from phase8_assets.evidence.isolation import Cell
from phase8_assets.shared.clock import format_duration, format_timestamp
from phase8_assets.shared.reports import state_heatmap

GATE = "tenancy_isolation"
RESULTS_KIND = "isolation_results"
MATRIX_KIND = "isolation_matrix"
FUTURE_TOLERANCE = timedelta(minutes=5)
FAILED = ("failed", "error")
COVERING = ("passed", "flaky")
# Heat-map order: the worse a state, the higher its code.
STATES = ("covered", "flaky-warning", "uncovered", "stale", "flaky", "failed")


@dataclass(frozen=True)
class Result:
    """The latest run of one isolation test in the evidence root."""

    uri: str
    classname: str
    name: str
    dimension: str | None
    resource: str | None
    tenants: tuple[str, ...]
    outcome: str
    attempts: tuple[str, ...]
    run_at: datetime | None
    message: str

    @property
    def test(self) -> str:
        return f"{self.classname}::{self.name}" if self.classname else self.name


@dataclass
class CellState:
    cell: Cell
    state: str  # one of STATES: the worst of outcome and coverage, for people
    coverage: str  # covered | uncovered | stale
    results: list[Result] = field(default_factory=list)
    newest: Result | None = None  # the newest covering result, if any
    age: timedelta | None = None

    @property
    def label(self) -> str:
        return f"{self.cell.resource} × {self.cell.dimension}"


@dataclass
class Coverage:
    at: datetime
    cells: list[CellState]
    results: list[Result]
    matrix_uri: str | None
    outside: list[Result]  # results whose cell the matrix does not name (or that name none)


def latest_results(files: list[EvidenceFile]) -> list[Result]:
    """One ``Result`` per test: its latest run across the root's current files.

    Results that cannot be ordered are contradictory evidence, and all of them stand (so the worse
    one decides): two runs of a test at the same time (two files, one suite timestamp), or a run with
    no time at all (a suite without ``timestamp``), which no dated run can be shown to follow. So a
    failure is never settled away by which file name sorts later.

    A newer run is one in a newer file: one file's results of one name come from different suites
    (jest-junit's test files, each with its own timestamp), so they all stand, each its own test; a
    later suite's pass is another test, not a re-run of the failure."""
    runs: dict[tuple[str, str], list[Result]] = {}
    for f in files:
        for r in f.records:
            result = Result(
                uri=f.uri,
                classname=r["classname"],
                name=r["name"],
                dimension=r["dimension"],
                resource=r["resource"],
                tenants=tuple(r["tenants"]),
                outcome=r["outcome"],
                attempts=tuple(r["attempts"]),
                run_at=r["run_at"],
                message=r["message"],
            )
            runs.setdefault((result.classname, result.name), []).append(result)
    latest = []
    for results in runs.values():
        file_at: dict[str, datetime] = {}
        for r in results:
            if r.run_at is not None:
                file_at[r.uri] = max(file_at.get(r.uri, r.run_at), r.run_at)
        newest = max(file_at.values(), default=None)
        latest.extend(r for r in results if r.run_at is None or file_at[r.uri] == newest)
    return sorted(latest, key=lambda r: (r.dimension or "", r.resource or "", r.test))


def matrix_cells(batch: EvidenceBatch) -> tuple[list[Cell], str | None]:
    files = batch.files_of(MATRIX_KIND)
    if not files:
        return [], None
    newest = max(files, key=lambda f: (f.observed_at, f.uri))
    return list(newest.records), newest.uri


def assess(batch: EvidenceBatch, at: datetime) -> Coverage:
    """Every required cell's state at ``at`` from the current results and matrix."""
    cells, matrix_uri = matrix_cells(batch)
    results = latest_results(batch.files_of(RESULTS_KIND))
    states = []
    named = {(c.resource, c.dimension) for c in cells}
    for cell in cells:
        mine = [r for r in results if (r.resource, r.dimension) == (cell.resource, cell.dimension)]
        usable = [r for r in mine if r.run_at is not None and r.run_at <= at + FUTURE_TOLERANCE]
        covering = [r for r in usable if r.outcome in COVERING]
        newest = max(covering, key=lambda r: r.run_at, default=None)
        age = at - newest.run_at if newest else None
        covered = "uncovered" if newest is None else "stale" if age > cell.max_age else "covered"
        if any(r.outcome in FAILED for r in mine):
            state = "failed"
        elif any(r.outcome == "flaky" for r in mine) and cell.flaky == "error":
            state = "flaky"
        elif covered != "covered":
            state = covered
        else:
            state = "flaky-warning" if any(r.outcome == "flaky" for r in mine) else "covered"
        states.append(CellState(cell, state, covered, mine, newest, age))
    outside = [r for r in results if (r.resource, r.dimension) not in named]
    return Coverage(at, states, results, matrix_uri, outside)


def tenant_view(coverage: Coverage, tenant: str) -> list[Result]:
    """The results one tenant may see: the tests that involved that tenant, and no other test."""
    return [r for r in coverage.results if tenant in r.tenants]


def findings(
    coverage: Coverage, batch: EvidenceBatch, owner: str, runbook: str | None, expected: dict[str, str | None]
) -> list[Finding]:
    """``expected``: where each kind's files are configured to be, the evidence of a finding about absent ones."""
    out: list[Finding] = []

    def add(severity, subject, rule, observed, limit, evidence, who=None, **details):
        out.append(Finding(severity, subject, rule, observed, limit, evidence, who or owner, runbook, details))

    matrix_rejected = batch.rejections_of(MATRIX_KIND)
    matrix_future = batch.future_of(MATRIX_KIND)  # reviewed after the evaluation time: set aside
    if coverage.matrix_uri is None:
        if matrix_rejected:
            observed, evidence = (
                f"rejected: {matrix_rejected[0].field}: {matrix_rejected[0].reason}",
                matrix_rejected[0].uri,
            )
        elif matrix_future:
            observed = (f"set aside: reviewed {format_timestamp(matrix_future[0].observed_at)} is after the evaluation "
                        f"time {format_timestamp(coverage.at)} (a matrix from the future covers nothing)")  # fmt: skip
            evidence = matrix_future[0].uri
        else:
            observed, evidence = "no IsolationMatrix file (evidence kind isolation_matrix)", expected.get(MATRIX_KIND)
        add("error", "isolation matrix", "matrix-present", observed, "one readable IsolationMatrix", evidence)
    for rejection in batch.rejections_of(RESULTS_KIND):
        add("error", rejection.uri, "results-readable", f"{rejection.field}: {rejection.reason}",
            "a readable JUnit XML report (its outcomes are unknown)", rejection.uri)  # fmt: skip
    by_cell = {(s.cell.resource, s.cell.dimension): s for s in coverage.cells}
    for r in coverage.results:
        cell_state = by_cell.get((r.resource, r.dimension))
        who = (cell_state.cell.owner if cell_state else None) or owner
        where = f"{r.resource or '?'} × {r.dimension or '?'}"
        common = {"test": r.test, "tenants": list(r.tenants), "attempts": list(r.attempts)}
        if r.outcome in FAILED:
            add("error", where, "no-failures", f"{r.test} {r.outcome}: {r.message or 'no message'}",
                "every isolation test passes", r.uri, who, **common)  # fmt: skip
        elif r.outcome == "flaky":
            severity = cell_state.cell.flaky if cell_state else "error"
            add(severity, where, "no-flaky-pass", f"{r.test} passed only after {' -> '.join(r.attempts)}",
                "passes on the first attempt (a test that sometimes leaks is a leak)", r.uri, who, **common)  # fmt: skip
        if r.run_at is not None and r.run_at > coverage.at + FUTURE_TOLERANCE:
            add("error", where, "result-in-future", f"run at {format_timestamp(r.run_at)}",
                f"no later than the evaluation time {format_timestamp(coverage.at)}", r.uri, who, **common)  # fmt: skip
    for s in coverage.cells:
        who = s.cell.owner or owner
        if s.coverage == "uncovered":
            skipped = [r for r in s.results if r.outcome == "skipped"]
            undated = [r for r in s.results if r.run_at is None and r.outcome in COVERING]
            observed = (
                f"{len(undated)} passing result(s) without a timestamp (testsuite/@timestamp), e.g. {undated[0].test}"
                if undated
                else f"{len(skipped)} skipped test(s) only, e.g. {skipped[0].test}"
                if skipped
                else "no isolation test result"
            )
            add("error", s.label, "cell-covered", observed, f"a passing result younger than {s.cell.max_age_text}",
                skipped[0].uri if skipped else expected.get(RESULTS_KIND), who, resource=s.cell.resource,
                dimension=s.cell.dimension)  # fmt: skip
        elif s.coverage == "stale":
            add("error", s.label, "result-age", f"newest passing result {format_duration(s.age)} old "
                f"({format_timestamp(s.newest.run_at)})", f"younger than {s.cell.max_age_text}", s.newest.uri, who,
                resource=s.cell.resource, dimension=s.cell.dimension)  # fmt: skip
    untagged = [r for r in coverage.outside if not (r.resource and r.dimension)]
    if untagged:
        add("warning", "isolation results", "test-tagged", f"{len(untagged)} test(s) without a dimension and resource, "
            f"e.g. {untagged[0].test}", "phase8.dimension and phase8.resource properties, or the name convention",
            untagged[0].uri, tests=[r.test for r in untagged][:20])  # fmt: skip
    unknown = sorted({(r.resource, r.dimension) for r in coverage.outside if r.resource and r.dimension})
    for resource, dimension in unknown:
        example = next(r for r in coverage.outside if (r.resource, r.dimension) == (resource, dimension))
        add("warning", f"{resource} × {dimension}", "cell-in-matrix", f"results for a cell the matrix does not name "
            f"(e.g. {example.test})", "every tested cell is in the IsolationMatrix", example.uri)  # fmt: skip
    return out


def summary(coverage: Coverage) -> str:
    covered = sum(1 for s in coverage.cells if s.coverage == "covered")
    failed = sum(1 for r in coverage.results if r.outcome in FAILED)
    return (
        f"{covered} of {len(coverage.cells)} required cell(s) covered; {len(coverage.results)} test(s), {failed} failed"
    )


def heatmap(coverage: Coverage):
    """Resources × dimensions, coloured by state, each cell's age and result count as its text."""
    resources = list(dict.fromkeys(s.cell.resource for s in coverage.cells))
    dimensions = [d for d in ("data", "events", "cache") if any(s.cell.dimension == d for s in coverage.cells)]
    by_cell = {(s.cell.resource, s.cell.dimension): s for s in coverage.cells}
    z, text = [], []
    for resource in resources:
        row_z, row_text = [], []
        for dimension in dimensions:
            s = by_cell.get((resource, dimension))
            row_z.append(STATES.index(s.state) if s else None)
            row_text.append(
                f"{s.state}<br>{format_duration(s.age) if s.age is not None else 'no result'}<br>{len(s.results)} test(s)"
                if s
                else "not required"
            )
        z.append(row_z)
        text.append(row_text)
    return state_heatmap(
        STATES,
        ["#2da44e", "#bf8700", "#cf222e", "#e16f24", "#a40e26", "#82071e"],
        dimensions,
        resources,
        z,
        text,
        "%{y} × %{x}<br>%{text}<extra></extra>",
        120 + 60 * len(resources),
    )
