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
            conn.executemany(
                "INSERT INTO evidence_files VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [[f.root, f.kind, f.sha256, f.uri, f.size, _naive_utc(f.observed_at), at] for f in batch.files],
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
    before = table_counts(conn, ("drill_runs",))["drill_runs"]
    conn.execute("BEGIN TRANSACTION")
    try:
        for item in seen:
            run, f = item.run, item.file
            key = [f.root, f.sha256, run.index]
            conn.execute(
                "INSERT INTO drill_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [
                    *key,
                    f.uri,
                    run.tool,
                    run.title,
                    list(run.tags),
                    run.status,
                    run.outcome,
                    run.deviated,
                    _naive_utc(run.started_at),
                    _naive_utc(run.ended_at),
                    run.hypothesis_before,
                    run.hypothesis_after,
                    run.recovery_s,
                    run.recovery_note,
                    run.environment,
                    at,
                ],
            )
            if run.activities:
                conn.executemany(
                    "INSERT INTO drill_activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [
                        [
                            *key,
                            a.phase,
                            a.seq,
                            a.type,
                            a.name,
                            a.status,
                            _naive_utc(a.start),
                            _naive_utc(a.end),
                            a.duration_s,
                            a.tolerance_met,
                            a.detail,
                        ]
                        for a in run.activities
                    ],
                )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return table_counts(conn, ("drill_runs",))["drill_runs"] - before


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
