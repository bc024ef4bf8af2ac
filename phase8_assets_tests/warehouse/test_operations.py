"""Backup, preflight, upgrade and rollback of the warehouse, with real processes and real kills."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import phase8_assets
from phase8_assets.cli import main
from phase8_assets.warehouse import audit, connect, current_version, latest_version, migrate, migrations, warehouse_path
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
from phase8_assets_tests.conftest import DATA, SCENARIOS, env_without_pytest, gate_report, held_by_another_process

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
        conn.execute("INSERT INTO audit_anchors VALUES (0, repeat('0', 64), now(), 0, 'genesis')")  # as a prune leaves
    return home


@pytest.fixture
def home(filled, tmp_path) -> Path:
    copy = tmp_path / "home"
    copy.mkdir()
    shutil.copyfile(warehouse_path(filled), warehouse_path(copy))
    return copy


def without_audit(facts: dict) -> dict:
    return {**facts, "tables": {t: v for t, v in facts["tables"].items() if t not in audit.AUDIT_TABLES}}


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
    assert "post-rollback integrity: " in result.output and "tables unchanged by the down-migrations" in result.output
    assert f"every row of the backup {home / 'backups'}" in result.output and "no rows written since" in result.output


def test_a_difference_after_rollback_fails_loudly_with_the_numbers(home):
    with connect(warehouse_path(home), check_schema=False) as conn:
        migrate(conn, 4)
    backup(warehouse_path(home))
    with connect(warehouse_path(home), check_schema=False) as conn:
        migrate(conn)
    gate_report([DATA], home)  # normal use since the upgrade is no difference...
    with connect(warehouse_path(home), check_schema=False) as conn:
        conn.execute("DELETE FROM drill_runs WHERE title LIKE 'cache loss%'")  # ...rows lost since it are
        conn.execute("UPDATE bench_runs SET branch = 'tampered' WHERE run_id = (SELECT min(run_id) FROM bench_runs)")
    # Two roots' history (demo + broken-evidence): 48 drill runs, 8 of them cache-loss drills.
    with pytest.raises(IntegrityError) as failed:
        rollback(home, to=4, progress=lambda _: None)
    assert "table drill_runs: 8 of its 48 rows at" in str(failed.value)
    assert re.search(r"table bench_runs: 2 of its \d+ rows at .* are gone or changed", str(failed.value))


def test_a_rollback_after_normal_runs_keeps_what_they_wrote_and_names_what_the_older_schema_cannot_hold(tmp_path):
    """Rows written since the upgrade are no integrity failure: those the older schema has a table
    for stay, the others are named and stay in the safety backup. Normal runs also supersede files,
    re-deliver a cost export (its rows replaced) and recompute change points."""
    root, home = tmp_path / "root", tmp_path / "home"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    gate_report([root], home)
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 8)  # the release before isolation results and the audit trail
    runner = CliRunner()
    assert runner.invoke(main, ["upgrade", "apply", "--home", str(home)]).exit_code == 0
    cost = sorted((root / "evidence" / "cost").iterdir())
    shutil.copyfile(cost[0], cost[-1])  # a re-delivered export at the same path
    shutil.rmtree(next((root / "evidence" / "bench" / "history").iterdir()))  # withdrawn runs
    gate_report([root], home)
    gate_report([root], home)
    with connect(path) as conn:
        latest = describe(conn)
        isolation = latest["tables"]["isolation_results"]["rows"]
    assert isolation and latest["tables"]["gate_runs"]["rows"] == 3
    result = runner.invoke(main, ["rollback", "--to", "8", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    assert f"set aside: isolation_results ({isolation} rows) has no table at version 8" in result.output
    assert "rows written since kept: " in result.output and "gate_runs +2" in result.output
    done = json.loads(result.stdout)
    assert done["set_aside"] == {"isolation_results": isolation} and done["rows_since"]["gate_runs"] == 2
    safety = Path(done["safety_backup"])
    assert verify_backup(safety)["tables"]["isolation_results"]["rows"] == isolation
    with connect(path, check_schema=False) as conn:
        after = describe(conn)
    assert after["schema_version"] == 8
    for table, facts in after["tables"].items():  # every table the older schema has: as it was
        if table != "schema_version":
            assert facts == latest["tables"][table], table


def release_with(tmp_path: Path, migrations_sql: dict[str, str]) -> dict:
    """The environment of a phase8 release whose migrations differ from this one's as given (a copy
    of the package on PYTHONPATH, ahead of the installed one)."""
    package = Path(phase8_assets.__file__).parent
    release = tmp_path / "release"
    shutil.copytree(package, release / "phase8_assets", ignore=shutil.ignore_patterns("__pycache__"))
    for name, sql in migrations_sql.items():
        (release / "phase8_assets" / "warehouse" / "migrations" / name).write_text(sql)
    return {**env_without_pytest(), "PYTHONPATH": str(release)}


def phase8_of(env: dict, *args: str) -> subprocess.CompletedProcess:
    code = "from phase8_assets.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300, cwd=env["PYTHONPATH"]
    )


def test_a_failing_down_migration_leaves_the_warehouse_as_it_was_and_names_the_step(home, tmp_path):
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 8)
    backup(path)
    assert CliRunner().invoke(main, ["upgrade", "apply", "--home", str(home)]).exit_code == 0
    before = state(home)
    # The release's second down step fails after the first one (0010_audit) succeeded.
    env = release_with(
        tmp_path, {"0009_isolation.down.sql": "DROP TABLE isolation_results;\nDROP TABLE isolation_runs;\n"}
    )
    done = phase8_of(env, "rollback", "--to", "8", "--home", str(home))
    assert done.returncode == 1, done.stderr
    assert (
        "rollback to version 8 FAILED: down 0009_isolation failed:" in done.stderr and "isolation_runs" in done.stderr
    )
    assert f"the warehouse is back at version {latest_version()} as before" in done.stderr
    safety = Path(done.stderr.split("the backup taken before the rollback is ")[1].split(";")[0])
    assert verify_backup(safety)["tables"] == before["tables"]
    after = state(home)
    assert without_audit(after) == without_audit(before)
    assert not (home / audit.CARRIED).exists()  # the trail is in its table, the failure chained on
    with connect(path) as conn:
        assert [(r["event_type"], r["outcome"]) for r in audit.rows(conn)][-1] == ("warehouse.rollback", "failed")
        assert audit.verify(conn).ok


def test_a_down_migration_that_changes_what_it_keeps_is_undone(home, tmp_path):
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 8)
    backup(path)
    assert CliRunner().invoke(main, ["upgrade", "apply", "--home", str(home)]).exit_code == 0
    before = state(home)
    env = release_with(
        tmp_path, {"0009_isolation.down.sql": "DROP TABLE isolation_results;\nDELETE FROM drill_runs;\n"}
    )
    done = phase8_of(env, "rollback", "--to", "8", "--home", str(home))
    assert done.returncode == 1, done.stderr
    assert "the down-migrations changed what they keep: table drill_runs: 0 rows, expected 48 (-48)" in done.stderr
    assert without_audit(state(home)) == without_audit(before)


def test_an_upgrade_that_changes_existing_data_is_restored(home, tmp_path):
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 8)
    before = state(home)
    up = migrations()[8].up + "\nDELETE FROM drill_runs WHERE idx = 0;\n"
    done = phase8_of(release_with(tmp_path, {"0009_isolation.up.sql": up}), "upgrade", "apply", "--home", str(home))
    assert done.returncode == 2 and "the migrations changed existing data: table drill_runs:" in done.stderr
    assert without_audit(state(home)) == without_audit(before)


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


def test_preflight_with_a_dagster_instance_that_cannot_be_opened_says_so_instead_of_crashing(home, tmp_path,
                                                                                            monkeypatch):  # fmt: skip
    (tmp_path / "dagster.yaml").write_text("storage:\n  postgres:\n    postgres_db:\n      username: dagster\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["upgrade", "preflight", "--home", str(home)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "FAIL  no Dagster pool slot held by a dead run: cannot check: DagsterInvalidConfigError" in result.output
    assert "NOT safe to upgrade" in result.output


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


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_refused_rollback_restore_and_upgrade_leaves_the_warehouse_byte_identical(home, tmp_path):
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 4)
    good, _ = backup(path, tmp_path / "at-4")
    with connect(path, check_schema=False) as conn:
        migrate(conn)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(good, corrupt)
    data = (corrupt / "warehouse.duckdb").read_bytes()
    (corrupt / "warehouse.duckdb").write_bytes(data[: len(data) // 2])
    refusals = [
        # No manifest at version 4 under the home (the one above is elsewhere): the old code ran the
        # down-migrations first and then failed, leaving the warehouse at version 4.
        (["rollback", "--to", "4"], "no verified backup manifest at version 4"),
        (["rollback", "--to", str(latest_version())], f"cannot roll back to version {latest_version()}"),
        (["rollback", "--to", "99"], "cannot roll back to version 99"),
        (["rollback", "--backup", str(corrupt)], "truncated or corrupted"),
        (["upgrade", "apply"], None),  # at the latest version: nothing to do, nothing touched
    ]
    runner = CliRunner()
    for args, message in refusals:
        before = sha256(path)
        result = runner.invoke(main, [*args, "--home", str(home)])
        assert sha256(path) == before, args
        if message:
            assert result.exit_code == 2 and message in result.output, (args, result.output)
    with connect(path, check_schema=False) as conn:
        conn.execute("ALTER TABLE drill_runs ADD COLUMN surprise INTEGER")  # drifted by hand
    for args, message in [
        (["upgrade", "apply"], "the tables differ from what version"),
        (["rollback", "--to", "4"], "the tables differ from what version"),
    ]:
        before = sha256(path)
        result = runner.invoke(main, [*args, "--home", str(home)])
        assert result.exit_code == 2 and message in result.output and sha256(path) == before, (args, result.output)


def test_a_held_home_refuses_every_destructive_command_untouched(home, tmp_path):
    path = warehouse_path(home)
    folder, _ = backup(path, tmp_path / "b")
    with held_by_another_process(path) as holder:
        before = sha256(path)
        for args in (["rollback", "--to", "4"], ["rollback", "--backup", str(folder)], ["upgrade", "apply"]):
            result = CliRunner().invoke(main, [*args, "--home", str(home), "--lock-wait", "1"])
            assert result.exit_code == 2 and f"locked by process {holder.pid}" in result.output, (args, result.output)
            assert sha256(path) == before, args


def test_rollback_and_restore_take_a_verified_backup_before_their_first_change(home, tmp_path):
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 4)
    at4, _ = backup(path)
    with connect(path, check_schema=False) as conn:
        migrate(conn)
        latest = describe(conn)
    result = CliRunner().invoke(main, ["rollback", "--to", "4", "--home", str(home)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("backup ") and first.endswith(f"(version {latest_version()}, verified)")
    safety = Path(first.split()[1])
    assert verify_backup(safety)["tables"] == latest["tables"]
    result = CliRunner().invoke(main, ["rollback", "--backup", str(safety), "--home", str(home)])
    assert result.exit_code == 0 and result.output.startswith("backup ") and "(version 4, verified)" in result.output
    assert without_audit(state(home)) == without_audit(latest)
    with connect(path) as conn:  # the trail is carried across both, not restored with the data
        assert [r["event_type"] for r in audit.rows(conn)] == ["warehouse.rollback", "warehouse.restore"]
    (path).write_bytes(b"not a database")  # restoring an unreadable warehouse keeps a copy of it
    result = CliRunner().invoke(main, ["rollback", "--backup", str(at4), "--home", str(home)])
    assert result.exit_code == 0 and "copied the unreadable warehouse to" in result.output, result.output
    kept = Path(result.output.split("copied the unreadable warehouse to ")[1].split()[0])
    assert (kept / "warehouse.duckdb").read_bytes() == b"not a database"


def test_restoring_over_an_unreadable_warehouse_keeps_its_wal_too(home, tmp_path):
    """Transactions a killed writer committed to the WAL but not yet to the file are part of what
    the restore replaces: the copy kept aside has them; the restore removes the WAL."""
    path = warehouse_path(home)
    good, _ = backup(path, tmp_path / "good")
    writer = (
        "import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); c.execute(\"SET checkpoint_threshold = '1TB'\"); "
        "c.execute(\"INSERT INTO budget_alerts VALUES ('r', 'late', '2026-11', 'actual', 0.9, 1, 1, now())\"); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", writer, str(path)], check=True)  # killed before any checkpoint
    wal = Path(f"{path}.wal")
    committed = wal.read_bytes()
    assert committed
    path.write_bytes(b"not a database")
    result = CliRunner().invoke(main, ["rollback", "--backup", str(good), "--home", str(home)])
    assert result.exit_code == 0 and "copied the unreadable warehouse and its WAL to" in result.output, result.output
    kept = Path(result.output.split("its WAL to ")[1].split()[0])
    assert (kept / "warehouse.duckdb.wal").read_bytes() == committed and not wal.exists()


def test_a_folder_whose_manifest_is_not_one_is_an_invalid_backup_not_a_crash(home):
    """One foreign folder under backups/ must not crash preflight or rollback, which look at every backup."""
    path = warehouse_path(home)
    for name, text in [("list", "[]"), ("null", "null"), ("no-tables", '{"file_sha256": "x"}')]:
        folder = home / "backups" / f"zz-{name}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(text)
        shutil.copyfile(path, folder / "warehouse.duckdb")
        with pytest.raises(BackupInvalid, match="not a phase8 WarehouseManifest"):
            verify_backup(folder)
    checks = {c.name: c.ok for c in preflight(home)}
    assert checks[f"a verified backup at version {latest_version()} younger than 1d 0h"] is False
    result = CliRunner().invoke(main, ["rollback", "--to", "4", "--home", str(home)])
    assert result.exit_code == 2 and "no verified backup manifest at version 4" in result.output, result.output


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda m: m["tables"].update(gate_runs={"count": 3}), "tables.gate_runs"),
        (lambda m: m["tables"].update(gate_runs={"rows": "3", "checksum": "0"}), "tables.gate_runs"),
        (lambda m: m.update(schema_version="10"), "schema_version '10'"),
        (lambda m: m.update(created_at="2026-11-20T12:00:00"), "created_at"),
        (lambda m: m.update(created_at="yesterday"), "created_at"),
    ],
    ids=["table without rows", "rows as text", "version as text", "naive created_at", "created_at not a time"],
)
def test_a_manifest_edited_out_of_shape_is_an_invalid_backup_not_a_crash(home, edit, named):
    """A real backup whose manifest.json was edited (its file hash still matching): preflight and
    rollback, which read every backup, ended in a KeyError/TypeError traceback."""
    path = warehouse_path(home)
    folder, _manifest = backup(path)
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupInvalid, match=f"not a phase8 WarehouseManifest: {re.escape(named)}"):
        verify_backup(folder)
    checks = {c.name: c.ok for c in preflight(home)}
    assert checks[f"a verified backup at version {latest_version()} younger than 1d 0h"] is False
    result = CliRunner().invoke(main, ["rollback", "--backup", str(folder), "--home", str(home)])
    assert result.exit_code == 2 and "not a phase8 WarehouseManifest" in result.output, result.output


def test_a_backup_never_overwrites_another(home, tmp_path):
    first, manifest = backup(warehouse_path(home), tmp_path / "b")
    before = sha256(first / "warehouse.duckdb")
    with connect(warehouse_path(home)) as conn:
        conn.execute("DELETE FROM drill_runs")
    result = CliRunner().invoke(main, ["backup", "--home", str(home), "--out", str(first)])
    assert result.exit_code == 2 and "not empty" in result.output, result.output
    assert sha256(first / "warehouse.duckdb") == before and verify_backup(first)["tables"] == manifest["tables"]
    (tmp_path / "empty").mkdir()
    assert CliRunner().invoke(main, ["backup", "--home", str(home), "--out", str(tmp_path / "empty")]).exit_code == 0


def test_every_table_normal_runs_rewrite_is_declared_to_the_rollback_proof():
    """The rollback proves the rows of the backup before the upgrade are still there: whole rows,
    except in tables normal runs update by key (``UPDATED_BY_KEY``) or remove rows from
    (``RECOMPUTED``). A new statement that rewrites stored rows must be declared, or every rollback
    after it would be an integrity failure (or, declared too loosely, miss a loss)."""
    from phase8_assets.warehouse.operations import RECOMPUTED, UPDATED_BY_KEY

    package = Path(phase8_assets.__file__).parent
    rewrites = re.compile(
        r"(?:UPDATE|DELETE FROM|INSERT OR REPLACE INTO)\s+(\w+)|INSERT INTO (\w+)[^\"]*\"?\s*\"?ON CONFLICT[^\"]*DO UPDATE"
        r"|_lake_rows\(conn, \"(\w+)\", [^,]+, replace=True\)"
    )
    found = set()
    for source in package.rglob("*.py"):
        if source.name == "audit.py" or source.parent.name == "demo":
            continue  # the trail is carried, not compared; demo code writes no warehouse
        for match in rewrites.finditer(source.read_text()):
            found.add(next(g for g in match.groups() if g))
    found.discard("schema_version")  # the version record, which the migrations keep
    assert found and found <= set(UPDATED_BY_KEY) | set(RECOMPUTED), sorted(
        found - set(UPDATED_BY_KEY) - set(RECOMPUTED)
    )


def test_a_backup_from_a_newer_schema_is_refused_before_anything_is_changed(home, tmp_path):
    """A newer release's backup would leave a warehouse this release refuses to run on."""
    newer = tmp_path / "newer-home"
    newer.mkdir()
    shutil.copyfile(warehouse_path(home), warehouse_path(newer))
    with connect(warehouse_path(newer), check_schema=False) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'from_a_later_release', now())", [latest_version() + 1])
    folder, manifest = backup(warehouse_path(newer), tmp_path / "from-newer")
    assert manifest["schema_version"] == latest_version() + 1
    path = warehouse_path(home)
    before = sha256(path)
    result = CliRunner().invoke(main, ["rollback", "--backup", str(folder), "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert f"schema version {latest_version() + 1}, newer than this release's {latest_version()}" in result.output
    assert sha256(path) == before and not (home / "backups").exists()


def test_a_backup_waits_for_the_run_on_its_home_instead_of_copying_half_of_it(home, tmp_path):
    """`phase8 backup` takes the home's lock, as a gate run does: it never copies a run halfway."""
    script = (
        "import sys, time; from pathlib import Path; from phase8_assets.warehouse import home_lock\n"
        "with home_lock(Path(sys.argv[1]), 5, 'phase8 gate'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(
            main, ["backup", "--home", str(home), "--out", str(tmp_path / "b"), "--lock-wait", "1"]
        )
        assert result.exit_code == 2 and "phase8 gate" in result.output and "retry" in result.output, result.output
        assert not (tmp_path / "b").exists()
    finally:
        holder.kill()
        holder.wait()
    result = CliRunner().invoke(main, ["backup", "--home", str(home), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0 and verify_backup(tmp_path / "b")["schema_version"] == latest_version(), result.output


def test_backups_are_newest_first_by_their_manifests_time_not_by_folder_name(tmp_path):
    """`phase8 backup --out $HOME/backups/pre-upgrade` names a folder as told: sorted by name it came
    before every timestamped backup, and a rollback proved itself against that older backup."""
    from phase8_assets.warehouse.operations import MANIFEST, backups

    made = {
        "pre-upgrade": "2026-11-01T08:00:00+00:00",
        "20261120T080000000000Z-v9": "2026-11-20T08:00:00+00:00",
        "20261110T080000000000Z-v9": "2026-11-10T08:00:00+00:00",
        "zz-no-time": None,
    }
    for name, created in made.items():
        (tmp_path / "backups" / name).mkdir(parents=True)
        manifest = {"schema_version": 9} | ({"created_at": created} if created else {})
        (tmp_path / "backups" / name / MANIFEST).write_text(json.dumps(manifest))
    assert [p.name for p in backups(tmp_path)] == [
        "20261120T080000000000Z-v9", "20261110T080000000000Z-v9", "pre-upgrade", "zz-no-time"
    ]  # fmt: skip
