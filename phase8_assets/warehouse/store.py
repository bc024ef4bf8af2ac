"""Idempotent writes and history queries. Natural keys + sha256 make every re-run a no-op,
except for the gate run log (``gate_run*``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb

from phase8_assets.evidence.collect import EvidenceBatch


def _naive_utc(dt: datetime | None) -> datetime | None:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt else None


def record_batch(conn: duckdb.DuckDBPyConnection, batch: EvidenceBatch, read_at: datetime) -> dict[str, int]:
    """Store the files and rejections of ``batch``; returns how many rows were new."""
    at = _naive_utc(read_at)
    before = table_counts(conn, ("evidence_files", "evidence_rejections"))
    conn.execute("BEGIN TRANSACTION")
    try:
        if batch.files:
            _insert_columns(
                conn,
                "evidence_files",
                {
                    "root": [f.root for f in batch.files],
                    "kind": [f.kind for f in batch.files],
                    "sha256": [f.sha256 for f in batch.files],
                    "uri": [f.uri for f in batch.files],
                    "size": [f.size for f in batch.files],
                    "observed_at": [_naive_utc(f.observed_at) for f in batch.files],
                    "read_at": [at] * len(batch.files),
                },
                " ON CONFLICT DO NOTHING",
            )
        if batch.rejections:
            root = batch.roots[0]
            conn.executemany(
                "INSERT INTO evidence_rejections VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [[root, r.kind, r.uri, r.sha256, r.field, r.reason, at] for r in batch.rejections],
            )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    after = table_counts(conn, ("evidence_files", "evidence_rejections"))
    return {
        "new_files": after["evidence_files"] - before["evidence_files"],
        "new_rejections": after["evidence_rejections"] - before["evidence_rejections"],
    }


def _insert_columns(conn: duckdb.DuckDBPyConnection, table: str, columns: dict[str, list], tail: str = "") -> None:
    """Insert columns (in the table's column order) in one statement through Arrow: executemany
    costs a round trip per row."""
    import pyarrow as pa

    conn.register("incoming", pa.table(columns))
    try:
        conn.execute(f"INSERT INTO {table} SELECT * FROM incoming{tail}")
    finally:
        conn.unregister("incoming")


def record_gate_run(conn: duckdb.DuckDBPyConnection, run_id: str, report: dict, recorded_at: datetime) -> None:
    """Append one gate run and its per-gate results to the run log."""
    evaluated = datetime.fromisoformat(report["evaluated_at"].replace("Z", "+00:00"))
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            "INSERT INTO gate_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                _naive_utc(evaluated),
                _naive_utc(recorded_at),
                report["verdict"],
                str(report["release"].get("version", "")),
                str(report["release"].get("commit", "")),
                report["evidence_roots"],
                json.dumps(report, sort_keys=True),
            ],
        )
        for gate in report["gates"]:
            counts = {s: sum(1 for f in gate["findings"] if f["severity"] == s) for s in ("error", "warning", "waived")}
            conn.execute(
                "INSERT INTO gate_run_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    gate["gate"],
                    gate["status"],
                    gate["blocking"],
                    gate["summary"],
                    counts["error"],
                    counts["warning"],
                    counts["waived"],
                    json.dumps(gate["findings"], sort_keys=True),
                ],
            )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def table_counts(conn: duckdb.DuckDBPyConnection, tables: tuple[str, ...] | None = None) -> dict[str, int]:
    if tables is None:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()
        tables = tuple(r[0] for r in rows)
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def record_drill_runs(conn: duckdb.DuckDBPyConnection, seen: list, read_at: datetime) -> int:
    """Store drill runs (``SeenRun``: run, file) and their activities; returns how many runs were new."""
    at = _naive_utc(read_at)
    roots = sorted({item.file.root for item in seen})
    known = set(
        conn.execute("SELECT root, sha256, idx FROM drill_runs WHERE root IN (SELECT unnest(?))", [roots]).fetchall()
    )
    runs: dict[str, list] = {k: [] for k in DRILL_RUN_COLUMNS}
    acts: dict[str, list] = {k: [] for k in DRILL_ACTIVITY_COLUMNS}
    for item in seen:
        run, f = item.run, item.file
        key = (f.root, f.sha256, run.index)
        if key in known:
            continue
        known.add(key)
        values = (
            *key, f.uri, run.tool, run.title, list(run.tags), run.status, run.outcome, run.deviated,
            _naive_utc(run.started_at), _naive_utc(run.ended_at), run.hypothesis_before, run.hypothesis_after,
            run.recovery_s, run.recovery_note, run.environment, at,
        )  # fmt: skip
        for name, value in zip(DRILL_RUN_COLUMNS, values, strict=True):
            runs[name].append(value)
        for a in run.activities:
            values = (
                *key, a.phase, a.seq, a.type, a.name, a.status, _naive_utc(a.start), _naive_utc(a.end),
                a.duration_s, a.tolerance_met, a.detail,
            )  # fmt: skip
            for name, value in zip(DRILL_ACTIVITY_COLUMNS, values, strict=True):
                acts[name].append(value)
    if not runs["sha256"]:
        return 0
    conn.execute("BEGIN TRANSACTION")
    try:
        _insert_columns(conn, "drill_runs", runs)
        if acts["sha256"]:
            _insert_columns(conn, "drill_activities", acts)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return len(runs["sha256"])


DRILL_RUN_COLUMNS = (
    "root", "sha256", "idx", "uri", "tool", "title", "tags", "status", "outcome", "deviated", "started_at",
    "ended_at", "hypothesis_before", "hypothesis_after", "recovery_s", "recovery_note", "environment", "read_at",
)  # fmt: skip
DRILL_ACTIVITY_COLUMNS = (
    "root", "sha256", "idx", "phase", "seq", "type", "name", "status", "started_at", "ended_at", "duration_s",
    "tolerance_met", "detail",
)  # fmt: skip


def record_reminders(conn: duckdb.DuckDBPyConnection, root: str, reminders: list[dict], at: datetime) -> list[dict]:
    """Record overdue-drill reminders once per (root, drill, due date); returns the ones that are new."""
    new = []
    conn.execute("BEGIN TRANSACTION")
    try:
        for r in reminders:
            inserted = conn.execute(
                "INSERT INTO drill_reminders VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING drill_id",
                [root, r["drill"], r["due"], r["state"], _naive_utc(r.get("last_run_at")), _naive_utc(at)],
            ).fetchall()
            if inserted:
                new.append(r)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return new


def record_benchmarks(conn: duckdb.DuckDBPyConnection, files: list, read_at: datetime) -> dict:
    """Store benchmark files (``EvidenceFile`` with one ``BenchmarkFile`` record) in the long tables.

    A file already stored (same root and sha256) adds nothing. A *duplicate run* — different bytes
    but the same tool, commit, time and machine as a stored run — is not stored again and is
    returned so the caller can say so.
    """
    at = _naive_utc(read_at)
    new_runs, duplicates = [], []
    runs: dict[str, list] = {
        k: [] for k in ("root", "run_id", "uri", "tool", "commit", "branch", "run_at", "machine", "read_at")
    }
    results: dict[str, list] = {k: [] for k in RESULT_COLUMNS}
    samples: dict[str, list] = {k: [] for k in ("root", "run_id", "benchmark", "params", "measure", "seq", "value")}
    roots = sorted({f.root for f in files})
    known = {
        tuple(r[:2]): r[2]
        for r in conn.execute(
            "SELECT root, run_id, uri FROM bench_runs WHERE root IN (SELECT unnest(?))", [roots]
        ).fetchall()
    }
    identities = {
        tuple(r[:5]): r[5]
        for r in conn.execute(
            "SELECT root, tool, commit, run_at, machine, uri FROM bench_runs WHERE root IN (SELECT unnest(?))", [roots]
        ).fetchall()
    }
    conn.execute("BEGIN TRANSACTION")
    try:
        for f in files:
            parsed = f.records[0]
            run = parsed.run
            if (f.root, f.sha256) in known:
                continue
            identity = (f.root, run.tool, run.commit, _naive_utc(run.time), run.machine)
            if identity in identities:
                duplicates.append((f.uri, identities[identity]))
                continue
            identities[identity] = known[(f.root, f.sha256)] = f.uri
            for key, value in zip(
                runs,
                (f.root, f.sha256, f.uri, run.tool, run.commit, run.branch, _naive_utc(run.time), run.machine, at),
                strict=True,
            ):
                runs[key].append(value)
            new_runs.append(f.uri)
            for m in parsed.measurements:
                row = {
                    "root": f.root,
                    "run_id": f.sha256,
                    "benchmark": m.benchmark,
                    "params": m.params,
                    "measure": m.measure,
                    "unit": m.unit,
                    "direction": m.direction,
                }
                for key in RESULT_COLUMNS:
                    results[key].append(row[key] if key in row else m.stats.get(key))
                for seq, value in enumerate(m.samples or ()):
                    for key in ("root", "run_id", "benchmark", "params", "measure"):
                        samples[key].append(row[key])
                    samples["seq"].append(seq)
                    samples["value"].append(value)
        # Columnar, straight into DuckDB. Samples need no key: a run's rows are only ever written
        # together with the run itself, once.
        if runs["run_id"]:
            _insert_columns(conn, "bench_runs", runs)
            _insert_columns(conn, "bench_results", results, " ON CONFLICT DO NOTHING")
        if samples["run_id"]:
            _insert_columns(conn, "bench_samples", samples)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return {"new_runs": new_runs, "duplicates": duplicates}


RESULT_COLUMNS = (
    "root",
    "run_id",
    "benchmark",
    "params",
    "measure",
    "unit",
    "direction",
    "mean",
    "median",
    "min",
    "max",
    "stddev",
    "p90",
    "p95",
    "p99",
    "n",
)


def replace_change_points(conn: duckdb.DuckDBPyConnection, root: str, rows: list[tuple]) -> None:
    """Replace a root's change points with ``rows`` (recomputed whole, so re-runs never add rows)."""
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM perf_change_points WHERE root = ?", [root])
        if rows:
            conn.executemany(
                "INSERT INTO perf_change_points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [[root, *r] for r in rows]
            )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def bench_history(conn: duckdb.DuckDBPyConnection, root: str) -> dict:
    """Every stored result of a root with its run, oldest first, as numpy columns ('' for no commit
    or branch)."""
    return conn.execute(
        """
        SELECT r.run_id, r.uri, r.tool, coalesce(r.commit, '') AS commit, coalesce(r.branch, '') AS branch,
               r.run_at, r.machine,
               b.benchmark, b.params, b.measure, b.unit, b.direction,
               b.mean, b.median, b.min, b.max, b.stddev, b.p90, b.p95, b.p99, b.n
        FROM bench_results b JOIN bench_runs r USING (root, run_id)
        WHERE b.root = ?
        ORDER BY b.benchmark, b.params, b.measure, r.run_at, r.run_id
        """,
        [root],
    ).fetchnumpy()


def bench_samples(conn: duckdb.DuckDBPyConnection, root: str, run_ids: list[str]) -> dict[tuple, list[float]]:
    """Raw samples of the given runs: (run_id, benchmark, params, measure) -> values."""
    if not run_ids:
        return {}
    rows = conn.execute(
        "SELECT run_id, benchmark, params, measure, list(value ORDER BY seq) FROM bench_samples "
        "WHERE root = ? AND run_id IN (SELECT unnest(?)) GROUP BY ALL",
        [root, run_ids],
    ).fetchall()
    return {(r[0], r[1], r[2], r[3]): r[4] for r in rows}
