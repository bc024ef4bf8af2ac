"""Run ``release_gate`` in-process and turn its check evaluations into the gate report.

Used by ``phase8 gate``: the same job CI could run with ``dagster job execute``, plus the report
files and the gate run log. A gate whose check produced no evaluation (its step crashed or an
upstream step failed) is reported as ``error``.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import (
    ENDED,
    GATE_PREFIX,
    crash_text,
    emit_blocked,
    failed_step_reason,
    gates_stopped_by,
    record_in_run,
    record_stopped,
    run_tags,
    write_gate_reports,
)
from phase8_assets.defs.observability import TRACED_TAG, trace_run
from phase8_assets.defs.resources import (
    DUCKDB_POOL,
    PROCESS_TAG,
    Warehouse,
    ensure_duckdb_pool,
    free_leaked_slots,
    load_evidence_config,
)
from phase8_assets.defs.scorecard import complete_scorecard, scorecard_folder, scorecard_of_run
from phase8_assets.domains.gate_report import report_folder
from phase8_assets.shared import telemetry
from phase8_assets.shared.audit_events import ACTOR_SOURCE_TAG, ACTOR_TAG, actor_from
from phase8_assets.shared.clock import evaluation_time
from phase8_assets.shared.processes import Interrupted, ProcessIdentity, interruptible
from phase8_assets.shared.reports import os_error_text, write_text
from phase8_assets.warehouse import WarehouseLocked, connect, home_lock, lake_configured, warehouse_path
from phase8_assets.warehouse.health import write_snapshot


class ReportsNotWritten(RuntimeError):
    """The run reached its verdict, but ``--out`` could not take the reports (exit 2: CI has no report)."""


class InstanceUnavailable(RuntimeError):
    """``DAGSTER_HOME``'s instance cannot be opened (invalid ``dagster.yaml``, storage unreachable):
    no run could start, so no verdict (exit 2, naming the instance and its error)."""


@dataclass
class GateOutcome:
    report: dict
    run_id: str
    written: list[Path]

    @property
    def exit_code(self) -> int:
        return 0 if self.report["verdict"] == "pass" else 1


def own_instance() -> bool:
    """Whether ``phase8 gate`` runs on an ephemeral instance of its own (no ``DAGSTER_HOME``): no
    other run, daemon or UI sees it, and the command completes its run itself."""
    return not os.environ.get("DAGSTER_HOME")


def _instance() -> dg.DagsterInstance:
    """The ``DAGSTER_HOME`` instance, or an ephemeral one (``own_instance``). The ephemeral instance's event log is gone
    when the command ends, so it keeps no DEBUG records: about a hundred per run (the I/O manager's
    "Loading file from ..." and "Writing file at ..."), each stored in its in-memory event log
    (~0.1 s a run). Dagster's events and every INFO or higher message are kept."""
    if not own_instance():
        try:
            instance = dg.DagsterInstance.get()
        except Exception as exc:  # Dagster's config or storage errors: the run cannot start
            detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise InstanceUnavailable(
                f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}: the Dagster instance cannot be opened "
                f"({type(exc).__name__}: {detail}); fix its dagster.yaml or storage, or unset DAGSTER_HOME "
                "to run on a temporary instance; no gate was evaluated"
            ) from exc
        ensure_duckdb_pool(instance)
        return instance
    return dg.DagsterInstance.ephemeral(settings={"python_logs": {"python_log_level": "INFO"}})


@contextmanager
def fewer_full_collections(every: int = 100):
    """Python's collector walks every live object in a full collection; after Dagster, plotly, numpy
    and pandas are imported that is most of a second per gate run (six full collections of ~85 ms
    on the demo evidence). During the run a full collection happens after ``every`` younger ones
    instead of 10; the thresholds are restored afterwards. Only cyclic garbage waits longer."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], every))
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def hold_open() -> bool:
    """Whether ``phase8 gate`` keeps the warehouse file open from before its run to the end.

    Every step opens the warehouse; DuckDB loads the file on the first open in a process and
    checkpoints it on the last close, so opening and closing it around each step was a large share
    of a gate run. A connection held open across the run makes each step's open share the loaded
    database. That is right only when no other run can claim the ``duckdb`` pool between this run's
    steps: the ephemeral instance ``_instance`` gives without ``DAGSTER_HOME`` has no other runs, and the home lock keeps
    other writing ``phase8`` commands out. Processes outside Dagster (health app, read-only
    commands) wait for the file with their bounded retry, as they do while any step holds it. A
    DuckLake warehouse is opened per step as before (its write lock must not be held for a run)."""
    return own_instance() and lake_configured() is None


def _waiting_since(instance: dg.DagsterInstance, run_id: str, since: float | None) -> float | None:
    """When the run started waiting for a ``duckdb`` slot (``None``: it is not waiting now)."""
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    claimed = {(s.run_id, s.step_key) for s in info.claimed_slots}
    waiting = any(p.run_id == run_id and (p.run_id, p.step_key) not in claimed for p in info.pending_steps)
    return (since or time.monotonic()) if waiting else None


def _holders(instance: dg.DagsterInstance) -> str:
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    return ", ".join(f"run {s.run_id} step {s.step_key}" for s in info.claimed_slots) or "nobody"


def _stop(worker: threading.Thread, done: threading.Event) -> None:
    """End the run in ``worker`` the way Dagster ends an interrupted run (its steps fail, its queued
    claims are withdrawn): Dagster's in-process executor checks no signal while it waits for a slot.
    The interruption is raised in the worker until it ends (code that swallows it once, such as a
    database driver closing a connection, gets it again).

    Whether it has ended is ``done``, never ``worker.is_alive()``: a signal that interrupts
    ``join()`` in CPython 3.11 can leave the thread marked stopped while it runs on, and it would
    then queue its claim again after the run's claims were withdrawn."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    sqlalchemy = logging.getLogger("sqlalchemy")
    level = sqlalchemy.level
    sqlalchemy.setLevel(logging.CRITICAL)  # a connection closed by the interruption is expected, not news
    try:
        deadline = time.monotonic() + 10
        while not done.is_set() and time.monotonic() < deadline:
            raised = ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(worker.ident), ctypes.py_object(DagsterExecutionInterruptedError)
            )
            if not raised:  # no such thread any more (it ended inside its own ``finally``)
                break
            done.wait(0.2)
    finally:
        sqlalchemy.setLevel(level)


def execute_bounded(job, instance: dg.DagsterInstance, run_config: dict, tags: dict, wait_s: float):
    """``job.execute_in_process`` in a worker thread, watched from this one: slots of dead runs are
    freed as they appear, a wait for the ``duckdb`` pool longer than ``wait_s`` ends the run with
    ``WarehouseLocked``, and SIGINT/SIGTERM (``Interrupted``) end it at once. Either way the run is
    marked failed with the reason and holds no slot."""
    run_id = str(uuid.uuid4())
    tags = {**tags, PROCESS_TAG: ProcessIdentity.current().token()}
    outcome: dict = {}
    done = threading.Event()

    def execute() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                run_config=run_config, instance=instance, raise_on_error=False, run_id=run_id, tags=tags
            )
        except BaseException as exc:  # handed to the watching thread
            outcome["error"] = exc
        finally:
            done.set()

    pooled = instance.event_log_storage.supports_global_concurrency_limits
    if pooled:
        free_leaked_slots(instance)
    worker = threading.Thread(target=execute, name="phase8-release-gate", daemon=True)
    worker.start()
    since = None
    try:
        while not done.wait(0.5):
            if not pooled:
                continue
            free_leaked_slots(instance)
            since = _waiting_since(instance, run_id, since)
            if since is not None and time.monotonic() - since > wait_s:
                raise WarehouseLocked(
                    f"the Dagster pool `{DUCKDB_POOL}` is held by {_holders(instance)} (waited {wait_s:g} s "
                    "for a slot); retry when that run has finished"
                )
    except (WarehouseLocked, Interrupted) as exc:
        _stop(worker, done)
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"phase8 gate: {exc}")
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def missing_reason(result) -> str:
    """Why a gate of a finished ``release_gate`` run has no result: an upstream step failed (each
    named with what it raised), or it did not run."""
    failed = [e for e in result.all_events if e.is_step_failure]
    if not failed:
        return "the gate did not run"
    if len(failed) == 1:
        return failed_step_reason(failed[0].step_key, _raised(failed[0]))
    return "upstream steps failed (" + "; ".join(f"{e.step_key}: {_raised(e)}" for e in failed) + ")"


def record_failed_steps(result, warehouse: Warehouse, config, at, actor) -> None:
    """What ``release_gate``'s failure hook records, for a run executed without it: each failed
    step's gates as ``error`` naming the step and what it raised (``record_stopped``), in the order
    the steps failed. An interrupted step, or a blocking check that failed, records nothing."""
    for event in (e for e in result.all_events if e.is_step_failure and not _ended(e)):
        stopped = gates_stopped_by(event.step_key)
        if stopped:
            record_stopped(warehouse, config, at, result.run_id, event.step_key, stopped, _raised(event), actor)


def _ended(event) -> bool:
    """The step was interrupted, or its blocking check failed (``ENDED``), anywhere in its error chain."""
    error = event.step_failure_data.error
    while error is not None:
        if error.cls_name in ENDED:
            return True
        error = error.cause
    return False


def _raised(event) -> str:
    """What a failed step raised (its user code's error, not Dagster's wrapper of it)."""
    error = event.step_failure_data.error
    while error is not None and error.cls_name and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    return crash_text(error.cls_name or "", error.message or "") if error is not None else ""


def progress_logger(progress: Callable[[str], None]) -> dg.LoggerDefinition:
    """A Dagster logger that reports each step as it starts ("gates/perf_budgets ...")."""

    class StepStarts(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            event = getattr(record, "dagster_meta", {}).get("dagster_event")  # what Dagster attaches to its records
            if event is not None and event.event_type == dg.DagsterEventType.STEP_START:
                step = event.step_key.replace("__", "/")
                gate = step.removeprefix(f"{GATE_PREFIX}/")
                progress(f"evaluating gate {gate} ..." if gate != step else f"loading {step} ...")

    def _init(_context) -> logging.Logger:
        logger = logging.Logger("phase8.progress", logging.DEBUG)
        logger.addHandler(StepStarts())
        return logger

    return dg.LoggerDefinition(_init, description="step-by-step progress of a `phase8 gate` run")


def run_gate(
    evidence: list[str],
    *,
    out: Path | None,
    as_of: str | None,
    home: Path,
    lock_wait_s: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> GateOutcome:
    """Evaluate the release gate on ``evidence``; raise ConfigError / WarehouseError for exit 2.

    The gates record their own results and the reports under ``$PHASE8_HOME/reports/`` as in any
    ``release_gate`` run; this completes the run (a gate that did not report is ``error``), traces it
    and writes the reports to ``out`` too."""
    from phase8_assets.definitions import defs

    config = load_evidence_config(evidence)
    at = evaluation_time(as_of, config.evaluation_time)
    database = warehouse_path(home)
    warehouse = Warehouse(database=str(database))
    with interruptible(), fewer_full_collections(), home_lock(home, lock_wait_s, "phase8 gate"), ExitStack() as held:
        # Creates a fresh warehouse, or refuses one that needs an upgrade; kept open for the run
        # when nothing else can want the file between its steps (``hold_open``).
        held.enter_context(connect(database))
        if not hold_open():
            held.close()
        run_config = {
            "resources": {
                "settings": {"config": {"evidence": evidence, "as_of": as_of}},
                "warehouse": {"config": {"database": str(database)}},
            },
            "loggers": {"progress": {}} if progress else {"console": {"config": {"log_level": "CRITICAL"}}},
        }
        telemetry.use_home(home)
        with _instance() as instance:  # disposed here, not whenever (and in whichever thread) it is collected
            job = defs.resolve_job_def("release_gate")
            unhooked = own_instance()
            if unhooked:  # the failure hook's work is done below, once the run is over (``record_failed_steps``)
                job = job._copy(hook_defs=frozenset())  # no HookContext and HOOK_SKIPPED event for every step
            if progress:
                job = job.with_logger_defs({"progress": progress_logger(progress)})
            actor = actor_from(os.environ)
            tags = {TRACED_TAG: "true", ACTOR_TAG: actor.name, ACTOR_SOURCE_TAG: actor.source, **run_tags(config)}
            result = execute_bounded(job, instance, run_config, tags, lock_wait_s)
            if unhooked:
                record_failed_steps(result, warehouse, config, at, actor)
            reason = missing_reason(result)
            report, missing = record_in_run(warehouse, result.run_id, [], config, at, reason, final=True, actor=actor)
            trace_run(
                instance,
                result.run_id,
                {
                    "phase8.verdict": report["verdict"],
                    "phase8.release.version": str(config.release.get("version", "")),
                    "phase8.release.commit": str(config.release.get("commit", "")),
                    "deployment.environment.name": str(config.release.get("environment", "")),
                },
            )
        for gate in report["gates"]:
            if gate["gate"] in missing and gate["blocking"]:  # a warn-level gate blocks nothing
                emit_blocked(gate, result.run_id)
        written = write_gate_reports(warehouse.reports_dir / report_folder(report), report)
        if missing:  # this step completed the run: no gate's step rendered the scorecard with its statuses
            complete_scorecard(warehouse.reports_dir, config.root_uris, report)
        held.close()  # the snapshot opens the file read-only, which DuckDB refuses beside a read-write connection
        write_snapshot(home, "gate", 0 if report["verdict"] == "pass" else 1)
    if out is not None:
        kept = written[0].parent
        try:
            written = write_gate_reports(out, report)
            # The program scorecard beside the gate report, for a CI summary: this run's, never an earlier one.
            folder = scorecard_folder(warehouse.reports_dir, config.root_uris)
            written.append(write_text(out / "program-scorecard.md", scorecard_of_run(folder, result.run_id, reason)))
        except OSError as exc:
            telemetry.flush()
            raise ReportsNotWritten(
                f"--out {out}: cannot write the reports: {os_error_text(exc, out)}; the verdict "
                f"({report['verdict']}) is recorded and its reports are in {kept}"
            ) from None
    telemetry.flush()
    return GateOutcome(report, result.run_id, written)
