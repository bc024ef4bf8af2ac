"""Run ``release_gate`` in-process and turn its check evaluations into the gate report.

Used by ``phase8 gate``: the same job CI could run with ``dagster job execute``, plus the report
files and the gate run log. A gate whose check produced no evaluation (its step crashed or an
upstream step failed) is reported as ``error``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import RESULT_KEY
from phase8_assets.defs.observability import TRACED_TAG, trace_run
from phase8_assets.defs.resources import (
    DUCKDB_POOL,
    PROCESS_TAG,
    ensure_duckdb_pool,
    free_leaked_slots,
    load_evidence_config,
)
from phase8_assets.domains.gate_report import build_report, report_sections, title_of, to_json, to_junit, to_markdown
from phase8_assets.domains.gates import GATES, GateResult, errored
from phase8_assets.shared import telemetry
from phase8_assets.shared.clock import evaluation_time, now_utc
from phase8_assets.shared.processes import Interrupted, ProcessIdentity, interruptible
from phase8_assets.shared.reports import write_html, write_text
from phase8_assets.warehouse import WarehouseLocked, connect, home_lock, warehouse_path
from phase8_assets.warehouse.health import write_snapshot
from phase8_assets.warehouse.store import record_gate_run

REPORT_FILES = ("gate-report.json", "gate-report.xml", "gate-report.md", "gate-report.html")


@dataclass
class GateOutcome:
    report: dict
    run_id: str
    written: list[Path]

    @property
    def exit_code(self) -> int:
        return 0 if self.report["verdict"] == "pass" else 1


def _instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        instance = dg.DagsterInstance.get()
        ensure_duckdb_pool(instance)
        return instance
    return dg.DagsterInstance.ephemeral()


def _waiting_since(instance: dg.DagsterInstance, run_id: str, since: float | None) -> float | None:
    """When the run started waiting for a ``duckdb`` slot (``None``: it is not waiting now)."""
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    claimed = {(s.run_id, s.step_key) for s in info.claimed_slots}
    waiting = any(p.run_id == run_id and (p.run_id, p.step_key) not in claimed for p in info.pending_steps)
    return (since or time.monotonic()) if waiting else None


def _holders(instance: dg.DagsterInstance) -> str:
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    return ", ".join(f"run {s.run_id} step {s.step_key}" for s in info.claimed_slots) or "nobody"


def _stop(worker: threading.Thread) -> None:
    """End the run in ``worker`` the way Dagster ends an interrupted run (its steps fail, its queued
    claims are withdrawn): Dagster's in-process executor checks no signal while it waits for a slot.
    The interruption is raised in the worker until it ends (code that swallows it once, such as a
    database driver closing a connection, gets it again)."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    sqlalchemy = logging.getLogger("sqlalchemy")
    level = sqlalchemy.level
    sqlalchemy.setLevel(logging.CRITICAL)  # a connection closed by the interruption is expected, not news
    try:
        deadline = time.monotonic() + 10
        while worker.is_alive() and time.monotonic() < deadline:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(worker.ident), ctypes.py_object(DagsterExecutionInterruptedError)
            )
            worker.join(0.2)
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

    def execute() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                run_config=run_config, instance=instance, raise_on_error=False, run_id=run_id, tags=tags
            )
        except BaseException as exc:  # handed to the watching thread
            outcome["error"] = exc

    pooled = instance.event_log_storage.supports_global_concurrency_limits
    if pooled:
        free_leaked_slots(instance)
    worker = threading.Thread(target=execute, name="phase8-release-gate", daemon=True)
    worker.start()
    since = None
    try:
        while worker.is_alive():
            worker.join(0.5)
            if not pooled or not worker.is_alive():
                continue
            free_leaked_slots(instance)
            since = _waiting_since(instance, run_id, since)
            if since is not None and time.monotonic() - since > wait_s:
                raise WarehouseLocked(
                    f"the Dagster pool `{DUCKDB_POOL}` is held by {_holders(instance)} (waited {wait_s:g} s "
                    "for a slot); retry when that run has finished"
                )
    except (WarehouseLocked, Interrupted) as exc:
        _stop(worker)
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"phase8 gate: {exc}")
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def gate_results(result) -> list[GateResult]:
    """Every known gate's result from a ``release_gate`` run; a gate without one is ``error``."""
    found = {}
    for evaluation in result.get_asset_check_evaluations():
        payload = evaluation.metadata.get(RESULT_KEY)
        if payload is not None and evaluation.check_name in GATES:
            found[evaluation.check_name] = GateResult.from_dict(payload.data)
    failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
    reason = f"upstream step failed ({', '.join(failed_steps)})" if failed_steps else "the gate did not run"
    return [found.get(name) or errored(spec, reason) for name, spec in GATES.items()]


def emit_blocked(gate: dict, report: dict) -> None:
    """A ``phase8.gate.blocked`` event carrying the gate's first error finding (redacted by the helper)."""
    finding = next((f for f in gate["findings"] if f["severity"] == "error"), None) or {}
    attributes = {
        "cicd.pipeline.name": "release_gate",
        "cicd.pipeline.run.id": report["run_id"],
        "phase8.gate": gate["gate"],
        "phase8.gate.status": gate["status"],
        "phase8.gate.summary": gate["summary"],
    }
    for key in ("subject", "rule", "observed", "limit", "evidence", "owner", "runbook"):
        if finding.get(key) is not None:
            attributes[f"phase8.finding.{key}"] = finding[key]
    telemetry.emit_event("phase8.gate.blocked", attributes, body=f"{gate['gate']}: {gate['summary']}")


def run_gate(
    evidence: list[str], *, out: Path | None, as_of: str | None, home: Path, lock_wait_s: float = 60.0
) -> GateOutcome:
    """Evaluate the release gate on ``evidence``; raise ConfigError / WarehouseError for exit 2."""
    from phase8_assets.definitions import defs

    config = load_evidence_config(evidence)
    at = evaluation_time(as_of, config.evaluation_time)
    database = warehouse_path(home)
    with interruptible(), home_lock(home, lock_wait_s, "phase8 gate"):
        with connect(database):  # creates a fresh warehouse, or refuses one that needs an upgrade
            pass
        run_config = {
            "resources": {
                "settings": {"config": {"evidence": evidence, "as_of": as_of}},
                "warehouse": {"config": {"database": str(database)}},
            },
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
        }
        telemetry.use_home(home)
        with _instance() as instance:  # disposed here, not whenever (and in whichever thread) it is collected
            job = defs.resolve_job_def("release_gate")
            result = execute_bounded(job, instance, run_config, {TRACED_TAG: "true"}, lock_wait_s)
            report = build_report(gate_results(result), config.release, config.root_uris, at, result.run_id)
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
            if gate["blocking"] and gate["status"] in ("fail", "error"):
                emit_blocked(gate, report)
        with connect(database) as conn:
            record_gate_run(conn, result.run_id, report, now_utc())
        write_snapshot(home, "gate", 0 if report["verdict"] == "pass" else 1)
    written = []
    if out is not None:
        title, subtitle = title_of(report)
        written = [
            write_text(out / "gate-report.json", to_json(report)),
            write_text(out / "gate-report.xml", to_junit(report)),
            write_text(out / "gate-report.md", to_markdown(report)),
            write_html(out / "gate-report.html", title, report_sections(report), subtitle),
        ]
    telemetry.flush()
    return GateOutcome(report, result.run_id, written)
