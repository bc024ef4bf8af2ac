"""The isolation assets in Dagster: history recorded once, the coverage heat map, the gate's check."""

import dagster as dg
import pytest

from phase8_assets.defs.evidence import evidence_files
from phase8_assets.defs.isolation import isolation_coverage, isolation_results, tenancy_isolation_gate
from phase8_assets.defs.resources import Phase8Settings, Warehouse
from phase8_assets.warehouse import connect, warehouse_path
from phase8_assets_tests.conftest import SCENARIOS

pytestmark = pytest.mark.slow


def materialize(root, home, instance):
    return dg.materialize(
        [evidence_files, isolation_results, isolation_coverage, tenancy_isolation_gate],
        instance=instance,
        resources={
            "settings": Phase8Settings(evidence=[str(root)]),
            "warehouse": Warehouse(database=str(warehouse_path(home))),
        },
        raise_on_error=False,  # the failing blocking check fails the run: that is the point
    )


def test_cache_leak_history_heat_map_and_failing_check(home):
    root = SCENARIOS / "isolation-cache-leak"
    report = home / "reports/isolation/coverage.html"
    with dg.instance_for_test() as instance:
        first = materialize(root, home, instance)
        html = report.read_bytes()
        again = materialize(root, home, instance)
    assert report.read_bytes() == html  # same evidence, same file
    assert b'id="fig-0-coverage"' in html and b"files" in html and b"failed" in html
    initech = (home / "reports/isolation/tenants/initech.md").read_text()
    assert "initech" in initech and "acme, globex" not in initech  # acme-globex tests are not initech's
    news = [r.asset_materializations_for_node("isolation_results")[0].metadata["new_result_rows"].value
            for r in (first, again)]  # fmt: skip
    assert news == [39, 0]
    with connect(warehouse_path(home), read_only=True) as conn:
        failed = conn.execute(
            "SELECT resource, dimension, tenants FROM isolation_results WHERE outcome = 'failed' ORDER BY tenants"
        ).fetchall()
    assert [(r, d) for r, d, _ in failed] == [("files", "cache")] * 3
    assert sorted(t for _, _, t in failed)[0] == ["acme", "globex"]
    [check] = again.get_asset_check_evaluations()
    assert check.check_name == "tenancy_isolation" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    coverage = again.asset_materializations_for_node("isolation_coverage")[0].metadata
    assert coverage["cells_failed"].value == 1 and coverage["cells_covered"].value == 12
