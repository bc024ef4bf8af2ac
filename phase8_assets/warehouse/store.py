"""Idempotent writes and history queries. Natural keys + sha256 make every re-run a no-op,
except for the gate run log (``gate_run*``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.shared.redaction import redact, redact_text
from phase8_assets.warehouse import transaction
from phase8_assets.warehouse.lake import is_lake


def _naive_utc(dt: datetime | None) -> datetime | None:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt else None


def record_batch(conn: duckdb.DuckDBPyConnection, batch: EvidenceBatch, read_at: datetime) -> dict[str, int]:
    """Store the files and rejections of ``batch`` and mark which versions are current; returns
    how many rows were new and how many versions stopped counting."""
    at = _naive_utc(read_at)
    before = table_counts(conn, ("evidence_files", "evidence_rejections"))
    files = [*batch.files, *(loser for loser, _ in batch.collisions)]
    with transaction(conn):
        if files:
            _insert_columns(
                conn,
                "evidence_files",
                {
                    "root": [f.root for f in files],
                    "kind": [f.kind for f in files],
                    "sha256": [f.sha256 for f in files],
                    "uri": [f.uri for f in files],
                    "size": [f.size for f in files],
                    "observed_at": [_naive_utc(f.observed_at) for f in files],
                    "read_at": [at] * len(files),
                },
                " ON CONFLICT DO NOTHING",
            )
        ended = _mark_versions(conn, batch.roots, batch.present, at)
        if batch.rejections:
            root = batch.roots[0]
            rows = [[root, r.kind, r.uri, r.sha256, r.field, r.reason, at] for r in batch.rejections]
            if is_lake(conn):
                _lake_rows(conn, "evidence_rejections", rows, replace=False)
            else:
                conn.executemany(
                    "INSERT INTO evidence_rejections VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
                )
    after = table_counts(conn, ("evidence_files", "evidence_rejections"))
    return {
        "new_files": after["evidence_files"] - before["evidence_files"],
        "new_rejections": after["evidence_rejections"] - before["evidence_rejections"],
        "ended_versions": ended,
    }


def _mark_versions(conn: duckdb.DuckDBPyConnection, roots: list[str], present: list[tuple], at: datetime) -> int:
    """``evidence_versions`` after looking at ``roots``: a current version no longer there ends as
    superseded (its path now holds other content) or withdrawn (its path is gone); a version there
    and not current starts a period. Returns how many versions ended."""
    import pyarrow as pa

    rows = sorted(set(present))
    conn.register(
        "present_now",
        pa.table({name: [r[i] for r in rows] for i, name in enumerate(("root", "kind", "uri", "sha256"))}),
    )
    try:
        ended = conn.execute(
            """
            UPDATE evidence_versions v
            SET ended_at = ?,
                ended_by = CASE WHEN EXISTS (SELECT 1 FROM present_now p
                                             WHERE p.root = v.root AND p.kind = v.kind AND p.uri = v.uri)
                                THEN 'superseded' ELSE 'withdrawn' END
            WHERE v.ended_at IS NULL AND v.root IN (SELECT unnest(?))
              AND NOT EXISTS (SELECT 1 FROM present_now p WHERE p.root = v.root AND p.kind = v.kind
                              AND p.uri = v.uri AND p.sha256 = v.sha256)
            """,
            [at, roots],
        ).fetchone()[0]
        conn.execute(
            """
            INSERT INTO evidence_versions
            SELECT p.root, p.kind, p.uri, p.sha256, ?, NULL, NULL FROM present_now p
            WHERE NOT EXISTS (SELECT 1 FROM evidence_versions v WHERE v.ended_at IS NULL AND v.root = p.root
                              AND v.kind = p.kind AND v.uri = p.uri AND v.sha256 = p.sha256)
            """,
            [at],
        )
    finally:
        conn.unregister("present_now")
    return ended


def _insert_columns(conn: duckdb.DuckDBPyConnection, table: str, columns: dict[str, list], tail: str = "") -> None:
    """Insert columns (in the table's column order) in one statement through Arrow: executemany
    costs a round trip per row. ``tail`` " ON CONFLICT DO NOTHING" keeps the rows already stored."""
    import pyarrow as pa

    conn.register("incoming", pa.table(columns))
    try:
        if tail and is_lake(conn):
            _lake_merge(conn, table, replace=False)
        else:
            conn.execute(f"INSERT INTO {table} SELECT * FROM incoming{tail}")
    finally:
        conn.unregister("incoming")


def _lake_merge(conn: duckdb.DuckDBPyConnection, table: str, *, replace: bool) -> None:
    """``incoming`` into ``table`` on DuckLake, which has no keys to conflict on: by the table's natural
    key (as its migration declares it), the stored row is kept (or, ``replace``, replaced); a key
    given twice counts once. Callers hold a transaction, so it is one atomic step."""
    from phase8_assets.warehouse.lake import table_keys

    key = table_keys()[table]
    same = " AND ".join(f"{table}.{k} IS NOT DISTINCT FROM i.{k}" for k in key)
    once = f"QUALIFY row_number() OVER (PARTITION BY {', '.join(f'i.{k}' for k in key)}) = 1"
    if replace:
        conn.execute(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM incoming i WHERE {same})")
        conn.execute(f"INSERT INTO {table} SELECT i.* FROM incoming i {once}")
    else:
        conn.execute(
            f"INSERT INTO {table} SELECT i.* FROM incoming i WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {same}) {once}"
        )


def _lake_rows(conn: duckdb.DuckDBPyConnection, table: str, rows: list[list], *, replace: bool) -> int:
    """Rows (in the table's column order) into ``table`` on DuckLake (``_lake_merge``); returns how
    many rows the table gained."""
    import pyarrow as pa

    schema = conn.execute(f"SELECT * FROM {table} LIMIT 0").arrow().schema
    before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.register("incoming", pa.table({n: [r[i] for r in rows] for i, n in enumerate(schema.names)}, schema=schema))
    try:
        _lake_merge(conn, table, replace=replace)
    finally:
        conn.unregister("incoming")
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - before


def insert_new_row(conn: duckdb.DuckDBPyConnection, table: str, row: list) -> bool:
    """Insert ``row`` unless its natural key is stored already; True when it was new."""
    if is_lake(conn):
        return _lake_rows(conn, table, [row], replace=False) == 1
    marks = ", ".join("?" * len(row))
    return bool(
        conn.execute(f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT DO NOTHING RETURNING 1", row).fetchall()
    )


GATE_RESULT_COLUMNS = ("run_id", "gate", "status", "blocking", "summary", "errors", "warnings", "waived", "findings")
GATE_RUN_COLUMNS = (
    "run_id", "evaluated_at", "recorded_at", "verdict", "release_version", "release_commit", "evidence_roots", "report"
)  # fmt: skip


def _put(conn: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...], keys: int, row: list) -> None:
    """Insert ``row`` into ``table``, or update the row holding its key (its first ``keys`` values).
    A lookup by the primary key and a plain INSERT or UPDATE: DuckDB's INSERT OR REPLACE and ON
    CONFLICT cost about three times as much (~4 ms a row), paid by every gate step of a run."""
    where = " AND ".join(f"{c} = ?" for c in columns[:keys])
    if conn.execute(f"SELECT 1 FROM {table} WHERE {where}", row[:keys]).fetchone():
        sets = ", ".join(f"{c} = ?" for c in columns[keys:])
        conn.execute(f"UPDATE {table} SET {sets} WHERE {where}", [*row[keys:], *row[:keys]])
    else:
        conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", row)


def record_gate_result(conn: duckdb.DuckDBPyConnection, run_id: str, gate: dict) -> None:
    """Record (or, for a re-executed step, replace) one gate's result under its run."""
    counts = {s: sum(1 for f in gate["findings"] if f["severity"] == s) for s in ("error", "warning", "waived")}
    row = [
        run_id,
        gate["gate"],
        gate["status"],
        gate["blocking"],
        gate["summary"],
        counts["error"],
        counts["warning"],
        counts["waived"],
        json.dumps(gate["findings"], sort_keys=True),
    ]
    if is_lake(conn):
        _lake_rows(conn, "gate_run_results", [row], replace=True)
    else:
        _put(conn, "gate_run_results", GATE_RESULT_COLUMNS, 2, row)


def recorded_gate_results(conn: duckdb.DuckDBPyConnection, run_id: str) -> tuple[datetime | None, list[dict]]:
    """The run's evaluation time (None before its first gate is recorded) and its recorded gate results."""
    row = conn.execute("SELECT evaluated_at FROM gate_runs WHERE run_id = ?", [run_id]).fetchone()
    rows = conn.execute(
        "SELECT gate, status, blocking, summary, findings FROM gate_run_results WHERE run_id = ? ORDER BY gate",
        [run_id],
    ).fetchall()
    gates = [
        {"gate": g, "status": st, "blocking": b, "summary": su, "findings": json.loads(f)} for g, st, b, su, f in rows
    ]
    return (row[0].replace(tzinfo=UTC) if row else None), gates


def record_gate_run(conn: duckdb.DuckDBPyConnection, run_id: str, report: dict, recorded_at: datetime) -> None:
    """Create or update the run's row from its report as it stands (whichever step of the run comes first
    creates it; each later one, and ``phase8 gate`` at the end, brings it up to date)."""
    evaluated = datetime.fromisoformat(report["evaluated_at"].replace("Z", "+00:00"))
    row = [
        run_id,
        _naive_utc(evaluated),
        _naive_utc(recorded_at),
        report["verdict"],
        str(report["release"].get("version", "")),
        str(report["release"].get("commit", "")),
        report["evidence_roots"],
        json.dumps(report, sort_keys=True),
    ]
    if is_lake(conn):
        _lake_rows(conn, "gate_runs", [row], replace=True)
    else:
        _put(conn, "gate_runs", GATE_RUN_COLUMNS, 1, row)


def table_counts(conn: duckdb.DuckDBPyConnection, tables: tuple[str, ...] | None = None) -> dict[str, int]:
    if tables is None:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()
        tables = tuple(r[0] for r in rows)
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def record_drill_runs(conn: duckdb.DuckDBPyConnection, seen: list, read_at: datetime) -> int:
    """Store drill runs (``SeenRun``: run, file) and their activities; returns how many runs were new.
    Runs are keyed by their file's ``EvidenceFile.version``: a journal an older reader judged is judged again,
    and the older rows stay as history (``history.newest_revision`` reads the newest)."""
    at = _naive_utc(read_at)
    roots = sorted({item.file.root for item in seen})
    with transaction(conn):  # what is stored is read under the write lock (on DuckLake)
        known = set(
            conn.execute(
                "SELECT root, sha256, idx FROM drill_runs WHERE root IN (SELECT unnest(?))", [roots]
            ).fetchall()
        )
        runs, acts = _drill_columns(seen, known, at)
        if runs["sha256"]:
            _insert_columns(conn, "drill_runs", runs)
        if acts["sha256"]:
            _insert_columns(conn, "drill_activities", acts)
    return len(runs["sha256"])


def _drill_columns(seen: list, known: set, at: datetime) -> tuple[dict[str, list], dict[str, list]]:
    """Columns of the runs (and their activities) in ``seen`` whose (root, sha256, index) is not ``known``."""
    runs: dict[str, list] = {k: [] for k in DRILL_RUN_COLUMNS}
    acts: dict[str, list] = {k: [] for k in DRILL_ACTIVITY_COLUMNS}
    for item in seen:
        run, f = item.run, item.file
        key = (f.root, f.version, run.index)
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
    return runs, acts


DRILL_RUN_COLUMNS = (
    "root", "sha256", "idx", "uri", "tool", "title", "tags", "status", "outcome", "deviated", "started_at",
    "ended_at", "hypothesis_before", "hypothesis_after", "recovery_s", "recovery_note", "environment", "read_at",
)  # fmt: skip
DRILL_ACTIVITY_COLUMNS = (
    "root", "sha256", "idx", "phase", "seq", "type", "name", "status", "started_at", "ended_at", "duration_s",
    "tolerance_met", "detail",
)  # fmt: skip


def record_isolation_results(conn: duckdb.DuckDBPyConnection, files: list, read_at: datetime) -> int:
    """Store every test of the isolation JUnit files (``EvidenceFile``); returns how many rows were new."""
    at = _naive_utc(read_at)
    columns: dict[str, list] = {k: [] for k in ISOLATION_COLUMNS}
    for f in files:
        for r in f.records:
            values = (
                f.root, f.version, r["classname"], r["name"], f.uri, r["dimension"], r["resource"], list(r["tenants"]),
                r["outcome"], list(r["attempts"]), r["message"], _naive_utc(r["run_at"]), at,
            )  # fmt: skip
            for name, value in zip(ISOLATION_COLUMNS, values, strict=True):
                columns[name].append(value)
    if not columns["sha256"]:
        return 0
    before = table_counts(conn, ("isolation_results",))["isolation_results"]
    with transaction(conn):
        _insert_columns(conn, "isolation_results", columns, " ON CONFLICT DO NOTHING")
    return table_counts(conn, ("isolation_results",))["isolation_results"] - before


ISOLATION_COLUMNS = (
    "root", "sha256", "classname", "name", "uri", "dimension", "resource", "tenants", "outcome", "attempts",
    "message", "run_at", "read_at",
)  # fmt: skip


def record_reminders(conn: duckdb.DuckDBPyConnection, root: str, reminders: list[dict], at: datetime) -> list[dict]:
    """Record overdue-drill reminders once per (root, drill, due date); returns the ones that are new."""
    new = []
    with transaction(conn):
        for r in reminders:
            row = [root, r["drill"], r["due"], r["state"], _naive_utc(r.get("last_run_at")), _naive_utc(at)]
            if insert_new_row(conn, "drill_reminders", row):
                new.append(r)
    return new


def record_benchmarks(conn: duckdb.DuckDBPyConnection, files: list, read_at: datetime) -> list[str]:
    """Store benchmark files (``EvidenceFile`` with one ``BenchmarkFile`` record) in the long tables;
    returns the URIs of the runs that were new.

    A file already stored (same root and ``EvidenceFile.version``: its sha256 as the current reader reads it)
    adds nothing; one an older reader stored is stored again. Every other version is stored, also
    a corrected file at the same path: which versions count is decided when history is read
    (``bench_history``), from the files in the root now.
    """
    at = _naive_utc(read_at)
    new_runs = []
    runs: dict[str, list] = {
        k: [] for k in ("root", "run_id", "uri", "tool", "commit", "branch", "run_at", "machine", "read_at")
    }
    results: dict[str, list] = {k: [] for k in RESULT_COLUMNS}
    samples: dict[str, list] = {k: [] for k in ("root", "run_id", "benchmark", "params", "measure", "seq", "value")}
    roots = sorted({f.root for f in files})
    with transaction(conn):  # what is stored is read under the write lock (on DuckLake)
        known = set(
            conn.execute("SELECT root, run_id FROM bench_runs WHERE root IN (SELECT unnest(?))", [roots]).fetchall()
        )
        for f in files:
            parsed = f.records[0]
            run = parsed.run
            run_id = f.version
            if (f.root, run_id) in known:
                continue
            known.add((f.root, run_id))
            for key, value in zip(
                runs,
                (f.root, run_id, f.uri, run.tool, run.commit, run.branch, _naive_utc(run.time), run.machine, at),
                strict=True,
            ):
                runs[key].append(value)
            new_runs.append(f.uri)
            for m in parsed.measurements:
                row = {
                    "root": f.root,
                    "run_id": run_id,
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
    return new_runs


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
    with transaction(conn):
        conn.execute("DELETE FROM perf_change_points WHERE root = ?", [root])
        if rows:
            conn.executemany(
                "INSERT INTO perf_change_points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [[root, *r] for r in rows]
            )


def bench_history(conn: duckdb.DuckDBPyConnection, root: str, run_ids: list[str]) -> dict:
    """The stored results of a root's current runs (``run_ids``: the ``EvidenceFile.version`` of the
    benchmark files in the root now) with their run, oldest first, as numpy columns ('' for no commit or branch;
    NaN for a statistic not reported). Superseded and withdrawn versions stay in the tables but
    never reach a verdict."""
    columns = conn.execute(
        """
        SELECT r.run_id, r.uri, r.tool, coalesce(r.commit, '') AS commit, coalesce(r.branch, '') AS branch,
               r.run_at, r.machine,
               b.benchmark, b.params, b.measure, b.unit, b.direction,
               b.mean, b.median, b.min, b.max, b.stddev, b.p90, b.p95, b.p99, b.n
        FROM bench_results b JOIN bench_runs r USING (root, run_id)
        WHERE b.root = ? AND b.run_id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY b.benchmark, b.params, b.measure, r.run_at, r.run_id
        """,
        [root, run_ids],
    ).fetchnumpy()
    return {name: _null_as_nan(column) for name, column in columns.items()}


def _null_as_nan(column):
    """A numeric column with NULLs as NaN: ``fetchnumpy`` gives a masked array whose masked
    entries become 0.0 in any plain float array, and a statistic the tool did not report is
    missing, never 0."""
    import numpy as np

    if isinstance(column, np.ma.MaskedArray) and column.dtype.kind in "fiu":
        return column.astype(float).filled(np.nan)
    return column


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


def record_otlp_files(
    conn: duckdb.DuckDBPyConnection, files: list[tuple[str, str, str, Path]], read_at: datetime
) -> dict[tuple[str, str], int]:
    """OTLP files' rows into ``otel_points``, file -> DuckDB: ``files`` are (root, sha256, uri, spool),
    ``spool`` the Parquet file each file's reader wrote. Returns the points of each (root, sha256)
    stored now; a file already stored is left out. One statement loads every new spool and the file
    rows commit with their points, in one transaction: a failure leaves nothing half-written."""
    with transaction(conn):  # what is stored is read under the write lock (on DuckLake)
        stored = set(
            conn.execute(
                "SELECT root, sha256 FROM otel_files WHERE sha256 IN (SELECT unnest(?::VARCHAR[]))",
                [sorted({f[1] for f in files})],
            ).fetchall()
        )
        new: dict[tuple[str, str], tuple[str, str]] = {}
        for root, sha256, uri, spool in files:
            if (root, sha256) not in stored:
                new.setdefault((root, sha256), (uri, str(spool)))
        if not new:
            return {}
        keys = list(new)
        roots, shas = [k[0] for k in keys], [k[1] for k in keys]
        uris, spools = [new[k][0] for k in keys], [new[k][1] for k in keys]
        # Each spool's row count from its footer: no scan of otel_points, which grows with every file.
        counts = dict(conn.execute("SELECT file_name, num_rows FROM parquet_file_metadata(?)", [spools]).fetchall())
        points = {k: counts[spool] for k, spool in zip(keys, spools, strict=True)}
        inserted = conn.execute(
            "INSERT INTO otel_points SELECT f.root, f.sha256, p.* EXCLUDE (filename) "
            "FROM read_parquet(?, filename = true) AS p "
            "JOIN (SELECT unnest(?) AS spool, unnest(?) AS root, unnest(?) AS sha256) AS f ON f.spool = p.filename",
            [spools, spools, roots, shas],
        ).fetchone()[0]
        if inserted != sum(points.values()):  # a spool changed under us: roll back rather than store a part
            raise duckdb.IOException(f"loaded {inserted} OTLP points where the spools hold {sum(points.values())}")
        conn.execute(
            "INSERT INTO otel_files SELECT unnest(?), unnest(?), unnest(?), unnest(?), ?",
            [roots, shas, uris, list(points.values()), _naive_utc(read_at)],
        )
    return points


def record_otlp_file(
    conn: duckdb.DuckDBPyConnection, root: str, sha256: str, uri: str, spool: Path, read_at: datetime
) -> int | None:
    """One OTLP file's rows into ``otel_points`` (``record_otlp_files``); ``None`` when already stored."""
    return record_otlp_files(conn, [(root, sha256, uri, spool)], read_at).get((root, sha256))


FIRST_POINT_WHOLE_NS = 3600 * 1_000_000_000


def otel_service_last(
    conn: duckdb.DuckDBPyConnection, roots: list[str], service: str, *, versions: list[str]
) -> int | None:
    """The newest point (Unix ns) of any metric of ``service`` in the given file versions."""
    return conn.execute(
        "SELECT max(time_ns) FROM otel_points WHERE root IN (SELECT unnest(?)) "
        "AND sha256 IN (SELECT unnest(?::VARCHAR[])) AND service = ?",
        [roots, versions, service],
    ).fetchone()[0]


def otel_streams(conn: duckdb.DuckDBPyConnection, roots: list[str], metric: str, *, versions: list[str]) -> list[tuple]:
    """The distinct streams of a metric in the given file versions (the sha256 of the OTLP files in
    the roots now): (service, attrs JSON, kind, bounds, monotonic)."""
    return conn.execute(
        "SELECT DISTINCT service, attrs, kind, bounds, monotonic FROM otel_points WHERE root IN (SELECT unnest(?)) "
        "AND sha256 IN (SELECT unnest(?::VARCHAR[])) AND metric = ?",
        [roots, versions, metric],
    ).fetchall()


def _stream_steps(value: str) -> str:
    """The CTE both ``otel_increments`` and ``otel_coverage`` read, so they agree on what a stream's
    points are: the picked streams' points of the file versions in the roots now (``value`` as
    ``v``; its count or sum value as ``n``), each with its predecessor in its *sequence* (``prev_v``,
    ``prev_n``, ``prev_time``) and ``earlier_last``, the last point of the series' sequences that
    started earlier. A sequence is the points of one series (service, attributes, temporality)
    with one ``startTimeUnixNano``: the data model's unbroken sequence, what one writer exports from
    one start. Two replicas whose resources do not tell them apart are two sequences (their start
    times differ), never one series whose points jump between two counters; a sequence that
    starts before an earlier one's last point overlaps it (another writer, not a restart).
    Parameters: ``_stream_params``."""
    return f"""
        WITH picked AS (
            SELECT unnest(?) AS service, unnest(?) AS attrs
        ), points AS (
            SELECT DISTINCT p.service, p.attrs, p.temporality, p.start_ns, p.time_ns, {value} AS v, p.value AS n
            FROM otel_points p JOIN picked USING (service, attrs)
            WHERE p.root IN (SELECT unnest(?)) AND p.sha256 IN (SELECT unnest(?::VARCHAR[])) AND p.metric = ?
        ), sequences AS (
            SELECT service, attrs, start_ns, max(max(time_ns)) OVER (PARTITION BY service, attrs ORDER BY start_ns
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_last
            FROM points WHERE temporality = 2 GROUP BY service, attrs, start_ns
        ), steps AS (
            SELECT service, attrs, time_ns, temporality, start_ns, v, lag(v) OVER w AS prev_v,
                   lag(time_ns) OVER w AS prev_time, n, lag(n) OVER w AS prev_n, s.earlier_last
            FROM points LEFT JOIN sequences s USING (service, attrs, start_ns)
            -- a delta point's start is its predecessor's time: deltas are one partition per stream
            WINDOW w AS (PARTITION BY service, attrs, temporality, CASE WHEN temporality = 2 THEN start_ns END
                         ORDER BY time_ns)
        )"""


def _stream_params(roots: list[str], metric: str, streams: list[tuple[str, str]], versions: list[str]) -> list:
    return [[s for s, _ in streams], [a for _, a in streams], roots, versions, metric]


# Points of one cumulative sequence (one start time) that no single writer exports: a count lower
# than the one before it, or a second value at the same time. With a start time, a restart has a
# new one (a new sequence); so this is two writers the resource does not tell apart (replicas with
# the same start time and no service.instance.id), whose interleaved counters cannot be split.
# Without a start time (0), a lower count is the only sign of a restart (Prometheus' rule).
_OVERLAP = "temporality = 2 AND prev_n IS NOT NULL AND (prev_time = time_ns OR (start_ns > 0 AND n < prev_n))"


def _overlap_error(conn, roots: list[str], metric: str, streams: list[tuple[str, str]], versions: list[str]):
    """Name the first overlapping point (``_OVERLAP``): its stream, time, values and file."""
    from phase8_assets.evidence import EvidenceError

    service, attrs, start_ns, time_ns, n, prev_n, count = conn.execute(
        f"""
        {_stream_steps("p.value")}
        SELECT service, attrs, start_ns, time_ns, n, prev_n, count(*) OVER () FROM steps WHERE {_OVERLAP}
        ORDER BY time_ns, service, attrs LIMIT 1
        """,
        _stream_params(roots, metric, streams, versions),
    ).fetchone()
    files = conn.execute(
        "SELECT DISTINCT f.uri FROM otel_points p JOIN otel_files f USING (root, sha256) "
        "WHERE p.root IN (SELECT unnest(?)) AND p.sha256 IN (SELECT unnest(?::VARCHAR[])) AND p.metric = ? "
        "AND p.service = ? AND p.attrs = ? AND p.start_ns = ? AND p.time_ns = ? ORDER BY 1 LIMIT 3",
        [roots, versions, metric, service, attrs, start_ns, time_ns],
    ).fetchall()
    at = datetime.fromtimestamp(time_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    what = "a second value at the same time" if n >= prev_n else f"count {n:g} after {prev_n:g}"
    raise EvidenceError(
        "startTimeUnixNano",
        f"{metric} of service.name {service!r} {attrs} has overlapping cumulative points: {count} point(s) with "
        f"startTimeUnixNano {start_ns} go back or repeat a time (first at {at}: {what}) where one writer's "
        "counter only grows, so two writers (replicas whose resource attributes are the same) report this "
        "stream and its increments cannot be counted; give each its own service.instance.id "
        f"(in {', '.join(f for (f,) in files)})",
    )


# Without a start time a lower count is a restart, unless the count keeps taking turns between two
# counters: three drops at every other point, each rise coming back at least to the count before
# the drop, the counts after the drops (n, n2, n4) and those before them (n1, n3, n5) each only
# growing. A restart grows from its drop; for restarts to write this, three processes in a row
# would each have to live exactly two exports and end at or above the one before. Two writers the
# resource does not tell apart (no service.instance.id), exporting in turn, write it at every turn.
_INTERLEAVED = (
    "n < n1 AND n2 < n3 AND n4 < n5 AND n1 >= n2 AND n3 >= n4 AND n4 <= n2 AND n2 <= n AND n5 <= n3 AND n3 <= n1"
)


def _unstarted_turns() -> str:
    """``_stream_steps`` plus ``turns``: the points of cumulative sequences without a start time that
    end an ``_INTERLEAVED`` pattern (parameters: ``_stream_params``)."""
    lags = ", ".join(f"lag(n, {k}) OVER w AS n{k}" for k in range(1, 6))
    return f"""
        {_stream_steps("p.value")}, unstarted AS (
            SELECT service, attrs, time_ns, n, {lags} FROM steps WHERE temporality = 2 AND start_ns = 0
            WINDOW w AS (PARTITION BY service, attrs ORDER BY time_ns)
        ), turns AS (SELECT * FROM unstarted WHERE {_INTERLEAVED})"""


def _interleaved_error(conn, roots: list[str], metric: str, streams: list[tuple[str, str]], versions: list[str]):
    """Name the first point that ends an ``_INTERLEAVED`` pattern: its stream, time, counts and file."""
    from phase8_assets.evidence import EvidenceError

    row = conn.execute(
        f"""
        {_unstarted_turns()}
        SELECT service, attrs, time_ns, n5, n4, n3, n2, n1, n, count(*) OVER () FROM turns
        ORDER BY time_ns, service, attrs LIMIT 1
        """,
        _stream_params(roots, metric, streams, versions),
    ).fetchone()
    if row is None:
        return
    service, attrs, time_ns, *counts, turns = row
    files = conn.execute(
        "SELECT DISTINCT f.uri FROM otel_points p JOIN otel_files f USING (root, sha256) "
        "WHERE p.root IN (SELECT unnest(?)) AND p.sha256 IN (SELECT unnest(?::VARCHAR[])) AND p.metric = ? "
        "AND p.service = ? AND p.attrs = ? AND p.start_ns = 0 AND p.time_ns = ? ORDER BY 1 LIMIT 3",
        [roots, versions, metric, service, attrs, time_ns],
    ).fetchall()
    at = datetime.fromtimestamp(time_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise EvidenceError(
        "startTimeUnixNano",
        f"{metric} of service.name {service!r} {attrs} has cumulative points with startTimeUnixNano 0 whose count "
        f"takes turns between two counters ({turns} point(s); first ending at {at}, counts "
        f"{', '.join(f'{c:g}' for c in counts)}): a restart grows from its drop, so two writers (replicas whose "
        "resource attributes are the same) report this stream and its increments cannot be counted; give each "
        f"its own service.instance.id, or export startTimeUnixNano (in {', '.join(f for (f,) in files)})",
    )


def _mixed_temporality_error(conn, roots: list[str], metric: str, streams: list[tuple[str, str]], versions: list[str]):
    """A stream exported both as deltas and as cumulative counts at the same time: a delta point
    inside (previous point, point] of a cumulative sequence of the same stream. Temporality is part
    of a metric's identity (the data model): one stream in both is a semantic error, most often the
    same requests exported twice (a collector pipeline with ``cumulativetodelta`` beside one
    without), whose sum double-counts; so it is refused, naming the stream and the files. Deltas
    that follow cumulative points (or the reverse: a deploy that changed the temporality) are two
    periods of one stream and count as they are."""
    from phase8_assets.evidence import EvidenceError

    row = conn.execute(
        f"""
        {_stream_steps("p.value")}, cumulative AS (
            SELECT service, attrs, prev_time AS lo, time_ns AS hi FROM steps WHERE temporality = 2 AND prev_time IS NOT NULL
        )
        SELECT d.service, d.attrs, d.time_ns, c.lo, c.hi FROM steps d JOIN cumulative c
            ON d.service = c.service AND d.attrs = c.attrs AND d.time_ns > c.lo AND d.time_ns <= c.hi
        WHERE d.temporality = 1 ORDER BY d.time_ns, d.service, d.attrs LIMIT 1
        """,
        _stream_params(roots, metric, streams, versions),
    ).fetchone()
    if row is None:
        return
    service, attrs, time_ns, lo, hi = row
    files = conn.execute(
        "SELECT DISTINCT f.uri FROM otel_points p JOIN otel_files f USING (root, sha256) "
        "WHERE p.root IN (SELECT unnest(?)) AND p.sha256 IN (SELECT unnest(?::VARCHAR[])) AND p.metric = ? "
        "AND p.service = ? AND p.attrs = ? AND p.time_ns BETWEEN ? AND ? ORDER BY 1 LIMIT 4",
        [roots, versions, metric, service, attrs, lo, hi],
    ).fetchall()

    def iso(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    raise EvidenceError(
        "aggregationTemporality",
        f"{metric} of service.name {service!r} {attrs} is exported as deltas and as cumulative counts at the same "
        f"time (a delta point at {iso(time_ns)}, between cumulative points at {iso(lo)} and {iso(hi)}): temporality "
        "is part of a metric's identity, and the two most often report the same requests twice, so they cannot be "
        f"summed; keep one temporality per stream (in {', '.join(f for (f,) in files)})",
    )


def otel_increments(
    conn: duckdb.DuckDBPyConnection,
    roots: list[str],
    metric: str,
    streams: list[tuple[str, str]],
    le: float | None,
    *,
    versions: list[str],
):
    """Event increments of the given streams summed per timestamp: (times_ns, counts) numpy arrays,
    from the given file versions only (a corrected or deleted file no longer counts).

    Computed in DuckDB so memory follows the number of distinct timestamps, not of points. Delta
    points are increments; cumulative ones are differenced per sequence (``_stream_steps``), a new
    start time after the earlier sequences' last point being a restart (the value is then the
    increment), as is a lower count (or sum) without start times, unless it takes turns between
    two counters (``_INTERLEAVED``); with one, a lower count or a second value at one time is two
    writers (``_OVERLAP``); both are an ``EvidenceError``. With ``le`` the value
    is the count of the buckets wholly at or under it; an exponential histogram's buckets widen
    when it rescales, so that count may shrink without a restart: the difference is then 0, never
    a "restart" that counts the stream's whole history as fast requests; a stream's first point counts
    whole only if its counter started at most an hour before it; a true reset point (start time
    equal to its time) only anchors the differences after it (``domains/slo.py``).
    """
    import numpy as np

    if not streams:
        return np.array([], dtype=np.int64), np.array([], dtype=float)
    value = (
        "value"
        if le is None
        else "CASE WHEN len(coalesce(buckets, [])) = 0 THEN NULL ELSE "  # no bucket counts: not reported, not 0
        f"list_sum(list_transform(list_zip(bounds, buckets), lambda x: CASE WHEN x[1] <= {float(le)!r} + 1e-12 "
        "THEN x[2] ELSE 0 END)) END"
    )
    rows = conn.execute(
        f"""
        {_stream_steps(value)}
        SELECT time_ns, sum(CASE
                WHEN temporality = 1 THEN v
                WHEN start_ns = time_ns THEN 0
                WHEN prev_v IS NULL THEN CASE WHEN start_ns > 0 AND (time_ns - start_ns <= ? OR start_ns >= earlier_last)
                                              THEN v ELSE 0 END
                WHEN n < prev_n THEN v
                ELSE greatest(v - prev_v, 0) END) AS inc, count(*) FILTER (WHERE v IS NULL) AS unreported,
               count(*) FILTER (WHERE {_OVERLAP}) AS overlapping, count(*) FILTER (WHERE temporality = 1) AS deltas,
               count(*) FILTER (WHERE temporality = 2) AS cumulatives,
               count(*) FILTER (WHERE temporality = 2 AND start_ns = 0 AND n < prev_n) AS unstarted_drops
        FROM steps GROUP BY time_ns ORDER BY time_ns
        """,
        [*_stream_params(roots, metric, streams, versions), FIRST_POINT_WHOLE_NS],
    ).fetchnumpy()
    if int(np.sum(rows["overlapping"])):
        _overlap_error(conn, roots, metric, streams, versions)
    if int(np.sum(rows["unstarted_drops"])) >= 3:  # restarts, or two writers taking turns?
        _interleaved_error(conn, roots, metric, streams, versions)
    if int(np.sum(rows["deltas"])) and int(np.sum(rows["cumulatives"])):  # both in one metric: at once?
        _mixed_temporality_error(conn, roots, metric, streams, versions)
    unreported = int(np.sum(rows["unreported"]))
    if unreported:
        from phase8_assets.evidence import EvidenceError

        files = conn.execute(
            "SELECT DISTINCT f.uri FROM otel_points p JOIN otel_files f USING (root, sha256) "
            "WHERE p.root IN (SELECT unnest(?)) AND p.sha256 IN (SELECT unnest(?::VARCHAR[])) AND p.metric = ? "
            "AND len(coalesce(p.buckets, [])) = 0 ORDER BY 1 LIMIT 3",
            [roots, versions, metric],
        ).fetchall()
        raise EvidenceError(
            "le",
            f"{unreported} data point(s) of {metric} have no bucket counts, so the requests at or under {le} were "
            f"not reported (in {', '.join(f for (f,) in files)})",
        )
    return rows["time_ns"].astype(np.int64), rows["inc"].astype(float)


def otel_coverage(
    conn: duckdb.DuckDBPyConnection,
    roots: list[str],
    metric: str,
    streams: list[tuple[str, str]],
    *,
    versions: list[str],
):
    """The time the given streams' increments account for, as disjoint spans: (starts_ns, ends_ns).

    Each point covers the interval its increment counts (as ``otel_increments`` counts it): a
    delta point from its start time (or, without one, the stream's previous point); a cumulative
    one from its sequence's previous point (a difference counts every event between the two,
    however far apart), or from its start time after a restart or when its first point counts
    whole; a first point or a true reset point, which only anchors, covers nothing. So a gap between delta exports, the
    time between a crash and the restart, and everything after the last point are not covered:
    data that stopped days ago does not cover those days."""
    import numpy as np

    if not streams:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    rows = conn.execute(
        f"""
        {_stream_steps("p.value")}, spans AS (
            SELECT time_ns AS hi, CASE
                WHEN temporality = 1 THEN CASE WHEN start_ns > 0 THEN start_ns ELSE prev_time END
                WHEN start_ns = time_ns THEN NULL
                WHEN prev_v IS NULL THEN CASE WHEN start_ns > 0 AND (time_ns - start_ns <= ? OR start_ns >= earlier_last)
                                              THEN start_ns END
                ELSE prev_time END AS lo
            FROM steps
        ), reach AS (
            SELECT lo, hi, max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
            FROM spans WHERE lo < hi
        ), islands AS (
            SELECT lo, hi, sum(CASE WHEN before IS NULL OR lo > before THEN 1 ELSE 0 END)
                   OVER (ORDER BY lo, hi ROWS UNBOUNDED PRECEDING) AS island
            FROM reach
        )
        SELECT min(lo) AS lo, max(hi) AS hi FROM islands GROUP BY island ORDER BY lo
        """,
        [*_stream_params(roots, metric, streams, versions), FIRST_POINT_WHOLE_NS],
    ).fetchnumpy()
    return rows["lo"].astype(np.int64), rows["hi"].astype(np.int64)


def record_slo_snapshots(conn: duckdb.DuckDBPyConnection, root: str, rows: list[tuple], evaluated_at: datetime) -> int:
    """Record each SLO's standing at an evaluation time, once: re-running the same time adds nothing,
    and after the evidence changed the snapshot is the standing on the evidence as it is now."""
    before = table_counts(conn, ("slo_snapshots",))["slo_snapshots"]
    if rows:
        rows = [[root, _naive_utc(evaluated_at), *r] for r in rows]
        with transaction(conn):
            if is_lake(conn):
                _lake_rows(conn, "slo_snapshots", rows, replace=True)
            else:
                conn.executemany(
                    "INSERT INTO slo_snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                    "service = excluded.service, target = excluded.target, budget_remaining = excluded.budget_remaining, "
                    "page_alerts = excluded.page_alerts, ticket_alerts = excluded.ticket_alerts",
                    rows,
                )
    return table_counts(conn, ("slo_snapshots",))["slo_snapshots"] - before


def _loaded(conn: duckdb.DuckDBPyConnection, root: str, key: str, version: str) -> bool:
    seen = conn.execute("SELECT sha256 FROM cost_files WHERE root = ? AND uri = ?", [root, key]).fetchone()
    return bool(seen and seen[0] == version)


def _redacted_tags(text: str) -> str:
    """A tag set (FOCUS ``Tags`` JSON, or any text) through the redaction function: as JSON, so a tag
    whose key says secret loses its value whole."""
    try:
        tags = json.loads(text)
    except ValueError:
        return redact_text(text)
    return json.dumps(redact(tags)) if isinstance(tags, dict) and redact(tags) != tags else redact_text(text)


def _redact_tags(conn: duckdb.DuckDBPyConnection, root: str, version: str) -> None:
    """Pass the delivery's tags (the free text of a cost export: anyone may write anything in a tag)
    through the redaction function. Tag sets repeat on every line item, so each distinct one is
    redacted once in Python and only the rows whose tags changed are rewritten."""
    where = "root = ? AND sha256 = ? AND tags IS NOT NULL"
    distinct = [
        v
        for (v,) in conn.execute(f"SELECT DISTINCT tags FROM cost_line_items WHERE {where}", [root, version]).fetchall()
    ]
    changed = [(v, r) for v, r in ((v, _redacted_tags(v)) for v in distinct) if r != v]
    if changed:
        conn.execute(
            f"UPDATE cost_line_items SET tags = m.redacted FROM (SELECT unnest(?) AS original, unnest(?) AS redacted) m "
            f"WHERE {where} AND tags = m.original",
            [[v for v, _ in changed], [r for _, r in changed], root, version],
        )


def _replace_delivery(
    conn: duckdb.DuckDBPyConnection, root: str, key: str, version: str, select_sql: str | None
) -> int | None:
    """Replace the cost rows of delivery ``key`` (a file path, or a CUR export period) by those of
    ``version`` (a sha256 or an execution id) in one transaction, so a period is never doubled or lost.
    Rows are kept once per version: the same content delivered under two paths shares them. What is
    loaded is read inside the transaction (on DuckLake, under the write lock): two processes loading
    one root at once (scenarios share the base root) load a delivery once; ``None`` when the other
    one did already."""
    shared = "SELECT 1 FROM cost_files WHERE root = ? AND sha256 = ? AND uri <> ?"
    with transaction(conn):
        seen = conn.execute("SELECT sha256 FROM cost_files WHERE root = ? AND uri = ?", [root, key]).fetchone()
        if seen and seen[0] == version:
            return None
        if seen:
            if not conn.execute(shared, [root, seen[0], key]).fetchone():
                conn.execute("DELETE FROM cost_line_items WHERE root = ? AND sha256 = ?", [root, seen[0]])
            conn.execute("DELETE FROM cost_files WHERE root = ? AND uri = ?", [root, key])
        if select_sql and not conn.execute(shared, [root, version, key]).fetchone():
            conn.execute(f"INSERT INTO cost_line_items SELECT ?, ?, * FROM ({select_sql})", [root, version])
            _redact_tags(conn, root, version)
        rows = conn.execute(
            "SELECT count(*) FROM cost_line_items WHERE root = ? AND sha256 = ?", [root, version]
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO cost_files VALUES (?, ?, ?, ?, ?)",
            [root, key, version, rows, datetime.now(UTC).replace(tzinfo=None)],
        )
    return rows


def record_cost_file(conn: duckdb.DuckDBPyConnection, root: str, uri: str, sha256: str, spool: Path) -> int | None:
    """Load one FOCUS export (``spool``: the validated rows its reader wrote) → DuckDB; ``None`` when
    this content is already loaded.

    A file delivered again under the same path with new content replaces its earlier rows (a
    restated billing period)."""
    if _loaded(conn, root, uri, sha256):
        return None
    source = str(spool).replace("'", "''")
    return _replace_delivery(conn, root, uri, sha256, f"SELECT * FROM read_parquet('{source}')")


def record_cur_period(conn: duckdb.DuckDBPyConnection, root: str, key: str, execution: str, spool: Path) -> int | None:
    """Load one CUR 2.0 delivery (``spool``: the rows of the files its manifest lists, checked and
    mapped by its reader) for a billing period; ``None`` when this execution is loaded already. A newer
    execution replaces the period's earlier rows."""
    if _loaded(conn, root, key, execution):
        return None
    source = str(spool).replace("'", "''")
    return _replace_delivery(conn, root, key, execution, f"SELECT * FROM read_parquet('{source}')")
