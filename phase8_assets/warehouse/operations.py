"""Operating the warehouse like the self-hosted software it is: backup, preflight, upgrade,
rollback, each proved by a manifest.

A **manifest** (``manifest.json`` beside a backup) records the schema version, a schema fingerprint
(every table's columns and types), per-table row counts and order-independent content checksums
(the sum of each row's hash, modulo 2^64), and the sha256 of the backup file. A backup is verified
against it — file hash, then the copy's own fingerprints — before anything is overwritten, so a
truncated or corrupted backup is refused, not restored.

Every command that changes the warehouse (``apply``, ``rollback``, ``restore``) holds the home's run
lock, checks **all** its preconditions first, reading the file read-only (a refused command leaves
it byte-identical), and takes a verified backup before its first change.

``apply`` then applies each pending migration in its own transaction together with its version
record (so the schema always matches the recorded version, even after SIGKILL), then validates the
schema against the one this release expects and every existing table against the backup's
manifest; a failure restores the backup. ``rollback --to`` goes down by the migrations' down steps,
all in one transaction (a failed or interrupted rollback leaves the warehouse as it was), then
proves that the tables it keeps are unchanged by it and still hold every row of the last backup
taken at that version; rows written since stay, and rows of tables the older schema has not are
named and kept in the safety backup. ``rollback --backup`` restores a backup and compares every
table with its manifest. Any difference fails loudly with table and numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from phase8_assets.shared.clock import format_duration
from phase8_assets.warehouse import (
    DEFAULT_LOCK_WAIT_S,
    WAREHOUSE_FILE,
    MigrationFailed,
    WarehouseError,
    WarehouseLocked,
    audit,
    connect,
    current_version,
    home_lock,
    lake_configured,
    latest_version,
    location,
    migrate,
    migrations,
    transaction,
)

MANIFEST = "manifest.json"
DEFAULT_BACKUP_MAX_AGE = timedelta(hours=24)
_MOD = 2**64


class BackupInvalid(WarehouseError):
    """A backup whose file or content does not match its manifest."""


class IntegrityError(WarehouseError):
    """The warehouse after a rollback differs from the manifest taken before the upgrade."""


class Refused(WarehouseError):
    """A precondition of a command that changes the warehouse does not hold; nothing was changed."""


def _tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def schema_fingerprint(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def table_fingerprints(conn: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Row count and an order-independent content checksum per table."""
    out = {}
    for table in _tables(conn):
        rows, checksum = conn.execute(
            f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM "{table}" AS t'
        ).fetchone()
        out[table] = {"rows": int(rows), "checksum": format(int(checksum) % _MOD, "016x")}
    return out


def describe(conn: duckdb.DuckDBPyConnection) -> dict:
    return {
        "schema_version": current_version(conn),
        "schema": schema_fingerprint(conn),
        "tables": table_fingerprints(conn),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_on_lake(command: str) -> None:
    """Backups, restores and rollbacks are of the file; on DuckLake they are refused, in one line."""
    lake = lake_configured()
    if lake is not None:
        raise Refused(
            f"{command} is not supported on DuckLake ({lake}): every commit there is a DuckLake snapshot "
            "(ducklake_snapshots); back up its PostgreSQL catalog and its data path with their own tools"
        )


def backup(path: Path, out: Path | None = None, now: datetime | None = None) -> tuple[Path, dict]:
    """A consistent copy of the warehouse and its manifest, in a new (or empty) folder.

    The copy is taken while this process holds the file (no other process can write it), after a
    checkpoint, so the file alone is a complete database."""
    refuse_on_lake("phase8 backup")
    now = now or datetime.now(UTC)
    if out is not None and out.exists() and any(out.iterdir()):
        # Writing into it would replace what is there (an earlier backup) before the new copy is complete.
        raise Refused(f"{out}: the folder is not empty; a backup never overwrites another; name a new folder")
    with connect(path, check_schema=False, wait_s=30) as conn:
        facts = describe(conn)
        folder = out or path.parent / "backups" / f"{now:%Y%m%dT%H%M%S%fZ}-v{facts['schema_version']}"
        folder.mkdir(parents=True, exist_ok=True)
        conn.execute("CHECKPOINT")
        shutil.copyfile(path, folder / WAREHOUSE_FILE)
    manifest = {
        "apiVersion": "phase8/v1",
        "kind": "WarehouseManifest",
        "created_at": now.isoformat(),
        "source": str(path),
        "file_sha256": _sha256(folder / WAREHOUSE_FILE),
        **facts,
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return folder, manifest


def verify_backup(folder: Path) -> dict:
    """The backup's manifest, once the file's hash and its content match it; else ``BackupInvalid``."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupInvalid(f"{folder}: no readable {MANIFEST} ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tables"), dict):
        raise BackupInvalid(f"{folder / MANIFEST}: not a phase8 WarehouseManifest (a JSON object with tables)")
    missing = [k for k in ("created_at", "file_sha256", "schema_version", "schema") if k not in manifest]
    if missing:
        raise BackupInvalid(f"{folder / MANIFEST}: no {', '.join(missing)}")
    wrong = _ill_formed(manifest)
    if wrong:
        # Edited by hand or written by something else: compared, it would crash what reads every backup.
        raise BackupInvalid(f"{folder / MANIFEST}: not a phase8 WarehouseManifest: {wrong}")
    file = folder / WAREHOUSE_FILE
    if not file.is_file():
        raise BackupInvalid(f"{file}: missing")
    actual = _sha256(file)
    if actual != manifest.get("file_sha256"):
        raise BackupInvalid(
            f"{file}: sha256 {actual[:16]}… does not match the manifest's {str(manifest.get('file_sha256'))[:16]}… "
            "(truncated or corrupted); nothing was restored"
        )
    try:
        conn = duckdb.connect(str(file), read_only=True)
    except duckdb.Error as exc:
        raise BackupInvalid(f"{file}: not a readable DuckDB file ({exc})") from exc
    try:
        problems = differences(manifest, describe(conn))
    finally:
        conn.close()
    if problems:
        raise BackupInvalid(f"{file}: content differs from its manifest: {'; '.join(problems)}")
    return manifest


def _ill_formed(manifest: dict) -> str | None:
    """What in a manifest is not as ``backup`` writes it (field, expected), or None."""
    integer = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if not integer(manifest["schema_version"]) or manifest["schema_version"] < 0:
        return f"schema_version {manifest['schema_version']!r}, expected a whole number"
    for key in ("schema", "file_sha256", "created_at"):
        if not isinstance(manifest[key], str):
            return f"{key} {manifest[key]!r}, expected a string"
    try:
        created = datetime.fromisoformat(manifest["created_at"])
    except ValueError:
        return f"created_at {manifest['created_at']!r}, expected an ISO 8601 time"
    if created.tzinfo is None:
        return f"created_at {manifest['created_at']!r}, expected a time with its UTC offset"
    for table, facts in manifest["tables"].items():
        if not (isinstance(facts, dict) and integer(facts.get("rows")) and isinstance(facts.get("checksum"), str)):
            return f"tables.{table} {facts!r}, expected rows (a whole number) and checksum (a string)"
    return None


def differences(expected: dict, actual: dict, tables: list[str] | None = None) -> list[str]:
    """Every difference in schema version, schema and per-table counts and checksums."""
    out = []
    if expected["schema_version"] != actual["schema_version"]:
        out.append(f"schema version {actual['schema_version']}, expected {expected['schema_version']}")
    if expected["schema"] != actual["schema"]:
        out.append(f"schema fingerprint {actual['schema'][:12]}…, expected {expected['schema'][:12]}…")
    return out + table_differences(expected, actual, tables)


def table_differences(expected: dict, actual: dict, tables: list[str] | None = None) -> list[str]:
    """Every difference in per-table counts and checksums (of ``tables``, default every table of either)."""
    out = []
    names = tables if tables is not None else sorted(set(expected["tables"]) | set(actual["tables"]))
    for table in names:
        e, a = expected["tables"].get(table), actual["tables"].get(table)
        if e is None or a is None:
            out.append(f"table {table}: {'missing' if a is None else 'not expected'}")
        elif e["rows"] != a["rows"]:
            out.append(f"table {table}: {a['rows']} rows, expected {e['rows']} ({a['rows'] - e['rows']:+d})")
        elif e["checksum"] != a["checksum"]:
            out.append(
                f"table {table}: content checksum {a['checksum']}, expected {e['checksum']} (same {a['rows']} rows)"
            )
    return out


def restore(folder: Path, path: Path) -> dict:
    """Replace the warehouse with a verified backup (atomically; refused while another process holds it)."""
    refuse_on_lake("phase8 restore")
    manifest = verify_backup(folder)
    if path.exists():
        _readable(path, DEFAULT_LOCK_WAIT_S)  # only to prove nobody else holds the file right now
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".restore.", suffix=".duckdb")
    os.close(fd)
    try:
        shutil.copyfile(folder / WAREHOUSE_FILE, tmp)
        for wal in (Path(str(path) + ".wal"),):
            wal.unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


def backups(home: Path) -> list[Path]:
    """The backups under ``home/backups``, newest first by their manifests' ``created_at``, never by
    folder name: ``phase8 backup --out`` names a folder as it is told, and a ``pre-upgrade`` folder
    sorted before every timestamped one would make a rollback prove itself against an older backup
    (rows added since would go unchecked). A manifest without a readable time comes last."""
    folder = home / "backups"
    if not folder.is_dir():
        return []

    def created(p: Path) -> float:
        try:
            at = datetime.fromisoformat(json.loads((p / MANIFEST).read_text(encoding="utf-8"))["created_at"])
        except (OSError, ValueError, TypeError, KeyError):
            return float("-inf")
        return at.timestamp() if at.tzinfo is not None else float("-inf")

    return sorted(
        (p for p in folder.iterdir() if (p / MANIFEST).is_file()), key=lambda p: (created(p), p.name), reverse=True
    )


def expected_schema(version: int) -> str:
    """The schema this release builds at ``version`` (migrations applied to an empty database)."""
    conn = duckdb.connect(":memory:")
    try:
        migrate(conn, version)
        return schema_fingerprint(conn)
    finally:
        conn.close()


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def preflight(
    home: Path, now: datetime | None = None, max_backup_age: timedelta = DEFAULT_BACKUP_MAX_AGE
) -> list[Check]:
    """Is ``upgrade apply`` safe now? A checklist; every item says what it found."""
    now = now or datetime.now(UTC)
    path = home / WAREHOUSE_FILE
    checks: list[Check] = []
    lake = lake_configured()
    if lake is None and not path.exists():
        return [
            Check(
                "warehouse exists",
                False,
                f"{path}: no warehouse; the first phase8 gate creates it at the latest version",
            )
        ]
    try:
        version, schema_ok = _inspect(path, 0)
        checks.append(Check("no other process holds the warehouse", True, f"opened {location(home)}"))
    except WarehouseLocked as exc:
        return [Check("no other process holds the warehouse", False, str(exc))]
    except WarehouseError as exc:  # the lake's catalog or data path cannot be reached
        return [Check("warehouse reachable", False, str(exc))]
    if lake is not None and version == 0:
        return [Check("warehouse exists", False, f"{lake}: no tables; the first phase8 gate creates them")]
    latest = latest_version()
    pending = [f"{m.version:04d}_{m.name}" for m in migrations() if m.version > version]
    checks.append(Check("schema version", True, f"at {version}, this release needs {latest}"))
    checks.append(
        Check(
            "schema matches its recorded version",
            schema_ok,
            "yes"
            if schema_ok
            else f"the tables differ from what version {version} creates: restore a backup or roll back",
        )
    )
    checks.append(Check("pending migrations", True, ", ".join(pending) if pending else "none"))
    if lake is not None:
        checks.append(Check("backups", True, f"not of a lake: every commit to {lake} is a DuckLake snapshot"))
        checks.append(dagster_storage_check())
        return checks
    free, size = _space(path)
    checks.append(
        Check(
            "free disk >= 2x the warehouse",
            free >= 2 * size,
            f"{free / 1e6:,.0f} MB free, warehouse {size / 1e6:,.1f} MB",
        )
    )
    recent = None
    for folder in backups(home):
        try:
            manifest = verify_backup(folder)
        except BackupInvalid:
            continue
        created = datetime.fromisoformat(manifest["created_at"])
        if manifest["schema_version"] == version and now - created <= max_backup_age:
            recent = (folder, created)
            break
    checks.append(
        Check(
            f"a verified backup at version {version} younger than {format_duration(max_backup_age)}",
            recent is not None,
            f"{recent[0]} ({recent[1]:%Y-%m-%d %H:%M} UTC)"
            if recent
            else "none: run phase8 backup (apply takes one too)",
        )
    )
    checks.append(dagster_storage_check())
    return checks


def dagster_storage_check() -> Check:
    """Whether ``DAGSTER_HOME``'s instance storage is behind this Dagster (``dagster instance migrate``)."""
    if not os.environ.get("DAGSTER_HOME"):
        return Check("Dagster instance storage current", True, "DAGSTER_HOME not set: runs use temporary storage")
    try:
        import dagster as dg

        instance = dg.DagsterInstance.get()
        behind = []
        for name in ("run_storage", "event_log_storage", "schedule_storage"):
            storage = getattr(instance, name, None)
            version = getattr(storage, "alembic_version", None)
            if callable(version):
                db_rev, head = version()
                if db_rev != head:
                    behind.append(f"{name} at {db_rev}, head {head}")
        if behind:
            return Check(
                "Dagster instance storage current", False, "; ".join(behind) + ": run dagster instance migrate"
            )
        return Check("Dagster instance storage current", True, f"{os.environ['DAGSTER_HOME']}: at head")
    except Exception as exc:  # an instance we cannot open is itself a finding
        return Check("Dagster instance storage current", False, f"cannot check: {type(exc).__name__}: {exc}")


def _inspect(path: Path, wait_s: float) -> tuple[int, bool]:
    """The recorded schema version and whether the tables match it, read-only (nothing is written,
    and a file another process holds is ``WarehouseLocked`` after ``wait_s``)."""
    with connect(path, read_only=True, check_schema=False, wait_s=wait_s) as conn:
        version = current_version(conn)
        return version, version <= latest_version() and schema_fingerprint(conn) == expected_schema(version)


def _verified_backup(path: Path, progress) -> tuple[Path, dict]:
    """The first change's safety net: a backup of the warehouse as it is, verified against its manifest."""
    folder, manifest = backup(path)
    verify_backup(folder)
    progress(f"backup {folder} (version {manifest['schema_version']}, verified)")
    return folder, manifest


def _readable(path: Path, wait_s: float) -> bool:
    """Whether the file opens as a database; ``WarehouseLocked`` when another process holds it."""
    try:
        _inspect(path, wait_s)
    except WarehouseLocked:
        raise
    except (WarehouseError, duckdb.Error):
        return False
    return True


def _set_aside(path: Path, wait_s: float, progress) -> Path:
    """Before a restore replaces it: a verified backup of the warehouse, or, when the file is not a
    readable database (the usual reason to restore), a byte copy whose sha256 matches, with its
    write-ahead log (committed transactions not yet in the file, which the restore removes)."""
    if not _readable(path, wait_s):
        folder = path.parent / "backups" / f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-unreadable"
        folder.mkdir(parents=True)
        wal = Path(f"{path}.wal")
        for source in (path, wal) if wal.exists() else (path,):
            shutil.copyfile(source, folder / source.name)
            if _sha256(folder / source.name) != _sha256(source):
                raise Refused(f"{folder}: the copy of {source} differs from it; nothing was changed") from None
        progress(f"copied the unreadable warehouse{' and its WAL' if wal.exists() else ''} to {folder}")
        return folder
    return _verified_backup(path, progress)[0]


def _space(path: Path) -> tuple[int, int]:
    """Free bytes beside the warehouse, and the warehouse's size (with its WAL)."""
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(f"{WAREHOUSE_FILE}.wal"))
    return shutil.disk_usage(path.parent).free, size


def _disk_for(path: Path) -> None:
    free, size = _space(path)
    if free < 2 * size:
        raise Refused(f"{path.parent}: {free / 1e6:,.0f} MB free, the backup and the change need 2x the warehouse "
                      f"({size / 1e6:,.1f} MB); nothing was changed")  # fmt: skip


def apply(home: Path, progress=print, wait_s: float = DEFAULT_LOCK_WAIT_S) -> list[str]:
    """Preconditions, backup, every pending migration (own transaction, version recorded in it),
    validation; restores the backup on failure. On DuckLake: ``apply_on_lake``."""
    if lake_configured() is not None:
        return apply_on_lake(progress, wait_s)
    path = home / WAREHOUSE_FILE
    if not path.exists():
        raise Refused(f"{path}: no warehouse to upgrade; the first phase8 gate creates it at the latest version")
    with home_lock(home, wait_s, "phase8 upgrade apply"):
        version, schema_ok = _inspect(path, wait_s)
        if version > latest_version():
            raise Refused(
                f"{path}: schema version {version} is newer than this release ({latest_version()}); nothing was changed"
            )
        if not schema_ok:
            raise Refused(
                f"{path}: the tables differ from what version {version} creates (changed by hand?); restore a "
                "backup (phase8 rollback --backup PATH) before upgrading; nothing was changed"
            )
        if version == latest_version():
            return []
        _disk_for(path)
        folder, before = _verified_backup(path, progress)
        try:
            with connect(path, check_schema=False, wait_s=wait_s) as conn:
                steps = []
                for step in migrations()[current_version(conn) :]:
                    progress(f"applying {step.version:04d}_{step.name}")
                    steps += migrate(conn, step.version)
                    progress(f"applied {step.version:04d}_{step.name}")
                version = current_version(conn)
                progress("validating")
                if schema_fingerprint(conn) != expected_schema(version):
                    raise WarehouseError(f"after the upgrade the schema does not match what version {version} creates")
                # The migrations add tables; every table the warehouse had keeps every row, unchanged.
                changed = table_differences(before, describe(conn), _kept(before))
                if changed:
                    raise WarehouseError("the migrations changed existing data: " + "; ".join(changed))
        except Exception as exc:
            restore(folder, path)
            record_operation(path, "warehouse.upgrade", "failed", f"{exc}; backup {folder} restored")
            raise WarehouseError(f"upgrade failed ({exc}); the backup {folder} was restored") from exc
        record_operation(
            path, "warehouse.upgrade", "done", f"to version {version}: {', '.join(steps)}", backup=str(folder)
        )
    progress(f"at version {version}")
    return steps


AUDIT_VERSION = next(m.version for m in migrations() if m.name == "audit")


def record_operation(
    path: Path, kind: str, outcome: str, reason: str, wait_s: float = DEFAULT_LOCK_WAIT_S, **details
) -> None:
    """Record a warehouse operation in the audit trail (the table, or the trail carried in the home)."""
    from phase8_assets.shared.audit_events import AuditEvent, actor_from

    event = AuditEvent(kind, str(path), outcome, actor_from(os.environ), datetime.now(UTC), reason, details=details)
    try:
        audit.record_in_home(path, [event], wait_s)
    except audit.CarriedTrailDamaged as exc:  # what was done is done: say so, and why it is not in the trail
        raise audit.CarriedTrailDamaged(
            f"{kind} {outcome} ({reason}), but not recorded in the audit trail: {exc}"
        ) from exc


def _carry_trail(path: Path, wait_s: float, progress) -> bool:
    """Before the audit table goes (a rollback below it, a restore): the trail into the home.
    Whether there was a table to carry."""
    with connect(path, check_schema=False, wait_s=wait_s) as conn:
        if not audit.has_table(conn):
            return False
        count = audit.carry_out(conn, path.parent)
    progress(f"audit trail ({count} records) carried to {path.parent / audit.CARRIED}")
    return True


def _manifest_at(home: Path, version: int) -> tuple[Path, dict] | None:
    """The newest backup at ``version`` that verifies against its manifest."""
    for folder in backups(home):
        try:
            manifest = verify_backup(folder)
        except BackupInvalid:
            continue
        if manifest["schema_version"] == version:
            return folder, manifest
    return None


def apply_on_lake(progress=print, wait_s: float = DEFAULT_LOCK_WAIT_S) -> list[str]:
    """The same pending migrations on DuckLake, each in its own transaction under the lake's write
    lock, then the same schema validation. No file backup: the lake keeps the snapshot before the
    upgrade (reported), and its tables can be read as they were there (``AT (VERSION => …)``)."""
    where = location()
    with connect(check_schema=False, wait_s=wait_s) as conn:
        version = current_version(conn)
        if version > latest_version():
            raise Refused(f"{where}: schema version {version} is newer than this release ({latest_version()})")
        if version == latest_version():
            return []
        snapshot = conn.execute("SELECT max(snapshot_id) FROM ducklake_snapshots(current_database())").fetchone()[0]
        progress(f"DuckLake snapshot before the upgrade: {snapshot}")
        steps = []
        for step in migrations()[version:]:
            progress(f"applying {step.version:04d}_{step.name}")
            steps += migrate(conn, step.version)
        progress("validating")
        if schema_fingerprint(conn) != expected_schema(current_version(conn)):
            raise WarehouseError(f"{where}: the schema after the upgrade differs from what this release expects")
    return steps


def _kept(manifest: dict) -> list[str]:
    """The tables of ``manifest`` whose rows a migration must leave alone (all but the version record)."""
    return sorted(t for t in manifest["tables"] if t != "schema_version")


# How normal gate runs change rows already stored, besides adding rows. Every other table only gains
# rows, so a row of an older backup missing from it, or changed, is a loss.
# Updated or replaced under the same natural key: a row of an older backup must still have its key.
UPDATED_BY_KEY = ("cost_files", "evidence_versions", "gate_run_results", "gate_runs", "slo_snapshots")
# Removed: a root's change points and cost attribution are recomputed whole, a re-delivered cost
# export replaces its line items. Only the rollback's own before/after proof covers these.
RECOMPUTED = ("cost_attribution", "cost_line_items", "perf_change_points")


def _rows_gone(conn: duckdb.DuckDBPyConnection, folder: Path, manifest: dict) -> list[str]:
    """The rows of the backup in ``folder`` that the warehouse no longer holds as they were, per
    table: whole rows (a multiset), or for ``UPDATED_BY_KEY`` tables their natural keys. Rows written
    since the backup are not a difference; the ``RECOMPUTED`` tables are not compared."""
    from phase8_assets.warehouse.lake import table_keys

    keys = table_keys()
    here = set(_tables(conn))
    file = str(folder / WAREHOUSE_FILE).replace("'", "''")
    conn.execute(f"ATTACH '{file}' AS pre (READ_ONLY)")
    try:
        out = []
        for table in sorted(set(manifest["tables"]) - set(audit.AUDIT_TABLES) - set(RECOMPUTED)):
            expected = manifest["tables"][table]["rows"]
            if table not in here:
                out.append(f"table {table}: missing ({expected} rows at {manifest['created_at']})")
                continue
            if table in UPDATED_BY_KEY:
                same = " AND ".join(f'n."{k}" IS NOT DISTINCT FROM b."{k}"' for k in keys[table])
                gone = (f'SELECT count(*) FROM pre.main."{table}" b '
                        f'WHERE NOT EXISTS (SELECT 1 FROM main."{table}" n WHERE {same})')  # fmt: skip
            else:
                gone = (
                    f'SELECT count(*) FROM (SELECT * FROM pre.main."{table}" EXCEPT ALL SELECT * FROM main."{table}")'
                )
            count = conn.execute(gone).fetchone()[0]
            if count:
                out.append(
                    f"table {table}: {count} of its {expected} rows at {manifest['created_at']} are gone or changed"
                )
        return out
    finally:
        conn.execute("DETACH pre")


@dataclass
class RolledBack:
    """What a rollback did: its steps, the safety backup taken first, the rows written since the
    backup it was proved against (kept, per table), and the rows the older schema has no table for
    (per table: still in the safety backup, not in the warehouse)."""

    steps: list[str]
    safety: Path | None
    added: dict[str, int]
    set_aside: dict[str, int]


def rollback(
    home: Path,
    to: int | None = None,
    backup_folder: Path | None = None,
    progress=print,
    wait_s: float = DEFAULT_LOCK_WAIT_S,
) -> RolledBack:
    """Down-migrate to ``to`` (or restore ``backup_folder``), then prove it.

    A rollback by down-migrations is all or nothing: every step runs in one transaction, and when
    one fails (or the rollback is interrupted) the warehouse is back exactly as it was, version and
    data (restored from the safety backup if anything differs), and ``RollbackFailed`` names the
    step. Its proof (``IntegrityError`` on any difference): every table the older schema keeps is
    identical before and after the down-migrations (else the rollback is undone too), and still holds
    every row of the last verified backup taken at ``to`` (before the upgrade): as it was, or by its
    natural key in the tables normal runs update in place (``_rows_gone``). Rows
    written since that backup stay; rows of tables the older schema has not are named and stay in the
    safety backup. A restore (``backup_folder``) must equal its backup's manifest.

    Refused (``Refused``, ``BackupInvalid``, ``WarehouseLocked``), with the warehouse untouched, when
    the version is not below the current one, no verified manifest exists at it, the schema has
    drifted, the backup does not verify or is from a newer schema than this release's, or another
    process holds the home."""
    refuse_on_lake("phase8 rollback")
    path = home / WAREHOUSE_FILE
    if (to is None) == (backup_folder is None):
        raise Refused("rollback needs exactly one of --to VERSION or --backup PATH")
    with home_lock(home, wait_s, "phase8 rollback"):
        if backup_folder is not None:
            return _restore_backup(path, backup_folder, progress, wait_s)
        return _down_to(home, to, progress, wait_s)


def _restore_backup(path: Path, backup_folder: Path, progress, wait_s: float) -> RolledBack:
    manifest = verify_backup(backup_folder)
    if manifest["schema_version"] > latest_version():
        # This release would refuse the restored warehouse (phase8 gate, upgrade apply): nothing it can run.
        raise Refused(
            f"{backup_folder}: the backup is at schema version {manifest['schema_version']}, newer than this "
            f"release's {latest_version()}; restore it with the release that wrote it; nothing was changed"
        )
    safety = None
    carried = False
    details: dict = {}
    if path.exists():
        _disk_for(path)
        safety = _set_aside(path, wait_s, progress)
        if _readable(path, wait_s):  # an unreadable file's trail is only in its byte copy
            carried = _carry_trail(path, wait_s, progress)
    manifest = restore(backup_folder, path)
    progress(f"restored {backup_folder} (version {manifest['schema_version']})")
    steps = [f"restore {backup_folder}"]
    if not carried and not (path.parent / audit.CARRIED).exists():
        # The trail now is the backup's: its head, older than the one recorded, is the head from
        # here on; the restore's record names the head that was recorded before.
        head_reset = audit.reset_head(path.parent)
        if head_reset:
            progress(f"audit trail not carried (no readable warehouse before the restore): the "
                     f"recorded head {head_reset} is reset to the backup's")  # fmt: skip
            details["audit_head_reset"] = head_reset
    with connect(path, check_schema=False, wait_s=wait_s) as conn:
        actual = describe(conn)
    # The audit trail is carried across the restore, not restored to the manifest: its hash chain proves it.
    names = sorted((set(manifest["tables"]) | set(actual["tables"])) - set(audit.AUDIT_TABLES))
    problems = differences(manifest, actual, names)
    target = f"restore {backup_folder}"
    if problems:
        undo = f"; the warehouse before the restore is in {safety}" if safety else ""
        record_operation(path, "warehouse.restore", "integrity failed", f"{target}: " + "; ".join(problems), **details)
        raise IntegrityError("post-rollback integrity check FAILED: " + "; ".join(problems) + undo)
    record_operation(
        path,
        "warehouse.restore",
        "identical",
        f"{target}: {', '.join(steps)}",
        safety_backup=str(safety) if safety else None,
        **details,
    )
    progress(
        f"post-rollback integrity: {len(actual['tables'])} tables, "
        f"{sum(t['rows'] for t in actual['tables'].values())} rows, identical to the manifest of {manifest['created_at']}"
        + (f"; the warehouse as it was before the restore is in {safety}" if safety else "")
    )
    return RolledBack(steps, safety, {}, {})


class RollbackFailed(WarehouseError):
    """A rollback step failed or was interrupted; the warehouse is back as it was before the rollback.
    ``failed_step`` names the migration step that failed (``down 0009_isolation``), when one did."""

    def __init__(self, message: str, failed_step: str | None = None) -> None:
        super().__init__(message)
        self.failed_step = failed_step


def _down_to(home: Path, to: int, progress, wait_s: float) -> RolledBack:
    path = home / WAREHOUSE_FILE
    if not path.exists():
        raise Refused(f"{path}: no warehouse to roll back")
    version, schema_ok = _inspect(path, wait_s)
    if not 0 <= to < version:
        raise Refused(
            f"{path}: cannot roll back to version {to}: the warehouse is at {version} (a rollback goes down "
            f"to 0..{version - 1}); nothing was changed"
        )
    if not schema_ok:
        raise Refused(
            f"{path}: the tables differ from what version {version} creates; restore a backup instead "
            "(phase8 rollback --backup PATH); nothing was changed"
        )
    found = _manifest_at(home, to)
    if found is None:
        raise Refused(
            f"{home / 'backups'}: no verified backup manifest at version {to} to prove the rollback "
            f"against (phase8 backup takes one; upgrade apply takes one before it starts); nothing was changed"
        )
    pre_folder, pre = found
    _disk_for(path)
    safety, before = _verified_backup(path, progress)
    target = f"down to version {to}"
    try:
        if to < AUDIT_VERSION:
            _carry_trail(path, wait_s, progress)
        with connect(path, check_schema=False, wait_s=wait_s) as conn:
            with transaction(conn):  # all steps or none
                steps = migrate(conn, to, atomic=True)
            actual = describe(conn)
            # The rollback itself: every table the older schema keeps is as it was before it.
            changed = table_differences(before, actual, _kept(actual))
            if actual["schema"] != expected_schema(to):
                changed.insert(0, f"the schema differs from what version {to} creates")
            if changed:
                raise IntegrityError("the down-migrations changed what they keep: " + "; ".join(changed))
            gone = differences(pre, actual, []) + _rows_gone(conn, pre_folder, pre)  # schema, then rows
    except BaseException as exc:  # an error, a failed proof of the step itself, SIGINT/SIGTERM: undo
        where = _undo(path, safety, before, wait_s)
        what = str(exc) if isinstance(exc, WarehouseError) else f"{type(exc).__name__}: {exc}"
        record_operation(path, "warehouse.rollback", "failed", f"{target}: {what}; {where}", safety_backup=str(safety))
        raise RollbackFailed(
            f"rollback to version {to} FAILED: {what}; {where}; nothing was rolled back",
            failed_step=exc.step if isinstance(exc, MigrationFailed) else None,
        ) from exc
    for step in steps:
        progress(step)
    added = {
        t: actual["tables"][t]["rows"] - pre["tables"][t]["rows"]
        for t in sorted(set(_kept(actual)) & set(pre["tables"]) - set(audit.AUDIT_TABLES) - set(RECOMPUTED))
        if actual["tables"][t]["rows"] != pre["tables"][t]["rows"]
    }
    set_aside = {
        t: before["tables"][t]["rows"]
        for t in sorted(set(before["tables"]) - set(actual["tables"]) - set(audit.AUDIT_TABLES))
        if before["tables"][t]["rows"]
    }
    for table, rows in set_aside.items():
        progress(
            f"set aside: {table} ({rows} rows) has no table at version {to}; its rows are not in the warehouse "
            f"now, they are kept in the backup {safety}"
        )
    if gone:
        record_operation(path, "warehouse.rollback", "integrity failed", f"{target}: " + "; ".join(gone),
                         safety_backup=str(safety), proved_against=str(pre_folder))  # fmt: skip
        raise IntegrityError(
            f"post-rollback integrity check FAILED against the backup {pre_folder}: "
            + "; ".join(gone)
            + f"; the warehouse is at version {to}; the warehouse before the rollback is in {safety}"
        )
    record_operation(
        path, "warehouse.rollback", "verified", f"{target}: {', '.join(steps)}",
        safety_backup=str(safety), proved_against=str(pre_folder), rows_since=added, set_aside=set_aside,
    )  # fmt: skip
    since = ", ".join(f"{t} {n:+d}" for t, n in sorted(added.items()))
    progress(
        f"post-rollback integrity: {len(_kept(actual))} tables unchanged by the down-migrations; every row of the "
        f"backup {pre_folder} ({pre['created_at']}) still there"
        + (f"; rows written since kept: {since}" if since else "; no rows written since")
        + (f"; not compared row by row (recomputed by every run): {', '.join(RECOMPUTED)}")
    )
    return RolledBack(steps, safety, added, set_aside)


def _undo(path: Path, safety: Path, before: dict, wait_s: float) -> str:
    """Put the warehouse back as the safety backup shows it (the transaction rolled back already, when
    it got that far; else restore the backup); says where things are."""
    try:
        with connect(path, check_schema=False, wait_s=wait_s) as conn:
            same = not differences(before, describe(conn))
    except (WarehouseError, duckdb.Error):
        same = False
    if not same:
        restore(safety, path)
    return (
        f"the warehouse is back at version {before['schema_version']} as before"
        + ("" if same else f" (restored from {safety})")
        + f"; the backup taken before the rollback is {safety}"
    )
