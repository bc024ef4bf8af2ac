"""Every reader against a corpus of hostile files: each case is read or a named rejection.

Cases are mutations of the demo root's files (always), of the public samples (``realdata``) and
hypothesis-generated documents; ``phase8_assets_tests/corpus/bad_inputs.py`` builds them and
``scripts/bad_input_report.py`` prints the outcomes per reader. A reader bug (which
``read_evidence`` turns into a ``(reader)`` rejection) or any other exception fails here, so does a
case slower than ``CASE_LIMIT_S``. The collector's own limits (size, time) and what reaches the
warehouse when one file of a root is broken are checked at the end.
"""

import gzip
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase8_assets.defs.resources import load_evidence_config
from phase8_assets.evidence import readers
from phase8_assets.evidence.collect import collect
from phase8_assets.shared.clock import now_utc
from phase8_assets.warehouse import connect, warehouse_path
from phase8_assets.warehouse.store import record_batch, table_counts
from phase8_assets_tests.conftest import DATA
from phase8_assets_tests.corpus.bad_inputs import CASE_LIMIT_S, cases, demo_seeds, outcome, real_seeds

KINDS = sorted(readers())

# Mutations no reader may take for a file: nothing, a broken stream, or bytes that are not the text.
MUST_REJECT = {
    "empty", "whitespace-only", "not-utf8", "binary-noise", "deep-nesting", "yaml-aliases", "duplicate-key",
    "gzip-truncated", "not-gzip", "inside:empty", "inside:not-utf8",
}  # fmt: skip


def must_reject(case) -> bool:
    # Go's benchmark format lets a configuration line ("goos: linux") set its key again, for the
    # results after it: a repeated key there is the format, not a broken file.
    go_text = case.kind == "benchmarks" and case.seed.endswith(".txt")
    return case.mutation in MUST_REJECT and not (go_text and case.mutation == "duplicate-key")


@pytest.fixture(scope="module")
def seeds():
    return demo_seeds(per_kind=1)


def run_cases(kind_seeds: dict) -> list[tuple]:
    return [(case, *outcome(case.kind, case.data, f"corpus/{case.seed}")) for case in cases(kind_seeds)]


def assert_defined(results: list[tuple]) -> None:
    crashed = [(case.id, why) for case, verdict, why, _ in results if verdict == "crashed"]
    assert not crashed, crashed
    slow = [(case.id, round(seconds, 1)) for case, _, _, seconds in results if seconds > CASE_LIMIT_S]
    assert not slow, slow
    accepted = [case.id for case, verdict, _, _ in results if verdict == "read" and must_reject(case)]
    assert not accepted, accepted


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_demo_files_are_read_or_rejected_by_name(kind, seeds):
    results = run_cases({kind: seeds.get(kind, [])})
    assert_defined(results)
    if seeds.get(kind):  # the corpus reaches the reader's checks, not only its parser
        assert {"read", "rejected"} <= {verdict for _, verdict, _, _ in results}, kind


@pytest.mark.realdata
@pytest.mark.parametrize("kind", sorted(real_seeds()) or ["(no real samples)"])
def test_mutated_real_samples_are_read_or_rejected_by_name(kind, real_samples):
    assert_defined(run_cases({kind: real_seeds()[kind][:1]}))


@pytest.mark.exhaustive
@pytest.mark.parametrize("kind", KINDS)
def test_every_demo_file_and_real_sample_mutated(kind):
    every = demo_seeds(per_kind=None).get(kind, []) + real_seeds().get(kind, [])
    assert_defined(run_cases({kind: every}))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
DOCUMENTS = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["apiVersion", "kind", "metadata", "spec", "benchmarks", "resourceMetrics", "status",
                         "experiment", "checks", "tables", "generated_at", "context", "commit_info"]),
        JSON_VALUES, max_size=6,
    ).map(lambda v: json.dumps(v).encode()),
)  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=DOCUMENTS)
def test_generated_documents_are_read_or_rejected_by_name(kind, data):
    verdict, why, seconds = outcome(kind, data, "generated.json")
    assert verdict != "crashed", why
    assert seconds < CASE_LIMIT_S


def test_a_root_with_broken_files_keeps_the_rest_and_stores_no_partial_history(tmp_path):
    """One broken file per kind (bulk ones included), an oversized one: every other file is read and
    stored; a rejected file leaves a rejection row and no evidence row; reading again adds nothing."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    (root / "phase8.yaml").write_text(
        (root / "phase8.yaml").read_text().replace("max_file_bytes: 16777216", "max_file_bytes: 1048576")
    )
    config = load_evidence_config([str(root)])
    broken = {}
    for kind in config.evidence.values():
        rel = sorted(ref.rel for loc in kind.sources for ref in loc.base.glob(loc.path))[0]
        data = (root / rel).read_bytes()
        if rel.endswith(".gz"):
            data = gzip.compress(gzip.decompress(data)[:200], mtime=0)[:-9]  # a stream cut short
        else:
            data = data[: len(data) // 2] + b"\xff\xfe"
        (root / rel).write_bytes(data)
        broken[str(root / rel)] = kind.name
    big = root / "evidence/otel/metrics-oversized.jsonl"
    big.write_bytes(b"{}\n" * (1 << 19))  # 1.5 MiB, over the 1 MiB limit: refused before it is read
    broken[str(big)] = "otel_metrics"

    batch = collect(config)
    rejected = {r.uri: r for r in batch.rejections}
    assert set(rejected) == set(broken), sorted(set(rejected) ^ set(broken))
    assert "exceeds the limit of 1048576 bytes" in rejected[str(big)].reason
    assert all(r.field != "(reader)" for r in batch.rejections), [str(r) for r in batch.rejections]
    assert not {f.uri for f in batch.files} & set(broken)
    every = {ref.uri for kind in config.evidence.values() for loc in kind.sources for ref in loc.base.glob(loc.path)}
    read = {f.uri for f in batch.files if f.kind in config.evidence} | {uri for uri, _ in batch.duplicates}
    assert read == every - set(broken)

    database = warehouse_path(tmp_path / "home")
    with connect(database) as conn:
        record_batch(conn, batch, now_utc())
        stored = {row[0] for row in conn.execute("SELECT uri FROM evidence_files").fetchall()}
        assert not stored & set(broken) and len(stored) == len(batch.files)
        counts = table_counts(conn, ("evidence_files", "evidence_rejections"))
        assert counts["evidence_rejections"] == len(broken)
        assert record_batch(conn, collect(config), now_utc())["new_files"] == 0
        assert table_counts(conn, ("evidence_files", "evidence_rejections")) == counts


def otlp_root(root: Path, *, lines: int, timeout_s: float) -> None:
    """An evidence root of one OTLP file of ``lines`` demo lines, read under a time limit of ``timeout_s``."""
    (root / "otel").mkdir()
    line = (DATA / "evidence/otel").glob("*.jsonl").__next__().read_bytes().splitlines()[0]
    (root / "otel/big.jsonl").write_bytes((line + b"\n") * lines)
    (root / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: '1.0.0', commit: abc1234}\n"
        "evidence:\n  otel_metrics: {paths: ['otel/*.jsonl'], max_age: P1D}\n"
        f"limits: {{read_timeout_seconds: {timeout_s}}}\n"
    )


def test_a_reader_past_the_time_limit_stops_instead_of_reading_on(tmp_path, monkeypatch):
    """The thread still reading a file the collector gave up on stops (and leaves nothing staged),
    rather than reading on while the run goes on and keeping the process alive at its exit."""
    import tempfile
    import threading

    otlp_root(tmp_path, lines=15000, timeout_s=0.2)  # 59 MB: over a second of reading
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    batch = collect(load_evidence_config([str(tmp_path)]))
    assert [r.reason for r in batch.rejections] == ["reading took longer than the limit of 0.2 s"]
    readers = [t for t in threading.enumerate() if t.name.startswith("phase8-read")]
    for thread in readers:
        thread.join(timeout=10)
    assert not any(t.is_alive() for t in readers)
    # A reader that read on to the end would have left the file's complete spool in the batch's folder.
    # no staged copy, no half-written spool (the batch's folder only holds its owner file)
    assert not [p for p in temp.rglob("*") if p.is_file() and p.name != ".owner"]


def test_a_focus_pass_is_interrupted_inside_duckdb_when_abandoned(tmp_path):
    """FOCUS rows are validated inside one DuckDB statement, where no Python check runs: abandoning
    the read interrupts the statement, and the reader leaves no spool."""
    import threading

    import duckdb

    from phase8_assets.evidence import ReadAbandoned, ReadControl, controlled, focus

    export = tmp_path / "big.parquet"
    demo = next((DATA / "evidence/cost").glob("*.csv.gz"))
    with duckdb.connect() as conn:  # 1.2 M rows: most of a second to validate and spool
        conn.execute(
            f"COPY (SELECT f.* FROM read_csv('{demo}', all_varchar = true) f, range(1500)) TO '{export}' (FORMAT parquet)"
        )
    (tmp_path / "spool").mkdir()
    control, outcome = ReadControl(), {}

    def read() -> None:
        try:
            with controlled(control):
                outcome["result"] = focus.read(export, "big.parquet", tmp_path / "spool")
        except BaseException as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(0.1)
    control.abandon()
    reader.join(10)
    assert not reader.is_alive() and isinstance(outcome.get("error"), ReadAbandoned), outcome
    assert not list((tmp_path / "spool").iterdir())


def test_a_read_slower_than_the_time_limit_is_a_named_rejection(tmp_path):
    """The collector stops waiting for a file after ``limits.read_timeout_seconds``: the file is
    rejected by name, unhashed, and the collection returns."""
    otlp_root(tmp_path, lines=400, timeout_s=0.001)
    batch = collect(load_evidence_config([str(tmp_path)]))
    assert [(r.field, r.reason) for r in batch.rejections] == [
        ("(file)", "reading took longer than the limit of 0.001 s")
    ]
    assert not batch.files and batch.present == [(str(tmp_path), "otel_metrics", str(tmp_path / "otel/big.jsonl"), "")]
