"""The program asset and gate in Dagster: the scorecard files, the trend from recorded gate runs,
the instance's schedules shown only where the instance persists (never deciding the gate), and a
scorecard shown only as the run it was computed in."""

import dagster as dg

from phase8_assets.defs.evidence import evidence_files
from phase8_assets.defs.program import phase8_program, program_completeness_gate
from phase8_assets.defs.resources import Phase8Settings, Warehouse
from phase8_assets.defs.scorecard import complete_scorecard, scorecard_of_run
from phase8_assets.domains.gate_report import root_id
from phase8_assets.warehouse import warehouse_path
from phase8_assets_tests.conftest import SCENARIOS


def materialize(root, home, instance=None):
    return dg.materialize(
        [evidence_files, phase8_program, program_completeness_gate],
        instance=instance,
        resources={
            "settings": Phase8Settings(evidence=[str(root)]),
            "warehouse": Warehouse(database=str(warehouse_path(home))),
        },
        raise_on_error=False,
    )


def test_missed_cadence_scorecard_the_instance_never_deciding_and_no_stale_scorecard(home):
    root = SCENARIOS / "program-cadence-missed"
    ephemeral = materialize(root, home)
    with dg.instance_for_test() as instance:  # a persistent instance, as the UI and the daemon have
        persistent = materialize(root, home, instance)
    checks = [r.get_asset_check_evaluations()[0] for r in (ephemeral, persistent)]
    assert [(c.check_name, c.passed, c.severity) for c in checks] == [
        ("program_completeness", False, dg.AssetCheckSeverity.ERROR)
    ] * 2
    assert checks[0].metadata["findings"] == checks[1].metadata["findings"]
    first, second = (r.asset_materializations_for_node("phase8_program")[0].metadata for r in (ephemeral, persistent))
    assert "automation" not in first
    automation = second["automation"].value
    assert "drill_cadence_reminder" in automation and "| off | never |" in automation
    folder = home / "reports/program" / root_id(str(root))
    assert first["scorecard"].value == str(folder / "scorecard.html")
    markdown = (folder / "scorecard.md").read_text()
    assert "| finops | governance | team:finops |" in markdown and "P1D: missed" in markdown
    html = (folder / "scorecard.html").read_text()
    assert 'id="fig-1-trend-over-the-last-12-weeks"' in html
    assert "cost_budgets (none recorded)" in markdown
    # Its gates have not completed (only program_completeness ran): the statuses recorded before the run.
    assert f"run {persistent.run_id}" in markdown and "as recorded before this run" in markdown
    assert "program_completeness (fail)" in markdown  # the ephemeral run's, recorded before this one
    assert scorecard_of_run(folder, persistent.run_id, "-") == markdown

    # A run whose phase8_program fails (its scorecard cannot be written) has no scorecard: the earlier
    # run's stays where it was, stamped with that run, and is never shown or completed as this run's.
    (folder / "scorecard.html").unlink()
    (folder / "scorecard.html").mkdir()
    failed = materialize(root, home)
    assert not failed.success and failed.get_asset_check_evaluations() == []
    assert (folder / "scorecard.md").read_text() == markdown
    assert complete_scorecard(home / "reports", [str(root)], {"run_id": failed.run_id}) == []
    shown = scorecard_of_run(folder, failed.run_id, "phase8_program failed")
    assert "No scorecard for this run" in shown and failed.run_id in shown and persistent.run_id not in shown
