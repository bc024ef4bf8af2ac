"""Run ``release_gate`` in-process and turn its check evaluations into the gate report.

Used by ``phase8 gate``: the same job CI could run with ``dagster job execute``, plus the report
files and the gate run log. A gate whose check produced no evaluation (its step crashed or an
upstream step failed) is reported as ``error``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import GATE_PREFIX, emit_blocked, record_in_run, run_tags, write_gate_reports
from phase8_assets.defs.observability import TRACED_TAG, trace_run
from phase8_assets.defs.resources import Warehouse, ensure_duckdb_pool, load_evidence_config
from phase8_assets.domains.gate_report import report_folder
from phase8_assets.shared import telemetry
from phase8_assets.shared.clock import evaluation_time
from phase8_assets.warehouse import WarehouseLocked, connect, warehouse_path
from phase8_assets.warehouse.health import write_snapshot


@dataclass
class GateOutcome:
    report: dict
    run_id: str
    written: list[Path]

    @property
    def exit_code(self) -> int:
        return 0 if self.report["verdict"] == "pass" else 1


@contextmanager
def exclusive_home(home: Path, wait_s: float):
    """One ``phase8 gate`` per home at a time; the second waits ``wait_s`` then gives up."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "gate.lock", "a+") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(
                        f"{home}: another `phase8 gate` is running on this PHASE8_HOME (waited {wait_s:g} s); "
                        "retry when it has finished, or use a separate PHASE8_HOME"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        instance = dg.DagsterInstance.get()
        ensure_duckdb_pool(instance)
        return instance
    return dg.DagsterInstance.ephemeral()


def missing_reason(result) -> str:
    """Why a gate of a finished ``release_gate`` run has no result: an upstream step failed, or it did not run."""
    failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
    return f"upstream step failed ({', '.join(failed_steps)})" if failed_steps else "the gate did not run"


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
    with exclusive_home(home, lock_wait_s):
        with connect(database):  # creates a fresh warehouse, or refuses one that needs an upgrade
            pass
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
            if progress:
                job = job.with_logger_defs({"progress": progress_logger(progress)})
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                raise_on_error=False,
                tags={TRACED_TAG: "true", **run_tags(config)},
            )
            reason = missing_reason(result)
            report, missing = record_in_run(warehouse, result.run_id, [], config, at, reason, final=True)
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
            if gate["gate"] in missing:
                emit_blocked(gate, result.run_id)
        written = write_gate_reports(warehouse.reports_dir / report_folder(report), report)
        write_snapshot(home, "gate", 0 if report["verdict"] == "pass" else 1)
    if out is not None:
        written = write_gate_reports(out, report)
    telemetry.flush()
    return GateOutcome(report, result.run_id, written)
