"""The audit trail: OCSF records validated by the py-ocsf-models models, a hash chain that catches
every edit, deletion and re-ordering, concurrent writers, SIGKILL mid-write, secrets, pruning,
and the trail carried across a rollback below its migration (real DuckDB files, real processes,
the real CLI)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.domains.audit import report_events
from phase8_assets.shared import telemetry
from phase8_assets.shared.audit_events import EVENT_TYPES, Actor, AuditEvent, actor_from, ocsf
from phase8_assets.warehouse import audit as trail
from phase8_assets.warehouse import connect, migrate, warehouse_path
from phase8_assets.warehouse.operations import apply, backup, rollback
from phase8_assets_tests.corpus.secrets import SECRETS, leaks
from phase8_assets_tests.ocsf import model_record, validate

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACTOR = Actor("octocat", "env:GITHUB_ACTOR")


def event(i: int, type_: str = "gate.verdict", at: datetime = AT, **kw) -> AuditEvent:
    return AuditEvent(type_, f"release 10.{i}.0", "pass", ACTOR, at + timedelta(seconds=i), run_id=f"run-{i}", **kw)


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_every_event_type_is_a_valid_ocsf_record(type_):
    record = ocsf(event(1, type_, reason="because", ticket="CHG-1"), 7)
    validate(record)
    assert record["class_uid"] == EVENT_TYPES[type_][0] and record["metadata"]["sequence"] == 7
    assert record["unmapped"]["phase8"]["actor"] == {"name": "octocat", "source": "env:GITHUB_ACTOR"}


OUTCOMES = ["pass", "fail", "done", "refused", "approved", "expiring", "waived", "odd outcome"]


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_records_are_what_the_ocsf_models_build(type_):
    """``ocsf`` shapes a record without the models: each event type, outcome, with and without a
    reason, run and ticket, and details of every kind a caller passes, dumps as the models do."""
    details = {"root": "/x", "at": AT, "none": None, "path": Path("/p"), "pair": (1, 2.5), "nested": {"n": None},
               "nan": float("nan"), "inf": [float("inf"), float("-inf")]}  # fmt: skip
    for i, outcome in enumerate(OUTCOMES):
        for reason, run_id, ticket in (("because", "run-1", "CHG-1"), ("", None, "")):
            made = AuditEvent(type_, f"release 10.{i}.0", outcome, ACTOR, AT, reason, ticket, run_id, details)
            record = ocsf(made, i)
            assert record == model_record(made, i)
            json.dumps(record, allow_nan=False)  # standard JSON (the models dump NaN and infinities as null)
            validate(record)


def test_actor_is_established_never_guessed():
    assert actor_from({"GITHUB_ACTOR": "octocat"}, os_user=False) == Actor("octocat", "env:GITHUB_ACTOR")
    assert actor_from({"GITLAB_USER_LOGIN": "gl"}, os_user=False) == Actor("gl", "env:GITLAB_USER_LOGIN")
    assert actor_from({}, {"dagster/user": "ana"}, os_user=False) == Actor("ana", "dagster-tag:dagster/user")
    assert actor_from({"GITHUB_ACTOR": "x"}, {"phase8/actor": "cli", "phase8/actor_source": "os-user"}).name == "cli"
    scheduled = actor_from({}, {"dagster/schedule_name": "drill_cadence_reminder"}, os_user=False)
    assert scheduled == Actor("schedule drill_cadence_reminder", "dagster-tag:dagster/schedule_name")
    ui = actor_from({}, {}, os_user=False)  # a run launched from the UI of open-source Dagster
    assert ui.name == "unknown" and "no dagster/user tag" in ui.source
    assert actor_from({}).source == "os-user"


def test_a_gate_runs_decisions_become_events():
    waiver = {"id": "W-1", "owner": "team:sre", "reason": "known flake", "ticket": "CHAT-1", "expires": "2026-12-01"}
    report = {
        "verdict": "pass",
        "release": {"version": "10.4.0", "commit": "abc"},
        "evidence_roots": ["/r"],
        "gates": [
            {"gate": "evidence_freshness", "status": "skipped", "summary": "skipped: CHAT-4900", "findings": []},
            {"gate": "perf_budgets", "status": "pass", "summary": "ok", "findings": [
                {"severity": "waived", "subject": "p95", "rule": "budget", "evidence": "b.json",
                 "details": {"waiver": waiver}}]},
            {"gate": "policy_exceptions", "status": "warn", "summary": "1 warning", "findings": [
                {"severity": "warning", "subject": "W-2 (x: y)", "rule": "exception-expiring", "observed": "2d left",
                 "details": {"state": "expiring", "waiver": {"id": "W-2", "ticket": "CHAT-2"}}}]},
        ],
    }  # fmt: skip
    events = report_events(report, ACTOR, AT, "run-1", ["tenancy_isolation"])
    kinds = {e.type: e for e in events}
    assert set(kinds) == {
        "gate.verdict",
        "gate.switched_on",
        "gate.switched_off",
        "finding.waived",
        "exception.expiring",
    }
    assert kinds["finding.waived"].ticket == "CHAT-1" and kinds["finding.waived"].details["exception"] == "W-1"
    assert kinds["gate.switched_off"].reason == "skipped: CHAT-4900"
    for e in events:
        validate(ocsf(e, 1))


@pytest.fixture(scope="module")
def chained(tmp_path_factory) -> Path:
    """A warehouse whose trail holds six records."""
    path = tmp_path_factory.mktemp("chained") / "warehouse.duckdb"
    with connect(path) as conn:
        trail.record(conn, [event(i) for i in range(1, 7)])
    return path


def verify(home: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["audit", "verify", "--home", str(home), "--json"])
    return result.exit_code, json.loads(result.output)


TAMPERING = {
    "edit a record in the middle": ("UPDATE audit_events SET outcome = 'blocked' WHERE seq = 3", 3),
    "edit the record's OCSF event": ("UPDATE audit_events SET record = replace(record, 'octocat', 'mallory') WHERE seq = 4", 4),
    "edit the first record": ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1", 1),
    "delete a record in the middle": ("DELETE FROM audit_events WHERE seq = 3", 4),
    "delete the first record": ("DELETE FROM audit_events WHERE seq = 1", 2),
    "re-order two records": ("UPDATE audit_events SET seq = CASE seq WHEN 2 THEN 5 ELSE 2 END WHERE seq IN (2, 5)", 2),
    "re-link a record to hide a deletion": (
        "DELETE FROM audit_events WHERE seq = 3; "
        "UPDATE audit_events SET seq = seq - 1, prev_hash = (SELECT hash FROM audit_events WHERE seq = 2) WHERE seq = 4",
        3,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_audit_verify_names_the_first_tampered_record(case, chained, tmp_path):
    code, found = verify(chained.parent)
    assert code == 0 and found["intact"] and found["records"] == 6
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(chained, path)
    sql, first_bad = TAMPERING[case]
    conn = duckdb.connect(str(path))
    conn.execute(sql)
    conn.close()
    code, found = verify(tmp_path)
    assert code == 1 and not found["intact"], found
    assert found["first_bad"] == first_bad and found["problem"].startswith(f"record {first_bad}:"), found


@pytest.fixture(scope="module")
def gated(tmp_path_factory) -> Path:
    """A home after two real gate runs on the demo evidence: their records, the head in the home."""
    from phase8_assets_tests.conftest import DATA, gate_report

    home = tmp_path_factory.mktemp("gated") / "home"
    for _ in range(2):
        gate_report([DATA], home)
    return home


def copy_home(home: Path, to: Path) -> Path:
    shutil.copytree(home, to, ignore=shutil.ignore_patterns("reports", "telemetry", "*.lock"))
    return to


def sql(home: Path, statement: str) -> None:
    conn = duckdb.connect(str(warehouse_path(home)))
    conn.execute(statement)
    conn.close()


def test_a_gated_home_verifies_with_its_head(gated, tmp_path):
    home = copy_home(gated, tmp_path / "home")
    code, found = verify(home)
    assert code == 0 and found["intact"], found
    with connect(warehouse_path(home)) as conn:
        newest = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    assert trail.read_head(home) == (newest[0], newest[1])
    # a run that crashed and that nothing completed has a gate_runs row but no verdict: not tampering
    sql(home, "INSERT INTO gate_runs SELECT 'crashed-run', evaluated_at, now(), verdict, release_version, "
              "release_commit, evidence_roots, report FROM gate_runs LIMIT 1; "
              "INSERT INTO gate_run_results SELECT 'crashed-run', gate, status, blocking, summary, errors, warnings, "
              "waived, findings FROM gate_run_results LIMIT 3")  # fmt: skip
    assert verify(home)[0] == 0


TRUNCATION = {
    "delete the newest 3 records": (
        "DELETE FROM audit_events WHERE seq > (SELECT max(seq) - 3 FROM audit_events)",
        False, "the newest 3 record(s) were deleted",
    ),
    "delete every record": ("DELETE FROM audit_events", False, "every record was deleted"),
    "delete every record and the head": ("DELETE FROM audit_events", True, "gate.verdict missing for 2 completed"),
    "delete the newest run's records and the head": (
        "DELETE FROM audit_events WHERE run_id = (SELECT run_id FROM gate_runs ORDER BY recorded_at DESC LIMIT 1)",
        True, "gate.verdict missing for 1 completed gate run(s) in gate_runs: run ",
    ),
    "delete the warehouse": (None, False, "every record was deleted"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TRUNCATION))
def test_audit_verify_notices_records_deleted_from_the_end(case, gated, tmp_path):
    """The chain alone cannot see a shorter trail: the head kept in the home and the completed gate
    runs (each has its gate.verdict) can."""
    home = copy_home(gated, tmp_path / "home")
    statement, head_too, problem = TRUNCATION[case]
    last = trail.read_head(home)[0]
    if statement is None:
        warehouse_path(home).unlink()
    else:
        sql(home, statement)
    if head_too:
        (home / trail.HEAD).unlink()
    code, found = verify(home)
    assert code == 1 and not found["intact"], found
    assert problem in found["problem"], found
    if not head_too:
        assert f"records up to {last} were written" in found["problem"], found


def test_an_unreadable_head_is_reported_not_ignored(gated, tmp_path):
    home = copy_home(gated, tmp_path / "home")
    (home / trail.HEAD).write_text("{not json")
    code, found = verify(home)
    assert code == 1 and "head.json: unreadable audit head" in found["problem"], found


def test_a_fresh_home_verifies(tmp_path):
    with connect(warehouse_path(tmp_path)):
        pass
    code, found = verify(tmp_path)
    assert code == 0 and found["records"] == 0 and not (tmp_path / trail.HEAD).exists()


def test_backup_and_restore_keep_the_head_verifiable(tmp_path):
    """A restore carries the newer trail over the backup's older one; a restore that cannot (the
    warehouse before it is gone) resets the head to the backup's and records the reset."""
    path = warehouse_path(tmp_path)
    with connect(path) as conn:
        trail.record(conn, [event(i) for i in range(3)], tmp_path)
    folder, _manifest = backup(path, tmp_path / "backups" / "b1")
    with connect(path) as conn:
        trail.record(conn, [event(i) for i in range(3, 6)], tmp_path)
    quiet = lambda _line: None  # noqa: E731
    rollback(tmp_path, backup_folder=folder, progress=quiet)
    code, found = verify(tmp_path)
    assert code == 0 and found["records"] == 7, found  # 6 carried over the backup's 3, and the restore
    assert trail.read_head(tmp_path)[0] == 7
    for sidecar in (path, Path(f"{path}.wal")):
        sidecar.unlink(missing_ok=True)
    rollback(tmp_path, backup_folder=folder, progress=quiet)
    code, found = verify(tmp_path)
    assert code == 0 and found["records"] == 4, found  # the backup's 3 and this restore
    with connect(path) as conn:
        restored = trail.rows(conn)[-1]
    assert restored["event_type"] == "warehouse.restore"
    reset = restored["record"]["unmapped"]["phase8"]["details"]["audit_head_reset"]
    assert reset["seq"] == 7 and trail.read_head(tmp_path)[0] == 4


WRITER = """
import sys
from datetime import UTC, datetime
from phase8_assets.shared.audit_events import Actor, AuditEvent
from pathlib import Path
from phase8_assets.warehouse import connect
from phase8_assets.warehouse import audit

path, who, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for b in range(batches):
    events = [AuditEvent("gate.verdict", f"{who}-{b}-{i}", "pass", Actor(who, "test"), datetime.now(UTC))
              for i in range(size)]
    with connect(path, wait_s=60) as conn:
        audit.record(conn, events, Path(path).parent)
    print(b, flush=True)
"""


def test_concurrent_writers_never_break_the_chain(tmp_path):
    """Two processes (a gate run and a sensor, say) and two threads of one process append at once."""
    path = tmp_path / "warehouse.duckdb"
    with connect(path):
        pass
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, "4", "3"], stdout=subprocess.DEVNULL)
        for who in ("gate", "sensor")
    ]
    assert all(p.wait(120) == 0 for p in procs)
    shared = duckdb.connect(str(path))  # threads of one process race inside one database: real conflicts

    def write(who: str) -> None:
        conn = shared.cursor()
        for b in range(10):
            trail.record(conn, [AuditEvent("gate.verdict", f"{who}-{b}", "pass", ACTOR, AT)], tmp_path)

    threads = [threading.Thread(target=write, args=(w,)) for w in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = trail.verify(shared, tmp_path)  # with the head the writers left in the home
    count = shared.execute("SELECT count(*), max(seq) FROM audit_events").fetchone()
    shared.close()
    assert result.ok, result.problem
    assert count == (2 * 4 * 3 + 20, 2 * 4 * 3 + 20)
    assert trail.read_head(tmp_path)[0] <= count[1]


def test_sigkill_mid_write_never_leaves_a_half_record(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with connect(path):
        pass
    rng = random.Random(22)
    for _trial in range(2):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "k", "1000", "25"], stdout=subprocess.PIPE)
        proc.stdout.readline()  # at least one batch is in
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    with connect(path) as conn:
        result = trail.verify(conn)
        rows = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    assert result.ok, result.problem
    assert rows >= 2 * 25 and rows % 25 == 0  # whole batches only


def test_secrets_never_reach_the_audit_table_its_export_or_its_log_records(tmp_path, monkeypatch):
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    telemetry.use_home(tmp_path)
    path = tmp_path / "warehouse.duckdb"
    text = " ".join(s.in_context() for s in SECRETS)
    with connect(path):
        pass
    try:
        rows = trail.record_in_home(
            path,
            [AuditEvent("finding.waived", f"t {SECRETS[0].in_context()}", "waived", Actor(SECRETS[2].in_context(), "x"),
                        AT, reason=text, ticket=SECRETS[1].in_context(), details={"note": text})],
        )  # fmt: skip
        telemetry.flush()
        logs = (tmp_path / "telemetry" / "logs.jsonl").read_text()
    finally:
        telemetry.shutdown()
    assert rows and "phase8.audit.finding.waived" in logs and leaks(logs) == []
    with connect(path) as conn:
        stored = json.dumps(conn.execute("SELECT * FROM audit_events").fetchall(), default=str)
    assert "finding.waived" in stored and "[REDACTED]" in stored and leaks(stored) == []
    exported = CliRunner().invoke(main, ["audit", "export", "--home", str(tmp_path), "--format", "jsonl"]).output
    assert exported and leaks(exported) == []


def test_prune_keeps_what_the_retention_allows_and_the_chain_verifiable(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    old = datetime.now(UTC) - timedelta(days=400)
    with connect(path) as conn:
        trail.record(conn, [event(i, at=old) for i in range(5)] + [event(i, at=datetime.now(UTC)) for i in range(5, 8)],
                     tmp_path)  # fmt: skip
    runner = CliRunner()
    refused = runner.invoke(main, ["audit", "prune", "--home", str(tmp_path)])
    assert refused.exit_code == 2 and "nothing was removed" in refused.output
    done = runner.invoke(main, ["audit", "prune", "--home", str(tmp_path), "--retention", "P365D", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["removed"] == 5
    code, found = verify(tmp_path)
    assert code == 0 and found["anchor"] == 5 and found["records"] == 4  # 3 kept + the prune itself
    with connect(path) as conn:
        kinds = [r["event_type"] for r in trail.rows(conn)]
    assert kinds[-1] == "audit.pruned"
    again = runner.invoke(main, ["audit", "prune", "--home", str(tmp_path), "--retention", "P365D", "--json"])
    assert json.loads(again.output)["removed"] == 0 and verify(tmp_path)[0] == 0
    assert trail.read_head(tmp_path)[0] == 10  # 8 records and two prunes: the head moved with each


POLICY = """apiVersion: phase8/v1
kind: RetentionPolicy
id: ops-retention
description: How long the release tooling keeps its records.
owner: team:security
reviewed: "2026-11-20"
rules:
  - {id: audit, data_class: phase8_audit, max: P30D}
"""


@pytest.mark.parametrize("policy", [True, False], ids=["RetentionPolicy", "phase8.yaml audit.retention"])
def test_prune_takes_its_retention_from_the_evidence_root(policy, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "retention.yaml").write_text(POLICY if policy else POLICY.replace("phase8_audit", "messages"))
    (root / "phase8.yaml").write_text(
        'apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: "1.0.0", commit: abc1234}\n'
        "evidence: {retention_policies: {paths: [retention.yaml], max_age: P365D}}\naudit: {retention: P35D}\n"
    )
    home = tmp_path / "home"
    with connect(warehouse_path(home)) as conn:
        trail.record(conn, [event(i, at=datetime.now(UTC) - timedelta(days=40 - i)) for i in range(20)])
    done = CliRunner().invoke(main, ["audit", "prune", "--home", str(home), "--evidence", str(root), "--json"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.output)
    if policy:
        assert found["retention"] == "P30D" and "RetentionPolicy ops-retention rule audit" in found["source"]
    else:
        assert found["retention"] == "P35D" and found["source"].endswith("phase8.yaml: audit.retention")
    assert found["removed"] == (10 if policy else 5) and verify(home)[0] == 0


def test_the_trail_survives_a_rollback_below_its_migration_and_comes_back_on_upgrade(tmp_path):
    path = warehouse_path(tmp_path)
    conn = duckdb.connect(str(path))
    migrate(conn, trail_version() - 1)
    conn.close()
    backup(path)  # the manifest a rollback to the version before the trail proves itself against
    quiet = lambda _line: None  # noqa: E731
    apply(tmp_path, progress=quiet)
    with connect(path) as conn:
        trail.record(conn, [event(i) for i in range(3)], tmp_path)
    rollback(tmp_path, to=trail_version() - 1, progress=quiet)
    carried = tmp_path / trail.CARRIED
    assert carried.exists()
    code, found = verify(tmp_path)
    assert code == 0 and found["trail"] == str(carried)
    apply(tmp_path, progress=quiet)
    assert not carried.exists()
    code, found = verify(tmp_path)
    assert code == 0 and found["trail"] == str(path)
    with connect(path) as conn:
        kinds = [r["event_type"] for r in trail.rows(conn)]
    assert kinds == ["warehouse.upgrade", *["gate.verdict"] * 3, "warehouse.rollback", "warehouse.upgrade"]
    assert trail.read_head(tmp_path)[0] == 6


@pytest.mark.parametrize(
    ("damage", "line"),
    [
        (lambda text: text + "not json\n", 6),  # a line appended by hand
        (lambda text: text[:-40] + "\n", 5),  # cut short
        (lambda text: text.replace('"seq":2,', "", 1), 2),  # a record without its seq
    ],
    ids=["garbage line", "cut short", "record without seq"],
)
def test_a_damaged_carried_trail_is_reported_tampered_naming_the_line_and_never_written_over(damage, line, tmp_path):
    """``audit verify`` ended in a JSONDecodeError (or KeyError) traceback, and so did every writer
    that reads the carried trail (upgrade apply after migrating, the next gate run)."""
    path = warehouse_path(tmp_path)
    conn = duckdb.connect(str(path))
    migrate(conn, trail_version() - 1)
    conn.close()
    backup(path)
    quiet = lambda _line: None  # noqa: E731
    apply(tmp_path, progress=quiet)
    with connect(path) as conn:
        trail.record(conn, [event(i) for i in range(3)], tmp_path)
    rollback(tmp_path, to=trail_version() - 1, progress=quiet)  # 5 records carried: upgrade, 3 verdicts, rollback
    carried = tmp_path / trail.CARRIED
    carried.write_text(damage(carried.read_text()))
    damaged = carried.read_bytes()
    code, found = verify(tmp_path)
    assert code == 1 and not found["intact"], found
    assert found["problem"].startswith(f"{carried}: line {line}: not a record of the trail ("), found
    result = CliRunner().invoke(main, ["upgrade", "apply", "--home", str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "warehouse.upgrade done (to version" in result.output and f"{carried}: line {line}" in result.output
    assert carried.read_bytes() == damaged  # nothing read past the damage, nothing written over it


def trail_version() -> int:
    from phase8_assets.warehouse.operations import AUDIT_VERSION

    return AUDIT_VERSION


def test_export_since_and_formats(chained):
    runner = CliRunner()
    lines = runner.invoke(main, ["audit", "export", "--home", str(chained.parent)]).output.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]
    ocsf_lines = runner.invoke(main, ["audit", "export", "--home", str(chained.parent), "--format", "ocsf"]).output
    for line in ocsf_lines.splitlines():
        validate(json.loads(line))
    recent = runner.invoke(main, ["audit", "export", "--home", str(chained.parent), "--since", "P1D"]).output
    assert recent == ""  # the records are from AT, long before the last day


def test_the_daily_audit_trail_asset_writes_the_day_and_checks_the_chain(chained, tmp_path):
    import dagster as dg

    from phase8_assets.defs.audit import audit_trail
    from phase8_assets.defs.resources import Warehouse

    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(chained, path)
    resources = {"warehouse": Warehouse(database=str(path))}
    result = dg.materialize([audit_trail], partition_key=f"{AT:%Y-%m-%d}", resources=resources, raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    written = (tmp_path / "audit" / f"{AT:%Y-%m-%d}.ocsf.jsonl").read_text().splitlines()
    assert [json.loads(line)["metadata"]["sequence"] for line in written] == [1, 2, 3, 4, 5, 6]
    conn = duckdb.connect(str(path))
    conn.execute("DELETE FROM audit_events WHERE seq = 2")
    conn.close()
    result = dg.materialize([audit_trail], partition_key=f"{AT:%Y-%m-%d}", resources=resources, raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.description.startswith("record 3:")
