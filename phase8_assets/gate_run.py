"""Run ``release_gate`` in-process and turn its check evaluations into the gate report.

Used by ``phase8 gate``: the same job CI could run with ``dagster job execute``, plus the report
files and the gate run log. A gate whose check produced no evaluation (its step crashed or an
upstream step failed) is reported as ``error``.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import RESULT_KEY
from phase8_assets.defs.observability import TRACED_TAG, trace_run
from phase8_assets.defs.resources import ensure_duckdb_pool, load_evidence_config
from phase8_assets.domains.gate_report import build_report, report_sections, title_of, to_json, to_junit, to_markdown
from phase8_assets.domains.gates import GATES, GateResult, errored
from phase8_assets.shared import telemetry
from phase8_assets.shared.clock import evaluation_time, now_utc
from phase8_assets.shared.reports import write_html, write_text
from phase8_assets.warehouse import WarehouseLocked, connect, warehouse_path
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
    with exclusive_home(home, lock_wait_s):
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
            result = job.execute_in_process(
                run_config=run_config, instance=instance, raise_on_error=False, tags={TRACED_TAG: "true"}
            )
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
