"""Killed runs, leaked pool slots, waits that end: real processes, real SIGKILL, real Dagster storage.

Each trial kills ``phase8 gate`` (or ``phase8 upgrade apply``) with SIGKILL at a random moment of one
writing step, then proves the home sound: the warehouse opens at a schema that matches its version,
no lock is held, every slot left is recognised as leaked, and the next ``phase8 gate`` completes
within ``--lock-wait`` plus its own time with the report of a clean run.
"""

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.defs.resources import DUCKDB_POOL, PROCESS_TAG, free_leaked_slots, leaked_slots
from phase8_assets.shared.processes import ProcessIdentity
from phase8_assets.warehouse import LOCK_FILE, audit, connect, current_version, latest_version, migrate, warehouse_path
from phase8_assets.warehouse.operations import describe, expected_schema, schema_fingerprint
from phase8_assets_tests.conftest import DATA, env_without_pytest

pytestmark = pytest.mark.slow

PHASE8 = str(Path(sys.executable).with_name("phase8"))
LOCK_WAIT_S = 5
# Writing steps of release_gate: evidence ingest, bulk loads (FOCUS costs, OTLP points), history
# writes (benchmarks, drill runs); "recording" is the gate run log written after the job.
GATE_STEPS = ["evidence_files", "cost_line_items", "sli_series", "benchmark_runs", "drill_journals", "recording"]
# The default run: one step of each kind (about 15 s a trial on an idle machine); all of them, many
# times over, under `-m exhaustive`.
DEFAULT_STEPS = ["evidence_files", "cost_line_items", "benchmark_runs", "recording"]

# A process that holds a `duckdb` slot the way a Dagster step does, until it is killed.
HOLD_SLOT = """
import sys, time, uuid
import dagster as dg
from phase8_assets.defs.resources import DUCKDB_POOL, PROCESS_TAG, ensure_duckdb_pool
from phase8_assets.shared.processes import ProcessIdentity
instance = dg.DagsterInstance.get()
ensure_duckdb_pool(instance)
run_id = str(uuid.uuid4())
tags = {PROCESS_TAG: ProcessIdentity.current().token()}
instance.add_run(dg.DagsterRun(job_name="release_gate", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags))
assert instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, run_id, "evidence_files").is_claimed
print(run_id, flush=True)
time.sleep(600)
"""


def _env(home: Path, dagster_home: Path) -> dict:
    return {**env_without_pytest(), "PHASE8_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}


def _slot_holder(env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SLOT], stdout=subprocess.PIPE, text=True, env=env)
    return proc, proc.stdout.readline().strip()


def _comparable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "run_id"}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> tuple[dict, float]:
    """A clean run's report on a fresh home, and how long the whole command took."""
    out = tmp_path_factory.mktemp("clean")
    env = {**env_without_pytest(), "PHASE8_HOME": str(out / "home"), "OTEL_SDK_DISABLED": "true"}
    env.pop("DAGSTER_HOME", None)
    started = time.monotonic()
    done = subprocess.run([PHASE8, "gate", "--evidence", str(DATA), "--out", str(out)], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return _comparable(json.loads((out / "gate-report.json").read_text())), time.monotonic() - started


def test_a_slot_of_a_dead_process_is_leaked_and_a_recycled_pid_is_not_its_holder(dagster_home, tmp_path):
    instance = dg.DagsterInstance.get()
    holder, run_id = _slot_holder(_env(tmp_path / "home", dagster_home))
    try:
        assert leaked_slots(instance) == []  # alive: its slot is its own
        me = ProcessIdentity.current()
        assert me.alive() and ProcessIdentity(me.host, me.pid, me.started + 1, me.boot).alive() is False
    finally:
        holder.kill()
        holder.wait()
    (slot,) = leaked_slots(instance)
    assert (slot.pool, slot.run_id, slot.state) == (DUCKDB_POOL, run_id, "claimed")
    assert f"process {holder.pid} on" in slot.reason and "is no longer alive" in slot.reason
    preflight = CliRunner().invoke(main, ["upgrade", "preflight", "--home", str(tmp_path / "home")])
    assert preflight.exit_code == 1
    assert f"FAIL  no Dagster pool slot held by a dead run: pool duckdb: claimed by run {run_id}" in preflight.output
    assert free_leaked_slots(instance) == [slot]
    preflight = CliRunner().invoke(main, ["upgrade", "preflight", "--home", str(tmp_path / "home")])
    assert "ok    no Dagster pool slot held by a dead run: none" in preflight.output
    assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []
    run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "phase8 freed this run's concurrency slots" in failure.message and "is no longer alive" in failure.message


def test_any_in_process_run_frees_a_dead_runs_slot_before_it_claims_one(dagster_home, tmp_path):
    """Runs launched from the UI, a schedule or `dagster job execute` do not hang either."""
    import threading

    from phase8_assets.definitions import defs

    instance = dg.DagsterInstance.get()
    holder, holder_run = _slot_holder(_env(tmp_path / "home", dagster_home))
    holder.kill()
    holder.wait()
    run_config = {
        "resources": {
            "settings": {"config": {"evidence": [str(DATA)]}},
            "warehouse": {"config": {"database": str(warehouse_path(tmp_path / "home"))}},
        }
    }
    job = defs.resolve_job_def("ingest_evidence_job")
    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(result=job.execute_in_process(run_config=run_config, instance=instance)),
        daemon=True,  # the old code spun forever here: the test must fail, not hang
    )
    worker.start()
    worker.join(600)
    assert not worker.is_alive() and outcome["result"].success
    assert instance.get_run_by_id(holder_run).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []


def _waiting_gate(env: dict, lock_wait: float, is_waiting) -> subprocess.Popen:
    proc = subprocess.Popen(
        [PHASE8, "gate", "--evidence", str(DATA), "--lock-wait", str(lock_wait)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not is_waiting(proc):
        assert proc.poll() is None and time.monotonic() < deadline, "the gate never started waiting"
        time.sleep(0.05)
    return proc


def _waiting_for_a_slot(instance, holder_run: str):
    def check(_proc) -> bool:
        pending = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).pending_steps
        return any(p.run_id != holder_run for p in pending)

    return check


def _holds_open(path: Path):
    def check(proc) -> bool:
        fds = Path(f"/proc/{proc.pid}/fd")
        try:
            return any(os.path.realpath(fd) == str(path) for fd in fds.iterdir())
        except OSError:
            return False

    return check


# A signal lands where a library catches it: SQLAlchemy's pool logs an exception raised while a
# connection is returned and re-raises it; a ``__del__`` cannot pass it on at all.
LANDS_IN = {
    "a library that logs it and re-raises": """
import logging
log = logging.getLogger("sqlalchemy.pool.impl.QueuePool")
def wait():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except BaseException:
        log.error("Exception during reset or similar", exc_info=True)
        raise
""",
    "a finaliser": """
class Finalised:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(100_000))  # the handler runs here, where Python can only print what it raises
def wait():
    Finalised()
    time.sleep(5)
""",
}


@pytest.mark.parametrize("where", LANDS_IN)
def test_a_signal_that_lands_in_library_code_still_ends_the_wait_with_nothing_printed(where):
    script = f"""
import os, signal, time
from phase8_assets.shared.processes import Interrupted, interruptible
{LANDS_IN[where]}
started = time.monotonic()
try:
    with interruptible():
        wait()
    print("not interrupted")
except Interrupted as exc:
    print(exc, round(time.monotonic() - started))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.stdout, done.stderr) == ("interrupted by SIGTERM 0\n", "")


def test_signals_and_lock_wait_end_a_wait_for_a_slot_with_exit_2_and_one_line(dagster_home, tmp_path):
    instance = dg.DagsterInstance.get()
    env = _env(tmp_path / "home", dagster_home)
    holder, holder_run = _slot_holder(env)  # alive: a real holder, not a leak
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            gate = _waiting_gate(env, 300, _waiting_for_a_slot(instance, holder_run))
            sent = time.monotonic()
            gate.send_signal(sig)
            out, err = gate.communicate(timeout=30)
            assert gate.returncode == 2 and time.monotonic() - sent < 15, (sig, err[-2000:])
            assert err.count("\n") == 1 and err.startswith(f"phase8: error: interrupted by {sig.name}"), err
            left = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).pending_steps
            assert [(p.run_id, p.step_key) for p in left if p.run_id != holder_run] == [], sig  # nothing queued again
        bounded = _waiting_gate(env, 2, lambda p: True)
        out, err = bounded.communicate(timeout=120)
        assert bounded.returncode == 2 and err.count("\n") == 1, err
        assert f"pool `duckdb` is held by run {holder_run} step evidence_files (waited 2 s" in err
        info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
        assert [s.run_id for s in info.claimed_slots] == [holder_run] and info.pending_steps == [
            p for p in info.pending_steps if p.run_id == holder_run
        ]
        stopped = [r for r in instance.get_runs() if r.run_id != holder_run]
        assert len(stopped) == 3 and all(r.status == dg.DagsterRunStatus.FAILURE for r in stopped)
    finally:
        holder.kill()
        holder.wait()


def _history_counts(home: Path) -> dict[str, int]:
    """Row counts of every warehouse table but the gate run log and the audit trail (one row per run)."""
    from phase8_assets.warehouse.store import table_counts

    with connect(warehouse_path(home)) as conn:
        counts = table_counts(conn)
    return {t: n for t, n in counts.items() if not t.startswith(("gate_run", "audit"))}


# Three whole runs at once and three again one after another: about a minute on an idle two-core
# machine, beyond the default suite's budget.
@pytest.mark.exhaustive
def test_a_scheduled_run_a_sensor_run_and_ci_at_once_serialise_and_store_what_one_after_another_does(
    dagster_home, tmp_path
):
    """The monthly drill reminder (its schedule's tick), the new-evidence sensor's ingest run and CI's
    `phase8 gate`, started together as three processes on one PHASE8_HOME and one Dagster instance:
    they take turns on the `duckdb` pool and the home lock, each ends 0 (or 2 with a message that says
    to retry, and then a retry ends 0), and the warehouse holds exactly the rows the same three runs
    leave when they run one after another: nothing lost, nothing doubled."""
    from phase8_assets.definitions import defs
    from phase8_assets.defs.drills import drill_cadence_reminder
    from phase8_assets.defs.reports import new_evidence
    from phase8_assets.defs.resources import Phase8Settings, Warehouse
    from phase8_assets.gate_run import run_gate

    instance = dg.DagsterInstance.get()
    settings = Phase8Settings(evidence=[str(DATA)])
    tick = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 12, 1, 7, tzinfo=UTC),
        resources={"settings": settings},
    )
    (scheduled,) = drill_cadence_reminder.evaluate_tick(tick).run_requests
    (sensed,) = new_evidence(dg.build_sensor_context(instance=instance, resources={"settings": settings})).run_requests
    (tmp_path / "scheduled.yaml").write_text(json.dumps(scheduled.run_config))
    dagster = str(Path(sys.executable).with_name("dagster"))
    commands = {
        "schedule": [dagster, "job", "execute", "-m", "phase8_assets.definitions", "-j", "drill_cadence_job",
                     "-c", str(tmp_path / "scheduled.yaml"), "--tags", json.dumps(scheduled.tags)],
        "sensor": [dagster, "job", "execute", "-m", "phase8_assets.definitions", "-j", "ingest_evidence_job",
                   "--tags", json.dumps(sensed.tags)],
        "ci": [PHASE8, "gate", "--evidence", str(DATA), "--lock-wait", "300"],
    }  # fmt: skip
    home = tmp_path / "home"
    env = {**_env(home, dagster_home), "PHASE8_EVIDENCE": str(DATA), "OTEL_SDK_DISABLED": "true"}
    procs = {name: subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for name, cmd in commands.items()}  # fmt: skip
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        if proc.returncode == 2:  # refused while another held the warehouse: it must say so, and a retry works
            assert "retry" in err and err.count("\n") == 1, (name, err[-2000:])
            retried = subprocess.run(commands[name], env=env, cwd=tmp_path, capture_output=True, text=True)
            assert retried.returncode == 0, (name, retried.stderr[-2000:])
        else:
            assert proc.returncode == 0, (name, err[-3000:])
    runs = instance.get_runs()
    assert {r.job_name for r in runs} == {"drill_cadence_job", "ingest_evidence_job", "release_gate"}
    assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []

    alone = tmp_path / "one-after-another"
    resources = {"settings": settings, "warehouse": Warehouse(database=str(warehouse_path(alone)))}
    for job, request in (("drill_cadence_job", scheduled), ("ingest_evidence_job", sensed)):
        result = defs.resolve_job_def(job).execute_in_process(
            run_config={k: v for k, v in (request.run_config or {}).items() if k != "resources"},
            resources={**resources, "settings": Phase8Settings(**{"evidence": [str(DATA)],
                       **(request.run_config or {}).get("resources", {}).get("settings", {}).get("config", {})})},
            instance=dg.DagsterInstance.ephemeral(), tags=request.tags,
        )  # fmt: skip
        assert result.success, job
    run_gate([str(DATA)], out=None, as_of=None, home=alone)
    assert _history_counts(home) == _history_counts(alone)


def test_a_signal_during_the_wait_for_the_home_lock_ends_it_with_exit_2(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**env_without_pytest(), "PHASE8_HOME": str(home)}
    with open(home / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps({"command": "phase8 gate", "process": ProcessIdentity.current().token()}))
        fh.flush()
        for sig in (signal.SIGINT, signal.SIGTERM):
            gate = _waiting_gate(env, 300, _holds_open(home / LOCK_FILE))
            time.sleep(0.3)
            gate.send_signal(sig)
            out, err = gate.communicate(timeout=30)
            assert gate.returncode == 2 and err.count("\n") == 1 and f"interrupted by {sig.name}" in err, err
        bounded = subprocess.run([PHASE8, "gate", "--evidence", str(DATA), "--lock-wait", "1"], env=env,
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bounded.returncode == 2
    assert f"another `phase8 gate` (process {os.getpid()} on" in bounded.stderr and "(waited 1 s)" in bounded.stderr


def _kill_gate_during(step: str, rng: random.Random, env: dict, instance) -> int:
    """Start ``phase8 gate``; SIGKILL it a random moment into ``step`` (holding its slot), or just
    after its Dagster run ended (``recording``). Returns the exit status."""
    proc = subprocess.Popen([PHASE8, "gate", "--evidence", str(DATA)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if step == "recording":
            mine = [r for r in instance.get_runs(limit=3) if (ProcessIdentity.parse(r.tags.get(PROCESS_TAG)) or 0) and
                    ProcessIdentity.parse(r.tags[PROCESS_TAG]).pid == proc.pid]  # fmt: skip
            hit = any(r.is_finished for r in mine)
        else:
            hit = any(
                s.step_key == step for s in instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots
            )
        if hit:
            time.sleep(rng.uniform(0, 0.25))
            proc.kill()
            break
        time.sleep(0.05)  # each look reads the instance's storage: a tighter loop takes the CPU the run needs
    return proc.wait(timeout=60)


def _assert_sound(home: Path, instance) -> None:
    """The warehouse opens and matches its recorded version, the home lock is free, and every slot
    still claimed belongs to a run the product recognises as dead."""
    with connect(warehouse_path(home), check_schema=False, wait_s=5) as conn:
        version = current_version(conn)
        assert schema_fingerprint(conn) == expected_schema(version)
        describe(conn)
        intact = audit.verify(conn)  # a killed run leaves whole audit records or none
        assert intact.ok, intact.problem
    with open(home / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fh, fcntl.LOCK_UN)
    claimed = {s.run_id for s in instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots}
    assert claimed <= {slot.run_id for slot in leaked_slots(instance)}


def _next_run_matches(home: Path, env: dict, clean: tuple[dict, float], instance, out: Path) -> None:
    report, clean_s = clean
    # Whatever the killed run left (a slot, a lock) would make this one wait past --lock-wait and exit 2,
    # or hang into the timeout; how long it took otherwise says nothing a loaded machine does not vary.
    done = subprocess.run([PHASE8, "gate", "--evidence", str(DATA), "--lock-wait", str(LOCK_WAIT_S), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=LOCK_WAIT_S + 10 * clean_s + 60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert _comparable(json.loads((out / "gate-report.json").read_text())) == report
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    assert info.claimed_slots == [] and info.pending_steps == []


def _gate_trials(steps: list[str], seed: int, clean, dagster_home: Path, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.get()
    home = tmp_path / "home"  # reused by every trial: a reused home must give a fresh home's report
    env = _env(home, dagster_home)
    rng = random.Random(seed)
    for n, step in enumerate(steps):
        status = _kill_gate_during(step, rng, env, instance)
        assert status == -signal.SIGKILL or (step == "recording" and status == 0), (step, status)
        _assert_sound(home, instance)
        _next_run_matches(home, env, clean, instance, tmp_path / f"out-{n}")
    killed = [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE]
    assert all("phase8 freed this run's concurrency slots" in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1].message
               for r in killed)  # fmt: skip


def _upgrade_trials(trials: int, seed: int, tmp_path: Path, clean) -> None:
    rng = random.Random(seed)
    for n in range(trials):
        home = tmp_path / f"upgrade-{n}"
        with connect(warehouse_path(home)) as conn:
            migrate(conn, 4)
        env = {**env_without_pytest(), "PHASE8_HOME": str(home)}
        proc = subprocess.Popen([PHASE8, "upgrade", "apply"], stdout=subprocess.PIPE, text=True, env=env)
        lines = iter(proc.stdout.readline, "")
        next(lines)  # the backup: migrations start now
        time.sleep(rng.uniform(0, 0.5))
        proc.kill()
        proc.wait(timeout=60)
        with connect(warehouse_path(home), check_schema=False) as conn:
            version = current_version(conn)
            assert schema_fingerprint(conn) == expected_schema(version), (n, version)
        done = subprocess.run([PHASE8, "upgrade", "apply"], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        with connect(warehouse_path(home)) as conn:
            assert current_version(conn) == latest_version()
    out = tmp_path / "after-upgrade"
    done = subprocess.run([PHASE8, "gate", "--evidence", str(DATA), "--out", str(out)], capture_output=True, text=True,
                          env={**env_without_pytest(), "PHASE8_HOME": str(home)}, timeout=600)  # fmt: skip
    assert done.returncode == 0 and _comparable(json.loads((out / "gate-report.json").read_text())) == clean[0]


def test_sigkill_during_each_writing_step_leaves_a_home_the_next_run_uses(clean_run, dagster_home, tmp_path):
    _gate_trials(DEFAULT_STEPS, 16, clean_run, dagster_home, tmp_path)


def test_sigkill_during_upgrade_apply_at_random_moments(clean_run, tmp_path):
    _upgrade_trials(4, 16, tmp_path, clean_run)


@pytest.mark.exhaustive
@pytest.mark.parametrize("seed", range(5))
def test_sigkill_trials_exhaustive(seed, clean_run, dagster_home, tmp_path):
    _gate_trials(GATE_STEPS * 3, 1000 + seed, clean_run, dagster_home, tmp_path)
    _upgrade_trials(8, 1000 + seed, tmp_path, clean_run)


def test_sigkill_while_the_warehouse_is_created_leaves_a_fresh_home(tmp_path):
    """A first run killed mid-creation leaves no half-created schema that would need an upgrade."""
    rng = random.Random(8)
    for n in range(10):
        home = tmp_path / f"fresh-{n}"
        env = {**env_without_pytest(), "PHASE8_HOME": str(home)}
        code = f"from phase8_assets.warehouse import connect\nwith connect({str(warehouse_path(home))!r}): pass"
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        while not warehouse_path(home).exists() and proc.poll() is None:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.08))
        proc.kill()
        proc.wait()
        with connect(warehouse_path(home)) as conn:  # created, or finished creating, at the latest version
            assert current_version(conn) == latest_version()
