"""The health snapshot: what ``phase8 serve`` shows, written by every gate run and every ``phase8``
command at its end (atomically, through the one report writer), read by the health app, which
never opens the warehouse itself.

It holds the warehouse's schema version and, per evidence root, the latest gate run's verdict and
each gate's status; never findings, evidence content or costs. It is written only into a home
that exists (a command that never used one does not create it); when the warehouse is held by a
run, the previous snapshot's gate runs are kept and the problem is said.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb

from phase8_assets import __version__
from phase8_assets.shared.clock import TimeParseError, format_timestamp, now_utc, parse_timestamp
from phase8_assets.shared.redaction import redact
from phase8_assets.shared.reports import write_text
from phase8_assets.warehouse import WarehouseError, connect, current_version, latest_version, present, warehouse_path

SNAPSHOT_FILE = "health.json"
MAX_SNAPSHOT_BYTES = 1024 * 1024
SNAPSHOT_LOCK_WAIT_S = 2.0


def snapshot_path(home: Path) -> Path:
    return Path(home) / SNAPSHOT_FILE


def _latest_runs(conn) -> list[dict]:
    rows = conn.execute(
        """
        SELECT root, run_id, verdict, evaluated_at, recorded_at, release_version FROM (
            SELECT unnest(evidence_roots) AS root, run_id, verdict, evaluated_at, recorded_at, release_version
            FROM gate_runs
        ) QUALIFY row_number() OVER (PARTITION BY root ORDER BY recorded_at DESC, run_id) = 1
        ORDER BY root
        """
    ).fetchall()
    statuses: dict[str, dict[str, str]] = {}
    for run_id, gate, status in conn.execute(
        "SELECT run_id, gate, status FROM gate_run_results WHERE run_id IN (SELECT unnest(?)) ORDER BY gate",
        [[r[1] for r in rows]],
    ).fetchall():
        statuses.setdefault(run_id, {})[gate] = status
    return [
        {
            "root": root,
            "run_id": run_id,
            "verdict": verdict,
            "evaluated_at": format_timestamp(evaluated_at),
            "recorded_at": format_timestamp(recorded_at),
            "release": release,
            "gates": statuses.get(run_id, {}),
        }
        for root, run_id, verdict, evaluated_at, recorded_at, release in rows
    ]


def write_snapshot(home: Path, command: str, exit_code: int | None, at: datetime | None = None) -> Path | None:
    """Record what the health endpoint shows, at the end of a command; ``None`` when ``home`` does
    not exist (a command that never used a home does not create one)."""
    home = Path(home)
    if not home.is_dir():
        return None
    at = at or now_utc()
    path = warehouse_path(home)
    previous = read_snapshot(home)[0] or {}
    warehouse: dict = {"exists": False, "latest_version": latest_version(), "version": None, "problem": None}
    runs = previous.get("gate_runs", [])
    try:
        warehouse["exists"] = present(home)  # the lake, when PHASE8_WAREHOUSE names one
    except WarehouseError as exc:
        warehouse["problem"] = str(exc)
    if warehouse["exists"]:
        try:
            with connect(path, read_only=True, check_schema=False, wait_s=SNAPSHOT_LOCK_WAIT_S) as conn:
                warehouse["version"] = current_version(conn)
                if warehouse["version"] == latest_version():
                    runs = _latest_runs(conn)
        except WarehouseError as exc:
            warehouse["problem"] = str(exc)
        except duckdb.Error as exc:  # tables changed by hand or damaged: said, the previous runs kept
            runs = previous.get("gate_runs", [])
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warehouse["problem"] = f"{path}: cannot read the gate runs ({reason}); see `phase8 upgrade preflight`"
    snapshot = {
        "generated_at": format_timestamp(at),
        "phase8_version": __version__,
        "command": {"name": command, "exit_code": exit_code},
        "warehouse": warehouse,
        "gate_runs": runs,
    }
    return write_text(snapshot_path(home), json.dumps(redact(snapshot), indent=2, sort_keys=True) + "\n")


def read_snapshot(home: Path) -> tuple[dict | None, str]:
    """(snapshot, problem): the snapshot, or ``None`` and why it cannot be used."""
    path = snapshot_path(home)
    try:
        if path.stat().st_size > MAX_SNAPSHOT_BYTES:
            return None, f"{path}: larger than {MAX_SNAPSHOT_BYTES} bytes"
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict):
            return None, f"{path}: expected a JSON object"
        parse_timestamp(doc.get("generated_at"), "generated_at")
        return doc, ""
    except FileNotFoundError:
        return None, f"{path}: no health snapshot; run `phase8 gate` (or any phase8 command) on this PHASE8_HOME"
    except (OSError, ValueError, TimeParseError) as exc:
        return None, f"{path}: unreadable health snapshot: {exc}"
