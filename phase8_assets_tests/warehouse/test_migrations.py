import time

import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.warehouse import (
    WarehouseLocked,
    WarehouseNeedsUpgrade,
    connect,
    current_version,
    latest_version,
    migrate,
    warehouse_path,
)
from phase8_assets_tests.conftest import held_by_another_process


def test_fresh_warehouse_is_created_at_the_latest_version(home):
    with connect(warehouse_path(home)) as conn:
        assert current_version(conn) == latest_version() >= 2


def test_every_migration_goes_up_and_back_down(home):
    with connect(warehouse_path(home), check_schema=False) as conn:
        for target in [*range(latest_version() + 1), *reversed(range(latest_version()))]:
            migrate(conn, target)
            assert current_version(conn) == target
        assert (
            conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name <> 'schema_version'"
            ).fetchone()[0]
            == 0
        )


def test_an_older_warehouse_is_upgraded_only_by_upgrade_apply(home):
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 1)
    with (
        pytest.raises(
            WarehouseNeedsUpgrade,
            match=rf"schema version 1, this release needs {latest_version()}; run `phase8 upgrade apply`",
        ),
        connect(path),
    ):
        pass
    result = CliRunner().invoke(main, ["upgrade", "apply", "--home", str(home)])
    assert result.exit_code == 0 and "applied 0002_gate_runs" in result.output
    with connect(path) as conn:
        assert current_version(conn) == latest_version()


def test_a_version_checked_while_the_file_stays_open_is_checked_again_after_a_migration(home):
    """Connections opened while another one holds the file skip the version check (no other
    process can change it), until a migration in this process or the last close."""
    path = warehouse_path(home)
    with connect(path) as held:
        with connect(path) as conn:
            assert current_version(conn) == latest_version()
        migrate(held, 1)
        with pytest.raises(WarehouseNeedsUpgrade, match="schema version 1"), connect(path):
            pass
        migrate(held)
        with connect(path):
            pass
    with connect(path, check_schema=False) as conn:
        migrate(conn, 1)
    with pytest.raises(WarehouseNeedsUpgrade, match="schema version 1"), connect(path):  # closed in between
        pass


def test_a_locked_warehouse_is_reported_after_a_bounded_wait(home):
    path = warehouse_path(home)
    with connect(path):
        pass
    with held_by_another_process(path):
        started = time.monotonic()
        with pytest.raises(WarehouseLocked, match=r"locked by process \d+ \(waited 1 s\)"), connect(path, wait_s=1):
            pass
        assert time.monotonic() - started < 10
