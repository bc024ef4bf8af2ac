"""History queries for the weekly report: everything comes from the warehouse, never from files.

Every query takes the week as ``[start, end)`` (naive UTC) and the roots, and returns plain rows in
a stable order, so the same history always gives the same report. Trends keep evidence files that
were withdrawn from a root (they rotated out, they are still history) and leave out versions that
a corrected file superseded (``SUPERSEDED``). Of a file a newer reader derived again, they read the
newest revision's rows only (``newest_revision``).
"""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

# File versions (root, sha256) that count nowhere any more: every period of theirs, at every path,
# ended because the path got other content (see migration 0008_evidence_versions).
SUPERSEDED = """(SELECT root, sha256 FROM evidence_versions GROUP BY root, sha256
                HAVING bool_and(ended_by IS NOT DISTINCT FROM 'superseded'))"""


def file_sha(column: str) -> str:
    """SQL: the evidence file's sha256 of a stored ``derived_version`` (``evidence/revisions.py``)."""
    return f"split_part({column}, '#', 1)"


def _revision(column: str) -> str:
    return f"coalesce(TRY_CAST(regexp_extract({column}, '#reader-([0-9]+)$', 1) AS INTEGER), 1)"


def newest_revision(table: str, alias: str, column: str) -> str:
    """SQL: the row of ``alias`` (a row of ``table``) was derived by the newest revision stored for its
    file. A file read again after its reader changed has rows of both revisions; a file withdrawn before
    that keeps the rows of the revision it was read under (history)."""
    return (
        f"NOT EXISTS (SELECT 1 FROM {table} newer WHERE newer.root = {alias}.root "
        f"AND {file_sha(f'newer.{column}')} = {file_sha(f'{alias}.{column}')} "
        f"AND {_revision(f'newer.{column}')} > {_revision(f'{alias}.{column}')})"
    )


def gate_runs(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> list[dict]:
    rows = conn.execute(
        """
        SELECT run_id, evaluated_at, verdict, release_version, evidence_roots, report
        FROM gate_runs WHERE evaluated_at >= ? AND evaluated_at < ? ORDER BY evaluated_at, run_id
        """,
        [start, end],
    ).fetchall()
    out = []
    for run_id, at, verdict, version, run_roots, report in rows:
        if roots and not set(run_roots) & set(roots):
            continue
        gates = json.loads(report)["gates"]
        failing = sorted(g["gate"] for g in gates if g["blocking"] and g["status"] in ("fail", "error"))
        out.append({"run_id": run_id, "at": at, "verdict": verdict, "version": version, "failing": failing})
    # The same evaluation repeated (same time, verdict and failing gates) is one line of the report.
    unique = {(r["at"], r["version"], r["verdict"], tuple(r["failing"])): r for r in out}
    return [unique[k] for k in sorted(unique, key=lambda k: (k[0], k[1], k[2], k[3]))]


AUDIT_SUMMARY_TYPES = ("finding.waived", "exception.expiring", "exception.expired", "gate.switched_off")


def audit_week(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> list[tuple]:
    """The week's audited decisions worth a reader's attention (who waived what, exceptions expiring
    or expired, gates switched off), of gate runs evaluated in the week on these roots, once each:
    (type, target, actor, reason, ticket, runs)."""
    return conn.execute(
        """
        SELECT a.event_type, a.target, a.actor, any_value(a.record->>'$.unmapped.phase8.reason'),
               any_value(a.record->>'$.unmapped.phase8.ticket'), count(DISTINCT a.run_id)
        FROM audit_events a JOIN gate_runs g USING (run_id)
        WHERE g.evaluated_at >= ? AND g.evaluated_at < ? AND a.event_type IN (SELECT unnest(?))
          AND (len(?) = 0 OR list_has_any(g.evidence_roots, ?))
        GROUP BY ALL ORDER BY 1, 2, 3
        """,
        [start, end, list(AUDIT_SUMMARY_TYPES), roots, roots],
    ).fetchall()


def benchmark_weeks(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> list[tuple]:
    """Per series on the base branch: mean of the run means this week and the week before."""
    return conn.execute(
        f"""
        SELECT b.benchmark, b.params, b.measure, any_value(b.unit), any_value(b.direction),
               avg(b.mean) FILTER (WHERE r.run_at >= ?) AS this_week,
               avg(b.mean) FILTER (WHERE r.run_at < ?) AS last_week,
               count(*) FILTER (WHERE r.run_at >= ?) AS runs
        FROM bench_results b JOIN bench_runs r USING (root, run_id)
        WHERE b.root IN (SELECT unnest(?)) AND r.run_at >= ? - INTERVAL 7 DAY AND r.run_at < ?
          AND (r.branch IS NULL OR r.branch = 'main')
          AND NOT EXISTS (SELECT 1 FROM {SUPERSEDED} s WHERE s.root = b.root AND s.sha256 = {file_sha("b.run_id")})
          AND {newest_revision("bench_runs", "r", "run_id")}
        GROUP BY ALL ORDER BY 1, 2, 3
        """,
        [start, start, start, roots, start, end],
    ).fetchall()


def benchmark_trend(conn: duckdb.DuckDBPyConnection, roots: list[str], end: datetime, weeks: int = 12) -> list[tuple]:
    """Weekly means of every series for the ``weeks`` weeks up to ``end`` (for the trend chart)."""
    return conn.execute(
        f"""
        SELECT b.benchmark, b.params, b.measure, date_trunc('week', r.run_at) AS week, avg(b.mean)
        FROM bench_results b JOIN bench_runs r USING (root, run_id)
        WHERE b.root IN (SELECT unnest(?)) AND r.run_at >= ? - to_weeks(?) AND r.run_at < ?
          AND (r.branch IS NULL OR r.branch = 'main') AND b.measure = 'time'
          AND NOT EXISTS (SELECT 1 FROM {SUPERSEDED} s WHERE s.root = b.root AND s.sha256 = {file_sha("b.run_id")})
          AND {newest_revision("bench_runs", "r", "run_id")}
        GROUP BY ALL ORDER BY 1, 2, 3, 4
        """,
        [roots, end, weeks, end],
    ).fetchall()


def anchored_weeks(
    conn: duckdb.DuckDBPyConnection, roots: list[str], benchmarks: list[str], start: datetime, end: datetime
) -> list[tuple]:
    """Weekly means of the given benchmarks' base-branch runs in ``[start, end)`` (the drift charts)."""
    return conn.execute(
        f"""
        SELECT b.benchmark, b.params, b.measure, date_trunc('week', r.run_at) AS week, avg(b.mean), count(*)
        FROM bench_results b JOIN bench_runs r USING (root, run_id)
        WHERE b.root IN (SELECT unnest(?)) AND b.benchmark IN (SELECT unnest(?)) AND r.run_at >= ? AND r.run_at < ?
          AND (r.branch IS NULL OR r.branch = 'main')
          AND NOT EXISTS (SELECT 1 FROM {SUPERSEDED} s WHERE s.root = b.root AND s.sha256 = {file_sha("b.run_id")})
          AND {newest_revision("bench_runs", "r", "run_id")}
        GROUP BY ALL ORDER BY 1, 2, 3, 4
        """,
        [roots, benchmarks, start, end],
    ).fetchall()


def change_points(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> list[tuple]:
    return conn.execute(
        """
        SELECT DISTINCT benchmark, params, measure, run_at, commit, before_mean, after_mean, change
        FROM perf_change_points WHERE root IN (SELECT unnest(?)) AND run_at >= ? AND run_at < ?
        ORDER BY run_at, benchmark, params, measure
        """,
        [roots, start, end],
    ).fetchall()


def slo_week(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> list[tuple]:
    """Per SLO: the last snapshot of the week and the last one before it."""
    return conn.execute(
        """
        WITH ranked AS (
            SELECT *, evaluated_at >= ? AS this_week,
                   row_number() OVER (PARTITION BY slo, evaluated_at >= ? ORDER BY evaluated_at DESC) AS rn
            FROM slo_snapshots WHERE root IN (SELECT unnest(?)) AND evaluated_at < ?
        )
        SELECT slo, any_value(service), any_value(target),
               max(budget_remaining) FILTER (WHERE this_week AND rn = 1),
               max(budget_remaining) FILTER (WHERE NOT this_week AND rn = 1),
               max(page_alerts) FILTER (WHERE this_week AND rn = 1),
               max(ticket_alerts) FILTER (WHERE this_week AND rn = 1)
        FROM ranked WHERE rn = 1 GROUP BY slo ORDER BY slo
        """,
        [start, start, roots, end],
    ).fetchall()


def drill_week(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> dict:
    runs = conn.execute(
        f"""
        SELECT DISTINCT title, tool, outcome, ended_at, recovery_s FROM drill_runs d
        WHERE root IN (SELECT unnest(?)) AND ended_at >= ? AND ended_at < ?
          AND NOT EXISTS (SELECT 1 FROM {SUPERSEDED} s WHERE s.root = d.root AND s.sha256 = {file_sha("d.sha256")})
          AND {newest_revision("drill_runs", "d", "sha256")}
        ORDER BY ended_at, title
        """,
        [roots, start, end],
    ).fetchall()
    overdue = conn.execute(
        """
        SELECT DISTINCT drill_id, due, state FROM drill_reminders
        WHERE root IN (SELECT unnest(?))
          AND TRY_CAST(replace(due, 'Z', '') AS TIMESTAMP) >= ? AND TRY_CAST(replace(due, 'Z', '') AS TIMESTAMP) < ?
        ORDER BY drill_id, due
        """,
        [roots, start, end],
    ).fetchall()
    return {"runs": runs, "overdue": overdue}


def cost_week(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> list[tuple]:
    """Effective cost per tenant and currency this week and the week before (attributed cost)."""
    return conn.execute(
        """
        SELECT tenant, currency,
               sum(effective) FILTER (WHERE charge_day >= CAST(? AS DATE))::DOUBLE,
               sum(effective) FILTER (WHERE charge_day < CAST(? AS DATE))::DOUBLE
        FROM cost_attribution
        WHERE root IN (SELECT unnest(?)) AND charge_day >= CAST(? AS DATE) - 7 AND charge_day < CAST(? AS DATE)
        GROUP BY ALL ORDER BY 1, 2
        """,
        [start, start, roots, start, end],
    ).fetchall()


def cost_days(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> int:
    """How many days of the week have attributed cost (a week still being billed has fewer than 7)."""
    return conn.execute(
        """
        SELECT count(DISTINCT charge_day) FROM cost_attribution
        WHERE root IN (SELECT unnest(?)) AND charge_day >= CAST(? AS DATE) AND charge_day < CAST(? AS DATE)
        """,
        [roots, start, end],
    ).fetchone()[0]


def gate_statuses(conn: duckdb.DuckDBPyConnection, roots: list[str], start: datetime, end: datetime) -> list[tuple]:
    """``(evaluated_at, run_id, gate, status)`` of every gate result recorded in ``[start, end)`` for runs
    that judged one of ``roots``, oldest first: the program scorecard's trend and latest statuses."""
    return conn.execute(
        """
        SELECT g.evaluated_at, g.run_id, r.gate, r.status
        FROM gate_runs g JOIN gate_run_results r USING (run_id)
        WHERE g.evaluated_at >= ? AND g.evaluated_at < ? AND list_has_any(g.evidence_roots, ?::VARCHAR[])
        ORDER BY g.evaluated_at, g.recorded_at, g.run_id, r.gate
        """,
        [start, end, roots],
    ).fetchall()
