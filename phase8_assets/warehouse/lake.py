"""The shared warehouse: DuckLake, its catalog in PostgreSQL and its data as Parquet (on S3).

Selected by ``PHASE8_WAREHOUSE=ducklake://USER[:PASSWORD]@HOST:PORT/DBNAME?data_path=s3://BUCKET/PREFIX/``
(the default stays the DuckDB file under ``PHASE8_HOME``). Many processes may open it at once; the
connection helper (``connect``) opens an in-memory DuckDB, loads the ``ducklake``, ``httpfs`` and
``postgres_scanner`` extensions from their PyPI packages (signed binaries for the pinned DuckDB),
attaches the lake and makes it the default catalog, so every query and migration runs unchanged
apart from what DuckLake does not have:

- no PRIMARY KEY / UNIQUE / CHECK constraints and no indexes: the migrations' DDL is applied without
  them (``lake_ddl``), and the natural keys they declare (``table_keys``) drive the writes instead of
  ``ON CONFLICT`` (``phase8_assets.warehouse.insert_columns``);
- commits that touch a table another transaction deleted from or updated conflict: every write
  transaction holds one PostgreSQL advisory lock on the catalog database for its duration (a
  killed process's session ends and its lock goes with it). Reading, parsing and evaluating
  evidence run in parallel; only the short write transactions take turns.

S3 settings come from the standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``); the catalog password from the URL or
``PGPASSWORD``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb

ALIAS = "phase8_lake"
ENV = "PHASE8_WAREHOUSE"
EXTENSIONS = ("ducklake", "httpfs", "postgres_scanner")
WRITE_LOCK_KEY = 0x7068_6173_6538  # one advisory lock per catalog database: "phase8"
ATTACH_WAIT_S = 120.0


class LakeError(RuntimeError):
    """The lake setting or the lake itself cannot be used; the message says which part."""


@dataclass(frozen=True)
class Lake:
    host: str
    port: int
    user: str
    password: str | None
    dbname: str
    data_path: str

    def libpq(self) -> str:
        parts = [f"host={self.host}", f"port={self.port}", f"user={self.user}", f"dbname={self.dbname}"]
        if self.password:
            parts.append(f"password={self.password}")
        return " ".join(parts)

    def __str__(self) -> str:  # never the password
        return f"ducklake://{self.user}@{self.host}:{self.port}/{self.dbname} (data {self.data_path})"


def configured() -> Lake | None:
    """The lake named by ``PHASE8_WAREHOUSE``; ``None`` for the embedded file (unset or empty)."""
    value = os.environ.get(ENV, "").strip()
    return parse(value) if value else None


def parse(url: str) -> Lake:
    parts = urlsplit(url)
    if parts.scheme != "ducklake":
        raise LakeError(f"{ENV}: expected ducklake://USER@HOST:PORT/DBNAME?data_path=…, got scheme {parts.scheme!r}")
    data_path = (parse_qs(parts.query).get("data_path") or [""])[0]
    dbname = parts.path.lstrip("/")
    missing = [name for name, v in (("host", parts.hostname), ("DBNAME", dbname), ("data_path", data_path)) if not v]
    if missing:
        raise LakeError(f"{ENV}: {missing[0]}: required in ducklake://USER@HOST:PORT/DBNAME?data_path=…")
    if not data_path.endswith("/"):
        data_path += "/"
    return Lake(
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else os.environ.get("PGPASSWORD") or None,
        dbname=dbname,
        data_path=data_path,
    )


def extension_path(name: str) -> str:
    """The signed binary the ``duckdb-extension-<name>`` package ships for this DuckDB version."""
    import importlib.util

    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    version = duckdb.__version__
    if spec is None or not spec.submodule_search_locations:
        raise LakeError(f"DuckDB extension {name}: install duckdb-extension-{name.replace('_', '-')}=={version}")
    path = os.path.join(spec.submodule_search_locations[0], "extensions", f"v{version}", f"{name}.duckdb_extension")
    if not os.path.exists(path):
        raise LakeError(f"DuckDB extension {name}: no binary for DuckDB {version} at {path} (pin both to one version)")
    return path


def _s3_secret(conn: duckdb.DuckDBPyConnection) -> None:
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise LakeError("data_path on S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required")
    options = {
        "KEY_ID": key,
        "SECRET": secret,
        "REGION": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    }
    if os.environ.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(ENDPOINT=parts.netloc, URL_STYLE="path", USE_SSL=parts.scheme == "https")
    body = ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {str(v).lower()}" for k, v in options.items())
    conn.execute(f"CREATE OR REPLACE SECRET phase8_s3 (TYPE s3, {body})")


def open_lake(lake: Lake, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection of this process's DuckDB with the lake attached, the lake its default catalog.

    Loading the three signed extensions costs ~0.7 s, attaching the catalog more: a process does
    both once and hands out a connection (``cursor``) of that database each time; each connection
    has its own transactions. ``read_only`` callers never write (only writers take the lock)."""
    conn = _database(lake, os.getpid()).cursor()
    conn.execute(f"USE {ALIAS}")
    return conn


@cache
def _database(lake: Lake, pid: int) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(config={"allow_unsigned_extensions": False})
    try:
        for name in EXTENSIONS:
            conn.execute(f"LOAD '{extension_path(name)}'")
        if lake.data_path.startswith("s3://"):
            _s3_secret(conn)
        # The first ATTACH creates the catalog's tables: two processes doing it at once collide in
        # PostgreSQL ("duplicate key … pg_type"), so attaching holds the write lock too.
        lock = WriteLock(lake, ATTACH_WAIT_S)
        lock.acquire()
        try:
            conn.execute(f"ATTACH 'ducklake:postgres:{lake.libpq()}' AS {ALIAS} (DATA_PATH '{lake.data_path}')")
        finally:
            lock.release()
            lock.close()
    except duckdb.Error as exc:
        conn.close()
        raise LakeError(f"{lake}: cannot open the DuckLake warehouse: {_without_password(str(exc), lake)}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _without_password(message: str, lake: Lake) -> str:
    return message.replace(lake.password, "***") if lake.password else message


def is_lake(conn: duckdb.DuckDBPyConnection) -> bool:
    return conn.execute("SELECT current_database()").fetchone()[0] == ALIAS


class WriteLock:
    """The lake's write lock: a PostgreSQL session advisory lock on the catalog database."""

    def __init__(self, lake: Lake, wait_s: float):
        self.lake, self.wait_s, self._session = lake, wait_s, None

    def acquire(self) -> None:
        import psycopg

        if self._session is None:
            self._session = psycopg.connect(self.lake.libpq(), autocommit=True, connect_timeout=10)
        self._session.execute(f"SET lock_timeout = {int(self.wait_s * 1000)}")
        try:
            self._session.execute("SELECT pg_advisory_lock(%s)", [WRITE_LOCK_KEY])
        except psycopg.errors.LockNotAvailable as exc:
            from phase8_assets.warehouse import WarehouseLocked

            raise WarehouseLocked(
                f"{self.lake}: another writer held the warehouse's write lock for {self.wait_s:g} s; retry later"
            ) from exc

    def release(self) -> None:
        if self._session is not None:
            self._session.execute("SELECT pg_advisory_unlock(%s)", [WRITE_LOCK_KEY])

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


_CONSTRAINT = re.compile(r",\s*(PRIMARY KEY|UNIQUE)\s*\([^)]*\)", re.IGNORECASE)
_INLINE_KEY = re.compile(r"\s+PRIMARY KEY\b", re.IGNORECASE)
_INLINE_UNIQUE = re.compile(r"\s+UNIQUE\b", re.IGNORECASE)
_INDEX = re.compile(r"CREATE\s+(UNIQUE\s+)?INDEX[^;]*;", re.IGNORECASE)


def _strip_checks(sql: str) -> str:
    """``CHECK (…)`` column constraints removed (balanced parentheses)."""
    out, i = [], 0
    for match in re.finditer(r"\s+CHECK\s*\(", sql, re.IGNORECASE):
        if match.start() < i:
            continue
        out.append(sql[i : match.start()])
        depth, j = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[j], 0)
            j += 1
        i = j
    out.append(sql[i:])
    return "".join(out)


def lake_ddl(sql: str) -> str:
    """A migration as DuckLake can run it: without key, unique and check constraints and indexes
    (DuckLake has none; the keys live on in ``table_keys`` and the writes that use them). A key
    column stays NOT NULL, as a primary key makes it."""
    sql = _CONSTRAINT.sub("", _strip_checks(re.sub(r"--[^\n]*", "", sql)))
    return _INDEX.sub("", _INLINE_UNIQUE.sub("", _INLINE_KEY.sub(" NOT NULL", sql)))


@cache
def table_keys() -> dict[str, tuple[str, ...]]:
    """Every table's natural key as the migrations declare it (``PRIMARY KEY``)."""
    from phase8_assets.warehouse import migrations

    keys: dict[str, tuple[str, ...]] = {"schema_version": ("version",)}
    for step in migrations():
        sql = re.sub(r"--[^\n]*", "", step.up)
        for match in re.finditer(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)\s*\((.*?)\n\);", sql, re.S | re.I):
            table, body = match.group(1), match.group(2)
            declared = re.search(r"PRIMARY KEY\s*\(([^)]*)\)", body, re.I)
            inline = re.search(r"^\s*(\w+)\s+[^,\n]*\bPRIMARY KEY\b", body, re.I | re.M)
            if declared:
                keys[table] = tuple(c.strip() for c in declared.group(1).split(","))
            elif inline:
                keys[table] = (inline.group(1),)
    return keys
