"""Drill readers: Chaos Toolkit journals (real ones included), LitmusChaos ChaosResults, the catalog."""

import json
import pickle

import pytest

from phase8_assets.evidence import EvidenceError, chaos_journal, drill_catalog, litmus
from phase8_assets_tests.conftest import DATA

DEMO_JOURNAL = next((DATA / "evidence/drills/db-failover").glob("*.json"))
DEMO_LITMUS = sorted((DATA / "evidence/drills/litmus").glob("*.yaml"))[-1]


def journal(**changes) -> dict:
    doc = json.loads(DEMO_JOURNAL.read_bytes())
    doc.update(changes)
    return doc


def read_doc(doc: dict):
    return chaos_journal.read(json.dumps(doc).encode(), "x")


@pytest.mark.realdata
def test_real_interrupted_journal_has_a_defined_outcome(real_samples):
    result = chaos_journal.read((real_samples / "chaos/ctk_journal_ansible_interrupted.json").read_bytes(), "x")
    (run,) = result.records
    assert (run.outcome, run.hypothesis_before, run.hypothesis_after) == ("interrupted", None, None)
    assert run.activities == () and run.recovery_s is None
    assert run.recovery_note == "no succeeded fault-injection action in the method"
    assert run.outcome_note == 'status is "interrupted"; expected "completed"'
    assert result.summary["activities"] == 0


@pytest.mark.realdata
def test_real_failed_journal_is_deviated_with_its_exception(real_samples):
    result = chaos_journal.read((real_samples / "chaos/ctk_journal_mdrcs_failed_k8s.json").read_bytes(), "x")
    (run,) = result.records
    assert (run.status, run.outcome, run.deviated) == ("failed", "deviated", True)
    assert (run.hypothesis_before, run.hypothesis_after) == (True, False)
    assert run.outcome_note == "deviated is true; expected false"
    phases = [a.phase for a in run.activities]
    assert phases == ["before", "before", "method", "method", "after"]
    after = run.activities[-1]
    assert after.tolerance_met is False and after.detail.endswith("is in phase 'Pending' but should be 'Running'")
    assert run.recovery_s is None and "not recovered" in run.recovery_note
    assert "no time zone" in result.warnings[0]  # chaoslib 1.9 writes naive timestamps


@pytest.mark.realdata
def test_an_experiment_is_not_a_journal(real_samples):
    with pytest.raises(EvidenceError, match="experiment definition, not a journal") as info:
        chaos_journal.read((real_samples / "chaos/ctk_experiment_mdrcs_k8s.json").read_bytes(), "x")
    assert info.value.field == "status"


@pytest.mark.realdata
def test_secrets_configuration_and_probe_outputs_never_leave_the_reader(real_samples):
    doc = json.loads((real_samples / "chaos/ctk_journal_mdrcs_failed_k8s.json").read_bytes())
    doc["experiment"]["secrets"] = {"k8s": {"token": "super-secret-token"}}
    doc["experiment"]["configuration"]["db_url"] = "postgres://app:hunter2@db:5432/chat"
    doc["run"][0]["activity"]["provider"]["headers"] = {"X-Auth": "hdr-secret-123"}
    stored = pickle.dumps(chaos_journal.read(json.dumps(doc).encode(), "x"))
    for secret in ("super-secret-token", "hunter2", "hdr-secret-123", "FRONTEND_URL"):
        assert secret.encode() not in stored, secret
    # Probe outputs are reduced to a verdict: no HTTP headers or bodies, no pod logs.
    for content in ("this is journal #1", "nginx/1.17.10", "/api/updates"):
        assert content.encode() not in stored, content
    # ...the demo's bearer token in a probe's headers as well.
    assert b"demo-token-not-real" not in pickle.dumps(chaos_journal.read(DEMO_JOURNAL.read_bytes(), "x"))


def test_recovery_is_measured_from_fault_to_steady_state():
    (run,) = chaos_journal.read(DEMO_JOURNAL.read_bytes(), "x").records
    doc = json.loads(DEMO_JOURNAL.read_bytes())
    injected = doc["run"][0]["end"]
    recovered = doc["steady_states"]["after"]["probes"][-1]["end"]
    from datetime import datetime

    expected = (datetime.fromisoformat(recovered) - datetime.fromisoformat(injected)).total_seconds()
    assert run.outcome == "passed" and run.recovery_s == pytest.approx(expected, abs=1e-3)
    assert run.environment == "production" and "drill:db-failover" in run.tags


def test_completed_without_a_steady_state_check_proves_nothing():
    (run,) = read_doc(journal(steady_states=None)).records
    assert run.outcome == "unverified" and run.recovery_s is None
    assert (
        run.outcome_note == "steady_states.before is absent or null; expected the steady-state check before the method"
    )
    (run,) = read_doc({k: v for k, v in journal().items() if k != "steady_states"}).records
    assert run.outcome == "unverified"


def failed(item: dict, message: str) -> dict:
    """An activity as chaoslib records one that raised: status ``failed`` and the traceback."""
    return {**item, "status": "failed", "exception": ["Traceback (most recent call last):\n", message + "\n"]}


@pytest.mark.parametrize("dry", [True, "actions", "probes", "activities", "pause", "some-future-mode"])
def test_a_dry_run_is_not_a_drill(dry):
    # chaoslib skips the activities of `chaos run --dry` but records them "succeeded".
    doc = journal()
    doc["experiment"]["dry"] = dry
    (run,) = read_doc(doc).records
    assert (run.status, run.outcome, run.qualifies) == ("completed", "dry-run", False)
    assert run.outcome_note.startswith(f"experiment.dry is {json.dumps(dry)}; expected false or absent")
    assert run.recovery_s is None and "dry run" in run.recovery_note
    for real in (False, None):
        doc["experiment"]["dry"] = real
        assert read_doc(doc).records[0].outcome == "passed"


def test_a_failed_or_missing_fault_injection_does_not_pass():
    # chaoslib records a failed method action on the activity only; the journal stays completed.
    doc = journal()
    doc["run"][0] = failed(doc["run"][0], "chaoslib.exceptions.ActivityFailed: failover API returned 500")
    (run,) = read_doc(doc).records
    assert (run.status, run.outcome) == ("completed", "failed")
    assert run.outcome_note == (
        'run[0].status is "failed"; expected "succeeded" '
        "(action 'inject-db-failover': chaoslib.exceptions.ActivityFailed: failover API returned 500)"
    )
    # A later action failing is not hidden by an earlier one that succeeded.
    doc = journal()
    doc["run"].append(failed(doc["run"][0], "ActivityFailed: second fault"))
    (run,) = read_doc(doc).records
    assert run.outcome == "failed" and run.outcome_note.startswith('run[1].status is "failed"')
    # No action at all (only a probe in the method): nothing was injected, the run proves nothing.
    doc = journal()
    doc["run"][0]["activity"]["type"] = "probe"
    (run,) = read_doc(doc).records
    assert run.outcome == "unverified" and run.outcome_note.startswith('run[] has no action with status "succeeded"')
    assert run.recovery_s is None


def test_a_steady_state_broken_during_the_fault_deviates():
    # --hypothesis-strategy=continuously without --fail-fast: status completed, deviated false.
    doc = journal()
    after = doc["steady_states"]["after"]
    doc["steady_states"]["during"] = [
        None,  # what chaoslib appends for a round without a hypothesis
        {"steady_state_met": True, "probes": after["probes"]},
        {"steady_state_met": False, "probes": [{**after["probes"][0], "tolerance_met": False}]},
    ]
    (run,) = read_doc(doc).records
    assert (run.status, run.deviated, run.outcome) == ("completed", False, "deviated")
    assert (
        run.outcome_note
        == "steady_states.during[2].steady_state_met is false; expected true in every check during the method"
    )
    assert [a.tolerance_met for a in run.activities if a.phase == "during"] == [True, False]
    doc["steady_states"]["during"] = doc["steady_states"]["during"][:2]
    assert read_doc(doc).records[0].outcome == "passed"
    for during, field in (
        ({"no": "list"}, "steady_states.during"),
        ([{"probes": []}], "steady_states.during[0].steady_state_met"),
    ):
        doc["steady_states"]["during"] = during
        with pytest.raises(EvidenceError) as info:
            read_doc(doc)
        assert info.value.field == field


def test_a_failed_rollback_does_not_pass():
    doc = journal()
    rollback = {**doc["run"][0], "activity": {"type": "action", "name": "restore-primary"}}
    doc["rollbacks"] = [rollback]
    assert read_doc(doc).records[0].outcome == "passed"
    doc["rollbacks"] = [failed(rollback, "chaoslib.exceptions.ActivityFailed: could not restore primary")]
    (run,) = read_doc(doc).records
    assert (run.status, run.outcome) == ("completed", "failed")
    assert run.outcome_note.startswith('rollbacks[0].status is "failed"; expected "succeeded" (the fault may still')
    assert "could not restore primary" in run.outcome_note


@pytest.mark.parametrize(
    ("provider", "output", "expected"),
    [
        ({"type": "process", "path": "kubectl"}, {"status": 1, "stdout": "", "stderr": "Forbidden"}, "expected 0"),
        ({"type": "process", "path": "kubectl"}, {"status": -9, "stdout": "", "stderr": ""}, "expected 0"),
        ({"type": "http", "url": "https://chaos.example/fault"}, {"status": 500, "body": "no"}, "expected below 400"),
    ],
)
@pytest.mark.parametrize("key", ["run", "rollbacks"])
def test_an_action_chaoslib_recorded_succeeded_that_errored_does_not_pass(key, provider, output, expected):
    # chaoslib returns a process's exit code / an HTTP status as the output, records the action
    # "succeeded" whatever it is, and only logs "This may indicate some error".
    doc = journal()
    errored = {**doc["run"][0], "activity": {"type": "action", "name": "step", "provider": provider}, "output": output}
    doc[key] = [errored] if key == "rollbacks" else [errored, *doc["run"]]
    (run,) = read_doc(doc).records
    assert (run.status, run.outcome) == ("completed", "failed")
    assert run.outcome_note.startswith(f"{key}[0].output.status is {output['status']}; {expected}")
    assert ("the fault was not injected" if key == "run" else "the fault may still be in place") in run.outcome_note
    if key == "run":  # the recovery is not timed from an action that did not inject the fault
        assert run.recovery_note.startswith("from the end of action 'inject-db-failover'")
    # The same outputs from a python provider, a probe, or a clean exit / 2xx are no failure.
    for fine in ({**errored, "activity": {**errored["activity"], "provider": {"type": "python"}}},
                 {**errored, "activity": {**errored["activity"], "type": "probe"}},
                 {**errored, "output": {**output, "status": 0 if provider["type"] == "process" else 204}}):  # fmt: skip
        doc[key] = [fine] if key == "rollbacks" else [fine, *journal()["run"]]
        assert read_doc(doc).records[0].outcome == "passed", fine


def test_a_process_output_is_summarised_as_its_exit_code():
    doc = journal()
    doc["run"][0]["activity"]["provider"] = {"type": "process", "path": "true"}
    doc["run"][0]["output"] = {"status": 0, "stdout": "secret-ish output", "stderr": ""}
    (run,) = read_doc(doc).records
    assert run.outcome == "passed"
    assert next(a for a in run.activities if a.phase == "method").detail == "exit 0"


@pytest.mark.parametrize("key", ["run", "rollbacks"])
def test_an_activity_status_other_than_succeeded_does_not_pass(key):
    # chaoslib writes "succeeded" or "failed"; a "timeout" (a control, another writer) is no success.
    doc = journal()
    extra = {**doc["run"][0], "activity": {"type": "action", "name": "second-step"}, "status": "timeout"}
    doc[key] = [*doc[key], extra]
    (run,) = read_doc(doc).records
    assert run.outcome == "failed"
    assert f'{key}[{len(doc[key]) - 1}].status is "timeout"; expected "succeeded"' in run.outcome_note


def test_a_declared_rollback_that_was_not_played_does_not_pass():
    # `chaos run --rollback-strategy=deviated` on a run that did not deviate (or `never`) leaves
    # rollbacks[] empty although the experiment declares one: the fault may still be in place.
    doc = journal()
    undo = {"type": "action", "name": "restore-primary", "provider": {"type": "python", "module": "m", "func": "f"}}
    doc["experiment"]["rollbacks"] = [undo, {**undo, "name": "unfence-primary"}]
    played = {**doc["run"][0], "activity": undo}
    doc["rollbacks"] = [played]
    (run,) = read_doc(doc).records
    assert run.outcome == "unverified"
    assert run.outcome_note.startswith("rollbacks[] holds 1 of the 2 rollback(s) experiment.rollbacks declares")
    doc["rollbacks"] = [played, {**played, "activity": {**undo, "name": "unfence-primary"}}]
    assert read_doc(doc).records[0].outcome == "passed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"status": "Completed"}, "status"),  # status words are lower-case in every chaoslib
        ({"deviated": "no"}, "deviated"),
        ({"end": "yesterday"}, "end"),
        ({"end": "2020-01-01T00:00:00"}, "end"),  # ends before it starts
        ({"duration": -3.2}, "duration"),
        ({"run": {"not": "a list"}}, "run"),
    ],
)
def test_bad_journals_are_rejected_with_the_field(change, field):
    with pytest.raises(EvidenceError) as info:
        read_doc(journal(**change))
    assert info.value.field == field


def test_bad_activities_are_rejected_with_their_path():
    doc = journal()
    doc["run"][0]["duration"] = -1
    with pytest.raises(EvidenceError, match="expected a duration >= 0") as info:
        read_doc(doc)
    assert info.value.field == "run[0].duration"
    doc = journal()
    doc["steady_states"]["after"]["steady_state_met"] = "yes"
    with pytest.raises(EvidenceError) as info:
        read_doc(doc)
    assert info.value.field == "steady_states.after.steady_state_met"
    doc = journal()
    doc["run"][0]["duration"] = float("nan")
    with pytest.raises(EvidenceError):
        chaos_journal.read(json.dumps(doc).encode(), "x")  # NaN is not JSON chaoslib writes, nor a duration


def test_truncated_journal_is_rejected_with_the_position():
    with pytest.raises(EvidenceError, match="not valid JSON") as info:
        chaos_journal.read(DEMO_JOURNAL.read_bytes()[:700], "x")
    assert info.value.field.startswith("line ")


def test_litmus_result_passes_with_probes_as_the_hypothesis():
    result = litmus.read(DEMO_LITMUS.read_bytes(), "x")
    (run,) = result.records
    assert (run.tool, run.outcome, run.hypothesis_before, run.hypothesis_after) == ("litmus", "passed", True, True)
    assert run.environment == "production" and "experiment:pod-delete" in run.tags
    assert result.timestamp_field == "metadata.managedFields[].time" and run.recovery_s is None
    assert run.extra["probe_success_percentage"] == 100.0 and run.outcome_note == ""


@pytest.mark.parametrize(
    ("edit", "outcome", "note"),
    [
        (
            ("failStep: N/A", "failStep: '[PostChaosCheck]: probe api-ping failed'", "verdict: Pass", "verdict: Fail"),
            "deviated",
            "status.experimentStatus.verdict is Fail (failStep '[PostChaosCheck]: probe api-ping failed'); expected Pass",
        ),
        (
            ("failStep: N/A", "failStep: ChaosInject", "verdict: Pass", "verdict: Fail"),
            "failed",
            "status.experimentStatus.verdict is Fail (failStep 'ChaosInject'); expected Pass",
        ),
        (  # Litmus 3.x: failureOutput (litmus-go's JSON error) instead of failStep
            (
                "failStep: N/A",
                'failureOutput:\n      errorCode: STATUS_CHECKS_ERROR\n      failedStep: \'{"errorCode":'
                '"STATUS_CHECKS_ERROR","phase":"PreChaos","reason":"application pods are not in running '
                "state\"}'",
                "verdict: Pass",
                "verdict: Fail",
            ),
            "failed",
            "status.experimentStatus.verdict is Fail (failureOutput 'application pods are not in running state "
            "[STATUS_CHECKS_ERROR, phase PreChaos]'); expected Pass",
        ),
        (
            (
                "failStep: N/A",
                "failureOutput:\n      errorCode: GENERIC_ERROR\n      failedStep: probe didn't met the passing criteria",
                "verdict: Pass",
                "verdict: Fail",
            ),
            "deviated",
            "status.experimentStatus.verdict is Fail (failureOutput \"probe didn't met the passing criteria "
            '[GENERIC_ERROR]"); expected Pass',
        ),
        (
            ('probeSuccessPercentage: "100"', 'probeSuccessPercentage: "50"'),
            "deviated",
            "status.experimentStatus.probeSuccessPercentage is 50; expected 100",
        ),
        (
            ("verdict: Pass", "verdict: Stopped", "phase: Completed", "phase: Stopped"),
            "stopped",
            "status.experimentStatus.verdict is 'Stopped'; expected Pass",
        ),
        (
            ("verdict: Pass", "verdict: Awaited", "phase: Completed", "phase: Running"),
            "awaited",
            "status.experimentStatus.verdict is 'Awaited'; expected Pass",
        ),
    ],
)
def test_litmus_verdicts_have_defined_outcomes(edit, outcome, note):
    """Each outcome says which field decided it and what a passing drill has there."""
    text = DEMO_LITMUS.read_text()
    for old, new in zip(edit[::2], edit[1::2], strict=True):
        assert old in text
        text = text.replace(old, new)
    (run,) = litmus.read(text.encode(), "x").records
    assert (run.outcome, run.outcome_note) == (outcome, note)


def test_a_label_added_after_a_litmus_run_does_not_date_the_run():
    # `kubectl label chaosresult … env=production` weeks after the run adds a managedFields entry that
    # owns only metadata: the result would look fresh although the experiment last wrote it in November.
    one = DEMO_LITMUS.read_text()
    run_entry = "    manager: experiments\n"
    status_owned = "    fieldsV1:\n      f:status:\n        f:experimentStatus:\n          f:verdict: {}\n" + run_entry
    label = (
        "  - apiVersion: litmuschaos.io/v1alpha1\n    fieldsType: FieldsV1\n"
        "    fieldsV1:\n      f:metadata:\n        f:labels:\n          f:env: {}\n"
        '    manager: kubectl-label\n    operation: Update\n    time: "2027-01-20T08:30:00Z"\n'
    )
    assert run_entry in one and "  name: plugin-crash-loop-pod-delete\n  namespace" in one
    text = one.replace(run_entry, status_owned).replace(
        "  name: plugin-crash-loop-pod-delete\n  namespace", label + "  name: plugin-crash-loop-pod-delete\n  namespace"
    )
    result = litmus.read(text.encode(), "x")
    assert result.observed_at == litmus.read(one.encode(), "x").observed_at
    assert result.records[0].ended_at.isoformat() == "2026-11-11T06:06:00+00:00"
    # An update of the status subresource is the experiment writing its result.
    text = text.replace("    manager: kubectl-label\n", "    manager: experiments\n    subresource: status\n")
    assert litmus.read(text.encode(), "x").observed_at.isoformat() == "2027-01-20T08:30:00+00:00"


def test_litmus_lists_and_bad_results():
    one = DEMO_LITMUS.read_text()
    items = "".join("- " + one.replace("\n", "\n  ").rstrip() + "\n" for _ in range(2))
    listed = litmus.read(f"apiVersion: v1\nkind: List\nitems:\n{items}".encode(), "x")
    assert [r.index for r in listed.records] == [0, 1]
    with pytest.raises(EvidenceError) as info:
        litmus.read(one.replace("verdict: Pass", "verdict: Maybe").encode(), "x")
    assert info.value.field == "status.experimentStatus.verdict"
    with pytest.raises(EvidenceError) as info:
        litmus.read(b"apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n", "x")
    assert info.value.field == "kind"
    for old, new, field in (
        ("  history:\n", "  history: every run\n  was:\n", "status.history"),
        ("  probeStatuses:\n", "  probeStatuses: all passed\n  were:\n", "status.probeStatuses"),
    ):
        with pytest.raises(EvidenceError) as info:
            litmus.read(one.replace(old, new, 1).encode(), "x")
        assert info.value.field == field
    no_time = "\n".join(line for line in one.splitlines() if "time:" not in line and "creationTimestamp" not in line)
    with pytest.raises(EvidenceError) as info:
        litmus.read(no_time.encode(), "x")
    assert info.value.field == "metadata.creationTimestamp"


def test_catalog_reads_and_refuses_what_it_cannot_use():
    text = (DATA / "policy/drill-catalog.yaml").read_text()
    result = drill_catalog.read(text.encode(), "x")
    assert [d.id for d in result.records][:2] == ["db-failover", "cache-loss"]
    assert result.records[0].recovery_objective.total_seconds() == 300
    assert result.observed_at.isoformat() == "2026-10-01T00:00:00+00:00"
    twice = text.replace("id: cache-loss", "id: db-failover")
    with pytest.raises(EvidenceError, match="declared twice") as info:
        drill_catalog.read(twice.encode(), "x")
    assert info.value.field == "drills[1].id"
    with pytest.raises(EvidenceError) as info:
        drill_catalog.read(text.replace("cadence: P1M", "cadence: monthly", 1).encode(), "x")
    assert info.value.field == "drills[0].cadence"
    with pytest.raises(EvidenceError, match="apiVersion"):
        drill_catalog.read(text.replace("apiVersion: phase8/v1", "apiVersion: phase8/v0").encode(), "x")


def test_a_steady_state_broken_before_the_method_is_named_as_the_cause():
    """chaoslib stops before the method when the steady state does not hold first: status
    ``failed``, ``deviated`` false, ``after`` null, ``run`` empty. The note names the field that
    decided it (the service was unhealthy before the drill: no fault was injected), not just the status."""
    doc = journal(status="failed", run=[], rollbacks=[])
    before = doc["steady_states"]["before"]
    before["steady_state_met"] = False
    before["probes"][-1] = failed({**before["probes"][-1], "tolerance_met": False}, "ActivityFailed: refused")
    doc["steady_states"]["after"] = None
    (run,) = read_doc(doc).records
    assert (run.status, run.outcome, run.hypothesis_before) == ("failed", "failed", False)
    assert run.outcome_note.startswith(
        "steady_states.before.steady_state_met is false; expected true (a healthy start)"
    ), run.outcome_note
