"""The warehouse: one DuckDB file under ``PHASE8_HOME``, created and upgraded by numbered migrations;
or, with ``PHASE8_WAREHOUSE=ducklake://…``, a DuckLake many processes share (``lake.py``), behind the
same migrations and this same connection helper.

``connect`` is the one connection helper. While one process holds the file read-write no other
process can open it at all, so connections are short and a locked file is retried for a bounded
time, then reported as ``WarehouseLocked``. A fresh file is created at the latest schema; an
older one is refused (``WarehouseNeedsUpgrade``) until ``phase8 upgrade apply`` runs.

``home_lock`` lets one writing command (``phase8 gate``, upgrade, rollback) run per home at a time.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb

from phase8_assets.shared.processes import ProcessIdentity
from phase8_assets.shared.reports import os_error_text

DEFAULT_LOCK_WAIT_S = 30.0
WAREHOUSE_FILE = "warehouse.duckdb"
LOCK_FILE = "gate.lock"


class WarehouseError(RuntimeError):
    """The warehouse cannot be used as it is; the message says what to do."""


class WarehouseLocked(WarehouseError):
    pass


class WarehouseNeedsUpgrade(WarehouseError):
    pass


class MigrationFailed(WarehouseError):
    """One migration step's SQL failed; ``step`` names it (``down 0009_isolation``)."""

    def __init__(self, step: str, cause: Exception) -> None:
        super().__init__(f"{step} failed: {cause}")
        self.step = step


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str


def phase8_home() -> Path:
    return Path(os.environ.get("PHASE8_HOME") or ".phase8").resolve()


def warehouse_path(home: str | os.PathLike | None = None) -> Path:
    return (Path(home).resolve() if home else phase8_home()) / WAREHOUSE_FILE


@cache
def migrations() -> tuple[Migration, ...]:
    folder = resources.files("phase8_assets.warehouse") / "migrations"
    found = {}
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.up\.sql$", entry.name)
        if match:
            version, name = int(match.group(1)), match.group(2)
            down = folder / f"{match.group(1)}_{name}.down.sql"
            found[version] = Migration(version, name, entry.read_text(), down.read_text())
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise WarehouseError(f"migrations are not numbered 1..N without gaps: {versions}")
    return tuple(found[v] for v in versions)


def latest_version() -> int:
    return len(migrations())


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    # duckdb_tables() is what information_schema.tables lists tables from, without the view's
    # unions and casts: a fifth of the time, and every connection asks this.
    exists = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version'").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def _user_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def migrate(conn: duckdb.DuckDBPyConnection, target: int | None = None, *, atomic: bool = False) -> list[str]:
    """Move the schema up or down to ``target`` (default: latest), one transaction per step, or
    (``atomic``) inside the caller's one transaction."""
    target = latest_version() if target is None else target
    with _OPEN_LOCK:
        _CHECKED.clear()  # a version checked before no longer says anything
    if not 0 <= target <= latest_version():
        raise WarehouseError(f"no schema version {target}; this release knows 0..{latest_version()}")
    from phase8_assets.warehouse.lake import is_lake, lake_ddl

    ddl = lake_ddl if is_lake(conn) else (lambda sql: sql)
    conn.execute(
        ddl(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
            "applied_at TIMESTAMP NOT NULL)"
        )
    )
    done = []
    version = current_version(conn)
    steps = migrations()
    while version != target:
        up = target > version
        step = steps[version] if up else steps[version - 1]
        name = f"{'up' if up else 'down'} {step.version:04d}_{step.name}"
        try:
            with nullcontext(conn) if atomic else transaction(conn):
                if up:
                    conn.execute(ddl(step.up))
                    conn.execute(
                        "INSERT INTO schema_version VALUES (?, ?, ?)",
                        [step.version, step.name, datetime.now(UTC).replace(tzinfo=None)],
                    )
                else:
                    conn.execute(ddl(step.down))
                    conn.execute("DELETE FROM schema_version WHERE version = ?", [step.version])
        except duckdb.Error as exc:
            raise MigrationFailed(name, exc) from exc
        version = step.version if up else step.version - 1
        done.append(name)
    return done


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction around the block: committed when it ends, rolled back when it (or the
    commit) fails, and the error raised again. On DuckLake the block holds the lake's write lock."""
    lock = _WRITE_LOCKS.get(id(conn))
    if lock is not None:
        lock.acquire()
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield conn
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
    finally:
        if lock is not None:
            lock.release()


_WRITE_LOCKS: dict[int, object] = {}  # id(connection) -> lake.WriteLock, while a lake connection is open


def lake_configured():
    """The DuckLake warehouse ``PHASE8_WAREHOUSE`` names (``lake.Lake``), or ``None`` for the file."""
    from phase8_assets.warehouse.lake import LakeError, configured

    try:
        return configured()
    except LakeError as exc:
        raise WarehouseError(str(exc)) from exc


def location(home: str | os.PathLike | None = None) -> str:
    """Where the warehouse is: the DuckLake URL (no password) or the file's path."""
    lake = lake_configured()
    return str(lake) if lake else str(warehouse_path(home))


def present(home: str | os.PathLike | None = None) -> bool:
    """Whether there is a warehouse to open: the lake when one is configured (whether it can be
    reached, opening it says), else the file in ``home``."""
    return lake_configured() is not None or warehouse_path(home).exists()


def _open(path: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            if "lock" not in message.lower():
                raise WarehouseError(f"{path}: cannot open the warehouse: {message}") from exc
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", message)
                who = f" by process {holder.group(1)}" if holder else " by another process"
                raise WarehouseLocked(
                    f"{path}: the warehouse is locked{who} (waited {wait_s:g} s); "
                    "another phase8 run or Dagster step is writing; retry when it has finished"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _create(path: Path) -> None:
    """A fresh warehouse at the latest schema, built beside ``path`` and linked into place only when
    complete: a run killed while creating it leaves no file at ``path``, never a half-written one
    (DuckDB writes the file's header after creating it). A file another process linked first wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    tmp.unlink(missing_ok=True)
    conn = duckdb.connect(str(tmp))
    try:
        with transaction(conn):
            migrate(conn, atomic=True)
        conn.execute("CHECKPOINT")
    finally:
        conn.close()
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def connect(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    wait_s: float = DEFAULT_LOCK_WAIT_S,
    check_schema: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse briefly. A fresh file is created at the latest schema version. With
    ``PHASE8_WAREHOUSE=ducklake://…`` the lake is opened instead (``path`` then only names the home)."""
    lake = lake_configured()
    if lake is not None:
        with _connect_lake(lake, read_only, wait_s, check_schema) as conn:
            yield conn
        return
    path = Path(path) if path else warehouse_path()
    if read_only and not path.exists():
        raise WarehouseError(f"{path}: no warehouse yet (run `phase8 gate` first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not read_only and check_schema and not path.exists():
        _create(path)
    conn = _open(path, read_only, wait_s)
    key = str(path.resolve())
    with _OPEN_LOCK:
        _OPEN[key] += 1
    try:
        conn.execute("SET TimeZone = 'UTC'")  # timestamps without a zone are UTC everywhere in phase8
        if check_schema and key not in _CHECKED:
            version = current_version(conn)
            if version == 0 and not read_only and not _user_tables(conn):
                with transaction(conn):  # all or nothing: a killed first run leaves a file still fresh
                    migrate(conn, atomic=True)
            else:
                _check_version(version, path)
            with _OPEN_LOCK:
                _CHECKED.add(key)
        yield conn
    finally:
        conn.close()
        with _OPEN_LOCK:
            _OPEN[key] -= 1
            if not _OPEN[key]:
                del _OPEN[key]
                _CHECKED.discard(key)


# While this process has a warehouse file open, no other process can write it (DuckDB locks the
# file), so its schema version, once checked, holds until the last connection here closes or a
# migration runs here: ``phase8 gate`` holds the file open across its run and each of its steps'
# connections skips the check.
_OPEN: Counter[str] = Counter()  # connections this process has open, by warehouse file
_CHECKED: set[str] = set()  # files open here whose schema version was checked while they stayed open
_OPEN_LOCK = threading.Lock()


def _check_version(version: int, where: object) -> None:
    """A warehouse at another schema version than this release's is an error that says what to run."""
    if version < latest_version():
        raise WarehouseNeedsUpgrade(
            f"{where}: the warehouse is at schema version {version}, this release needs "
            f"{latest_version()}; run `phase8 upgrade apply` (operators decide when)"
        )
    if version > latest_version():
        raise WarehouseError(
            f"{where}: the warehouse is at schema version {version}, newer than this release "
            f"({latest_version()}); use the release that wrote it or `phase8 rollback`"
        )


@contextmanager
def _connect_lake(lake, read_only: bool, wait_s: float, check_schema: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """The DuckLake warehouse: created at the latest schema by the first writer (under the write
    lock, so two first runs create it once), otherwise held to the schema version like the file."""
    from phase8_assets.warehouse.lake import LakeError, WriteLock, open_lake

    try:
        conn = open_lake(lake, read_only)
    except LakeError as exc:
        raise WarehouseError(str(exc)) from exc
    lock = None if read_only else WriteLock(lake, wait_s)
    if lock is not None:
        _WRITE_LOCKS[id(conn)] = lock
    try:
        conn.execute("SET TimeZone = 'UTC'")
        if check_schema:
            try:  # one query: every statement on the lake reads the catalog's latest snapshot first
                version = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            except duckdb.CatalogException:
                version = 0
            if version == 0 and not read_only and not _user_tables(conn):
                with transaction(conn):  # migrate re-reads the version inside, after the lock
                    migrate(conn, atomic=True)
                version = current_version(conn)
            if version != latest_version():
                _check_version(version, lake)
        yield conn
    finally:
        _WRITE_LOCKS.pop(id(conn), None)
        if lock is not None:
            lock.close()
        conn.close()


@contextmanager
def home_lock(home: Path, wait_s: float, command: str) -> Iterator[None]:
    """Run the block as the one writing ``command`` on ``home``; a second one waits ``wait_s`` (in
    short sleeps a signal ends) and then gives up naming the holder.

    The lock is the kernel's (``flock``): it goes with its process, so a killed run never leaves it
    behind. The file names the holder (command and process) for the message of whoever waits."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        fh = open(home / LOCK_FILE, "a+")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise WarehouseError(
            f"{home}: cannot use it as PHASE8_HOME: {os_error_text(exc, home)}; "
            "--home (or PHASE8_HOME) must be a folder this user can create and write"
        ) from None
    with fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(
                        f"{home}: {_holder(fh)} is running on this PHASE8_HOME (waited {wait_s:g} s); "
                        "retry when it has finished, or use a separate PHASE8_HOME"
                    ) from None
                time.sleep(0.1)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"command": command, "process": ProcessIdentity.current().token()}) + "\n")
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _holder(fh) -> str:
    fh.seek(0)
    try:
        holder = json.loads(fh.read())
    except ValueError:
        return "another phase8 command"
    process = ProcessIdentity.parse(holder.get("process"))
    return f"another `{holder.get('command')}`" + (f" ({process})" if process else "")
