"""Backup, preflight, upgrade and rollback of the warehouse, with real processes and real kills."""

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.warehouse import connect, current_version, latest_version, migrate, migrations, warehouse_path
from phase8_assets.warehouse.operations import (
    BackupInvalid,
    IntegrityError,
    backup,
    describe,
    expected_schema,
    preflight,
    rollback,
    schema_fingerprint,
    verify_backup,
)
from phase8_assets.warehouse.store import record_reminders
from phase8_assets_tests.conftest import DATA, SCENARIOS, env_without_pytest, gate_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> Path:
    """A warehouse holding the demo's whole history (every table has rows), built once."""
    home = tmp_path_factory.mktemp("filled")
    gate_report([DATA], home)
    gate_report([SCENARIOS / "broken-evidence"], home)  # rejections too
    with connect(warehouse_path(home)) as conn:
        record_reminders(conn, str(DATA), [{"drill": "disk-full", "due": "2026-11-04T12:01:36Z", "state": "overdue"}],
                         datetime(2026, 11, 20, tzinfo=UTC))  # fmt: skip
        conn.execute("INSERT INTO budget_alerts VALUES ('r', 'acme', '2026-11', 'forecast', 0.8, 9000, 11000, now())")
    return home


@pytest.fixture
def home(filled, tmp_path) -> Path:
    copy = tmp_path / "home"
    copy.mkdir()
    shutil.copyfile(warehouse_path(filled), warehouse_path(copy))
    return copy


def state(home):
    with connect(warehouse_path(home), check_schema=False) as conn:
        return describe(conn)


def test_every_migration_round_trips_with_identical_data(home):
    with connect(warehouse_path(home), check_schema=False) as conn:
        assert all(t["rows"] for t in describe(conn)["tables"].values())
        for version in range(latest_version() - 1, -1, -1):
            migrate(conn, version)
            before = describe(conn)
            assert before["schema"] == expected_schema(version)
            migrate(conn, version + 1)  # up one step...
            assert schema_fingerprint(conn) == expected_schema(version + 1)
            migrate(conn, version)  # ...and back down: nothing of version <= v changed
            assert describe(conn) == before, version


def test_backup_upgrade_rollback_is_proved_identical(home):
    with connect(warehouse_path(home), check_schema=False) as conn:
        migrate(conn, 4)
    folder, manifest = backup(warehouse_path(home))
    assert manifest["schema_version"] == 4 and verify_backup(folder)["tables"] == manifest["tables"]
    result = CliRunner().invoke(main, ["upgrade", "apply", "--home", str(home)])
    last = migrations()[-1]
    assert result.exit_code == 0 and f"applied {last.version:04d}_{last.name}" in result.output
    assert f"at version {latest_version()}" in result.output
    result = CliRunner().invoke(main, ["rollback", "--home", str(home), "--to", "4"])
    assert result.exit_code == 0, result.output
    assert "post-rollback integrity" in result.output and "identical to the manifest" in result.output


def test_a_difference_after_rollback_fails_loudly_with_the_numbers(home):
    with connect(warehouse_path(home), check_schema=False) as conn:
        migrate(conn, 4)
    backup(warehouse_path(home))
    with connect(warehouse_path(home), check_schema=False) as conn:
        migrate(conn)
        conn.execute("DELETE FROM drill_runs WHERE title LIKE 'cache loss%'")  # data lost during the upgrade
    # Two roots' history (demo + broken-evidence): 48 drill runs, 8 of them cache-loss drills.
    with pytest.raises(IntegrityError, match=r"table drill_runs: 40 rows, expected 48 \(-8\)"):
        rollback(home, to=4, progress=lambda _: None)


def test_a_corrupted_or_truncated_backup_is_refused_before_anything_is_overwritten(home, tmp_path):
    folder, _ = backup(warehouse_path(home), tmp_path / "b")
    before = state(home)
    data = (folder / "warehouse.duckdb").read_bytes()
    (folder / "warehouse.duckdb").write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(main, ["rollback", "--home", str(home), "--backup", str(folder)])
    assert (
        result.exit_code == 2 and "truncated or corrupted" in result.output and "nothing was restored" in result.output
    )
    assert state(home) == before
    (folder / "warehouse.duckdb").write_bytes(data)
    manifest = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(manifest.replace('"rows": 48', '"rows": 49'))
    with pytest.raises(BackupInvalid):
        verify_backup(folder)


def test_preflight_is_a_checklist(home, monkeypatch):
    names = {c.name: c for c in preflight(home)}
    assert not names[f"a verified backup at version {latest_version()} younger than 1d 0h"].ok
    backup(warehouse_path(home))
    checks = preflight(home)
    assert all(c.ok for c in checks), [(c.name, c.detail) for c in checks if not c.ok]
    with connect(warehouse_path(home), check_schema=False) as conn:
        conn.execute("ALTER TABLE drill_runs ADD COLUMN surprise INTEGER")  # drifted by hand
    checks = {c.name: c for c in preflight(home)}
    assert not checks["schema matches its recorded version"].ok
    result = CliRunner().invoke(main, ["upgrade", "preflight", "--home", str(home)])
    assert result.exit_code == 1 and "NOT safe to upgrade" in result.output


@pytest.mark.parametrize("kill_at", ["backup ", "applying 0005_slo", "applied 0005_slo", "applying 0006", "validating"])
def test_sigkill_during_apply_never_leaves_a_half_applied_migration(home, kill_at):
    with connect(warehouse_path(home), check_schema=False) as conn:
        migrate(conn, 4)
    env = {**env_without_pytest(), "PYTHONUNBUFFERED": "1", "PHASE8_HOME": str(home)}
    phase8 = str(Path(sys.executable).with_name("phase8"))
    proc = subprocess.Popen([phase8, "upgrade", "apply"], stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if line.startswith(kill_at):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    with connect(warehouse_path(home), check_schema=False) as conn:
        version = current_version(conn)
        assert schema_fingerprint(conn) == expected_schema(version), (kill_at, version)
    out = subprocess.run([phase8, "upgrade", "preflight"], capture_output=True, text=True, env=env).stdout
    assert f"schema version: at {version}, this release needs {latest_version()}" in out
    assert "schema matches its recorded version: yes" in out
    done = subprocess.run([phase8, "upgrade", "apply"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    with connect(warehouse_path(home)) as conn:
        assert current_version(conn) == latest_version()
