"""LitmusChaos ``ChaosResult`` YAML (``litmuschaos.io/v1alpha1``), as ``kubectl get -o yaml`` writes it.

A file may hold one result, several documents, or a ``List``/``ChaosResultList`` with ``items``.
Each result is one drill run:

- ``status.experimentStatus.verdict`` Pass (phase Completed) → ``passed``, unless a probe failed or
  ``probeSuccessPercentage`` is below 100 (→ ``deviated``); Fail → ``deviated``, or ``failed`` when
  ``failStep`` (Litmus 1.x/2.x) or ``failureOutput.failedStep`` (3.x: litmus-go's JSON error, whose
  ``phase`` is PreChaos, ChaosInject or PostChaos, and ``errorCode``) says the pre-chaos check or the
  injection itself failed; Stopped → ``stopped``;
  Awaited (still running) → ``awaited``; anything else is rejected.
- Probes in ``SOT`` mode are the hypothesis before, ``EOT`` after; ``Edge`` and ``Continuous``
  count for both.
- The evidence time is the last update Kubernetes recorded of the result's status
  (``metadata.managedFields[].time`` of an entry whose ``fieldsV1`` holds ``f:status``, or shows no
  field set; one that only changed labels or annotations, ``kubectl label`` after the run, is no
  run), else ``metadata.creationTimestamp``. A ChaosResult carries no per-step timings, so its recovery
  time is not measured.
"""

from __future__ import annotations

import json

from phase8_assets.evidence import EvidenceError, ReadResult
from phase8_assets.evidence.drill_runs import DrillActivity, DrillRun, environment_of
from phase8_assets.shared.clock import TimeParseError, parse_timestamp
from phase8_assets.shared.redaction import redact_text
from phase8_assets.shared.yaml_loader import YamlError, load_yaml_documents

VERDICTS = ("Pass", "Fail", "Stopped", "Awaited")
BEFORE_MODES = {"sot", "edge", "continuous", "onchaos"}
AFTER_MODES = {"eot", "edge", "continuous", "onchaos"}


def _results(docs: list) -> list[tuple[str, dict]]:
    out = []
    for d, doc in enumerate(docs):
        where = f"document {d + 1}" if len(docs) > 1 else ""
        if isinstance(doc, dict) and doc.get("kind") in ("List", "ChaosResultList"):
            items = doc.get("items")
            if not isinstance(items, list):
                raise EvidenceError(f"{where}.items".strip("."), "expected a list of ChaosResults")
            out += [(f"{where}.items[{i}]".strip("."), item) for i, item in enumerate(items)]
        elif doc is not None:
            out.append((where, doc))
    return out


def _writes_status(entry: dict) -> bool:
    """Whether a ``managedFields`` entry may be the experiment writing its result: it names the
    ``status`` (subresource or field set), or its field set is not shown. ``kubectl label`` /
    ``annotate`` weeks after the run leave an entry that owns only ``f:metadata``: no run."""
    fields = entry.get("fieldsV1")
    return entry.get("subresource") == "status" or not isinstance(fields, dict) or "f:status" in fields


def _when(meta: dict, where: str):
    stamps = [
        f.get("time")
        for f in meta.get("managedFields") or []
        if isinstance(f, dict) and f.get("time") and _writes_status(f)
    ]
    field = "metadata.managedFields[].time" if stamps else "metadata.creationTimestamp"
    if not stamps and meta.get("creationTimestamp"):
        stamps = [meta["creationTimestamp"]]
    if not stamps:
        raise EvidenceError(f"{where}metadata.creationTimestamp", "expected the time the result was written")
    try:
        return max(parse_timestamp(s, field).at for s in stamps), field
    except TimeParseError as exc:
        raise EvidenceError(f"{where}{field}", str(exc).split(": ", 1)[-1]) from exc


def _probe_verdict(probe: dict) -> bool | None:
    status = probe.get("status")
    verdict = status.get("verdict") if isinstance(status, dict) else status
    text = str(verdict or "").strip().lower()
    if text in ("passed", "pass"):
        return True
    if text in ("failed", "fail"):
        return False
    return None  # N/A or Awaited


def _fail_step(exp: dict) -> tuple[str, str, str]:
    """(field, text, phase) of why a run failed: ``failStep`` (Litmus 1.x/2.x), or Litmus 3.x's
    ``failureOutput`` (``failedStep``, often litmus-go's JSON error with ``phase``, and ``errorCode``)."""
    output = exp.get("failureOutput")
    if isinstance(output, dict) and (output.get("failedStep") or output.get("errorCode")):
        step, code = str(output.get("failedStep") or ""), str(output.get("errorCode") or "")
        try:
            parsed = json.loads(step) if step.lstrip().startswith("{") else {}
        except ValueError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        text = str(parsed.get("reason") or step) if parsed else step
        code = code or str(parsed.get("errorCode") or "")
        phase = str(parsed.get("phase") or "")
        detail = ", ".join(x for x in (code, f"phase {phase}" if phase else "") if x)
        return "failureOutput", f"{text} [{detail}]" if detail else text, phase
    return "failStep", str(exp.get("failStep") or ""), ""


def _one(doc: object, where: str, index: int) -> tuple[DrillRun, str]:
    prefix = f"{where}." if where else ""
    if not isinstance(doc, dict) or doc.get("kind") != "ChaosResult":
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise EvidenceError(f"{prefix}kind", f"expected a LitmusChaos ChaosResult, got {kind!r}")
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    status = doc.get("status") if isinstance(doc.get("status"), dict) else {}
    exp = status.get("experimentStatus")
    if not isinstance(exp, dict):
        raise EvidenceError(f"{prefix}status.experimentStatus", "expected the experiment's status (phase, verdict)")
    verdict = exp.get("verdict")
    if verdict not in VERDICTS:
        raise EvidenceError(
            f"{prefix}status.experimentStatus.verdict", f"expected one of {'|'.join(VERDICTS)}, got {verdict!r}"
        )
    name = str(meta.get("name") or "")
    if not name:
        raise EvidenceError(f"{prefix}metadata.name", "expected the ChaosResult's name")
    percent_text = exp.get("probeSuccessPercentage")
    percent = None
    if percent_text not in (None, "", "N/A", "Awaited"):
        try:
            percent = float(str(percent_text).rstrip("%"))
        except ValueError as exc:
            raise EvidenceError(
                f"{prefix}status.experimentStatus.probeSuccessPercentage", f"expected a number, got {percent_text!r}"
            ) from exc
        if not 0 <= percent <= 100:
            raise EvidenceError(
                f"{prefix}status.experimentStatus.probeSuccessPercentage", f"expected 0..100, got {percent_text!r}"
            )
    at, field = _when(meta, prefix)
    probes, before, after = [], [], []
    history = status.get("history") or {}
    if not isinstance(history, dict):
        raise EvidenceError(
            f"{prefix}status.history", f"expected passedRuns/failedRuns/stoppedRuns, got {history!r}"[:200]
        )
    probe_statuses = status.get("probeStatuses") or []
    if not isinstance(probe_statuses, list):
        raise EvidenceError(f"{prefix}status.probeStatuses", "expected a list of probe statuses")
    for i, probe in enumerate(probe_statuses):
        if not isinstance(probe, dict):
            raise EvidenceError(f"{prefix}status.probeStatuses[{i}]", "expected a probe status object")
        ok = _probe_verdict(probe)
        mode = str(probe.get("mode") or "").lower()
        if mode in BEFORE_MODES and ok is not None:
            before.append(ok)
        if mode in AFTER_MODES and ok is not None:
            after.append(ok)
        description = probe.get("status", {}).get("description", "") if isinstance(probe.get("status"), dict) else ""
        probes.append(
            DrillActivity(
                phase="probe",
                seq=i,
                type=str(probe.get("type") or "probe"),
                name=redact_text(str(probe.get("name") or "(unnamed)")),
                status={True: "succeeded", False: "failed", None: "n/a"}[ok],
                tolerance_met=ok,
                detail=redact_text(f"{probe.get('mode') or ''} {description}".strip())[:500],
            )
        )
    fail_field, fail_step, fail_phase = _fail_step(exp)
    phase = str(exp.get("phase") or "")
    probe_failed = any(p.tolerance_met is False for p in probes) or (percent is not None and percent < 100)
    where = f"{prefix}status.experimentStatus"
    failed_probe = next((p.name for p in probes if p.tolerance_met is False), None)
    if verdict == "Pass":
        outcome = "deviated" if probe_failed else ("passed" if phase.lower().startswith("completed") else "awaited")
        note = (
            f"{prefix}status.probeStatuses: probe {failed_probe!r} failed; expected every probe to pass"
            if failed_probe
            else f"{where}.probeSuccessPercentage is {percent:g}; expected 100"
            if probe_failed
            else f"{where}.phase is {phase!r}; expected Completed"
            if outcome == "awaited"
            else ""
        )
    elif verdict == "Fail":
        before_chaos = fail_phase in ("PreChaos", "ChaosInject")
        outcome = (
            "failed" if ("PreChaosCheck" in fail_step or "ChaosInject" in fail_step or before_chaos) else "deviated"
        )
        note = f"{where}.verdict is Fail ({fail_field} {redact_text(fail_step)[:300]!r}); expected Pass"
    else:
        outcome = verdict.lower()
        note = f"{where}.verdict is {verdict!r}; expected Pass"
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    tags = tuple(
        [f"{k}:{v}" for k, v in sorted(labels.items())]
        + [f"{k}:{spec[k]}" for k in ("engine", "experiment") if spec.get(k)]
    )
    run = DrillRun(
        tool="litmus",
        title=name,
        tags=tags,
        status=f"{phase}/{verdict}" if phase else verdict,
        outcome=outcome,
        outcome_note=note,
        deviated=outcome == "deviated",
        started_at=None,
        ended_at=at,
        hypothesis_before=all(before) if before else None,
        hypothesis_after=all(after) if after else None,
        recovery_s=None,
        recovery_note="a LitmusChaos ChaosResult carries no timings: recovery time is not measured",
        description=redact_text(fail_step) if fail_step not in ("", "N/A") else "",
        environment=environment_of(tags, labels),
        index=index,
        activities=tuple(probes),
        extra={
            "namespace": str(meta.get("namespace") or ""),
            "engine": str(spec.get("engine") or ""),
            "experiment": str(spec.get("experiment") or ""),
            "probe_success_percentage": percent,
            "history": {k: v for k, v in history.items() if k.endswith("Runs")},
        },
    )
    return run, field


def read(data: bytes, uri: str) -> ReadResult:
    try:
        docs = load_yaml_documents(data, uri)
    except YamlError as exc:
        raise EvidenceError("(document)", str(exc).split(": ", 1)[-1]) from exc
    found = _results(docs)
    if not found:
        raise EvidenceError("(document)", "expected at least one LitmusChaos ChaosResult")
    runs, fields = [], []
    for index, (where, doc) in enumerate(found):
        run, field = _one(doc, where, index)
        runs.append(run)
        fields.append(field)
    newest = max(range(len(runs)), key=lambda i: runs[i].ended_at)
    return ReadResult(
        observed_at=runs[newest].ended_at,
        timestamp_field=fields[newest],
        summary={
            "results": len(runs),
            "titles": [r.title for r in runs],
            "outcomes": [r.outcome for r in runs],
        },
        records=runs,
    )
