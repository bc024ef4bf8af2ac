"""OpenTelemetry for Dagster runs: every ``release_gate`` run becomes a trace, failed runs raise an
incident event. Built from the run's own event log, so a run launched from the UI, the CLI or
``phase8 gate`` is traced the same way."""

import dagster as dg

from phase8_assets.defs.gates import RESULT_KEY
from phase8_assets.defs.jobs import release_gate
from phase8_assets.shared import telemetry

TRACED_TAG = "phase8/traced"  # set on runs already traced by the process that ran them
_STEP_RESULT = {
    dg.DagsterEventType.STEP_SUCCESS: "success",
    dg.DagsterEventType.STEP_FAILURE: "failure",
    dg.DagsterEventType.STEP_SKIPPED: "skip",
}


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def trace_run(instance: dg.DagsterInstance, run_id: str, attributes: dict | None = None) -> str | None:
    """Write one trace for a finished run: a root span, a span per step (asset) and per check.

    Attributes follow the semantic conventions where one exists (``cicd.pipeline.*``,
    ``test.case.*``); ours are under ``phase8.``. Returns the trace id (hex); None when the run is
    unknown or telemetry is off (``OTEL_SDK_DISABLED``), and then its events are not even read."""
    from opentelemetry import trace

    if telemetry.disabled():
        return None
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    entries = instance.all_logs(run_id)
    run_start = run_end = None
    result = "success"
    steps: dict[str, dict] = {}
    checks: list[dict] = []
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        t = entry.timestamp
        kind = event.event_type
        if kind in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_STARTING) and run_start is None:
            run_start = t
        elif kind in (
            dg.DagsterEventType.RUN_SUCCESS,
            dg.DagsterEventType.RUN_FAILURE,
            dg.DagsterEventType.RUN_CANCELED,
        ):
            run_end = t
            result = {dg.DagsterEventType.RUN_SUCCESS: "success", dg.DagsterEventType.RUN_FAILURE: "failure"}.get(
                kind, "cancellation"
            )
        elif kind == dg.DagsterEventType.STEP_START:
            steps.setdefault(event.step_key, {})["start"] = t
        elif kind in _STEP_RESULT:
            step = steps.setdefault(event.step_key, {"start": t})
            step.update(end=t, result=_STEP_RESULT[kind])
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            gate = evaluation.metadata.get(RESULT_KEY)
            checks.append(
                {
                    "step": event.step_key,
                    "time": t,
                    "name": evaluation.check_name,
                    "passed": evaluation.passed,
                    "gate_status": gate.data.get("status") if gate is not None else None,
                }
            )
    first = min([s.get("start", t) for s in steps.values()] + [run_start or entries[0].timestamp])
    last = max([s.get("end", first) for s in steps.values()] + [run_end or entries[-1].timestamp])
    tracer = telemetry.tracer()
    root = tracer.start_span(
        run.job_name,
        start_time=_ns(first),
        attributes={
            "cicd.pipeline.name": run.job_name,
            "cicd.pipeline.run.id": run_id,
            "cicd.pipeline.result": result,
            **(attributes or {}),
        },
    )
    ctx = trace.set_span_in_context(root)
    for key, step in sorted(steps.items(), key=lambda kv: kv[1].get("start", 0)):
        span = tracer.start_span(
            key,
            context=ctx,
            start_time=_ns(step.get("start", first)),
            attributes={
                "cicd.pipeline.task.name": key,
                "cicd.pipeline.task.run.result": step.get("result", "skip"),
                "phase8.asset": key.replace("__", "/"),
            },
        )
        step_ctx = trace.set_span_in_context(span)
        for check in (c for c in checks if c["step"] == key):
            child = tracer.start_span(
                f"check {check['name']}",
                context=step_ctx,
                start_time=_ns(check["time"]),
                attributes={
                    "test.case.name": check["name"],
                    "test.case.result.status": "pass" if check["passed"] else "fail",
                    **({"phase8.gate.status": check["gate_status"]} if check["gate_status"] else {}),
                },
            )
            child.end(end_time=_ns(check["time"]))
        if step.get("result") == "failure":
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end(end_time=_ns(step.get("end", step.get("start", first))))
    if result != "success":
        root.set_status(trace.Status(trace.StatusCode.ERROR))
    root.end(end_time=_ns(last))
    telemetry.flush()
    return format(root.get_span_context().trace_id, "032x")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[release_gate],
    name="release_gate_trace",
    minimum_interval_seconds=30,
    description="A trace for every successful release_gate run launched outside `phase8 gate`.",
)
def release_gate_trace(context: dg.RunStatusSensorContext):
    """Trace every release_gate run launched outside ``phase8 gate`` (which traces its own).

    Exists so a gate evaluated from the UI or by ``dagster job execute`` is as visible in the
    tracing backend as one run by CI."""
    if context.dagster_run.tags.get(TRACED_TAG) != "true":
        trace_run(context.instance, context.dagster_run.run_id)


@dg.run_failure_sensor(
    name="run_failure_incident",
    minimum_interval_seconds=30,
    description="Any failed run raises a `phase8.run.failed` incident event.",
)
def run_failure_incident(context: dg.RunFailureSensorContext):
    """Any failed run is an incident signal: a ``phase8.run.failed`` OpenTelemetry event.

    A failed run means evidence was not ingested or a gate could not be evaluated; whoever
    watches the platform's incident channel should hear of it without opening Dagster."""
    run = context.dagster_run
    error = context.failure_event.message if context.failure_event else ""
    telemetry.emit_event(
        "phase8.run.failed",
        {
            "cicd.pipeline.name": run.job_name,
            "cicd.pipeline.run.id": run.run_id,
            "cicd.pipeline.result": "failure",
            "phase8.run.error": error,
        },
        body=f"run {run.run_id} of {run.job_name} failed: {error}",
    )
    if run.job_name == release_gate.name and run.tags.get(TRACED_TAG) != "true":
        trace_run(context.instance, run.run_id)
    telemetry.flush()
