"""The DuckLake warehouse (catalog in a real PostgreSQL, data as Parquet on moto's S3 server) behind
the same migrations and connection helper as the embedded file."""

import json
import subprocess
import sys
import uuid

import duckdb
import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.warehouse import connect, current_version, latest_version, warehouse_path
from phase8_assets.warehouse.lake import extension_path, lake_ddl, table_keys
from phase8_assets.warehouse.operations import schema_fingerprint
from phase8_assets.warehouse.store import table_counts
from phase8_assets_tests.conftest import SCENARIOS, env_without_pytest, gate_report

ROOTS = (SCENARIOS / "perf-regression", SCENARIOS / "slo-fast-burn")


def _new_lake(postgres, s3_endpoint) -> dict:
    """Settings of a fresh, empty DuckLake: its own catalog database and its own S3 bucket."""
    import boto3
    import psycopg

    name = f"lake_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {name}")
    boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
    ).create_bucket(Bucket=name.replace("_", "-"))
    return {
        "PHASE8_WAREHOUSE": f"ducklake://{postgres.superuser}@{postgres.host}:{postgres.port}/{name}"
        f"?data_path=s3://{name.replace('_', '-')}/warehouse",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="module")
def lake_env(postgres, s3_endpoint):
    return _new_lake(postgres, s3_endpoint)


@pytest.fixture(scope="module")
def parallel_on_lake(postgres, s3_endpoint, tmp_path_factory):
    """``phase8 gate`` on two roots in two processes at the same time, as two CI jobs run it (each its
    own home and Dagster instance), both writing to one new lake (so both also race to create it):
    (reports, exit codes, the lake's settings)."""
    lake_env = _new_lake(postgres, s3_endpoint)
    base = tmp_path_factory.mktemp("parallel")
    env = {**env_without_pytest(), **lake_env, "OTEL_SDK_DISABLED": "true"}
    env.pop("DAGSTER_HOME", None)  # another module's fixture may have set one in this process
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phase8_assets.cli",
                "gate",
                "--evidence",
                str(root),
                "--home",
                str(base / f"h{i}"),
                "--out",
                str(base / f"out{i}"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i, root in enumerate(ROOTS)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    errors = [p.stderr.read()[-2000:] for p in procs]
    written = [base / f"out{i}" / "gate-report.json" for i in range(len(codes))]
    reports = [
        json.loads(path.read_text()) if path.exists() else error for path, error in zip(written, errors, strict=True)
    ]
    return reports, codes, lake_env


@pytest.fixture(scope="module")
def sequential_on_file(tmp_path_factory):
    """The same two roots one after the other on the embedded file: (reports, table counts)."""
    home = tmp_path_factory.mktemp("sequential")
    reports = [gate_report([root], home) for root in ROOTS]
    with connect(warehouse_path(home), read_only=True) as conn:
        return reports, table_counts(conn)


def _lake(monkeypatch, lake_env):
    for name, value in lake_env.items():
        monkeypatch.setenv(name, value)


def test_lake_ddl_drops_only_what_ducklake_lacks():
    sql = (
        "CREATE TABLE t (\n    a VARCHAR PRIMARY KEY,\n    b VARCHAR NOT NULL CHECK (b IN ('x', 'y')),\n"
        "    c INTEGER,\n    UNIQUE (c),\n    PRIMARY KEY (a, c)\n);\nCREATE INDEX ti ON t (c);"
    )
    assert " ".join(lake_ddl(sql).split()) == "CREATE TABLE t ( a VARCHAR NOT NULL, b VARCHAR NOT NULL, c INTEGER );"


def test_every_declared_key_is_known_to_the_lake(home):
    """The keys the lake's writes use are the primary keys the file warehouse enforces."""
    with connect(warehouse_path(home)) as conn:
        declared = conn.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
        ).fetchall()
    assert {t: tuple(cols) for t, cols in declared} == table_keys()


def test_the_lake_is_created_by_the_same_migrations(lake_env, monkeypatch, home):
    with connect(warehouse_path(home)) as conn:
        on_file = schema_fingerprint(conn)
    _lake(monkeypatch, lake_env)
    with connect() as conn:
        assert current_version(conn) == latest_version()
        assert schema_fingerprint(conn) == on_file  # same tables, columns, types and nullability
    result = CliRunner().invoke(main, ["upgrade", "status", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert (status["version"], status["pending"]) == (latest_version(), [])
    assert status["warehouse"].startswith("ducklake://") and "@" in status["warehouse"]


@pytest.mark.slow
def test_parallel_gates_on_the_lake_equal_sequential_runs_on_the_file(
    parallel_on_lake, sequential_on_file, monkeypatch, home
):
    reports, codes, lake_env = parallel_on_lake
    expected, counts = sequential_on_file
    assert codes == [0 if r["verdict"] == "pass" else 1 for r in expected], reports
    for got, want in zip(reports, expected, strict=True):
        assert [(g["gate"], g["status"], g["findings"]) for g in got["gates"]] == [
            (g["gate"], g["status"], g["findings"]) for g in want["gates"]
        ]
        assert (got["verdict"], got["evaluated_at"]) == (want["verdict"], want["evaluated_at"])
    _lake(monkeypatch, lake_env)
    with connect(read_only=True) as conn:
        assert table_counts(conn) == counts  # nothing lost, nothing doubled
    result = CliRunner().invoke(main, ["audit", "verify", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output  # two writers' events, one unbroken chain
    assert json.loads(result.output)["checked"] == counts["audit_events"]


@pytest.mark.slow
def test_a_rerun_on_the_lake_adds_rows_only_to_the_gate_run_log_and_the_audit_trail(
    parallel_on_lake, monkeypatch, home
):
    _lake(monkeypatch, parallel_on_lake[2])
    with connect(read_only=True) as conn:
        before = table_counts(conn)
    gate_report([ROOTS[0]], home)
    with connect(read_only=True) as conn:
        after = table_counts(conn)
    grown = {t for t in after if after[t] != before[t]}
    assert grown == {"gate_runs", "gate_run_results", "audit_events"}  # the re-run's verdict is audited too
    result = CliRunner().invoke(main, ["audit", "verify", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output


def test_backup_and_rollback_say_in_one_line_they_do_not_apply_to_the_lake(lake_env, monkeypatch, home):
    _lake(monkeypatch, lake_env)
    for args in (["backup"], ["rollback", "--to", "1"], ["upgrade", "apply"]):
        result = CliRunner().invoke(main, [*args, "--home", str(home)])
        if args == ["upgrade", "apply"]:
            assert result.exit_code == 0, result.output  # the same migrations; nothing pending here
            continue
        assert result.exit_code == 2, result.output
        assert "DuckLake" in result.output and len(result.output.strip().splitlines()) == 1


def test_preflight_diagnostics_and_health_read_the_lake(postgres, s3_endpoint, monkeypatch, home, tmp_path):
    """With the lake configured, nothing looks for a warehouse file in the home."""
    import zipfile

    from phase8_assets.warehouse.health import read_snapshot

    _lake(monkeypatch, _new_lake(postgres, s3_endpoint))
    home.mkdir(parents=True, exist_ok=True)
    result = CliRunner().invoke(main, ["upgrade", "preflight", "--json", "--home", str(home)])
    assert result.exit_code == 1, result.output  # an empty lake: nothing to upgrade yet
    assert "no tables; the first phase8 gate creates them" in result.output
    with connect():
        pass  # the first writer creates the lake's tables
    result = CliRunner().invoke(main, ["upgrade", "preflight", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["schema version"]["detail"] == f"at {latest_version()}, this release needs {latest_version()}"
    assert checks["schema matches its recorded version"]["ok"] and "DuckLake snapshot" in checks["backups"]["detail"]
    assert not any("disk" in name or "backup at version" in name for name in checks)  # of a file, not of a lake
    bundle = tmp_path / "bundle.zip"
    result = CliRunner().invoke(main, ["diagnostics", "--out", str(bundle), "--home", str(home)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(bundle) as archive:
        described = json.loads(archive.read("warehouse.json"))
    assert described["path"].startswith("ducklake://") and described["schema_version"] == latest_version()
    snapshot, problem = read_snapshot(home)
    assert snapshot["warehouse"]["exists"] and snapshot["warehouse"]["version"] == latest_version(), problem
    assert not warehouse_path(home).exists()


def test_a_bad_lake_setting_is_a_named_error(monkeypatch, home):
    monkeypatch.setenv("PHASE8_WAREHOUSE", "ducklake://postgres@127.0.0.1:1/db")
    result = CliRunner().invoke(main, ["upgrade", "status", "--home", str(home)])
    assert result.exit_code == 2
    assert "PHASE8_WAREHOUSE: data_path: required" in result.output


def test_duckdb_is_the_version_the_extensions_were_built_for():
    """The extension packages ship binaries for one DuckDB version: pinned together."""
    for name in ("ducklake", "httpfs", "postgres_scanner"):
        assert f"/v{duckdb.__version__}/" in extension_path(name)
