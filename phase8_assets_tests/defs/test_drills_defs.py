"""The drill assets in Dagster: the monthly reminder schedule, reminders once per due date, reports."""

from datetime import UTC, datetime

import dagster as dg
import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from phase8_assets.definitions import defs
from phase8_assets.defs.drills import OVERDUE_EVENT, drill_cadence_reminder
from phase8_assets.defs.resources import Phase8Settings, Warehouse
from phase8_assets.shared import telemetry
from phase8_assets.warehouse import connect, warehouse_path
from phase8_assets_tests.conftest import DATA, SCENARIOS

pytestmark = pytest.mark.slow


@pytest.fixture
def events(monkeypatch):
    """OpenTelemetry log records the telemetry helper emits, caught by the SDK's in-memory exporter."""
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    telemetry.shutdown()
    exporter = InMemoryLogRecordExporter()
    telemetry._setup()["logger_provider"].add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield exporter
    telemetry.shutdown()


def run_cadence(evidence, home, run_config=None):
    job = defs.resolve_job_def("drill_cadence_job")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "settings": Phase8Settings(evidence=[str(evidence)]),
            "warehouse": Warehouse(database=str(warehouse_path(home))),
        },
        run_config=run_config,
    )
    assert result.success
    return result


def metadata(result, asset):
    mat = result.asset_materializations_for_node(asset)[0]
    return {k: v.value for k, v in mat.metadata.items()}


def test_monthly_schedule_evaluates_cadence_at_the_tick(home):
    tick = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=tick,
            resources={"settings": Phase8Settings(evidence=[str(DATA)])},
        )
        request = drill_cadence_reminder(context)
    assert request.run_key == "2026-12-01T07:00:00Z"
    config = {"evidence": [str(DATA)], "as_of": "2026-12-01T07:00:00Z"}
    assert request.run_config == {"resources": {"settings": {"config": config}}}
    assert drill_cadence_reminder.cron_schedule == "0 7 1 * *"
    assert drill_cadence_reminder.execution_timezone == "UTC"
    # A run with the tick's config evaluates then, not at the demo's pinned time.
    result = run_cadence(DATA, home, request.run_config)
    assert metadata(result, "drill_evidence")["evaluated_at"] == "2026-12-01T07:00:00Z"


def test_overdue_drill_is_reminded_once_per_due_date(home, events):
    first = run_cadence(SCENARIOS / "overdue-drill", home)
    assert metadata(first, "drill_cadence")["new_reminders"] == 1
    again = run_cadence(SCENARIOS / "overdue-drill", home)
    assert metadata(again, "drill_cadence") | {"new_reminders": 0} == metadata(again, "drill_cadence")
    with connect(warehouse_path(home)) as conn:
        rows = conn.execute("SELECT drill_id, state, due FROM drill_reminders").fetchall()
    assert rows == [("disk-full", "overdue", "2026-11-04T12:01:55Z")]
    emitted = [r.log_record for r in events.get_finished_logs()]
    audited = [r for r in emitted if r.attributes["event.name"].startswith("phase8.audit.")]
    emitted = [r for r in emitted if r not in audited]
    assert [r.attributes["event.name"] for r in emitted] == [OVERDUE_EVENT]
    assert [r.attributes["event.name"] for r in audited] == ["phase8.audit.drill.overdue"]  # once, like the reminder
    assert audited[0].attributes["phase8.audit.target"] == "drill disk-full"
    assert emitted[0].attributes["phase8.drill.id"] == "disk-full"
    assert emitted[0].attributes["phase8.drill.owner"] == "team:storage"


def test_run_reports_are_written_and_carry_no_secret(home):
    result = run_cadence(DATA, home)
    meta = metadata(result, "drill_run_reports")
    assert meta["reports"] == 24
    folder = home / "reports/drills"
    pages = sorted(folder.rglob("*.html"))
    assert len(pages) == 24 and (folder / "index.md").is_file()
    assert {p.parent.name for p in pages} == {
        "db-failover",
        "cache-loss",
        "event-bus-partition",
        "plugin-crash-loop",
        "disk-full",
        "region-network-cut",
    }
    text = "".join(p.read_text() for p in pages)
    assert "Hypothesis after: the API answers" in text and "Steady state met." in text
    for secret in ("demo-not-a-secret", "demo-token-not-real"):
        assert secret not in text
    before = {p: p.read_bytes() for p in pages}
    run_cadence(DATA, home)
    assert {p: p.read_bytes() for p in pages} == before  # same evidence, same files
    with connect(warehouse_path(home)) as conn:
        assert conn.execute("SELECT count(*) FROM drill_runs").fetchone()[0] == 24
        assert conn.execute("SELECT count(*) FROM drill_activities WHERE phase = 'probe'").fetchone()[0] == 12


def test_drill_evidence_declares_its_freshness():
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey("drill_evidence"))
    assert spec.freshness_policy is not None
    assert spec.freshness_policy.fail_window.to_timedelta().days == 35
