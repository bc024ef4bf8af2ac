"""The graph as analysts see it; a snapshot so an accidental change shows up in review."""

import dagster as dg

from phase8_assets.definitions import defs
from phase8_assets.domains.gates import GATES

GATED = {
    "evidence": ["evidence_files"],
    "performance": ["benchmark_runs", "benchmark_history", "perf_change_points", "perf_baselines", "perf_regressions",
                    "perf_budget_status"],
    "reliability": ["slo_definitions", "sli_series", "slo_burn_rates"],
    "resilience": ["drill_journals", "drill_evidence"],
    "upgrade": ["upgrade_paths", "upgrade_preflights", "rollback_drills"],
    "cost": ["cost_line_items", "cost_attribution", "budget_status"],
    "governance": ["governance_policies", "data_inventory", "policy_evaluations", "policy_exceptions"],
    "supportability": ["runbook_index"],
    "isolation": ["isolation_results", "isolation_coverage"],
    "security": ["plugin_bundles", "plugin_verifications"],
    "program": ["phase8_program"],
}  # fmt: skip
REPORTING = [
    "error_budgets",
    "slo_prometheus_rules",
    "drill_cadence",
    "drill_run_reports",
    "weekly_reliability_report",
    "cost_anomalies",
    "finops_dashboard",
    "audit_trail",
]


def test_asset_graph_snapshot():
    graph = defs.resolve_asset_graph()
    gates = [f"gates/{name}" for name in GATES]
    gated = [a for assets in GATED.values() for a in assets] + gates
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == sorted(gated + REPORTING)
    # release_gate: every gate and what it needs, nothing that only reports or reminds.
    job = defs.resolve_job_def("release_gate")
    assert sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys) == sorted(gated)
    for group, assets in GATED.items():
        for asset in assets:
            assert graph.get(dg.AssetKey(asset)).group_name == group, asset


def test_every_asset_explains_itself():
    for spec in defs.resolve_all_asset_specs():
        assert spec.description, spec.key
        assert spec.owners and all(o.startswith("team:") for o in spec.owners), spec.key
        assert spec.group_name, spec.key
        assert spec.kinds, spec.key


def test_every_gate_is_a_blocking_check_on_a_leaf_asset():
    graph = defs.resolve_asset_graph()
    checks = {key.name: key for key in graph.asset_check_keys}
    assert set(GATES) <= set(checks)
    for name, spec in GATES.items():
        key = checks[name]
        assert key.asset_key == dg.AssetKey(["gates", name])
        assert not graph.get(key.asset_key).child_keys  # a leaf: one failing gate never skips another
        check = graph.get_check_spec(key)
        assert check.blocking == spec.blocking and check.description


def test_warehouse_steps_share_the_duckdb_pool():
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("evidence_files")).pools == {"duckdb"}
    assert all(graph.get(dg.AssetKey(["gates", name])).pools == {"duckdb"} for name in GATES)  # they record runs


def test_every_job_schedule_and_sensor_has_a_description():
    repository = defs.get_repository_def()
    jobs = [j for j in repository.get_all_jobs() if not j.name.startswith("__")]
    for definition in [*jobs, *repository.schedule_defs, *repository.sensor_defs]:
        assert definition.description, definition.name


def test_the_product_sets_the_duckdb_pool_limit_on_any_instance():
    from phase8_assets.defs.resources import DUCKDB_POOL, ensure_duckdb_pool

    with dg.instance_for_test() as instance:
        ensure_duckdb_pool(instance)
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).slot_count == 1


def test_the_io_manager_keeps_the_evidence_batch_in_memory_only_while_its_file_is_unchanged(tmp_path):
    import pickle

    from upath import UPath

    from phase8_assets.defs.resources import _EvidenceBatchMemo
    from phase8_assets.evidence.collect import EvidenceBatch

    manager, path = _EvidenceBatchMemo(base_dir=str(tmp_path)), UPath(tmp_path / "evidence_files")
    batch = EvidenceBatch(roots=["/a"])
    manager.dump_to_path(None, batch, path)
    assert manager.load_from_path(None, path) is batch
    path.write_bytes(pickle.dumps(EvidenceBatch(roots=["/written/by/another/process", "/b"])))
    assert manager.load_from_path(None, path).roots == ["/written/by/another/process", "/b"]
    other = UPath(tmp_path / "other")
    manager.dump_to_path(None, {"not": "a batch"}, other)
    assert manager.load_from_path(None, other) == {"not": "a batch"}
    assert manager.load_from_path(None, other) is not manager.load_from_path(None, other)


def test_release_gate_launched_without_tags_is_queued_under_the_default_root():
    """The queue's one run per root decides on the tags a run is submitted with: a run from the UI's
    launchpad carries the job's own, the default root's id, as ``phase8 gate`` would name it."""
    from phase8_assets.defs.gates import run_tags
    from phase8_assets.defs.resources import default_evidence, load_evidence_config

    expected = run_tags(load_evidence_config(default_evidence()))["phase8/root_id"]
    assert defs.resolve_job_def("release_gate").run_tags["phase8/root_id"] == expected
