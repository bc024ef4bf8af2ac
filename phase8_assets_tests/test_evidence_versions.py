"""The verdict is a function of the evidence as it is now (README "Evidence versions").

A small root cut from the demo evidence (every kind, few files) is changed file by file; after
each change the gate report of a home that saw every earlier version must be byte-identical to a
fresh home's, apart from the run id (the one field ``GateReport.json`` names as varying). A reused
home may also hold what an older release's readers made of the files (``older_release``): the report
is the same.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from phase8_assets.domains.gate_report import to_json
from phase8_assets.warehouse import connect, history, warehouse_path
from phase8_assets.warehouse.store import table_counts
from phase8_assets_tests.conftest import DATA, gate_report

pytestmark = pytest.mark.slow
PYTEST_RELEASE = "evidence/bench/release/pytest/2026-11-19T160731Z_4f2c9e1a7b3d.json"
KEPT = [
    "phase8.yaml",
    "policy",
    "docs/ops",
    "evidence/isolation",
    "evidence/drills/db-failover/2026-11-17.json",
    "evidence/drills/litmus/plugin-crash-loop-2026-11-11.yaml",
    "evidence/bench/history/pytest/2026-11-09T023051Z_89c3ea561b52.json",
    "evidence/bench/history/pytest/2026-11-12T024457Z_d39f2f334d6f.json",
    "evidence/bench/history/pytest/2026-11-16T024408Z_46eed9eb15f8.json",
    PYTEST_RELEASE,
    "evidence/otel/metrics-2026-11-19.jsonl",
    "evidence/otel/metrics-2026-11-20.jsonl",
    "evidence/cost/focus-2026-11.csv.gz",
    "evidence/upgrade/preflight/acme-prod.json",
    "evidence/upgrade/rollback/drill-10.4.0-staging.json",
    "evidence/governance/inventory.json",
    "waivers",
]


def small_root(target: Path) -> Path:
    """Every evidence kind of the demo root, a few files each."""
    for rel in KEPT:
        source, dest = DATA / rel, target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy(source, dest)
    # its benchmarks are the pytest suite's only: the budgets of that suite (a rule for a tool the
    # root does not hold matches nothing, an error of its own)
    shutil.copy(DATA / "scenarios/perf-creep/policy/perf-budgets.yaml", target / "policy/perf-budgets.yaml")
    return target


def _slower(data: bytes, factor: float = 3.0) -> bytes:
    """A pytest-benchmark file whose times are ``factor`` times longer (and throughput lower)."""
    doc = json.loads(data)
    for bench in doc["benchmarks"]:
        stats = bench["stats"]
        for key in ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "total"):
            stats[key] *= factor
        stats["ops"] /= factor
        stats["data"] = [x * factor for x in stats.get("data") or []]
    return json.dumps(doc, indent=2).encode()


def _fewer_lines(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[: max(1, len(lines) // 2)])


def _fewer_rows(data: bytes) -> bytes:
    lines = gzip.decompress(data).splitlines(keepends=True)
    return gzip.compress(b"".join(lines[: max(2, len(lines) // 2)]), mtime=0)


def _replace(old: bytes, new: bytes):
    def change(data: bytes) -> bytes:
        assert old in data, old
        return data.replace(old, new, 1)

    return change


# A changed version of each kind's file: one that moves its gate (or at least its figures).
CHANGES = {
    "benchmarks": _slower,
    "otel_metrics": _fewer_lines,
    "cost_exports": _fewer_rows,
    "drill_journals": _replace(b'"status": "completed"', b'"status": "failed"'),
    "chaos_results": _replace(b"verdict: Pass\n", b"verdict: Fail\n"),
    "isolation_results": _replace(b'timestamp="2026-11-18T12:00:00Z"', b'timestamp="2026-10-01T12:00:00Z"'),
    "preflight_reports": _replace(b'"free_bytes": 412000000000', b'"free_bytes": 1000'),
    "rollback_reports": _replace(b'"rows_after": 3000,', b'"rows_after": 2999,'),
    "perf_budgets": _replace(b"mean <= 3ms", b"mean <= 1ms"),
    "slo_definitions": _replace(b"0.999", b"0.99"),
    "drill_catalog": _replace(b"db-failover", b"db-failover-renamed"),
    "upgrade_path": _replace(b"{version: 10.3.1}", b"{version: 10.3.2}"),
    "cost_budgets": _replace(b"amount: 11000", b"amount: 110"),
    "cost_allocation": _replace(b"split: proportional", b"split: even"),
    "runbooks": lambda data: data + b"\nReviewed again.\n",
    "data_inventory": _replace(b'"oldest_record": "2026-01-24T12:00:00Z"', b'"oldest_record": "2020-01-24T12:00:00Z"'),
    "retention_policies": _replace(b"max: P2Y}", b"max: P3Y}"),
    "waivers": lambda data: data + b"\n# reviewed again\n",
}

# (path in the root, kind, path whose demo content it starts from); the last ones start absent.
SLOTS = [
    (PYTEST_RELEASE, "benchmarks", None),
    ("evidence/bench/history/pytest/2026-11-16T024408Z_46eed9eb15f8.json", "benchmarks", None),
    ("evidence/otel/metrics-2026-11-20.jsonl", "otel_metrics", None),
    ("evidence/otel/metrics-2026-11-19.jsonl", "otel_metrics", None),
    ("evidence/cost/focus-2026-11.csv.gz", "cost_exports", None),
    ("evidence/drills/db-failover/2026-11-17.json", "drill_journals", None),
    ("evidence/drills/litmus/plugin-crash-loop-2026-11-11.yaml", "chaos_results", None),
    ("evidence/isolation/data.xml", "isolation_results", None),
    ("evidence/upgrade/preflight/acme-prod.json", "preflight_reports", None),
    ("evidence/upgrade/rollback/drill-10.4.0-staging.json", "rollback_reports", None),
    ("policy/perf-budgets.yaml", "perf_budgets", None),
    ("policy/slo/chatterbox-slos.yaml", "slo_definitions", None),
    ("policy/drill-catalog.yaml", "drill_catalog", None),
    ("policy/upgrade-path.yaml", "upgrade_path", None),
    ("policy/cost-budgets.yaml", "cost_budgets", None),
    ("policy/cost-allocation.yaml", "cost_allocation", None),
    ("docs/ops/perf-budgets.md", "runbooks", None),
    ("evidence/governance/inventory.json", "data_inventory", None),
    ("policy/governance/retention.yaml", "retention_policies", None),
    ("waivers/gov-298.yaml", "waivers", None),
    # absent at first: the same run under a second name (a run-identity collision once it differs)
    ("evidence/bench/release/pytest/2026-11-19T160731Z_4f2c9e1a7b3d_rerun.json", "benchmarks", PYTEST_RELEASE),
    ("evidence/otel/metrics-2026-11-18.jsonl", "otel_metrics", "evidence/otel/metrics-2026-11-18.jsonl"),
    ("evidence/cost/focus-2026-10.csv.gz", "cost_exports", "evidence/cost/focus-2026-10.csv.gz"),
]
VARIANTS = ("original", "changed", "truncated")


def variant(slot: int, name: str) -> bytes:
    rel, kind, origin = SLOTS[slot]
    data = (DATA / (origin or rel)).read_bytes()
    if name == "changed":
        return CHANGES[kind](data)
    if name == "truncated":  # unreadable for its reader: a rejection must fail closed the same way
        return data[: len(data) // 2]
    return data


def comparable(report: dict) -> str:
    """``gate-report.json`` as written, without the run id (which names the run, not the evidence)."""
    return to_json({k: v for k, v in report.items() if k != "run_id"})


def test_a_benchmark_corrected_at_the_same_path_decides_alone(tmp_path):
    root = small_root(tmp_path / "root")
    release = root / PYTEST_RELEASE
    original = release.read_bytes()
    release.write_bytes(_slower(original))  # a bad run...
    first = gate_report([root], tmp_path / "reused")
    release.write_bytes(original)  # ...corrected at the same path: the same tool, commit, time and machine
    reused = gate_report([root], tmp_path / "reused")
    fresh = gate_report([root], tmp_path / "fresh")
    gates = {g["gate"]: g for g in reused["gates"]}
    before = {g["gate"]: g for g in first["gates"]}
    assert before["perf_budgets"]["status"] == "fail" and gates["perf_budgets"]["status"] != "fail"
    assert comparable(reused) == comparable(fresh)
    with connect(warehouse_path(tmp_path / "reused")) as conn:
        versions = conn.execute(
            "SELECT ended_by FROM evidence_versions WHERE uri = ? ORDER BY seen_at", [str(release)]
        ).fetchall()
    assert versions == [("superseded",), (None,)]  # both versions kept, the first marked


def test_an_otlp_file_corrected_then_deleted_stops_counting(tmp_path):
    root = small_root(tmp_path / "root")
    latest = root / "evidence/otel/metrics-2026-11-20.jsonl"
    gate_report([root], tmp_path / "reused")
    latest.write_bytes(_fewer_lines(latest.read_bytes()))  # corrected: half the points
    corrected = gate_report([root], tmp_path / "reused")
    assert comparable(corrected) == comparable(gate_report([root], tmp_path / "fresh-1"))
    latest.unlink()
    deleted = gate_report([root], tmp_path / "reused")
    assert comparable(deleted) == comparable(gate_report([root], tmp_path / "fresh-2"))
    assert comparable(deleted) != comparable(corrected)
    with connect(warehouse_path(tmp_path / "reused")) as conn:
        ended = conn.execute(
            "SELECT ended_by FROM evidence_versions WHERE uri = ? ORDER BY seen_at", [str(latest)]
        ).fetchall()
    assert ended == [("superseded",), ("withdrawn",)]
    snapshots = [(r[0], r[1]) for r in _snapshots(tmp_path / "reused")]
    assert snapshots == [(r[0], r[1]) for r in _snapshots(tmp_path / "fresh-2")]  # the weekly report's history too


# Tables holding what a reader made of a file, by the column naming the file's ``derived_version``.
DERIVED = (("drill_runs", "sha256"), ("drill_activities", "sha256"), ("bench_runs", "run_id"),
           ("bench_results", "run_id"), ("bench_samples", "run_id"))  # fmt: skip


def as_an_older_release_stored_it(home: Path) -> None:
    """``home``'s derived rows as a release before the current readers' revisions stored them: once
    per file, under its bare sha256, with what its readers made of the files: every drill run passed
    (a Chaos Toolkit reader before it was made stricter) and every benchmark mean three times what it
    is (a reader that dated a run from the folders above the root)."""
    if not warehouse_path(home).exists():
        return
    with connect(warehouse_path(home)) as conn:
        for table, column in DERIVED:
            conn.execute(
                f"DELETE FROM {table} t WHERE {column} NOT LIKE '%#%' AND EXISTS "
                f"(SELECT 1 FROM {table} n WHERE n.root = t.root AND n.{column} LIKE t.{column} || '#%')"
            )
            conn.execute(f"UPDATE {table} SET {column} = split_part({column}, '#', 1)")
        conn.execute("UPDATE drill_runs SET outcome = 'passed', deviated = false")
        conn.execute("UPDATE bench_results SET mean = mean * 3")


def weekly_history(home: Path) -> dict:
    """What the weekly report reads of drills and benchmarks for the demo's week (2026-11-16)."""
    start, end = datetime(2026, 11, 16), datetime(2026, 11, 23)
    with connect(warehouse_path(home)) as conn:
        roots = [r for (r,) in conn.execute("SELECT DISTINCT root FROM evidence_files ORDER BY 1").fetchall()]
        return {
            "drills": history.drill_week(conn, roots, datetime(2026, 1, 1), datetime(2027, 1, 1))["runs"],
            "benchmarks": history.benchmark_weeks(conn, roots, start, end),
            "trend": history.benchmark_trend(conn, roots, end),
        }


def test_rows_an_older_reader_derived_are_derived_again(tmp_path):
    """A home filled by an older release kept what its readers made of each file (drill_runs said
    "passed" for a journal the current reader fails; benchmark means the current reader reads
    otherwise), since each file was stored once per content: the weekly report and the perf gate
    differed from a fresh home's. Rows are stored under the reader's revision now and derived again."""
    root = small_root(tmp_path / "root")
    journal = root / "evidence/drills/db-failover/2026-11-17.json"
    journal.write_bytes(CHANGES["drill_journals"](journal.read_bytes()))  # a failed drill
    gate_report([root], tmp_path / "reused")
    as_an_older_release_stored_it(tmp_path / "reused")
    reused = gate_report([root], tmp_path / "reused")
    fresh = gate_report([root], tmp_path / "fresh")
    week = weekly_history(tmp_path / "fresh")
    assert weekly_history(tmp_path / "reused")["drills"] == week["drills"]
    assert weekly_history(tmp_path / "reused") == week
    assert comparable(reused) == comparable(fresh)
    assert "failed" in {outcome for _, _, outcome, _, _ in week["drills"]} and week["benchmarks"]
    with connect(warehouse_path(tmp_path / "reused")) as conn:
        before = table_counts(conn)
        older = conn.execute("SELECT count(*) FROM drill_runs WHERE outcome = 'passed'").fetchone()[0]
    assert older  # what the older release stored stays: history, not overwritten
    gate_report([root], tmp_path / "reused")  # read again: nothing derived twice
    with connect(warehouse_path(tmp_path / "reused")) as conn:
        after = table_counts(conn)
    assert {t: after[t] for t, _ in DERIVED} == {t: before[t] for t, _ in DERIVED}


def _snapshots(home: Path) -> list[tuple]:
    with connect(warehouse_path(home)) as conn:
        return conn.execute("SELECT slo, budget_remaining FROM slo_snapshots ORDER BY slo").fetchall()


def test_two_files_claiming_one_run_warn_and_the_later_uri_counts(tmp_path):
    root = small_root(tmp_path / "root")
    release = root / PYTEST_RELEASE
    rerun = release.with_name(release.stem + "_rerun.json")  # sorts after the original
    rerun.write_bytes(_slower(release.read_bytes()))
    report = gate_report([root], tmp_path / "home")
    gates = {g["gate"]: g for g in report["gates"]}
    (warning,) = [f for f in gates["evidence_validity"]["findings"] if f["rule"] == "one-file-per-run"]
    assert warning["severity"] == "warning" and warning["subject"] == str(release)
    assert str(rerun) in warning["observed"] and warning["details"]["counted"] == str(rerun)
    assert gates["perf_budgets"]["status"] == "fail"  # the slower rerun is the one that counts


def test_files_recording_different_parts_of_one_run_all_count(tmp_path):
    """One run exported in two files (hyperfine --export-json per command, a suite split per module):
    the same tool, commit, time and machine, different benchmarks. Setting one aside as a collision
    left its benchmarks unjudged: a slower one passed."""
    root = small_root(tmp_path / "root")
    release = root / PYTEST_RELEASE
    doc = json.loads(release.read_bytes())
    first, rest = dict(doc, benchmarks=doc["benchmarks"][:-1]), dict(doc, benchmarks=doc["benchmarks"][-1:])
    release.write_bytes(_slower(json.dumps(first).encode()))  # sorts first: the file that was set aside
    release.with_name(release.stem + "_part2.json").write_text(json.dumps(rest))
    report = gate_report([root], tmp_path / "home")
    gates = {g["gate"]: g for g in report["gates"]}
    assert not [f for f in gates["evidence_validity"]["findings"] if f["rule"] == "one-file-per-run"]
    assert gates["perf_budgets"]["status"] == "fail"
    assert {f["evidence"] for f in gates["perf_budgets"]["findings"] if f["severity"] == "error"} == {str(release)}


class EvidenceChanges(RuleBasedStateMachine):
    """Add, change and delete files of every kind; a reused home and a fresh one always agree."""

    base: Path  # set by the test: one root path and one reused home for every example
    runs = 0

    @initialize()
    def fresh_root(self):
        root = self.base / "root"
        shutil.rmtree(root, ignore_errors=True)
        small_root(root)
        self.root = root

    def compare(self):
        EvidenceChanges.runs += 1
        reused = gate_report([self.root], self.base / "reused")
        fresh = gate_report([self.root], self.base / f"fresh-{EvidenceChanges.runs}")
        shutil.rmtree(self.base / f"fresh-{EvidenceChanges.runs}")
        assert comparable(reused) == comparable(fresh)

    @rule(slot=st.integers(0, len(SLOTS) - 1), name=st.sampled_from(VARIANTS))
    def put(self, slot, name):
        path = self.root / SLOTS[slot][0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(variant(slot, name))
        self.compare()

    @rule()
    def older_release(self):
        """The reused home as a release with older readers left it (``as_an_older_release_stored_it``)."""
        as_an_older_release_stored_it(self.base / "reused")
        self.compare()

    @rule(slot=st.integers(0, len(SLOTS) - 1))
    def delete(self, slot):
        (self.root / SLOTS[slot][0]).unlink(missing_ok=True)
        self.compare()


def _run_machine(tmp_path, examples: int, steps: int):
    EvidenceChanges.base = tmp_path
    test = EvidenceChanges.TestCase
    test.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    test("runTest").runTest()


def test_reused_and_fresh_homes_give_the_same_report(tmp_path):
    """Bounded for the default run: a few examples of a few steps (about a minute on 2 cores)."""
    _run_machine(tmp_path, examples=3, steps=4)


@pytest.mark.exhaustive
def test_reused_and_fresh_homes_give_the_same_report_exhaustively(tmp_path):
    _run_machine(tmp_path, examples=40, steps=6)
