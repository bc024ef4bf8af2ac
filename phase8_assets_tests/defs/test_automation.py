"""Schedules and sensors, evaluated tick by tick against a real temporary instance; the weekly
report backfilled over 26 weeks in one run, deterministic on re-run."""

import os
import random
import re
import shutil
from datetime import UTC, datetime

import dagster as dg
import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from phase8_assets.definitions import defs
from phase8_assets.defs.observability import run_failure_incident
from phase8_assets.defs.reports import WEEKS, new_evidence, weekly_report_schedule
from phase8_assets.defs.resources import Phase8Settings, Warehouse
from phase8_assets.domains.gate_report import root_id
from phase8_assets.shared import telemetry
from phase8_assets.warehouse import warehouse_path
from phase8_assets_tests.conftest import DATA, gate_report, upload_tree

pytestmark = pytest.mark.slow


def test_weekly_schedule_targets_the_last_complete_week():
    schedule = defs.resolve_schedule_def(weekly_report_schedule.name)
    assert schedule.cron_schedule == "0 6 * * 1"
    assert schedule.execution_timezone == "UTC"
    with dg.instance_for_test() as instance:
        tick = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        data = schedule.evaluate_tick(context)
    (request,) = data.run_requests
    assert request.partition_key == "2026-11-16"  # Monday 16 to Sunday 22 November


def _backfill(home, first: str, last: str):
    job = defs.resolve_job_def("weekly_report_job")
    return job.execute_in_process(
        resources={
            "settings": Phase8Settings(evidence=[str(DATA)]),
            "warehouse": Warehouse(database=str(warehouse_path(home))),
        },
        instance=dg.DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def test_backfilling_26_weeks_is_one_run_and_rerunning_a_week_gives_the_same_file(home):
    gate_report([DATA], home)  # history: the demo's benchmarks, drills, SLO evaluation and a gate run
    keys = WEEKS.get_partition_keys(current_time=datetime(2026, 11, 23, 6, tzinfo=UTC))
    result = _backfill(home, keys[-26], keys[-1])
    assert result.success and len(result.asset_materializations_for_node("weekly_reliability_report")) == 26
    folder = home / "reports/weekly"
    pages = sorted(folder.glob("*.html"))
    assert len(pages) == 26 and pages[0].name == f"{keys[-26]}.html"
    # The week the websocket fan-out slowed down says so in plain words; the last week has the gate run.
    september = (folder / "2026-09-07.md").read_text()
    assert "BenchmarkWebsocketFanout/clients=100 / time regressed by 16% on 2026-09-07" in september
    last = (folder / "2026-11-16.md").read_text()
    assert "| 2026-11-20 12:00 | 10.4.0 | pass | — |" in last and "chat-api-availability" in last
    assert f"reports/program/{root_id(str(DATA))}/scorecard.html" in last  # the program scorecard, linked
    assert "cdn" not in pages[-1].read_text().lower()[:5000]  # plotly is inlined: works offline
    before = pages[-1].read_bytes()
    _backfill(home, keys[-1], keys[-1])
    assert pages[-1].read_bytes() == before


def _tick(instance, root, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"settings": Phase8Settings(evidence=[str(root)])}
    )
    return new_evidence(context)


def test_new_evidence_sensor_requests_each_file_once(tmp_path):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    with dg.instance_for_test() as instance:
        first = _tick(instance, root)
        # every evidence file but phase8.yaml and the exceptions (they change verdicts, not history)
        evidence = [p for p in root.rglob("*") if p.is_file() and "waivers" not in p.parts]
        assert len(first.run_requests) == 1 and first.run_requests[0].tags["phase8/new_files"] == str(len(evidence) - 1)
        again = _tick(instance, root, first.cursor)
        assert isinstance(again, dg.SkipReason) and "no new evidence" in again.skip_message
        new = root / "evidence/isolation/files.xml"
        new.write_bytes((root / "evidence/isolation/data.xml").read_bytes())
        third = _tick(instance, root, first.cursor)
        assert third.run_requests[0].tags["phase8/new_files"] == "1"
        assert third.run_requests[0].run_key != first.run_requests[0].run_key
        assert isinstance(_tick(instance, root, third.cursor), dg.SkipReason)


def test_new_evidence_sensor_run_keys_never_repeat_and_a_removed_file_is_a_change(tmp_path):
    """The same versions back again (an S3 object re-uploaded after a revert keeps its ETag; here a
    restored mtime) are a change like any other: a run key the instance already used would be dropped."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    report = root / "evidence/isolation/data.xml"
    original, stat = report.read_bytes(), report.stat()

    def put(data: bytes, mtime_ns: int):
        report.write_bytes(data)
        os.utime(report, ns=(mtime_ns, mtime_ns))

    with dg.instance_for_test() as instance:
        cursor, keys = _tick(instance, root).cursor, []
        for data, mtime_ns in [(original + b" ", 1), (original, stat.st_mtime_ns), (original + b" ", 1)]:
            put(data, mtime_ns)
            tick = _tick(instance, root, cursor)
            keys.append(tick.run_requests[0].run_key)
            cursor = tick.cursor
        assert len(set(keys)) == 3  # B, A, B again: three runs
        report.unlink()
        removed = _tick(instance, root, cursor)
        assert removed.run_requests[0].tags["phase8/removed_files"] == "1"
        assert isinstance(_tick(instance, root, removed.cursor), dg.SkipReason)


def test_new_evidence_sensor_on_s3(s3, tmp_path):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios", "evidence"))
    upload_tree(s3, "evidence-sensor", "prod", root)
    with dg.instance_for_test() as instance:
        first = _tick(instance, "s3://evidence-sensor/prod")
        assert first.run_requests
        assert isinstance(_tick(instance, "s3://evidence-sensor/prod", first.cursor), dg.SkipReason)
        s3.put_object(Bucket="evidence-sensor", Key="prod/docs/ops/new-runbook.md", Body=b"---\ntitle: x\n---\n")
        assert (
            _tick(instance, "s3://evidence-sensor/prod", first.cursor).run_requests[0].tags["phase8/new_files"] == "1"
        )


def test_a_failed_run_raises_an_incident_event(monkeypatch, tmp_path):
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    telemetry.shutdown()
    exporter = InMemoryLogRecordExporter()
    telemetry._setup()["logger_provider"].add_log_record_processor(SimpleLogRecordProcessor(exporter))
    try:
        with dg.instance_for_test() as instance:
            job = defs.resolve_job_def("ingest_evidence_job")
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                resources={
                    "settings": Phase8Settings(evidence=[str(tmp_path / "missing")]),
                    "warehouse": Warehouse(database=str(tmp_path / "w.duckdb")),
                },
            )
            assert not result.success
            failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
            context = dg.build_run_status_sensor_context(
                sensor_name="run_failure_incident",
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=result.dagster_run,
            ).for_run_failure()
            run_failure_incident(context)
        (record,) = [r.log_record for r in exporter.get_finished_logs()]
        assert record.attributes["event.name"] == "phase8.run.failed"
        assert record.attributes["cicd.pipeline.run.id"] == result.run_id
        assert record.attributes["cicd.pipeline.name"] == "ingest_evidence_job"
    finally:
        telemetry.shutdown()


def _sensor_resources(root, home) -> dict:
    """The budget sensor's resources: the evidence ``root`` and the warehouse in ``home``."""
    return {
        "settings": Phase8Settings(evidence=[str(root)]),
        "warehouse": Warehouse(database=str(warehouse_path(home))),
    }


def _budget_tick(instance, resources, cursor=None):
    """One tick of budget_alerts as the daemon evaluates it (run requests with the sensor's tags)."""
    from phase8_assets.defs.finops import budget_alerts

    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, sensor_name="budget_alerts"
    )
    return budget_alerts.evaluate_tick(context)


@pytest.fixture
def otel_logs(monkeypatch):
    """Start telemetry (after any gate run, which shuts it down) with the log records kept in memory."""

    def start() -> InMemoryLogRecordExporter:
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        telemetry.shutdown()
        exporter = InMemoryLogRecordExporter()
        telemetry._setup()["logger_provider"].add_log_record_processor(SimpleLogRecordProcessor(exporter))
        return exporter

    yield start
    telemetry.shutdown()


def test_budget_alert_is_raised_once_per_threshold_crossing(otel_logs, home):
    from phase8_assets.defs.finops import ALERT_EVENT
    from phase8_assets_tests.conftest import SCENARIOS

    root = SCENARIOS / "cost-forecast-over-budget"
    gate_report([root], home)  # loads and attributes the cost history
    logs = otel_logs()
    resources = _sensor_resources(root, home)
    with dg.instance_for_test() as instance:
        first = _budget_tick(instance, resources)
        again = _budget_tick(instance, resources, first.cursor)
    alerts = sorted(e.metadata["alert"].value for e in first.asset_events)
    assert alerts == [
        "acme-monthly forecast >= 100%",
        "acme-monthly forecast >= 80%",
        "compute-monthly forecast >= 100%",
        "compute-monthly forecast >= 80%",
    ]
    assert not first.run_requests and first.skip_message == "4 new threshold crossing(s) announced"
    assert all(e.asset_key == dg.AssetKey("budget_status") for e in first.asset_events)
    assert not again.asset_events and again.skip_message == "no new threshold crossing among 4 judged budget(s)"
    events = [r.log_record for r in logs.get_finished_logs()]
    names = [e.attributes["event.name"] for e in events]
    assert [n for n in names if not n.startswith("phase8.audit.")] == [ALERT_EVENT] * 4
    assert [n for n in names if n.startswith("phase8.audit.")] == ["phase8.audit.budget.crossed"] * 4  # once each
    assert not any("123456789012" in str(e.attributes) for e in events)  # no cost line items in telemetry


def test_a_budget_alerts_preview_leaves_every_alert_to_the_next_tick(otel_logs, home):
    """``dagster sensor preview`` evaluates the sensor without committing its cursor: the daemon's next
    tick (from the committed cursor) still raises every alert the preview showed, and only a committed
    cursor keeps them from being raised again."""
    from phase8_assets_tests.conftest import SCENARIOS

    gate_report([SCENARIOS / "cost-forecast-over-budget"], home)
    otel_logs()
    resources = _over_budget_scenario(home)
    with dg.instance_for_test() as instance:
        preview = _budget_tick(instance, resources)  # shown, its cursor dropped
        tick = _budget_tick(instance, resources)  # the daemon: still no committed cursor
        after = _budget_tick(instance, resources, tick.cursor)
    alerts = sorted(e.metadata["alert"].value for e in tick.asset_events)
    assert alerts == sorted(e.metadata["alert"].value for e in preview.asset_events)
    assert len(alerts) == 4 and tick.skip_message == "4 new threshold crossing(s) announced"
    assert not after.asset_events and after.skip_message == "no new threshold crossing among 4 judged budget(s)"


def _over_budget_scenario(home) -> dict:
    """The sensor's resources on the cost-forecast-over-budget scenario and a warehouse in ``home``."""
    from phase8_assets_tests.conftest import SCENARIOS

    return _sensor_resources(SCENARIOS / "cost-forecast-over-budget", home)


def test_budget_alerts_on_a_warehouse_without_the_cost_load_it_first(otel_logs, home):
    """Nothing loaded yet reads as 0 spent: the sensor asks for one budget_job run instead, and judges
    the budgets once that run has loaded the deliveries."""
    otel_logs()
    resources = _over_budget_scenario(home)
    with dg.instance_for_test() as instance:
        first = _budget_tick(instance, resources)
        (request,) = first.run_requests
        assert request.run_key and not first.asset_events
        waiting = _budget_tick(instance, resources, first.cursor)  # the run has not been launched yet
        assert not waiting.run_requests and "not in the warehouse yet" in waiting.skip_message
        assert "no new threshold crossing" not in waiting.skip_message
        result = defs.resolve_job_def("budget_job").execute_in_process(
            instance=instance, resources=resources, tags={**request.tags, "dagster/run_key": request.run_key}
        )
        assert result.success
        judged = _budget_tick(instance, resources, waiting.cursor)
        assert not judged.run_requests and judged.skip_message == "4 new threshold crossing(s) announced"
        assert len(judged.asset_events) == 4
        assert _budget_tick(instance, resources, judged.cursor).skip_message.startswith("no new threshold crossing")


def test_budget_alerts_say_no_data_when_the_load_run_ended_without_the_deliveries(otel_logs, tmp_path, home):
    otel_logs()
    resources = _over_budget_scenario(home)
    with dg.instance_for_test() as instance:
        first = _budget_tick(instance, resources)
        (request,) = first.run_requests
        failed = defs.resolve_job_def("budget_job").execute_in_process(
            instance=instance,
            resources={**resources, "warehouse": Warehouse(database=str(tmp_path))},  # a folder
            tags={**request.tags, "dagster/run_key": request.run_key},
            raise_on_error=False,
        )
        assert not failed.success
        after = _budget_tick(instance, resources, first.cursor)
    assert not after.run_requests and _no_data(after) == ["no data: cost deliveries loaded"]
    assert f"after run {failed.run_id} (FAILURE)" in after.skip_message


def _no_data(result) -> list[str]:
    return sorted(e.metadata["alert"].value for e in result.asset_events if e.metadata["alert"].value.startswith("no"))


def test_budget_alerts_say_no_data_when_the_cost_evidence_is_stale_rejected_or_missing(otel_logs, tmp_path, home):
    """Stale, rejected or missing cost evidence (and a budget whose scope selects nothing) is a
    no-data alert, announced once while it lasts, and every tick says so: never "no crossing"."""
    from phase8_assets.defs.finops import NO_DATA_EVENT

    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    gate_report([root], home)
    logs = otel_logs()
    settings = {"evidence": [str(root)]}
    warehouse = Warehouse(database=str(warehouse_path(home)))

    def tick(instance, cursor=None, as_of=None):
        resources = {"settings": Phase8Settings(**settings, as_of=as_of), "warehouse": warehouse}
        return _budget_tick(instance, resources, cursor)

    with dg.instance_for_test() as instance:
        fresh = tick(instance)
        assert not _no_data(fresh) and "NO DATA" not in fresh.skip_message
        # Three weeks later, no export has landed since: the newest is too old, December has no cost.
        stale = tick(instance, fresh.cursor, "2026-12-10T12:00:00Z")
        assert _no_data(stale) == ["no data: cost_exports max-age"]
        assert stale.skip_message.startswith("NO DATA: budgets not judged on all their cost: ")
        assert re.search(
            r"focus-2026-11\.csv\.gz: newest is 21d \d+h old \(expected P3D \(3d 0h\)\)", stale.skip_message
        )
        assert "no new threshold crossing among 0 judged budget(s)" in stale.skip_message
        assert "not judged: acme-monthly (2026-12)" in stale.skip_message
        later = tick(instance, stale.cursor, "2026-12-11T12:00:00Z")  # still stale: said, not announced again
        assert not later.asset_events and later.skip_message.startswith("NO DATA")
        # A truncated export and a budgets file that no longer parses.
        (root / "evidence/cost/focus-2026-10.csv.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
        (root / "policy/cost-budgets.yaml").write_text("apiVersion: phase8/v1\nkind: CostBudgets\nbudgets: 7\n")
        broken = tick(instance, fresh.cursor)
        alerts = _no_data(broken)
        assert "no data: cost_budgets evidence-present" in alerts
        assert any(a.endswith("focus-2026-10.csv.gz readable") for a in alerts)
        assert any(a.endswith("cost-budgets.yaml readable") for a in alerts)
        assert "no new threshold crossing" not in broken.skip_message
    names = [r.log_record.attributes["event.name"] for r in logs.get_finished_logs()]
    assert names.count(NO_DATA_EVENT) == 1 + len(alerts)


def test_budget_alerts_name_a_budget_whose_scope_selects_no_cost(otel_logs, tmp_path, home):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    budgets = root / "policy/cost-budgets.yaml"
    budgets.write_text(budgets.read_text().replace("tenant: acme,", "tenant: acme-corp,"))
    gate_report([root], home)
    resources = _sensor_resources(root, home)
    with dg.instance_for_test() as instance:
        first = _budget_tick(instance, resources)
    assert _no_data(first) == ["no data: acme-monthly scope-selects-cost"]
    assert "tenant acme-corp selects no cost from 2026-11-01 to 2026-11-20" in first.skip_message


def test_budget_alerts_do_not_call_budgets_judged_on_current_cost_when_an_account_stopped(tmp_path, home):
    """A second billing account's export stopped on 5 November while the kind stays fresh: the tick
    said only "3 new threshold crossing(s) announced", as if every budget were judged on current
    cost. It names the account and the budgets that lack its cost since, first."""
    from phase8_assets_tests.defs.test_finops_defs import second_account_root

    root = second_account_root(tmp_path)
    gate_report([root], home)
    resources = _sensor_resources(root, home)
    with dg.instance_for_test() as instance:
        first = _budget_tick(instance, resources)
    assert first.skip_message.startswith(
        "STALE COST: billing account 999988887777 last charged 2026-11-05, older than the P3D max_age of "
        "cost_exports: its cost since is missing from globex-monthly, ml-monthly (all of its cost)"
    )
    assert "555566667777" not in first.skip_message


def test_finops_dashboard_for_a_week(home):
    gate_report([DATA], home)
    result = defs.resolve_job_def("finops_dashboard_job").execute_in_process(
        partition_key="2026-11-09",
        resources={
            "settings": Phase8Settings(evidence=[str(DATA)]),
            "warehouse": Warehouse(database=str(warehouse_path(home))),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    summary = result.asset_materializations_for_node("finops_dashboard")[0].metadata["summary"].value
    assert "unallocated share 5." in summary and "| acme | Compute |" in summary
    assert "partial week" not in summary  # the demo's cost data covers the whole week of 9 November
    page = (home / "reports/finops/2026-11-09.html").read_text()
    assert "Budget burn-down, November 2026" in page and "acme-monthly forecast" in page
    # The currency, and one line per budget saying where it will end the month.
    assert "USD effective cost" in summary and "this week (USD)" in summary
    assert re.search(r"acme-monthly: (OVER BUDGET|within budget), forecast [\d,.]+ of [\d,.]+ USD \(\d+%\)", summary)


def test_the_scheduled_finops_dashboard_and_the_ingest_load_the_cost_exports_first(home):
    """No gate run before: the dashboard's week is in the exports, so it is in the dashboard; the
    ingest the new_evidence sensor starts loads the cost history the weekly report reads."""
    resources = {
        "settings": Phase8Settings(evidence=[str(DATA)]),
        "warehouse": Warehouse(database=str(warehouse_path(home))),
    }
    result = defs.resolve_job_def("finops_dashboard_job").execute_in_process(
        partition_key="2026-11-09", resources=resources, instance=dg.DagsterInstance.ephemeral()
    )
    summary = result.asset_materializations_for_node("finops_dashboard")[0].metadata["summary"].value
    assert "USD effective cost" in summary and "No cost data" not in summary
    fresh = Warehouse(database=str(warehouse_path(home / "fresh")))
    ingest = defs.resolve_job_def("ingest_evidence_job").execute_in_process(
        resources={**resources, "warehouse": fresh}, instance=dg.DagsterInstance.ephemeral()
    )
    assert ingest.success
    with fresh.get_connection() as conn:
        assert conn.execute("SELECT count(*) FROM cost_attribution").fetchone()[0] > 0


def test_budget_job_runs_the_focus_conformance_check_on_every_export(tmp_path, home):
    from phase8_assets.demo.finops import csv_gz, rows

    root = tmp_path / "evidence"
    shutil.copytree(DATA, root)
    day = datetime(2026, 11, 3).date()
    line = rows(day, day, random.Random(1))["2026-11"][0]
    line[6] = "usd"  # BillingCurrency: loads, but FOCUS wants an ISO 4217 code in upper case
    (root / "evidence/cost/focus-extra.csv.gz").write_bytes(csv_gz([line]))
    result = defs.resolve_job_def("budget_job").execute_in_process(
        resources=_sensor_resources(root, home),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "focus_conformance"]
    assert not check.passed
    failures = check.metadata["failures"].value
    assert "focus-extra.csv.gz" in failures and "BillingCurrency" in failures


def test_budget_alerts_say_no_data_when_a_second_budgets_file_goes_unread(otel_logs, tmp_path, home):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    config = root / "phase8.yaml"
    config.write_text(config.read_text().replace('["policy/cost-budgets.yaml"]', '["policy/cost-budgets*.yaml"]'))
    (root / "policy/cost-budgets-tight.yaml").write_text(
        'apiVersion: phase8/v1\nkind: CostBudgets\nreviewed: "2026-10-01"\n'
        "budgets:\n  - {name: acme-tight, tenant: acme, amount: 1000, currency: USD, owner: team:finops}\n"
    )
    gate_report([root], home)
    resources = _sensor_resources(root, home)
    with dg.instance_for_test() as instance:
        first = _budget_tick(instance, resources)
    assert _no_data(first) == ["no data: cost_budgets one-policy-file"]
    assert first.skip_message.startswith("NO DATA: budgets not judged on all their cost: ")
    assert "2 CostBudgets files: " in first.skip_message
