"""``phase8 diagnostics``: one zip an operator can attach to a support ticket.

What it holds (each entry through the one redaction function, ``shared/redaction.py``):
``manifest.json`` (every entry's size and SHA-256, generation time, product and dependency
versions, what was truncated or could not be read), ``config/`` (the environment's PHASE8_*,
DAGSTER_*, OTEL_* and AWS_* variables, the effective evidence config, the Dagster instance's
``dagster.yaml``), ``warehouse.json`` (schema version, per-table row counts), ``evidence.json``
(per root and kind: files, oldest and newest evidence time; recent rejections), ``runs.json``
(the last N Dagster runs with failing steps when ``DAGSTER_HOME`` is set, else the gate run log),
``gate-report.json`` (the latest), ``logs/`` (telemetry files of PHASE8_HOME changed within
``since``), ``health.json`` (the health snapshot) and ``concurrency_slots.json``.

It never follows a symlink or reads outside the folders it means to collect; a warehouse held by
a run is waited for a bounded time, then reported as unavailable; the uncompressed content is
capped at ``max_size`` and whatever is cut is said in the manifest and in the entry itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from phase8_assets import __version__
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.redaction import redact, redact_text
from phase8_assets.shared.reports import write_bytes

ENV_PREFIXES = ("PHASE8_", "DAGSTER_", "OTEL_", "AWS_")
DEPENDENCIES = (
    "dagster",
    "dagster-duckdb",
    "duckdb",
    "starlette",
    "uvicorn",
    "boto3",
    "opentelemetry-sdk",
    "jsonschema",
)
MANIFEST_RESERVE = 64 * 1024
MIN_SIZE = 2 * MANIFEST_RESERVE
TRUNCATED = "\n[truncated by phase8 diagnostics: the bundle reached --max-size]\n"
MIN_LOG_TAIL = 4096


@dataclass
class Bundle:
    at: datetime
    max_size: int
    entries: dict[str, bytes] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)  # name -> original size
    omitted: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return sum(len(v) for v in self.entries.values())

    @property
    def room(self) -> int:
        return self.max_size - MANIFEST_RESERVE - self.used

    def add(self, name: str, data: bytes) -> None:
        room = self.room
        if len(data) <= room:
            self.entries[name] = data
        elif room > len(TRUNCATED) + 1024:
            self.entries[name] = data[: room - len(TRUNCATED)] + TRUNCATED.encode()
            self.truncated[name] = len(data)
        else:
            self.omitted[name] = f"{len(data)} bytes left out: the bundle reached --max-size ({self.max_size} bytes)"

    def add_json(self, name: str, value: Any) -> None:
        self.add(name, (json.dumps(redact(value), indent=2, sort_keys=True, default=str) + "\n").encode())


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"phase8_assets": __version__, "python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _environment() -> dict[str, str]:
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}


def _evidence_config(bundle: Bundle, evidence: list[str]) -> None:
    from phase8_assets.defs.resources import load_evidence_config
    from phase8_assets.evidence.config import ConfigError

    if not evidence:
        bundle.unavailable["config/evidence.json"] = "no evidence root given (--evidence or PHASE8_EVIDENCE)"
        return
    try:
        config = load_evidence_config(evidence)
    except ConfigError as exc:
        bundle.unavailable["config/evidence.json"] = str(exc)
        return
    bundle.add_json(
        "config/evidence.json",
        {
            "files": config.files,
            "roots": config.root_uris,
            "release": config.release,
            "evaluation_time": config.evaluation_time,
            "tenants": config.tenants,
            "owners": config.owners,
            "runbooks": config.runbooks.uri,
            "evidence": {
                k.name: {"paths": [loc.uri for loc in k.sources], "max_age": k.max_age_text, "owner": k.owner}
                for k in config.evidence.values()
            },
            "gates": config.gates,
            "waivers": [loc.uri for loc in config.waivers],
            "limits": {"max_file_bytes": config.max_file_bytes, "read_timeout_seconds": config.read_timeout_s},
        },
    )


def _dagster_yaml(bundle: Bundle) -> None:
    from phase8_assets.shared.yaml_loader import YamlError, load_yaml

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return
    path = Path(home) / "dagster.yaml"
    if path.is_symlink() or not path.is_file():
        bundle.unavailable["config/dagster.json"] = f"{path}: not a regular file"
        return
    try:
        bundle.add_json("config/dagster.json", load_yaml(path.read_bytes(), str(path)))
    except (OSError, YamlError) as exc:
        bundle.unavailable["config/dagster.json"] = str(exc)


def _warehouse(bundle: Bundle, home: Path, runs: int, lock_wait_s: float) -> list[dict] | None:
    """Schema, counts, inventory, the gate run log and the latest report; the gate run log's runs."""
    from phase8_assets.warehouse import (
        WarehouseError,
        connect,
        current_version,
        latest_version,
        location,
        present,
        warehouse_path,
    )
    from phase8_assets.warehouse.store import table_counts

    path = warehouse_path(home)
    names = ("warehouse.json", "evidence.json", "gate-report.json")
    try:
        where = location(home)  # the lake (no password) when PHASE8_WAREHOUSE names one
        if not present(home):
            raise WarehouseError(f"{path}: no warehouse yet")
        with connect(path, read_only=True, check_schema=False, wait_s=lock_wait_s) as conn:
            version = current_version(conn)
            bundle.add_json(
                "warehouse.json",
                {"path": where, "schema_version": version, "latest_version": latest_version(),
                 "tables": table_counts(conn)},
            )  # fmt: skip
            if version != latest_version():
                for name in names[1:]:
                    bundle.unavailable[name] = f"schema version {version}; this release reads {latest_version()}"
                return None
            kinds = conn.execute(
                "SELECT root, kind, count(*), min(observed_at), max(observed_at) FROM evidence_files "
                "GROUP BY root, kind ORDER BY root, kind"
            ).fetchall()
            rejections = conn.execute(
                "SELECT root, kind, uri, field, reason, rejected_at FROM evidence_rejections "
                "ORDER BY rejected_at DESC, uri LIMIT 200"
            ).fetchall()
            bundle.add_json(
                "evidence.json",
                {
                    "kinds": [
                        {"root": r, "kind": k, "files": n, "oldest": o and format_timestamp(o),
                         "newest": w and format_timestamp(w)}
                        for r, k, n, o, w in kinds
                    ],
                    "recent_rejections": [
                        {"root": r, "kind": k, "uri": u, "field": f, "reason": why, "at": format_timestamp(t)}
                        for r, k, u, f, why, t in rejections
                    ],
                },
            )  # fmt: skip
            log = conn.execute(
                "SELECT run_id, verdict, evaluated_at, recorded_at, evidence_roots, report FROM gate_runs "
                "ORDER BY recorded_at DESC, run_id LIMIT ?",
                [runs],
            ).fetchall()
    except WarehouseError as exc:
        for name in names:
            bundle.unavailable[name] = str(exc)
        return None
    if log:
        bundle.add_json("gate-report.json", json.loads(log[0][5]))
    else:
        bundle.unavailable["gate-report.json"] = "no gate run recorded"
    return [
        {
            "run_id": run_id,
            "source": "gate run log",
            "status": verdict,
            "evaluated_at": format_timestamp(evaluated),
            "recorded_at": format_timestamp(recorded),
            "evidence_roots": roots,
            "failing": [g["gate"] for g in json.loads(report)["gates"] if g["status"] in ("fail", "error")],
        }
        for run_id, verdict, evaluated, recorded, roots, report in log
    ]


def _dagster_runs(limit: int) -> list[dict]:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        out = []
        for run in instance.get_runs(limit=limit):
            failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            stats = instance.get_run_stats(run.run_id)
            out.append(
                {
                    "run_id": run.run_id,
                    "source": "dagster",
                    "job": run.job_name,
                    "status": run.status.value,
                    "started_at": stats.start_time,
                    "ended_at": stats.end_time,
                    "failing_steps": [
                        {"step": e.step_key, "error": redact_text(e.dagster_event.event_specific_data.error.message)}
                        for e in failures
                        if e.dagster_event is not None
                    ],
                }
            )
        return out


def _from_instance(bundle: Bundle, name: str, read, *args):
    """What ``read`` gets from the Dagster instance of ``DAGSTER_HOME``; an instance that cannot be
    opened or read (an invalid ``dagster.yaml``, its database unreachable: the usual reason for a
    ticket) is named in the manifest, and the bundle is still written."""
    try:
        return read(*args)
    except Exception as exc:  # whatever the instance's storage raises, the bundle is still written
        where = os.environ.get("DAGSTER_HOME", "")
        text = " ".join(line.strip() for line in f"{type(exc).__name__}: {exc}".splitlines() if line.strip())
        text = redact_text(text if len(text) <= 600 else text[:600] + "…")
        bundle.unavailable[name] = f"the Dagster instance of DAGSTER_HOME={where} cannot be read: {text}"
        return None


def _inside(path: Path, folder: Path) -> bool:
    """A regular file reached without a symlink, inside ``folder``."""
    if path.is_symlink() or not path.is_file():
        return False
    resolved, base = path.resolve(), folder.resolve()
    return base in resolved.parents


def _concurrency_slots() -> dict:
    """Pool slots held (or queued for) by runs whose process is gone: the next run would wait on them."""
    if not os.environ.get("DAGSTER_HOME"):
        return {
            "status": "not checked",
            "reason": "no DAGSTER_HOME: runs in a temporary instance hold no slot after they end",
        }
    import dataclasses

    import dagster as dg

    from phase8_assets.defs.resources import leaked_slots

    with dg.DagsterInstance.get() as instance:
        leaked = leaked_slots(instance)
    return {
        "status": "leaked" if leaked else "ok",
        "leaked": [dataclasses.asdict(slot) for slot in leaked],
        "fix": "phase8 gate frees them on its next run; see docs/ops/runbook-leaked-slots.md" if leaked else "",
    }


def _log_text(data: bytes) -> bytes:
    """JSON lines redacted as structures; runs of plain lines redacted together, so a secret that
    spans lines (a PEM private key) is seen whole."""
    out, plain = [], []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            plain.append(line)
            continue
        if plain:
            out.append(redact_text("\n".join(plain)))
            plain = []
        out.append(json.dumps(redact(record), sort_keys=True))
    if plain:
        out.append(redact_text("\n".join(plain)))
    return ("\n".join(out) + "\n").encode()


def _logs(bundle: Bundle, home: Path, since: timedelta) -> None:
    folder = home / "telemetry"
    if folder.is_symlink() or not folder.is_dir():
        bundle.unavailable["logs/"] = f"{folder}: no telemetry files (a real folder) in this home"
        return
    cutoff = (bundle.at - since).timestamp()
    files = []
    for dirpath, _, filenames in os.walk(folder, followlinks=False):
        for name in filenames:
            path = Path(dirpath) / name
            if not _inside(path, folder):
                bundle.omitted[f"logs/{path.relative_to(folder).as_posix()}"] = "not a regular file inside the home"
            elif path.stat().st_mtime >= cutoff:
                files.append(path)
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):  # newest first under the cap
        name = f"logs/{path.relative_to(folder).as_posix()}"
        size = path.stat().st_size
        if size <= bundle.room:
            bundle.add(name, _log_text(path.read_bytes()))
            continue
        if bundle.room < MIN_LOG_TAIL:
            bundle.omitted[name] = f"{size} bytes left out: the bundle reached --max-size ({bundle.max_size} bytes)"
            continue
        # A log larger than the room left: only its end (the most recent lines) is read, never the
        # whole file (bundles of many GB), and the cut is said in the entry and the manifest.
        limit = bundle.room - 256  # room for the note
        with open(path, "rb") as fh:
            fh.seek(size - limit)
            tail = fh.read(limit).split(b"\n", 1)[-1]  # from a whole line: no half secret
        note = f"[phase8 diagnostics: the first {size - len(tail)} of {size} bytes were left out by --max-size]\n"
        bundle.add(name, note.encode() + _log_text(tail))
        if name in bundle.entries:
            bundle.truncated[name] = size


def build(
    out: Path,
    *,
    home: Path,
    at: datetime,
    evidence: list[str] | None = None,
    max_size: int = 50 * 1024 * 1024,
    since: timedelta = timedelta(days=7),
    runs: int = 20,
    lock_wait_s: float = 10.0,
) -> dict:
    """Write the bundle to ``out``; return its manifest."""
    from phase8_assets.warehouse.health import read_snapshot

    if max_size < MIN_SIZE:
        raise ValueError(f"--max-size: at least {MIN_SIZE} bytes, got {max_size}")
    bundle = Bundle(at, max_size)
    bundle.add_json("config/environment.json", _environment())
    _evidence_config(bundle, list(evidence or []))
    _dagster_yaml(bundle)
    snapshot, problem = read_snapshot(home)
    if snapshot is None:
        bundle.unavailable["health.json"] = problem
    else:
        bundle.add_json("health.json", snapshot)
    gate_log = _warehouse(bundle, home, runs, lock_wait_s)
    if os.environ.get("DAGSTER_HOME"):
        dagster_runs = _from_instance(bundle, "runs.json", _dagster_runs, runs)
        if dagster_runs is not None:
            bundle.add_json("runs.json", dagster_runs)
    elif gate_log is not None:
        bundle.add_json("runs.json", gate_log)
    else:
        bundle.unavailable["runs.json"] = "no DAGSTER_HOME and no readable gate run log"
    slots = _from_instance(bundle, "concurrency_slots.json", _concurrency_slots)
    if slots is not None:
        bundle.add_json("concurrency_slots.json", slots)
    _logs(bundle, home, since)
    manifest = {
        "generated_at": format_timestamp(at),
        "home": str(home),
        "versions": _versions(),
        "max_size": max_size,
        "files": [
            {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
             **({"truncated_from": bundle.truncated[name]} if name in bundle.truncated else {})}
            for name, data in sorted(bundle.entries.items())
        ],
        "omitted": bundle.omitted,
        "unavailable": bundle.unavailable,
    }  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(bundle.entries.items()):
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(redact(manifest), indent=2, sort_keys=True) + "\n")
    write_bytes(out, buffer.getvalue())
    return manifest


def parse_size(text: str) -> int:
    """``50MB``, ``512KiB``, ``1GB`` or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*", text, re.I)
    if not match:
        raise ValueError(f"--max-size: expected a size such as 50MB or 512KiB, got {text!r}")
    unit = (match.group(2) or "B").upper()
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}[unit]
    return int(float(match.group(1)) * scale)
